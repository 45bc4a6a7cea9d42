"""``run.log`` of a run directory: what the terminal and the simulators logged, stamped with the
scenario's virtual time.

Without a handler of the run's own, Python's last resort printed a dying terminal's warnings
(an intake log that a power cut left unwritable) bare on the console, through the progress bar;
here they go with the run's other evidence, at the virtual instant they were made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

#: What a run keeps: INFO and above (a 6-hour run with a cut, retention-6h.yaml: 178 lines).
LEVEL = logging.INFO


class _VirtualTime(logging.Formatter):
    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._now = now

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # the record's own stamp is wall time, which in a virtual run says nothing
        return datetime.fromtimestamp(self._now(), UTC).isoformat(timespec="milliseconds")


@contextmanager
def run_log(path: Path, now: Callable[[], float]) -> Iterator[logging.Handler]:
    """Log INFO and above from every logger to ``path`` while the block runs, each record at
    the time ``now()`` (the virtual clock) gives. The root logger's level is lowered to INFO
    for the block if it was higher, and put back after: a caller's own handlers see those
    records too, as they see the run's interpreter settings (``interpreter.py``)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(LEVEL)
    handler.setFormatter(_VirtualTime(now))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > LEVEL:
        root.setLevel(LEVEL)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()

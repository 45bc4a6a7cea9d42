"""The terminal's recent warnings and errors, for remote monitoring (ISC-2 §8.2 「错误日志」).

:class:`ErrorLog` is a :mod:`logging` handler on the ``reference_terminal`` logger keeping the
last records at WARNING or above in memory, stamped with the terminal's clock (so they line up
with its data in virtual time too). The terminal attaches it while it runs (``attach`` /
``detach``). The durable side of the story (gaps, alarms, rejected values) is in the store's
events; the monitoring document shows both (:mod:`.monitoring`).

One process, one logging system: two terminals run in the same process (a bench) each see the
other's records.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from common.clock import Clock

#: The package logger every part of the terminal logs under.
LOGGER = "reference_terminal"
KEEP = 200
MAX_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class LogRecord:
    t: float
    level: str
    logger: str
    message: str


class ErrorLog(logging.Handler):
    def __init__(self, clock: Clock, *, keep: int = KEEP, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.clock = clock
        self._records: deque[LogRecord] = deque(maxlen=keep)
        self._guard = threading.Lock()  # records come from the store's threads too
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message = f"{message}: {type(error).__name__}: {error}"
            entry = LogRecord(
                self.clock.time(), record.levelname, record.name, message[:MAX_MESSAGE]
            )
        except Exception:  # a record that cannot be formatted is not worth a crash
            self.handleError(record)
            return
        with self._guard:
            self._records.append(entry)
            self.total += 1

    def records(self, since: float | None = None) -> list[LogRecord]:
        """The kept records, oldest first (``since``: at or after that time)."""
        with self._guard:
            kept = list(self._records)
        return kept if since is None else [r for r in kept if r.t >= since]

    def attach(self) -> None:
        logging.getLogger(LOGGER).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(LOGGER).removeHandler(self)

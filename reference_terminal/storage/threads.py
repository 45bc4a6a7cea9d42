"""Where the store's threads run: the CPUs they are kept to and how readily the background
ones yield a busy CPU (``Storage.cpus``, ``Storage.background_nice``).

The background threads are the writer, when an intake log stands in front of it (a write is
acknowledged once the log has it, so the writer only applies it behind), and the checkpointer.
Their large pieces of work — a settle of the recent rows, a checkpoint pass — would otherwise
take a CPU from the event loop and the intake thread for a second at a time, on which every
acknowledgement waits (ISC-2 §9.4). Linux keeps a nice value per thread; elsewhere the call
fails and the thread runs as the process does, with a warning.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: The highest nice value: the least CPU a thread can be left with under load.
NICEST = 19


@dataclass(frozen=True, slots=True)
class ThreadPlacement:
    cpus: frozenset[int] = frozenset()  # empty: wherever the system runs them
    background_nice: int = 0  # added to the process's nice value; 0: as the process

    def __post_init__(self) -> None:
        if not 0 <= self.background_nice <= NICEST:
            raise ValueError(f"background_nice must be 0 to {NICEST}: {self.background_nice}")

    def enter(self, background: bool = False) -> None:
        """Place the calling thread."""
        if self.cpus:
            keep_to_cpus(self.cpus)
        if background and self.background_nice:
            lower_priority(self.background_nice)

    def thread(
        self, run: Callable[[], None], name: str, *, background: bool = False
    ) -> threading.Thread:
        """A daemon thread that places itself, then runs ``run``."""

        def placed() -> None:
            self.enter(background=background)
            run()

        return threading.Thread(target=placed, name=name, daemon=True)


def keep_to_cpus(cpus: frozenset[int]) -> None:
    """Keep the calling thread to ``cpus``; a system that cannot is told of, and the thread
    runs wherever it is put."""
    try:
        os.sched_setaffinity(0, cpus)  # Linux: the calling thread only
    except (AttributeError, OSError, ValueError) as exc:
        log.warning("store: its threads cannot be kept to CPUs %s: %s", sorted(cpus), exc)


def lower_priority(by: int) -> None:
    """Raise the calling thread's nice value by ``by`` (at most to 19)."""
    try:
        tid = threading.get_native_id()
        nice = os.getpriority(os.PRIO_PROCESS, tid)  # Linux: a thread id names the thread
        os.setpriority(os.PRIO_PROCESS, tid, min(nice + by, NICEST))
    except (AttributeError, OSError) as exc:
        log.warning("store: %s cannot yield the CPU (nice): %s", threading.current_thread(), exc)

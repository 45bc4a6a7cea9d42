"""CPU seconds of a run by thread of the bench's process and by child process, phase by phase.

A virtual step waits until every thread is idle, so a long run's wall time is what its threads
and the processes they wait on spend one after another: retention-48h's timeline on a 2-core
host (2026-11-28) was 127.1 s of wall time for 61.4 s of the event loop, 46.9 s of the store
writer, 14.8 s of the volatile disk's process and 3.7 s of the store's readers. Which of them a
change shortens is what this ledger shows.

Read from ``/proc`` (Linux; elsewhere the ledger stays empty), counted from the ledger's making:
each thread's and child's CPU so far, kept by id as last seen, so a thread that ends (a store's
threads at a power cut) keeps what it had spent by its last sample. The engine samples at every
virtual hour and before every cut; what a thread spends after its last sample is not counted.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from pathlib import Path

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: A pool's worker number (``store-reader_0``) or a thread's count (``Thread-3 (_client)``).
_NUMBERED = re.compile(r"_\d+$|-\d+(?= \()")


class CpuLedger:
    """CPU seconds by thread name (and child process) per phase of a run."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[str, float]] = {}  # (kind, id) -> (name, s)
        self.phases: dict[str, dict[str, float]] = {}
        self.sample()  # counted from here: not the imports and whatever ran before
        self._at_lap = self._totals()

    def sample(self) -> None:
        """Note what every live thread and child process has spent so far."""
        task = _PROC / "self" / "task"
        if not task.is_dir():
            return
        names = {t.native_id: t.name for t in threading.enumerate()}
        children: list[int] = []
        for tid_text in _listdir(task):
            tid = int(tid_text)
            spent = _cpu_s(task / tid_text / "stat")
            if spent is None:
                continue
            # A thread just joined lingers in /proc, gone from threading's list, as an exited
            # child does before it is reaped, its command line empty: each keeps the name it
            # was seen under (a pool once lost half its CPU to the process's name).
            name = names.get(tid) or self._name_seen("thread", tid)
            name = name or _read(task / tid_text / "comm") or tid_text
            self._seen["thread", tid] = (_NUMBERED.sub("", name), spent)
            children += [int(pid) for pid in _read(task / tid_text / "children").split()]
        for pid in children:
            spent = _cpu_s(_PROC / str(pid) / "stat")
            if spent is not None:
                name = _process_name(pid) or self._name_seen("process", pid) or f"? [{pid}]"
                self._seen["process", pid] = (name, spent)

    def lap(self, phase: str) -> None:
        """``phase`` ended now: what each name spent since the last lap."""
        self.sample()
        totals = self._totals()
        spent_in = {name: s - self._at_lap.get(name, 0.0) for name, s in totals.items()}
        self.phases[phase] = {
            name: round(s, 1)
            for name, s in sorted(spent_in.items(), key=lambda item: -item[1])
            if s >= 0.05
        }
        self._at_lap = totals

    def _name_seen(self, kind: str, id_: int) -> str:
        seen = self._seen.get((kind, id_))
        return seen[0] if seen else ""

    def _totals(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for name, spent in self._seen.values():
            totals[name] += spent
        return totals


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # gone since it was listed
        return ""


def _cpu_s(stat: Path) -> float | None:
    """utime + stime from a ``stat`` file (fields 14 and 15; the name before them may hold
    spaces and parentheses, so they are counted from its closing one)."""
    text = _read(stat)
    if not text:
        return None
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _process_name(pid: int) -> str:
    """A child by what it runs: the module of ``python -m module``, else its program, with its
    process id (two centres run the same module); empty once it has exited."""
    argv = _read(_PROC / str(pid) / "cmdline").split("\0")
    if not argv[0]:
        return ""
    name = argv[0].rpartition("/")[2]
    if "-m" in argv[:-1]:
        name = argv[argv.index("-m") + 1]
    return f"{name} [{pid}]"

"""Shared timing and reporting for the benchmark scripts: each prints one JSON object."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str
    target: float | None = None  # the minimum, when it names one

    @property
    def meets_target(self) -> bool | None:
        return None if self.target is None else self.value >= self.target


def pct(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``ordered`` (sorted), nearest rank below."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate(fn: Callable[[], object], *, min_seconds: float = 1.0, repeats: int = 5) -> float:
    """Calls per second of ``fn``: the best of ``repeats`` runs of at least ``min_seconds`` each.

    The best run, not the mean, because on a shared 2-core machine slower runs measure the
    neighbours, not the code.
    """
    batch = 1
    while True:  # size a batch to take ~1/10 of min_seconds
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / 10:
            break
        batch *= 2
    best = 0.0
    for _ in range(repeats):
        calls = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_seconds:
            for _ in range(batch):
                fn()
            calls += batch
        best = max(best, calls / elapsed)
    return best


def cpu_rate(fn: Callable[[], object], *, min_seconds: float = 1.0, repeats: int = 5) -> float:
    """Calls per CPU second of this process in ``fn``: the best of ``repeats`` runs of at least
    ``min_seconds`` of CPU time (steadier than wall time beside busy neighbours)."""
    best = 0.0
    for _ in range(repeats):
        calls = 0
        start = time.process_time()
        while (elapsed := time.process_time() - start) < min_seconds:
            fn()
            calls += 1
        best = max(best, calls / elapsed)
    return best


class StandingClock:
    """A clock that stands where the benchmark puts it (``t``); sleeping moves it on."""

    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def host_pace_s(steps: int = 10_000_000, repeats: int = 3) -> float:
    """Wall seconds of a ``steps``-step Python loop, the best of ``repeats``: the host's pace
    for interpreted work. The same code's figures moved with it several times over from day to
    day on this machine, so a figure is compared with others made at a like pace."""

    def loop() -> int:
        total = 0
        for i in range(steps):
            total += i
        return total

    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def machine() -> dict[str, Any]:
    """What a benchmark ran on, with the host's pace as it started."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "pace_s": host_pace_s(),
    }


def report(benchmark: str, figures: list[Figure], **extra: Any) -> None:
    """Print the benchmark's figures as one JSON object on stdout."""
    out = {
        "benchmark": benchmark,
        "machine": machine(),
        "figures": [asdict(f) | {"meets_target": f.meets_target} for f in figures],
        **extra,
    }
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


@contextlib.contextmanager
def collector_pauses() -> Iterator[dict[int, list[float]]]:
    """The cyclic collector's passes while the block runs, in seconds, by generation: 2 are
    full passes; a young one (0) walks every young object, tens of milliseconds with the event
    loop stopped when a backlog waits as objects."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)


def free_ports(count: int) -> list[int]:
    """Ports nobody holds right now (all held at once, so they differ; then released)."""
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports

"""Where bench_edge_latency's slow instants fall: ``python -m benchmarks.probe_edge_tail`` prints
one JSON object.

One paced run of bench_edge_latency's load (its terminal, values and pacing) with the store's
background work timed: each settle of the recent rows, its paced write-out, each settle or
checkpoint pass (``_bursting``), each transaction applying intake-log records, and every
``fdatasync`` of the process. For the ``Terminal.accept`` calls over 2 ms: how many overlapped
each kind of work; and ``accept`` and ``fdatasync`` inside settles against outside them. A
diagnostic, not a figure of an issue: it wraps the store's private methods, so it has to
follow them when they change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import bench_edge_latency as edge
from benchmarks.harness import Figure, pct, report
from reference_terminal.app import Terminal
from reference_terminal.runtime import settle_heap, tune_process
from reference_terminal.storage import store

SLOW_S = 0.002
Span = tuple[float, float]
clock = time.perf_counter


class Timings:
    """Spans (start, end) of each kind of work, recorded by wrappers installed on entry."""

    def __init__(self) -> None:
        self.spans: dict[str, list[Span]] = {
            k: [] for k in ("settle", "write_out", "burst", "apply", "fdatasync", "accept")
        }
        self._undo: list[Callable[[], None]] = []

    def _wrap(self, owner: Any, name: str, kind: str) -> None:
        original = getattr(owner, name)
        spans = self.spans[kind]

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                spans.append((started, clock()))

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> Timings:
        self._wrap(store._Writer, "_move_recent", "settle")
        self._wrap(store._Writer, "_write_out", "write_out")
        self._wrap(store._Writer, "_execute", "apply")
        self._wrap(os, "fdatasync", "fdatasync")
        bursting = store._bursting
        bursts = self.spans["burst"]

        @contextlib.contextmanager
        def timed_burst(writer: Any) -> Iterator[None]:
            started = clock()
            with bursting(writer):
                yield
            bursts.append((started, clock()))

        store._bursting = timed_burst
        self._undo.append(lambda: setattr(store, "_bursting", bursting))
        accept = Terminal.accept
        accepts = self.spans["accept"]

        async def timed_accept(term: Terminal, *args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await accept(term, *args, **kwargs)
            finally:
                accepts.append((started, clock()))

        setattr(Terminal, "accept", timed_accept)  # noqa: B010 (a method replaced for the run)
        self._undo.append(lambda: setattr(Terminal, "accept", accept))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def clear(self) -> None:
        for spans in self.spans.values():
            spans.clear()


def _overlaps(spans: list[Span], span: Span) -> bool:
    return any(start < span[1] and end > span[0] for start, end in spans)


def _ms(durations: list[float], q: float) -> float | None:
    return round(1000 * pct(sorted(durations), q), 3) if durations else None


def _inside_and_out(items: list[Span], settles: list[Span]) -> dict[str, Any]:
    inside = [end - start for start, end in items if _overlaps(settles, (start, end))]
    outside = [end - start for start, end in items if not _overlaps(settles, (start, end))]
    return {
        where: {"n": len(d), "p50_ms": _ms(d, 0.5), "p99_ms": _ms(d, 0.99)}
        for where, d in (("in_settles", inside), ("outside", outside))
    }


async def probe(seconds: int, prefill_s: int) -> None:
    values = edge.Values()
    with Timings() as timings, tempfile.TemporaryDirectory(prefix="carbench-probe-") as tmp:
        async with edge.terminal(Path(tmp)) as term:
            assert term.store is not None
            await edge.prefill(term.store, prefill_s)
            warm = edge.data_seconds(values, 0, 5)
            data = edge.data_seconds(values, 5, seconds)
            settle_heap()
            await edge.paced(term, warm)
            timings.clear()
            run = await edge.paced(term, data)
        spans = timings.spans
    accepts = spans["accept"]
    slow = [s for s in accepts if s[1] - s[0] > SLOW_S]
    work = ("settle", "write_out", "burst", "apply")
    report(
        "edge_tail_probe",
        [
            Figure("edge latency p99 of the run", round(run.pct(0.99) * 1000, 3), "ms"),
            Figure("accept calls over 2 ms", len(slow), "calls"),
        ],
        accept_calls=len(accepts),
        slow_overlapping={
            kind: {
                "calls": (n := sum(_overlaps(spans[kind], s) for s in slow)),
                "pct": round(100 * n / max(1, len(slow)), 1),
                "busy_s": round(sum(end - start for start, end in spans[kind]), 2),
                "spans": len(spans[kind]),
            }
            for kind in work
        },
        accept=_inside_and_out(accepts, spans["settle"] + spans["write_out"]),
        fdatasync=_inside_and_out(spans["fdatasync"], spans["settle"] + spans["write_out"]),
        settle_s=[round(end - start, 3) for start, end in spans["settle"]],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="the paced run (default 30)")
    parser.add_argument("--prefill", type=int, default=100, help="history first (default 100 s)")
    args = parser.parse_args()
    tune_process()
    asyncio.run(probe(args.seconds, args.prefill))


if __name__ == "__main__":
    main()

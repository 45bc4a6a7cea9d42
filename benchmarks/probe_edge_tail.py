"""Where bench_edge_latency's slow instants fall: ``python -m benchmarks.probe_edge_tail`` prints
one JSON object.

One paced run of bench_edge_latency's load (its terminal, values and pacing) with the store's
background work timed: each settle of the recent rows, its paced write-out, each settle or
checkpoint pass (``_bursting``), each transaction applying intake-log records, every
``fdatasync`` of the process, each pass of the cyclic collector (by generation) and each
callback that held the event loop over ``STALL_S`` (listed, with what it was). For the
``Terminal.accept`` calls over 2 ms: how many overlapped each kind of work; and ``accept`` and
``fdatasync`` inside settles against outside them. ``--census`` also lists, at each young
pass, the most numerous types in the young generation (what the pass walks; counting them
lengthens the pass). A diagnostic, not a figure of an issue: it wraps the store's private
methods, so it has to follow them when they change.

Spans are kept as flat lists of floats, which the collector does not track: as (start, end)
tuples, the run's 60 000 accept spans alone made young passes of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import bench_edge_latency as edge
from benchmarks.harness import Figure, pct, report
from reference_terminal.app import Terminal
from reference_terminal.runtime import settle_heap, tune_process
from reference_terminal.storage import store

SLOW_S = 0.002
#: A callback holding the event loop this long is listed, with what it was.
STALL_S = 0.005
Span = tuple[float, float]
clock = time.perf_counter


class Timings:
    """Spans of each kind of work, recorded by wrappers installed on entry."""

    KINDS = ("settle", "write_out", "burst", "apply", "fdatasync", "accept", "stall")

    def __init__(self, *, census: bool = False) -> None:
        #: start, end, start, end … of each kind (floats: see the module text)
        self.marks: dict[str, list[float]] = {k: [] for k in (*self.KINDS, "gc0", "gc1", "gc2")}
        #: (start, seconds, what) of each callback that held the loop over ``STALL_S``
        self.stalls: list[tuple[float, float, str]] = []
        #: (start, the young generation's most numerous types) of each young pass (census)
        self.census: list[tuple[float, list[tuple[str, int]]]] | None = [] if census else None
        self._undo: list[Callable[[], None]] = []

    def spans(self, kind: str) -> list[Span]:
        marks = self.marks[kind]
        return list(zip(marks[::2], marks[1::2], strict=True))

    def _wrap(self, owner: Any, name: str, kind: str) -> None:
        original = getattr(owner, name)
        add = self.marks[kind].extend

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                add((started, clock()))

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> Timings:
        self._wrap(store._Writer, "_move_recent", "settle")
        self._wrap(store._Writer, "_write_out", "write_out")
        self._wrap(store._Writer, "_execute", "apply")
        self._wrap(os, "fdatasync", "fdatasync")
        bursting = store._bursting
        bursts = self.marks["burst"].extend

        @contextlib.contextmanager
        def timed_burst(writer: Any) -> Iterator[None]:
            started = clock()
            with bursting(writer):
                yield
            bursts((started, clock()))

        store._bursting = timed_burst
        self._undo.append(lambda: setattr(store, "_bursting", bursting))
        accept = Terminal.accept
        accepts = self.marks["accept"].extend

        async def timed_accept(term: Terminal, *args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await accept(term, *args, **kwargs)
            finally:
                accepts((started, clock()))

        setattr(Terminal, "accept", timed_accept)  # noqa: B010 (a method replaced for the run)
        self._undo.append(lambda: setattr(Terminal, "accept", accept))
        self._time_collector()
        self._time_callbacks()
        return self

    def _time_collector(self) -> None:
        started = [0.0]
        census = self.census

        def on_pass(phase: str, info: dict[str, int]) -> None:
            if phase != "start":
                self.marks[f"gc{info['generation']}"].extend((started[0], clock()))
                return
            if census is not None and info["generation"] == 0:
                young = Counter(type(o).__name__ for o in gc.get_objects(0))
                census.append((clock(), young.most_common(6)))
            started[0] = clock()

        gc.callbacks.append(on_pass)
        self._undo.append(lambda: gc.callbacks.remove(on_pass))

    def _time_callbacks(self) -> None:
        run = asyncio.events.Handle._run
        stalls, marks = self.stalls, self.marks["stall"]

        def timed_run(handle: asyncio.events.Handle) -> None:
            started = clock()
            run(handle)
            took = clock() - started
            if took > STALL_S:
                stalls.append((started, took, repr(handle)[:300]))
                marks.extend((started, started + took))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(asyncio.events.Handle, "_run", run))

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self._undo):
            undo()

    def clear(self) -> None:
        for marks in self.marks.values():
            marks.clear()
        self.stalls.clear()
        if self.census is not None:
            self.census.clear()


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


async def probe(seconds: int, prefill_s: int, *, census: bool) -> None:
    values = edge.Values()
    timings = Timings(census=census)
    with timings, tempfile.TemporaryDirectory(prefix="carbench-probe-") as tmp:
        async with edge.terminal(Path(tmp)) as term:
            assert term.store is not None
            await edge.prefill(term.store, prefill_s)
            warm = edge.data_seconds(values, 0, 5)
            data = edge.data_seconds(values, 5, seconds)
            settle_heap()
            await edge.paced(term, warm)
            timings.clear()
            t0 = clock()
            run = await edge.paced(term, data)
    spans = {kind: timings.spans(kind) for kind in timings.marks}
    accepts = spans["accept"]
    slow = [s for s in accepts if s[1] - s[0] > SLOW_S]
    work = ("settle", "write_out", "burst", "apply", "gc0", "gc1", "gc2", "stall")
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
        handover_lag_max_ms=round(run.lag_max * 1000, 3),
        collector_passes={
            f"gen{g}": [
                {"at_s": round(start - t0, 3), "ms": round((end - start) * 1000, 2)}
                for start, end in spans[f"gc{g}"]
            ]
            for g in range(3)
        },
        young_census=[
            {"at_s": round(at - t0, 3), "most": dict(most)} for at, most in timings.census or ()
        ],
        stalls=[
            {"at_s": round(at - t0, 3), "ms": round(took * 1000, 2), "callback": what}
            for at, took, what in timings.stalls
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="the paced run (default 30)")
    parser.add_argument("--prefill", type=int, default=100, help="history first (default 100 s)")
    parser.add_argument(
        "--census", action="store_true", help="count the young generation's types at each pass"
    )
    args = parser.parse_args()
    tune_process()
    asyncio.run(probe(args.seconds, args.prefill, census=args.census))


if __name__ == "__main__":
    main()

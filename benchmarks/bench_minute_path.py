"""One virtual minute of the reference terminal's own work on the event loop: the works fleet's
values through ``Terminal.accept`` (processing, accounting, the rows for the store), the
minute's window closing and its rows, and the store's preparation of the rows it is handed.

Run: ``.venv/bin/python -m benchmarks.bench_minute_path`` (prints JSON; about a minute).
``--minutes`` sets how many virtual minutes are replayed per run, ``--runs`` how many runs.

The values are recorded first: the works fleet read through its meters' models for
``--minutes`` virtual minutes, as ``bench_acquisition_path`` runs it, every batch the
scheduler hands to ``accept`` kept with its time. Then they are replayed, minute after minute,
into a fresh terminal whose store (:class:`PreparingStore`) turns what it is given into the
rows it would write (``reading_values``, ``event_values``, ``derived_tuple``: what the store
does on the loop before its intake log takes them) and keeps nothing. No meters, no clock
driving, no disk: what is left is what this terminal spends per minute, the figure the
virtual timeline multiplies by 2 880 in ``retention-48h``.

The figure is the main thread's CPU time (``time.thread_time``) per virtual minute, the best
of ``--runs`` runs (two shared cores: slower runs measure the neighbours).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.scenario.interpreter import terminal_interpreter
from bench.scenario.model_link import ModelLink
from bench.terminal_for_fleet import terminal_config
from benchmarks.bench_acquisition_path import WORKS, NoStore, _path
from benchmarks.harness import Figure, StandingClock, report
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Event, RawValue, Reading
from reference_terminal.storage.schema import Derived, derived_tuple, event_values, reading_values
from simulators.clock import VirtualClock
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet

#: A minute's batches: (the time they were handed over, the values).
Minute = list[tuple[float, list[RawValue]]]


class PreparingStore(NoStore):
    """:class:`NoStore` that also builds the rows the store would write, as it does on the
    loop (its intake preparation)."""

    async def write(
        self,
        readings: Iterable[Reading] = (),
        *,
        events: Iterable[Event] = (),
        derived: Iterable[Derived] = (),
    ) -> None:
        rows = (
            [reading_values(r) for r in readings],
            [event_values(e) for e in events],
            [derived_tuple(d) for d in derived],
        )
        self.rows += sum(len(part) for part in rows)

    def write_behind(self, derived: Iterable[Derived]) -> concurrent.futures.Future[None]:
        return super().write_behind([derived_tuple(d) for d in derived])  # type: ignore[misc]


async def record(minutes: int) -> tuple[TerminalConfig, float, list[Minute]]:
    """The works fleet's values, as the scheduler hands them over, minute by minute."""
    spec = load_fleet(WORKS)
    start = spec.start.timestamp() + 3600
    clock = VirtualClock(start)
    batches: list[tuple[float, list[RawValue]]] = []
    async with contextlib.AsyncExitStack() as stack:
        with clock.hold():
            fleet = await stack.enter_async_context(
                running_fleet(
                    spec, clock=clock, serial_pacing="frame", opcua_refresh="on_read", push=False
                )
            )
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'terminal.db'}"
                config = terminal_config(fleet, storage_url=url, serial=60, network=60, push=60)
            terminal = Terminal(config, clock=clock, wiring=ModelLink(fleet))
            accept = terminal.accept

            async def recording(raws: Sequence[RawValue]) -> None:
                batches.append((clock.time(), list(raws)))
                await accept(raws)

            terminal.accept = recording  # type: ignore[method-assign]  # the scheduler's sink
            running = await _path(terminal, config, fleet)
        await clock.sleep(minutes * 60 + 1)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    by_minute: dict[int, Minute] = {}
    for t, raws in batches:
        by_minute.setdefault(int((t - start) // 60), []).append((t, raws))
    return config, start, [by_minute.get(m, []) for m in range(minutes)]


async def replay(config: TerminalConfig, start: float, minutes: list[Minute]) -> list[float]:
    """Main-thread CPU seconds of each minute replayed into a fresh terminal."""
    clock = StandingClock(start)
    terminal = Terminal(config, clock=clock)
    terminal.store = PreparingStore()  # type: ignore[assignment]
    terminal.accounting = RunningAccounting.from_config(
        config, terminal.processor.settings.utc_offset_s
    )
    lag = config.processing.window_lag_s
    cpu: list[float] = []
    for m, batches in enumerate(minutes):
        cpu0 = time.thread_time()
        for t, raws in batches:
            clock.t = t
            await terminal.accept(raws)
        # Terminal._close_windows at the next minute's start
        clock.t = start + (m + 1) * 60
        output = terminal.processor.close_until(clock.t - lag)
        await terminal._store(output, hold=True)
        terminal._write_held()
        cpu.append(time.thread_time() - cpu0)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=130)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with terminal_interpreter():  # as a scenario runs
        config, start, minutes = asyncio.run(record(args.minutes))
        values = sum(len(raws) for minute in minutes for _, raws in minute)
        runs: list[dict[str, Any]] = []
        for _ in range(args.runs):
            cpu = asyncio.run(replay(config, start, minutes))
            runs.append(
                {
                    "us_per_minute": 1e6 * sum(cpu) / len(cpu),
                    "median_us": 1e6 * statistics.median(cpu),
                }
            )
    best = min(runs, key=lambda r: r["us_per_minute"])
    report(
        "minute_path",
        [
            Figure(
                "terminal's event-loop CPU per virtual minute (accept, windows, rows)",
                best["us_per_minute"],
                "µs",
            ),
            Figure("per value read", best["us_per_minute"] * len(minutes) / values, "µs"),
        ],
        minutes=args.minutes,
        points=len(config.points),
        values_per_minute=values / len(minutes),
        runs=[round(r["us_per_minute"], 1) for r in runs],
        median_minute_us=round(best["median_us"], 1),
    )


if __name__ == "__main__":
    main()

"""The reference terminal's acquisition and processing path in virtual time: the "works" fleet
read through its meters' models, as ``meters: model`` scenarios (``retention-48h``) run it.

Run: ``.venv/bin/python -m benchmarks.bench_acquisition_path`` (prints JSON; about a minute).
``--minutes`` sets how many virtual minutes are measured per run, ``--runs`` how many runs,
``--profile FILE`` writes a cProfile of one more run of each case (FILE.store, FILE.path).

Everything runs in one process on one :class:`~simulators.clock.VirtualClock`, as in a
scenario: the fleet's models (``bench.scenario.model_link``), the terminal's scheduler reading
every device once a virtual minute, processing, the rows for the store, window closing, and the
clock's own driving. The interpreter runs with a scenario's settings
(``bench.scenario.interpreter``). Two cases:

- *terminal*: ``Terminal.run`` with its SQLite store on a temporary directory and an uplink
  without centres (the platforms and their outboxes are another benchmark's);
- *path*: the same terminal's scheduler, ``accept`` and window closing, its store replaced by
  one that takes the rows and keeps nothing: what is left is the acquisition and processing path
  (and the clock), without the store's work on the event loop.

The figure is the main thread's CPU time (``time.thread_time``: the store's writer thread is not
counted) per virtual minute, the best of ``--runs`` runs each on a fresh terminal after a
warm-up; two shared cores make wall time meaningless here.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import cProfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from bench.scenario.interpreter import terminal_interpreter
from bench.scenario.model_link import ModelLink
from bench.terminal_for_fleet import terminal_config
from benchmarks.harness import Figure, report
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.acquisition.scheduler import Scheduler
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Event, Reading
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet

WORKS: Final = Path(__file__).resolve().parent.parent / "fixtures" / "fleets" / "works.yaml"
WARM_UP_MIN: Final = 5


class NoStore:
    """Takes what the terminal stores, as the store's API does, and keeps nothing."""

    def __init__(self) -> None:
        self.rows = 0

    async def write(
        self,
        readings: Iterable[Reading] = (),
        *,
        events: Iterable[Event] = (),
        derived: Iterable[Derived] = (),
    ) -> None:
        self.rows += len(list(readings)) + len(list(events)) + len(list(derived))

    def write_behind(self, derived: Iterable[Derived]) -> concurrent.futures.Future[None]:
        self.rows += len(list(derived))
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        done.set_result(None)
        return done

    async def write_events(self, events: Iterable[Event]) -> None:
        await self.write(events=events)


async def _terminal(terminal: Terminal) -> asyncio.Task[None]:
    running = asyncio.create_task(terminal.run())
    await terminal.ready.wait()
    return running


async def _path(
    terminal: Terminal, config: TerminalConfig, fleet: FleetRuntime
) -> asyncio.Task[Any]:
    """The terminal's acquisition as ``Terminal._acquire`` runs it, on :class:`NoStore`."""
    terminal.store = NoStore()  # type: ignore[assignment]  # what the path calls of a store
    terminal.accounting = RunningAccounting.from_config(
        config, terminal.processor.settings.utc_offset_s
    )
    link = ModelLink(fleet)
    drivers = {
        d.id: link.driver(d, buses={}, clock=terminal.clock)
        for d in config.devices
        if link.polled(d)
    }
    terminal.scheduler = Scheduler(
        config, drivers, terminal.clock, terminal.accept, terminal.record
    )

    async def run() -> None:
        assert terminal.scheduler is not None
        async with asyncio.TaskGroup() as group:
            group.create_task(terminal.scheduler.run())
            group.create_task(terminal._close_windows())

    return asyncio.create_task(run())


async def one_run(
    case: str, minutes: int, directory: Path, profile: cProfile.Profile | None
) -> dict[str, float]:
    spec = load_fleet(WORKS)
    clock = VirtualClock(spec.start.timestamp() + 3600)
    async with contextlib.AsyncExitStack() as stack:
        with clock.hold():
            fleet = await stack.enter_async_context(
                running_fleet(
                    spec, clock=clock, serial_pacing="frame", opcua_refresh="on_read", push=False
                )
            )
            url = f"sqlite:///{directory / 'terminal.db'}"
            config = terminal_config(fleet, storage_url=url, serial=60, network=60, push=60)
            terminal = Terminal(config, clock=clock, wiring=ModelLink(fleet))
            if case == "terminal":
                running = await _terminal(terminal)
            else:
                running = await _path(terminal, config, fleet)
        await clock.sleep(WARM_UP_MIN * 60)
        scheduler = terminal.scheduler
        assert scheduler is not None
        reads0 = scheduler.counters.reads
        if profile is not None:
            profile.enable()
        cpu0 = time.thread_time()
        await clock.sleep(minutes * 60)
        cpu = time.thread_time() - cpu0
        if profile is not None:
            profile.disable()
        reads = scheduler.counters.reads - reads0
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        if isinstance(terminal.store, Store):
            await terminal.store.close()
    return {
        "ms_per_minute": 1000 * cpu / minutes,
        "us_per_device_read": 1e6 * cpu / max(reads, 1),
        "reads_per_minute": reads / minutes,
        "points": float(len(config.points)),
    }


def measure(case: str, args: argparse.Namespace) -> list[dict[str, float]]:
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(asyncio.run(one_run(case, args.minutes, Path(tmp), None)))
    if args.profile is not None:
        profile = cProfile.Profile()
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(one_run(case, args.minutes, Path(tmp), profile))
        profile.dump_stats(f"{args.profile}.{case}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    with terminal_interpreter():  # as a scenario runs
        cases = {case: measure(case, args) for case in ("terminal", "path")}
    best = {case: min(results, key=lambda r: r["ms_per_minute"]) for case, results in cases.items()}
    report(
        "acquisition_path",
        [
            Figure(
                "terminal main thread CPU per virtual minute (works fleet, model link, SQLite)",
                best["terminal"]["ms_per_minute"],
                "ms",
            ),
            Figure(
                "acquisition and processing path per virtual minute (the store keeps nothing)",
                best["path"]["ms_per_minute"],
                "ms",
            ),
            Figure(
                "the path per device read (its values processed, their rows built)",
                best["path"]["us_per_device_read"],
                "µs",
            ),
        ],
        minutes=args.minutes,
        runs={
            case: [round(r["ms_per_minute"], 2) for r in results] for case, results in cases.items()
        },
        reads_per_minute=best["path"]["reads_per_minute"],
        points=best["path"]["points"],
    )


if __name__ == "__main__":
    main()

"""Reads through the model link: one virtual minute of the works fleet, as a ``meters: model``
scenario's terminal makes them (``retention-48h.yaml``: every polled point once a minute).

Run: ``.venv/bin/python -m benchmarks.bench_model_reads`` (prints JSON). The figures are the
drivers' ``read`` calls alone (the meter's model and the terminal's decoding), without the
event loop or the scheduler around them: µs of CPU per virtual minute, best of several runs
of many minutes each, because on a shared machine the slower runs measure the neighbours.

:func:`read_minutes` also serves the test that the link's reads stay what they were
(``tests/bench/scenario/test_model_reads.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bench.scenario.model_link import ModelLink
from bench.terminal_for_fleet import terminal_config
from benchmarks.harness import Figure, StandingClock, report
from reference_terminal.acquisition.driver import Driver, DriverError
from reference_terminal.acquisition.drivers import requests_for
from reference_terminal.config import Point, Source
from reference_terminal.model import RawValue
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet

FLEET = "fixtures/fleets/works.yaml"
#: retention-48h.yaml's periods: every group once a minute
PERIODS = {"serial": 60.0, "network": 60.0, "push": 60.0}
MINUTES_PER_RUN = 60
RUNS = 7

Reads = list[tuple[Driver, list[tuple[Point, Source]]]]


class Instant(StandingClock):
    """A clock standing at one instant, moved by the benchmark (no time passes in a read)."""

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("a model read never sleeps")


@contextmanager
def works_fleet(faults: Sequence[dict[str, Any]] = ()) -> Iterator[tuple[FleetRuntime, Reads]]:
    """The works fleet unserved (as ``meters: model`` runs it), with ``faults``, and each
    polled device's driver through the model link with the requests its terminal makes."""
    spec = load_fleet(FLEET)
    if faults:
        spec = spec.model_validate({**spec.model_dump(mode="json"), "faults": list(faults)})

    async def build() -> tuple[FleetRuntime, Reads]:
        clock = VirtualClock(spec.start.timestamp())
        async with running_fleet(
            spec, clock=clock, serial_pacing="frame", opcua_refresh="on_read", serve=False
        ) as fleet:
            config = terminal_config(fleet, storage_url="sqlite://", **PERIODS)
        link = ModelLink(fleet)
        instant = Instant(spec.start.timestamp())
        reads: Reads = []
        for device in config.devices:
            if link.polled(device):
                driver = link.driver(device, buses={}, clock=instant)
                reads.append((driver, requests_for(config, device.id)))
        return fleet, reads

    yield asyncio.run(build())


def first_minute(fleet: FleetRuntime) -> float:
    """The first whole minute an hour into the fleet's run (the plant has a past then)."""
    return math.ceil(fleet.spec.start.timestamp() / 60.0) * 60.0 + 3600.0


def read_minute(reads: Reads, t: float) -> list[list[RawValue] | str]:
    """Every device read at ``t`` (drivers' clocks set there): its values, or its failure."""
    out: list[list[RawValue] | str] = []
    for driver, requests in reads:
        driver.clock.t = t  # type: ignore[attr-defined]
        try:
            out.append(_complete(driver.read(requests)))
        except DriverError as exc:
            out.append(f"{exc.kind}: {exc}")
    return out


def read_minutes(faults: Sequence[dict[str, Any]], minutes: int) -> str:
    """A digest of ``minutes`` virtual minutes' reads of the works fleet with ``faults``:
    every value returned, every failure, every observation and fault event recorded."""
    digest = hashlib.sha256()
    with works_fleet(faults) as (fleet, reads):
        t0 = first_minute(fleet)
        for m in range(minutes):
            for result in read_minute(reads, t0 + 60.0 * m):
                digest.update(repr(result).encode())
        for observation in fleet.observations:
            digest.update(repr(observation).encode())
        for event in fleet.fault_events:
            digest.update(repr(event).encode())
    return digest.hexdigest()


def _complete(coroutine: Coroutine[Any, Any, list[RawValue]]) -> list[RawValue]:
    """Run a read that never suspends (a model read waits for nothing) without a loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("a model read suspended")


def main() -> None:
    with works_fleet() as (fleet, reads):
        t0 = first_minute(fleet)
        points = sum(len(requests) for _, requests in reads)
        read_minute(reads, t0)  # warm the plant's day and each driver's plans and layouts
        minute = 1
        best = math.inf
        for _ in range(RUNS):
            fleet.observations.clear()
            started = time.process_time()
            for _ in range(MINUTES_PER_RUN):
                read_minute(reads, t0 + 60.0 * minute)
                minute += 1
            best = min(best, (time.process_time() - started) / MINUTES_PER_RUN)
    report(
        "model_reads",
        [
            Figure("CPU per virtual minute, every polled point read once", best * 1e6, "µs"),
            Figure("CPU per point read", best * 1e6 / points, "µs"),
        ],
        fleet=FLEET,
        devices=len(reads),
        points=points,
        minutes_per_run=MINUTES_PER_RUN,
        runs=RUNS,
    )


if __name__ == "__main__":
    main()

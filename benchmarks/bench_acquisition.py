"""Acquisition by the reference terminal's own drivers against the fleet simulators.

Run: ``.venv/bin/python -m benchmarks.bench_acquisition`` (prints JSON; about two minutes).
``--only modbus`` or ``--only rs485`` runs one part; ``--seconds`` and ``--rs485-seconds`` set how
long each is measured.

The simulated fleet always runs in a process of its own (``multiprocessing`` with spawn,
``running_fleet`` there, its start-up heap frozen as ``carbench fleet up`` does), so the
terminal's drivers in this process do not share an event loop, or a core's time slices, with
the meters they read. Both processes report their CPU time over the measured window.

1. **Modbus TCP from the large fleet** (``fixtures/fleets/large.yaml``: 800 meters behind 4
   ports × 200 unit ids, 4 points in 6 contiguous registers each). The fleet file is served
   whole, its four gateway ports moved to free ones (two benches, or a bench and a test, must
   not collide on 15100–15103). The terminal's configuration comes from
   ``bench.terminal_for_fleet.terminal_config``; every ``modbus-tcp`` device gets its driver
   from ``make_driver`` (one ``ModbusTcpDriver``, one TCP connection per device, as the terminal
   runs them) and all 800 read back to back concurrently, each ``read`` asking the device's
   points as the scheduler would. The figure is points read with a value per second; the
   target is ≥ 20 000. Which side limits is told by CPU: each process's share of a core, and its
   CPU time per read (so each side's ceiling with a core to itself: 1 / CPU per read). On a
   2-core machine the two processes each have at most one core.

2. **RS-485 utilisation**: 29 DL/T 645-2007 meters on one 9600-baud 8E1 bus (ISC-2 §7.1.1 a:
   up to 29 circuits on one port), simulated on a paced pty (``response_delay_ms`` [20, 20], one
   energy DI each), read through the terminal's ``BusArbiter`` by its ``Dlt645Driver`` (each
   meter's driver reading in a loop; the arbiter puts them one after another) for ~20 s. The
   physical limit is computed from the frames the driver sends and the meter answers (4 × FE
   each way, 11-bit characters), the meter's 20 ms and the turnaround the terminal keeps
   between an answer and the next request (``SerialBus.turnaround_ms``, 5 ms by default):
   measured reads/s over that limit, target ≥ 0.9. The ratio to FACTS.md's bus-time limit
   (14.2/s, no turnaround) is reported as well.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import multiprocessing
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import yaml

from bench.terminal_for_fleet import terminal_config
from benchmarks.harness import Figure, free_ports, report
from common.clock import RealClock
from protocols import dlt645
from reference_terminal.acquisition.driver import Driver, DriverError
from reference_terminal.acquisition.drivers import make_buses, make_driver, requests_for
from reference_terminal.acquisition.modbus import plan_reads
from reference_terminal.acquisition.serial_port import BusArbiter, bits_per_char
from reference_terminal.config import Point, SerialBus, Source, TerminalConfig
from reference_terminal.model import RawValue
from simulators.fleet.runtime import FleetRuntime
from simulators.fleet.schema import Fleet

LARGE: Final = Path(__file__).resolve().parent.parent / "fixtures" / "fleets" / "large.yaml"
MODBUS_TARGET: Final = 20_000.0
RS485_TARGET: Final = 0.9
RS485_METERS: Final = 29
RS485_BAUD: Final = 9600
RS485_DELAY_MS: Final = 20.0
ENERGY_DI: Final = 0x00010000
FACTS_LIMIT: Final = 14.2  # FACTS.md "Bus-time limits": DL/T 645 energy, +20 ms, 9600


# ---- the fleet in a process of its own ---------------------------------------------------------

CpuProbe = Callable[[], Awaitable[float]]


def fleet_process(spec: Fleet, conn: Connection) -> None:
    """Serve ``spec`` until told to stop; answer CPU-time questions on ``conn``."""
    asyncio.run(_serve(spec, conn))


async def _serve(spec: Fleet, conn: Connection) -> None:
    # Imported here: the parent process does not need the protocol servers.
    from simulators.fleet.runner import running_fleet  # noqa: PLC0415

    async with running_fleet(spec, timeout=300) as fleet:
        # What start-up built lives as long as the fleet: keep the collector from walking it
        # again on every full pass (as ``carbench fleet up`` does).
        gc.collect()
        gc.freeze()
        conn.send([(e.meter, e.protocol, e.address) for e in fleet.endpoints])
        while True:
            message = await asyncio.to_thread(conn.recv)
            if message == "cpu":
                conn.send(time.process_time())
            else:
                return


@contextlib.asynccontextmanager
async def fleet_in_process(
    spec: Fleet,
) -> AsyncIterator[tuple[FleetRuntime, Callable[[], Awaitable[float]]]]:
    """The fleet served by a spawned process: a local runtime of the same spec that knows where
    every meter listens (for ``terminal_config``), and a function giving the server's CPU
    seconds so far."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=fleet_process, args=(spec, theirs), daemon=True)
    process.start()
    try:
        if not await asyncio.to_thread(ours.poll, 300):
            raise RuntimeError("the fleet process did not come up within 300 s")
        endpoints = ours.recv()
        runtime = FleetRuntime(spec)
        for meter, protocol, address in endpoints:
            runtime.listening(meter, protocol, address)

        async def server_cpu() -> float:
            ours.send("cpu")
            value: float = await asyncio.to_thread(ours.recv)
            return value

        yield runtime, server_cpu
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        await asyncio.to_thread(process.join, 15)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5)


# ---- driving drivers ---------------------------------------------------------------------------


@dataclass
class Tally:
    reads: int = 0  # driver.read calls that returned
    points: int = 0  # RawValues with a value
    point_errors: int = 0  # RawValues with an error
    failures: int = 0  # DriverError (whole device)
    samples: list[str] = field(default_factory=list)  # a few error texts

    def add(self, raws: Sequence[RawValue]) -> None:
        self.reads += 1
        for raw in raws:
            if raw.value is not None and raw.error is None:
                self.points += 1
            else:
                self.point_errors += 1
                if len(self.samples) < 3 and raw.error:
                    self.samples.append(raw.error)


async def read_until(
    driver: Driver, requests: list[tuple[Point, Source]], until: float, tally: Tally
) -> None:
    """Read the device back to back until ``until`` (monotonic seconds)."""
    while time.monotonic() < until:
        try:
            tally.add(await driver.read(requests))
        except DriverError as exc:
            tally.failures += 1
            if len(tally.samples) < 3:
                tally.samples.append(str(exc))


@dataclass
class Window:
    tally: Tally
    seconds: float
    terminal_cpu_s: float
    server_cpu_s: float


async def measure(
    jobs: Sequence[tuple[Driver, list[tuple[Point, Source]]]],
    seconds: float,
    server_cpu: CpuProbe,
) -> Window:
    tally = Tally()
    server0 = await server_cpu()
    cpu0, wall0 = time.process_time(), time.monotonic()
    until = wall0 + seconds
    async with asyncio.TaskGroup() as group:
        for driver, requests in jobs:
            group.create_task(read_until(driver, requests, until, tally))
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    server = await server_cpu() - server0
    return Window(tally, wall, cpu, server)


# ---- 1. Modbus TCP, large fleet ------------------------------------------------------------------


def large_fleet() -> Fleet:
    """fixtures/fleets/large.yaml with its Modbus TCP ports moved to free ones."""
    data: dict[str, Any] = yaml.safe_load(LARGE.read_text(encoding="utf-8"))
    used = sorted({m["port"] for m in data["meters"] if m["protocol"] == "modbus-tcp"})
    moved = dict(zip(used, free_ports(len(used)), strict=True))
    for meter in data["meters"]:
        if meter["protocol"] == "modbus-tcp":
            meter["port"] = moved[meter["port"]]
    return Fleet.model_validate(data)


async def bench_modbus(seconds: float, warmup: float) -> tuple[list[Figure], dict[str, Any]]:
    spec = large_fleet()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="carbench-bench-acq-") as tmp:
        async with fleet_in_process(spec) as (runtime, server_cpu):
            startup = time.monotonic() - started
            config = terminal_config(runtime, storage_url=f"sqlite:///{tmp}/unused.db")
            clock = RealClock()
            jobs: list[tuple[Driver, list[tuple[Point, Source]]]] = [
                (make_driver(d, buses={}, clock=clock), requests_for(config, d.id))
                for d in config.devices
                if d.protocol == "modbus-tcp"
            ]
            requests_per_read = {len(plan_reads([s.register for _, s in reqs])) for _, reqs in jobs}
            points_per_read = {len(reqs) for _, reqs in jobs}
            try:
                await measure(jobs, warmup, server_cpu)  # connects, warms both sides
                gc.collect()
                windows = [await measure(jobs, seconds, server_cpu) for _ in range(3)]
            finally:
                for driver, _ in jobs:
                    await driver.close()
    best = max(windows, key=lambda w: w.tally.points / w.seconds)
    figures, details = modbus_figures(best, windows, len(jobs))
    details |= {
        "fleet": f"{LARGE.name}: all {len(spec.meters)} meters served, "
        f"{len(jobs)} modbus-tcp read here",
        "fleet_startup_s": round(startup, 1),
        "fc03_requests_per_device_read": sorted(requests_per_read),
        "points_per_device_read": sorted(points_per_read),
        "connections": len(jobs),
        "warmup_s": warmup,
    }
    return figures, details


def modbus_figures(
    best: Window, windows: list[Window], devices: int
) -> tuple[list[Figure], dict[str, Any]]:
    t = best.tally
    reads_s = t.reads / best.seconds
    us = 1e6
    terminal_cpu_per_read = best.terminal_cpu_s / max(t.reads, 1)
    server_cpu_per_read = best.server_cpu_s / max(t.reads, 1)
    terminal_share = best.terminal_cpu_s / best.seconds
    server_share = best.server_cpu_s / best.seconds
    if server_share > 0.9 and server_share >= terminal_share:
        limit = "simulator (its process uses a whole core)"
    elif terminal_share > 0.9:
        limit = "terminal (its process uses a whole core)"
    else:
        limit = "neither process at a full core: the shared machine (or the loopback)"
    figures = [
        Figure(
            f"Modbus TCP points read/s, {devices} devices of the large fleet read back to back "
            "by the terminal's drivers (best of 3 windows)",
            round(t.points / best.seconds, 1),
            "points/s",
            MODBUS_TARGET,
        ),
        Figure("device reads/s (one FC03 each)", round(reads_s, 1), "reads/s"),
        Figure("terminal process CPU", round(100 * terminal_share, 1), "% of a core"),
        Figure("simulator process CPU", round(100 * server_share, 1), "% of a core"),
        Figure("terminal CPU per device read", round(terminal_cpu_per_read * us, 1), "µs"),
        Figure("simulator CPU per device read", round(server_cpu_per_read * us, 1), "µs"),
        Figure(
            "terminal ceiling with a core to itself (1 / CPU per read × points per read)",
            round(t.points / max(best.terminal_cpu_s, 1e-9), 1),
            "points/s",
        ),
        Figure(
            "simulator ceiling with a core to itself (1 / CPU per read × points per read)",
            round(t.points / max(best.server_cpu_s, 1e-9), 1),
            "points/s",
        ),
        Figure("failed device reads (whole device)", t.failures, "reads"),
        Figure("points read without a value", t.point_errors, "points"),
    ]
    details = {
        "limited_by": limit,
        "windows": [
            {
                "seconds": round(w.seconds, 2),
                "points_s": round(w.tally.points / w.seconds, 1),
                "reads_s": round(w.tally.reads / w.seconds, 1),
                "terminal_cpu_pct": round(100 * w.terminal_cpu_s / w.seconds, 1),
                "server_cpu_pct": round(100 * w.server_cpu_s / w.seconds, 1),
                "failures": w.tally.failures,
            }
            for w in windows
        ],
        "error_samples": t.samples,
    }
    return figures, details


# ---- 2. RS-485 utilisation -----------------------------------------------------------------------


def address(i: int) -> str:
    return f"{i + 1:012d}"


def rs485_fleet() -> Fleet:
    start = datetime.now(UTC) - timedelta(hours=1)
    return Fleet.model_validate(
        {
            "name": "bench-rs485",
            "start": start.isoformat(),
            "plant": {
                "sources": [
                    {"id": f"f{i:02d}", "kind": "electricity", "rated_kw": 100 + 10 * i}
                    for i in range(RS485_METERS)
                ]
            },
            "buses": [
                {
                    "id": "rs485",
                    "protocol": "dlt645",
                    "baud": RS485_BAUD,
                    "framing": "8E1",
                    "response_delay_ms": (RS485_DELAY_MS, RS485_DELAY_MS),
                }
            ],
            "meters": [
                {
                    "id": f"m{i:02d}",
                    "protocol": "dlt645-2007",
                    "bus": "rs485",
                    "address": address(i),
                    "points": [{"di": "00010000", "quantity": f"f{i:02d}.energy_import_kwh"}],
                }
                for i in range(RS485_METERS)
            ],
        }
    )


@dataclass(frozen=True)
class BusTime:
    request_bytes: int
    answer_bytes: int
    bits: int
    delay_s: float
    turnaround_s: float

    def wire_s(self, baud: int = RS485_BAUD) -> float:
        return (self.request_bytes + self.answer_bytes) * self.bits / baud

    def limit(self, *, turnaround: bool = True) -> float:
        """Reads/s the bus allows: both frames on the wire, the meter's delay and (if asked)
        the terminal's quiet gap before the next request."""
        return 1.0 / (self.wire_s() + self.delay_s + (self.turnaround_s if turnaround else 0.0))


def bus_time(bus: SerialBus) -> BusTime:
    """From the frames themselves: the request the driver sends (dlt645.read_request, as
    Dlt645Driver builds it) and the answer a meter gives (read_reply, as the simulator)."""
    meter = dlt645.Address(address(0))
    request = dlt645.encode(dlt645.read_request(meter, ENERGY_DI))
    answer = dlt645.encode(dlt645.read_reply(meter, ENERGY_DI, Decimal("123456.78"), preamble=4))
    arbiter = BusArbiter(bus, RealClock())
    return BusTime(
        len(request),
        len(answer),
        bits_per_char(bus.framing),
        RS485_DELAY_MS / 1000,
        arbiter.turnaround_s,
    )


async def bench_rs485(seconds: float, warmup: float) -> tuple[list[Figure], dict[str, Any]]:
    spec = rs485_fleet()
    with tempfile.TemporaryDirectory(prefix="carbench-bench-rs485-") as tmp:
        async with fleet_in_process(spec) as (runtime, server_cpu):
            config: TerminalConfig = terminal_config(runtime, storage_url=f"sqlite:///{tmp}/x.db")
            clock = RealClock()
            buses = make_buses(config.buses, clock)
            jobs: list[tuple[Driver, list[tuple[Point, Source]]]] = [
                (make_driver(d, buses=buses, clock=clock), requests_for(config, d.id))
                for d in config.devices
            ]
            arbiter = buses["rs485"]
            try:
                await measure(jobs, warmup, server_cpu)
                window = await measure(jobs, seconds, server_cpu)
            finally:
                for driver, _ in jobs:
                    await driver.close()
                arbiter.close()
            bus = config.buses[0]
    timing = bus_time(bus)
    t = window.tally
    rate = t.reads / window.seconds
    limit = timing.limit()
    figures = [
        Figure(
            f"RS-485 utilisation: {RS485_METERS} DL/T 645-2007 meters, 9600 8E1, energy DI, "
            "20 ms meter delay, through the BusArbiter: measured reads/s over the physical limit "
            f"(with the terminal's {timing.turnaround_s * 1000:g} ms turnaround)",
            round(rate / limit, 4),
            "ratio",
            RS485_TARGET,
        ),
        Figure("measured reads/s on the bus", round(rate, 3), "reads/s"),
        Figure("physical limit with the terminal's turnaround", round(limit, 3), "reads/s"),
        Figure(
            "measured over FACTS.md's bus-time limit (14.2/s, no turnaround)",
            round(rate / FACTS_LIMIT, 4),
            "ratio",
        ),
        Figure("failed exchanges (whole meter reads)", t.failures, "reads"),
        Figure(
            "one pass over all 29 meters",
            round(RS485_METERS / rate, 3) if rate else 0.0,
            "s",
        ),
    ]
    turns = list(arbiter.turns)
    gaps = [b.started - a.ended for a, b in itertools.pairwise(turns)]
    spans = [turn.ended - turn.started for turn in turns]
    details = {
        "frames": {
            "request_bytes": timing.request_bytes,
            "answer_bytes": timing.answer_bytes,
            "bits_per_char": timing.bits,
            "wire_ms": round(timing.wire_s() * 1000, 3),
            "meter_delay_ms": RS485_DELAY_MS,
            "turnaround_ms": timing.turnaround_s * 1000,
            "limit_without_turnaround_reads_s": round(timing.limit(turnaround=False), 3),
        },
        "measured_s": round(window.seconds, 2),
        "reads": t.reads,
        "points_with_value": t.points,
        "arbiter": {
            "max_in_flight": arbiter.max_in_flight,
            "max_waiting": arbiter.max_waiting,
            "exchange_ms_mean_of_last": round(1000 * sum(spans) / max(len(spans), 1), 3),
            "gap_between_exchanges_ms_mean": round(1000 * sum(gaps) / max(len(gaps), 1), 3),
            "turns_kept": len(turns),
        },
        "terminal_cpu_pct": round(100 * window.terminal_cpu_s / window.seconds, 1),
        "simulator_cpu_pct": round(100 * window.server_cpu_s / window.seconds, 1),
        "error_samples": t.samples,
    }
    return figures, details


# ---- main ----------------------------------------------------------------------------------------


async def main_async(only: str | None, seconds: float, rs485_seconds: float) -> None:
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    if only in (None, "modbus"):
        more, details["modbus_tcp"] = await bench_modbus(seconds, warmup=3.0)
        figures += more
    if only in (None, "rs485"):
        more, details["rs485"] = await bench_rs485(rs485_seconds, warmup=2.0)
        figures += more
    report(
        "acquisition",
        figures,
        **details,
        simulator="spawned process (running_fleet, start-up heap frozen)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=["modbus", "rs485"])
    parser.add_argument("--seconds", type=float, default=10.0, help="per Modbus window (3 windows)")
    parser.add_argument("--rs485-seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.only, args.seconds, args.rs485_seconds))


if __name__ == "__main__":
    main()

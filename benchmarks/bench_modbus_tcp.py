"""A thousand Modbus TCP meters in one process, read 2 000 times a second by separate clients.

Run: ``.venv/bin/python -m benchmarks.bench_modbus_tcp`` (prints JSON; about a minute).
``--layouts gateways`` or ``--layouts ports`` runs one layout only, ``--seconds`` sets how long
the load is held, ``--no-freeze`` leaves the start-up heap to the collector (see below).

The fleet is 1 000 meters of 50 points each (50 000 points, 120 000 register words), built here
and served by ``serve_modbus_tcp`` in this process. Two layouts, both found in real plants:

- ``ports``: every meter its own TCP endpoint (port 0, unit 1): 1 000 listening ports and
  1 000 client connections, as a terminal polling 1 000 networked meters would hold.
- ``gateways``: 40 ports × 25 unit ids, as 40 Modbus TCP gateways with an RS-485 segment each.

Clients run in other processes (spawned, so the server's process is measured alone): one pymodbus
``AsyncModbusTcpClient`` per port, each reading 10 consecutive points (20–40 words) of a random
unit at a fixed pace, the whole load 2 000 reads/s for ``--seconds``. A read's latency counts from
when it was due, not when it was sent, so a server falling behind shows as latency rather than
quietly as fewer reads. The p99 < 20 ms target is reported as "reads answered within 20 ms ≥ 99 %"
(the harness's targets are minimums). Then every connection reads back to back for a few seconds
for the most the server sustains. Clients and server share the machine's cores, so on a small
machine the maximum is the pair's, not the server's alone; the server's CPU share is reported.

The server process freezes its start-up heap (``gc.freeze()``) before the load, as a long-running
simulator should: otherwise each of the collector's full passes walks the whole fleet again
(~130 ms here with 1 000 meters). What it still walks is the fleet's record of observations
(200 000 kept): the longest such pause is reported, it is most of the maximum latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import queue
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from multiprocessing.synchronize import Event
from typing import Any, Final

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from benchmarks.harness import Figure, collector_pauses, free_ports, report
from simulators.fleet import FleetRuntime
from simulators.fleet.schema import Fleet
from simulators.meters.modbus_tcp import parse_endpoint, serve_modbus_tcp

METERS: Final = 1000
POINTS_PER_METER: Final = 50
POINTS_PER_READ: Final = 10
TARGET_RATE: Final = 2000.0
LATENCY_LIMIT_S: Final = 0.020
CLIENT_PROCESSES: Final = 2
MAX_SECONDS: Final = 5.0
SOURCES: Final = 10  # feeders: meter i reads feeder i % 10
QUANTITIES: Final = (
    "power_kw",
    "power_factor",
    "voltage_a",
    "voltage_b",
    "voltage_c",
    "current_a",
    "current_b",
    "current_c",
    "energy_import_kwh",
    "energy_export_kwh",
)
#: Five groups of ten points, as a power meter's map has them: (type, word order, scale, decimals).
GROUPS: Final = (
    ("float32", "big", "1", 2),
    ("float32", "little", "1", 2),
    ("uint32", "big", "0.01", 2),
    ("int32", "little", "0.01", 2),
    ("float64", "big", "1", 3),
)
LAYOUTS: Final = {"ports": 1, "gateways": 25}  # units per port


# ---- the fleet ------------------------------------------------------------------------------


def register_map() -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """One meter's 50 registers, and the (address, count) of each 10-point read."""
    registers: list[dict[str, Any]] = []
    blocks: list[tuple[int, int]] = []
    address = 0
    for type_, order, scale, decimals in GROUPS:
        first = address
        for name in QUANTITIES:
            registers.append(
                {
                    "address": address,
                    "type": type_,
                    "word_order": order,
                    "scale": scale,
                    "decimals": decimals,
                    "quantity": name,  # the source is filled in per meter
                    "rounding": "floor" if name.startswith("energy") else "half_even",
                }
            )
            address += {"32": 2, "64": 4}[type_[-2:]]
        blocks.append((first, address - first))
    assert len(registers) == POINTS_PER_METER and len(QUANTITIES) == POINTS_PER_READ
    return registers, blocks


def build_fleet(units_per_port: int, ports: list[int]) -> Fleet:
    registers, _ = register_map()
    # a day and a bit of history: counters have counted, and the plant's arrays stay small
    now = datetime.now(timezone(timedelta(hours=8)))
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    meters = []
    for i in range(METERS):
        source = f"feeder{i % SOURCES:02d}"
        group, unit = divmod(i, units_per_port)
        meters.append(
            {
                "id": f"m{i:04d}",
                "protocol": "modbus-tcp",
                "port": ports[group] if units_per_port > 1 else 0,
                "unit_id": unit + 1,
                "registers": [r | {"quantity": f"{source}.{r['quantity']}"} for r in registers],
            }
        )
    sources = [
        {"id": f"feeder{s:02d}", "kind": "electricity", "rated_kw": 200 + 50 * s}
        for s in range(SOURCES)
    ]
    return Fleet.model_validate(
        {
            "name": "bench-modbus-tcp",
            "start": start,
            "plant": {"sources": sources},
            "meters": meters,
        }
    )


def warm_up(fleet: FleetRuntime) -> None:
    """Have the plant work out today (and the days since its start) before the clock runs.

    The first value of a day costs the plant tens of milliseconds per source (its minute
    arrays); left to the first requests it would stall them all and be measured as latency.
    """
    now = fleet.now()
    for source in fleet.spec.plant.sources:
        fleet.plant.value(f"{source.id}.energy_import_kwh", now)


# ---- the clients (other processes) ----------------------------------------------------------


@dataclass(frozen=True)
class Job:
    index: int
    connections: list[tuple[str, int, list[int]]]  # host, port, unit ids behind it
    blocks: list[tuple[int, int]]
    rate: float  # reads/s of this process; 0: back to back
    seconds: float


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0


def client_process(job: Job, ready: Any, go: Event, results: Any) -> None:
    asyncio.run(_clients(job, ready, go, results))


async def _clients(job: Job, ready: Any, go: Event, results: Any) -> None:
    clients = []
    for host, port, units in job.connections:
        client = AsyncModbusTcpClient(host, port=port, timeout=2.0, retries=0)
        if not await client.connect():
            raise ConnectionError(f"cannot connect to {host}:{port}")
        clients.append((client, units))
    ready.put(job.index)
    await asyncio.to_thread(go.wait)
    outcome = Outcome()
    start = time.monotonic()
    end = start + job.seconds
    interval = len(clients) / job.rate if job.rate else 0.0
    rng = random.Random(job.index)
    async with asyncio.TaskGroup() as group:
        for client, units in clients:
            first = start + rng.random() * interval  # spread the connections over the interval
            seed = rng.random()
            group.create_task(_poll(client, units, job.blocks, first, interval, end, seed, outcome))
    outcome.seconds = time.monotonic() - start
    for client, _ in clients:
        client.close()
    results.put((job.index, outcome))


async def _poll(
    client: AsyncModbusTcpClient,
    units: list[int],
    blocks: list[tuple[int, int]],
    due: float,
    interval: float,
    end: float,
    seed: float,
    outcome: Outcome,
) -> None:
    """One connection: a read every ``interval`` (0: back to back) until ``end``."""
    rng = random.Random(seed)
    while due < end:
        if interval:
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        else:
            due = time.monotonic()
        address, count = rng.choice(blocks)
        try:
            response = await client.read_holding_registers(
                address, count=count, device_id=rng.choice(units)
            )
            if response.isError():
                outcome.errors += 1
        except ModbusException:
            outcome.errors += 1
        outcome.latencies.append(time.monotonic() - due)
        due += interval


# ---- one phase: server here, clients there --------------------------------------------------


@dataclass
class Phase:
    reads: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float  # CPU seconds of this process per wall second

    @property
    def rate(self) -> float:
        return self.reads / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def within(self, limit: float) -> float:
        return 100.0 * sum(x <= limit for x in self.latencies) / len(self.latencies)


async def run_phase(
    connections: list[tuple[str, int, list[int]]],
    blocks: list[tuple[int, int]],
    rate: float,
    seconds: float,
) -> Phase:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    share = [connections[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    processes = [
        context.Process(
            target=client_process,
            args=(Job(i, part, blocks, rate / CLIENT_PROCESSES, seconds), ready, go, results),
            daemon=True,
        )
        for i, part in enumerate(share)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        await asyncio.to_thread(ready.get, True, 60)
    cpu, wall = time.process_time(), time.monotonic()
    go.set()
    outcomes = []
    for _ in processes:
        try:
            outcomes.append((await asyncio.to_thread(results.get, True, seconds + 60))[1])
        except queue.Empty:
            raise RuntimeError("a client process did not report") from None
    server_cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
    for process in processes:
        await asyncio.to_thread(process.join, 10)
    latencies = [x for o in outcomes for x in o.latencies]
    return Phase(
        reads=len(latencies),
        errors=sum(o.errors for o in outcomes),
        seconds=max(o.seconds for o in outcomes),
        latencies=latencies,
        server_cpu=server_cpu,
    )


async def bench_layout(
    name: str, seconds: float, *, freeze: bool = True
) -> tuple[list[Figure], dict[str, Any]]:
    units_per_port = LAYOUTS[name]
    ports = free_ports(-(-METERS // units_per_port)) if units_per_port > 1 else []
    built = time.monotonic()
    fleet = FleetRuntime(build_fleet(units_per_port, ports))
    _, blocks = register_map()
    warm_up(fleet)
    async with asyncio.TaskGroup() as group:
        server = group.create_task(serve_modbus_tcp(fleet))
        while len(fleet.endpoints) < METERS and not server.done():
            await asyncio.sleep(0.01)
        startup = time.monotonic() - built
        by_port: dict[tuple[str, int], list[int]] = {}
        for endpoint in fleet.endpoints:
            host, port, unit = parse_endpoint(endpoint.address)
            by_port.setdefault((host, port), []).append(unit)
        connections = [(host, port, units) for (host, port), units in by_port.items()]
        words = sum(r.words for m in fleet.spec.meters for r in getattr(m, "registers", []))
        # What start-up built (the fleet's 50 000 register models, pymodbus's devices) lives as
        # long as the server: frozen, the collector's full passes skip it instead of walking
        # it again every few seconds, a pause every answer in flight would wait out.
        gc.collect()
        if freeze:
            gc.freeze()
        with collector_pauses() as passes:
            paced = await run_phase(connections, blocks, TARGET_RATE, seconds)
        flat_out = await run_phase(connections, blocks, 0.0, MAX_SECONDS)
        server.cancel()
    gc.unfreeze()
    ms = 1000.0
    label = f"{name}: {len(connections)} ports × {units_per_port} units"
    figures = [
        Figure(f"[{label}] Modbus TCP devices served by one process", METERS, "devices", 1000),
        Figure(
            f"[{label}] registers served (points; {words} words)",
            METERS * POINTS_PER_METER,
            "registers",
            50_000,
        ),
        Figure(
            f"[{label}] reads/s answered of 2 000/s offered for {seconds:.0f} s",
            round((paced.reads - paced.errors) / seconds, 1),
            "reads/s",
            TARGET_RATE,
        ),
        Figure(
            f"[{label}] reads answered within 20 ms (target p99 < 20 ms)",
            round(paced.within(LATENCY_LIMIT_S), 3),
            "%",
            99.0,
        ),
        Figure(f"[{label}] read latency p50", round(paced.percentile(50) * ms, 3), "ms"),
        Figure(f"[{label}] read latency p95", round(paced.percentile(95) * ms, 3), "ms"),
        Figure(f"[{label}] read latency p99", round(paced.percentile(99) * ms, 3), "ms"),
        Figure(f"[{label}] read latency max", round(max(paced.latencies) * ms, 3), "ms"),
        Figure(f"[{label}] failed reads at 2 000/s", paced.errors, "reads"),
        Figure(
            f"[{label}] server CPU at 2 000 reads/s",
            round(100 * paced.server_cpu, 1),
            "% of a core",
        ),
        Figure(
            f"[{label}] longest garbage-collector pause at 2 000 reads/s "
            f"({len(passes[2])} full passes; observations kept: {len(fleet.observations)})",
            round(max(passes[2], default=0.0) * ms, 1),
            "ms",
        ),
        Figure(
            f"[{label}] max sustained reads/s ({len(connections)} connections back to back)",
            round(flat_out.rate, 1),
            "reads/s",
        ),
        Figure(
            f"[{label}] read latency p99 at the maximum",
            round(flat_out.percentile(99) * ms, 3),
            "ms",
        ),
    ]
    details = {
        "ports": len(connections),
        "units_per_port": units_per_port,
        "connections": len(connections),
        "register_words": words,
        "startup_s": round(startup, 2),
        "paced": {
            "reads": paced.reads,
            "seconds": round(paced.seconds, 2),
            "mean_ms": round(statistics.fmean(paced.latencies) * ms, 3),
        },
        "max": {
            "reads": flat_out.reads,
            "seconds": round(flat_out.seconds, 2),
            "errors": flat_out.errors,
            "p50_ms": round(flat_out.percentile(50) * ms, 3),
            "server_cpu_pct": round(100 * flat_out.server_cpu, 1),
        },
    }
    return figures, details


async def main_async(layouts: list[str], seconds: float, *, freeze: bool = True) -> None:
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for name in layouts:
        more, details[name] = await bench_layout(name, seconds, freeze=freeze)
        figures += more
    _, blocks = register_map()
    report(
        "modbus_tcp",
        figures,
        fleet={
            "meters": METERS,
            "points_per_meter": POINTS_PER_METER,
            "types": [f"{t} {o}-endian words, scale {s}" for t, o, s, _ in GROUPS],
            "read": f"FC03, {POINTS_PER_READ} consecutive points ({blocks[0][1]}–"
            f"{max(c for _, c in blocks)} words) of a random unit",
        },
        clients=f"{CLIENT_PROCESSES} spawned processes, one pymodbus client per port",
        start_up_heap_frozen=freeze,
        layouts=details,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the start-up heap to the collector"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.layouts, args.seconds, freeze=not args.no_freeze))


if __name__ == "__main__":
    main()

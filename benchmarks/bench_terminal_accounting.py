"""Accounting inside the running terminal: what it adds to the per-minute hot path.

Run: ``.venv/bin/python -m benchmarks.bench_terminal_accounting`` (prints JSON).

- *booking a minute* (:meth:`RunningAccounting.book`, called in ``Terminal._store`` on the event
  loop before the figures are written): one closed minute window per accounted point → its
  emission, cumulative emission, the periods it closes (every 60th minute an hour, every
  1440th a day), the alarm rule of each point judged, the derived rows built. Timed per minute
  over two days of minutes, for the small fleet's accounting (7 source points, 3 of them also
  bases, one cement-output basis point, 6 alarm rules) and for 100 accounted electricity meters
  with an anomaly rule each. Making the windows is not timed (processing's own benchmark).
- *writing them*: the derived rows booking adds (2 per point and minute, plus the periods'),
  committed with the minute's window rows as the terminal does (one write behind), against the
  window rows alone: SQLite WAL, synchronous=FULL, on a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure, report
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.app import window_rows
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.processing.pipeline import Output
from reference_terminal.processing.settlement import Aggregate
from reference_terminal.storage.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "fixtures" / "factors"
T0 = 1_767_196_800.0  # 2026-01-01 00:00 +08:00


def small_config(directory: Path) -> TerminalConfig:
    """The small fleet's accounting on points named as ``terminal_for_fleet`` names them."""
    units = {
        "pm-mill.2": "kWh",
        "em-grid.00010000": "kWh",
        "em-pv.00020000": "kWh",
        "gm-boiler.current_total": "Nm³",
        "hm-heat.current_heat": "kWh",
        "plc-cems.10": "t",
        "dcs.CementOutput_t": "t",
    }
    sources = [
        ("mill", "electricity", {"factor": "0.5703 tCO2/MWh"}, "pm-mill.2"),
        ("grid", "electricity", {"factor": "0.5703 tCO2/MWh"}, "em-grid.00010000"),
        ("pv", "exported_electricity", {"factor": "0.5703 tCO2/MWh"}, "em-pv.00020000"),
        ("boiler", "combustion", {"fuel": "natural_gas"}, "gm-boiler.current_total"),
        ("heat", "heat", {"factor": "purchased_heat"}, "hm-heat.current_heat"),
        ("stack", "combustion", {"factor": "1 tCO2/t"}, "plc-cems.10"),
    ]
    return _config(directory, units, sources, product="dcs.CementOutput_t")


def many_config(directory: Path, n: int = 100) -> TerminalConfig:
    units = {f"em{i:03d}.ep": "kWh" for i in range(n)}
    sources = [
        (f"feeder{i:03d}", "electricity", {"factor": "0.5703 tCO2/MWh"}, f"em{i:03d}.ep")
        for i in range(n)
    ]
    return _config(directory, units, sources)


def _config(
    directory: Path,
    units: dict[str, str],
    sources: list[tuple[str, str, dict[str, str], str]],
    product: str | None = None,
) -> TerminalConfig:
    points = [
        {"id": p, "unit": u, "kind": "counter", "group": "g", "source": {"device": p.split(".")[0]}}
        for p, u in units.items()
    ]
    devices = [{"id": d, "protocol": "modbus-tcp", "host": "127.0.0.1"} for d in {
        p.split(".")[0] for p in units
    }]  # fmt: skip
    bases: dict[str, Any] = {"electricity": {"points": [sources[0][3]]}}
    if product is not None:
        bases["product"] = {"points": [product], "unit": "t"}
    return TerminalConfig.model_validate(
        {
            "devices": sorted(devices, key=lambda d: d["id"]),
            "groups": [{"id": "g", "period_s": 60}],
            "points": points,
            "storage": {"url": sqlite_url(directory / "t.db")},
            "accounting": {
                "enterprise": {"name": "bench"},
                "library": [str(LIBRARY)],
                "imports_dir": str(directory / "factors"),
                "vintage": "2015 guidelines / GB/T 32150",
                "units": [
                    {
                        "id": "all",
                        "sources": [
                            {"id": s, "kind": k, "points": [p], **method}
                            for s, k, method, p in sources
                        ],
                    }
                ],
                "bases": bases,
                "alarms": [
                    {"id": f"jump-{p}", "type": "anomaly", "point": p, "period": "minute"}
                    for *_, p in sources
                ],
            },
        }
    )


def windows(points: list[str], minute: int, registers: dict[str, Decimal]) -> Output:
    out = []
    start = T0 + 60 * minute
    for i, point in enumerate(points):
        step = Decimal(500 + (minute * 7 + i * 13) % 97).scaleb(-2)
        first = registers[point]
        last = registers[point] = first + step
        out.append(
            Aggregate(
                point, "minute", start, start + 60, "", "counter", 1, first, last, step, step,
                None, step, 0, 2, Quality.GOOD,
            )
        )  # fmt: skip
    return Output(aggregates=tuple(out))


def booking(config: TerminalConfig, minutes: int = 2 * 1440) -> tuple[list[float], int]:
    accounting = RunningAccounting.from_config(config)
    assert accounting is not None
    points = accounting.bindings.tracked
    registers = dict.fromkeys(points, Decimal("1000.00"))
    outputs = [windows(points, m, registers) for m in range(minutes)]
    times = []
    rows = 0
    for m, output in enumerate(outputs):
        t0 = time.perf_counter()
        booked = accounting.book(output, T0 + 60 * m + 61)
        times.append((time.perf_counter() - t0) * 1000)
        rows += len(booked.behind)
    times.sort()
    return times, rows


async def writing(config: TerminalConfig, directory: Path, minutes: int = 120) -> dict[str, float]:
    accounting = RunningAccounting.from_config(config)
    assert accounting is not None
    points = accounting.bindings.tracked
    registers = dict.fromkeys(points, Decimal("1000.00"))
    results = {}
    for label, with_accounting in (("windows only", False), ("windows + accounting", True)):
        path = directory / f"{label.replace(' ', '-')}.db"
        async with await Store.open(sqlite_url(path)) as store:
            times = []
            for m in range(minutes):
                output = windows(points, m, registers)
                now = T0 + 60 * m + 61
                rows = window_rows(output, now)
                if with_accounting:
                    rows += accounting.book(output, now).behind
                t0 = time.perf_counter()
                store.write_behind(rows)
                await store.flush_behind()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            results[label] = times[len(times) // 2]
    return results


def _figures(name: str, times: list[float], points: int) -> list[Figure]:
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    return [
        Figure(f"booking a minute, {name}: p50", p50, "ms"),
        Figure(f"booking a minute, {name}: p99", p99, "ms"),
        Figure(f"booking a minute, {name}: max", times[-1], "ms"),
        Figure(f"booking a minute, {name}: p50 per point", p50 * 1000 / points, "µs"),
    ]


def main() -> None:
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        small, many = small_config(directory), many_config(directory)
        figures: list[Figure] = []
        small_times, _ = booking(small)
        figures += _figures("small fleet (8 points)", small_times, 8)
        many_times, many_rows = booking(many)
        figures += _figures("100 points", many_times, 100)
        written = asyncio.run(writing(many, directory))
    for label, value in written.items():
        figures.append(Figure(f"committing a minute of 100 points, {label}: p50", value, "ms"))
    report(
        "terminal accounting",
        figures,
        rows_per_minute_100_points=many_rows / (2 * 1440),
        load_average={"at_start": load_at_start, "at_end": os.getloadavg()},
        notes=[
            "booking runs on the event loop in Terminal._store; the rows go behind with the "
            "window rows (SQLite WAL, synchronous=FULL, in the writer thread)",
        ],
    )


if __name__ == "__main__":
    main()

"""Accounting speed: the emission-factor method per source, per inventory, per minute, per year.

Run: ``.venv/bin/python -m benchmarks.bench_accounting`` (prints JSON).

What is measured, and what is not:

- *sources per second*: :func:`account_source` on a parsed :class:`SourceSpec` (library lookup,
  unit conversions, the formula, all in 100-digit decimals), per kind; and with the text
  parsing (``spec_from_text``) included.
- *inventories per second*: the 12-source mixed enterprise of ``fixtures/accounting/``.
- *one minute of 100 meters*: 100 sources accounted one by one, as a per-minute update would if
  it re-ran the method each minute. The calculation only: no store, no window bookkeeping (the
  per-minute statistics are a later part of issue 9). Reported as p50/p99 over the minutes.
- *a year of 1-minute data for 100 meters*: 525 600 increments per meter, as integer counts at
  the meter's resolution (what a register yields). Emissions are linear in the activity data and
  the arithmetic is exact, so the year is summed per meter first and then accounted once:
  Σ(AD) × EF = Σ(AD × EF) to the last digit. Timed: the sums (numpy int64, exact) plus the 100
  accountings. Not timed: making the synthetic data. Summing every reading as a Decimal instead
  is measured on one meter and multiplied by 100 (marked "projected").
"""

from __future__ import annotations

import os
import random
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.harness import Figure, rate, report
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.inventory import account
from reference_terminal.accounting.methods import SourceSpec, account_source, spec_from_text
from reference_terminal.accounting.units import dsum

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
MINUTES_A_YEAR = 365 * 24 * 60
V2015 = "2015 guidelines / GB/T 32150"

# The 100-meter fleet as accounting sources: (kind, unit, decimals, library or explicit factor,
# count, typical increment per minute in units).
FLEET: list[tuple[str, str, int, dict[str, Any], int, int]] = [
    ("electricity", "kWh", 2, {"factor": "0.5703 tCO2/MWh"}, 60, 50),
    ("exported_electricity", "kWh", 2, {"factor": "0.5703 tCO2/MWh"}, 5, 10),
    ("combustion", "Nm3", 2, {"fuel": "natural_gas"}, 10, 20),
    ("combustion", "t", 3, {"fuel": "diesel"}, 5, 1),
    ("combustion", "t", 3, {"fuel": "coke"}, 5, 2),
    ("heat", "GJ", 3, {"factor": "purchased_heat"}, 5, 3),
    ("carbonate", "t", 3, {"factor": "caco3", "purity": "95 %"}, 10, 5),
]


def spec(name: str, kind: str, quantity: str, fields: dict[str, Any]) -> SourceSpec:
    return spec_from_text(name, kind, quantity, **fields)


def fleet_specs(quantities: list[Decimal]) -> list[SourceSpec]:
    specs = []
    i = 0
    for kind, unit, _, fields, count, _ in FLEET:
        for _ in range(count):
            text = f"{quantities[i]} {unit}"
            specs.append(spec(f"m{i:03d}", kind, text, fields))
            i += 1
    return specs


def per_kind_rates(lib: FactorLibrary) -> list[Figure]:
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {
        "combustion (natural gas, FC × NCV)": (
            "combustion",
            "12 10^4 Nm3",
            {"fuel": "natural_gas"},
        ),
        "electricity (explicit factor, kWh)": (
            "electricity",
            "5000 kWh",
            {"factor": "0.5703 tCO2/MWh"},
        ),
        "carbonate (library, purity)": (
            "carbonate",
            "1000 t",
            {"factor": "caco3", "purity": "90 %"},
        ),
    }
    figures = []
    for label, (kind, q, fields) in cases.items():
        parsed = spec("s", kind, q, fields)

        def parsed_once(s: SourceSpec = parsed) -> None:
            account_source(s, lib)

        def parsed_each_time(k: str = kind, q: str = q, f: dict[str, Any] = fields) -> None:
            account_source(spec("s", k, q, f), lib)

        figures.append(Figure(f"sources/s {label}", rate(parsed_once), "1/s"))
        figures.append(Figure(f"sources/s {label}, text parsed too", rate(parsed_each_time), "1/s"))
    return figures


def mixed_enterprise(lib: FactorLibrary) -> Figure:
    data = yaml.safe_load((ROOT / "accounting" / "08-mixed-enterprise.yaml").read_text("utf-8"))
    specs = []
    for source in data["sources"]:
        fields = {k: str(v) for k, v in source.items() if k not in ("name", "kind", "quantity")}
        specs.append(spec(source["name"], source["kind"], source["quantity"], fields))
    return Figure(
        "inventories/s (12-source mixed enterprise)",
        rate(lambda: account(specs, lib, data["vintage"])),
        "1/s",
    )


def minute_updates(lib: FactorLibrary, minutes: int = 300) -> list[Figure]:
    rnd = random.Random(1)
    times = []
    for _ in range(minutes):
        quantities = [
            Decimal(rnd.randrange(0, 2 * typical * 10**dec)).scaleb(-dec)
            for _, _, dec, _, count, typical in FLEET
            for _ in range(count)
        ]
        specs = fleet_specs(quantities)  # the readings arrive; not timed
        start = time.perf_counter()
        for spec in specs:
            account_source(spec, lib)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return [
        Figure("one minute of 100 meters p50 (calculation only)", times[len(times) // 2], "ms"),
        Figure(
            "one minute of 100 meters p99 (calculation only)", times[int(len(times) * 0.99)], "ms"
        ),
    ]


def a_year(lib: FactorLibrary) -> tuple[list[Figure], dict[str, str]]:
    rng = np.random.default_rng(7)
    summing = 0.0
    totals: list[Decimal] = []
    one_meter_counts: np.ndarray | None = None
    for _, _, dec, _, count, typical in FLEET:
        for _ in range(count):
            counts = rng.integers(0, 2 * typical * 10**dec, MINUTES_A_YEAR, dtype=np.int64)
            start = time.perf_counter()
            total = int(counts.sum())  # exact: int64, far from overflow
            summing += time.perf_counter() - start
            totals.append(Decimal(total).scaleb(-dec))
            if one_meter_counts is None:
                one_meter_counts = counts
    start = time.perf_counter()
    specs = fleet_specs(totals)
    inventory = account(specs, lib, V2015)
    accounting = time.perf_counter() - start
    assert one_meter_counts is not None
    # The same year of one meter summed reading by reading as exact Decimals.
    readings = [Decimal(int(c)).scaleb(-2) for c in one_meter_counts]
    start = time.perf_counter()
    dsum(readings)
    decimal_one = time.perf_counter() - start
    figures = [
        Figure("year of 1-min data, 100 meters: sums (numpy int64, exact)", summing, "s"),
        Figure("year of 1-min data, 100 meters: accounting of the 100 sums", accounting, "s"),
        Figure("year of 1-min data, 100 meters: total (measured)", summing + accounting, "s"),
        Figure("year of 1-min data, 1 meter: sum as Decimals (measured)", decimal_one, "s"),
        Figure(
            "year of 1-min data, 100 meters: sum as Decimals (projected ×100)",
            decimal_one * 100,
            "s",
        ),
    ]
    result = {
        "readings": str(MINUTES_A_YEAR * sum(c for *_, c, _ in FLEET)),
        "total_tco2": str(inventory.total_tco2.quantize(Decimal("0.001"))),
    }
    return figures, result


def main() -> None:
    # On a shared 2-core machine the neighbours' load shows in the tail latencies: say how much.
    load_at_start = os.getloadavg()
    lib = FactorLibrary.load(ROOT / "factors")
    figures = per_kind_rates(lib)
    figures.append(mixed_enterprise(lib))
    figures += minute_updates(lib)
    year, year_result = a_year(lib)
    figures += year
    per_source = statistics.mean(f.value for f in figures[:6:2])
    report(
        "accounting",
        figures,
        year_of_data=year_result,
        load_average={"at_start": load_at_start, "at_end": os.getloadavg()},
        notes=[
            "calculation only: no store reads, no report rendering (later parts of issue 9)",
            f"mean of the three per-kind rates: {per_source:.0f} sources/s",
            "issue 9 targets (annual report ≤ 3 s, per-minute update p99 ≤ 2 ms) are for the "
            "whole pipeline, judged when it exists; these figures are its calculation part",
        ],
    )


if __name__ == "__main__":
    main()

"""Accounting, for terminals that declare it: the emission-factor library and methods,
emissions computed from activity data (per minute, cumulative; manual entries at once), the
reports and statistics, the meter ledger, and alarms on emission anomalies.

The routes are the accounting part of the carbench profile (``/accounting/…``, ``/meters``);
each test checks the arithmetic against the activity data the terminal itself stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from conformance.bench import Bench
from conformance.evidence import TestLog

pytestmark = pytest.mark.requires("feature:accounting")

#: Relative tolerance of emission arithmetic (factors carry 4–6 significant digits).
TOLERANCE = Decimal("0.001")


async def _get(bench: Bench, path: str, **params: Any) -> Any:
    response = await bench.dut.management.request("GET", path, params=params or None)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}"
    return response.json()


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), Decimal(1))


@pytest.mark.clause("ISC-2 §7.2.8", "CSMT §11.4", "CSMT §11.4 a)", "CSMT §11.4 b)", "SSEA §5.4.9")
async def test_the_factor_library_is_versioned_and_exportable(bench: Bench) -> None:
    """The built-in emission-factor library lists factors with source and version, and exports."""
    factors = await _get(bench, "/accounting/factors")
    assert factors, "the factor library is empty"
    for factor in factors:
        assert {"id", "value", "unit", "version"} <= set(factor), f"incomplete factor {factor}"
    exported = await bench.dut.management.request("GET", "/accounting/factors/export")
    assert exported.status_code == 200 and exported.content, "the library does not export"
    # offline mode: the exported file imports back as it is
    imported = await bench.dut.management.request(
        "POST", "/accounting/factors/import", content=exported.content
    )
    assert imported.status_code < 300, (
        f"the exported library does not import back: {imported.status_code}"
    )
    # online mode: the library says where its factors came from (downloaded or built in)
    assert all(f.get("source") for f in factors), "factors without a source"


@pytest.mark.clause("CSMT §9.1", "CSMT §9.3", "CSMT §9.4", "ISC-2 §7.2.3(4bis)")
async def test_methods_single_point_boundary_and_classified(bench: Bench) -> None:
    """Activity points are bound to methods: single-point, boundary roll-up and classified
    (scope 1 and scope 2) accounting are all offered."""
    methods = await _get(bench, "/accounting/methods")
    kinds = {m.get("kind") for m in methods}
    assert {"single-point", "boundary", "classified"} <= kinds, f"methods offered: {kinds}"


@pytest.mark.clause("ISC-2 §7.2.3(3)", "CSMT §9.2")
async def test_emissions_per_minute_follow_activity_and_factor(
    bench: Bench, evidence: TestLog
) -> None:
    """Each minute's emission is the activity stored for that minute times its factor, and
    the cumulative emission adds them up."""
    await bench.history(900)
    end = bench.now() - 120
    rows = await _get(bench, "/accounting/emissions", period="minute", start=end - 600, end=end)
    evidence.attach_json("emissions.json", rows)
    assert rows, "no per-minute emissions"
    cumulative = Decimal(0)
    for row in rows:
        activity, factor = Decimal(row["activity"]), Decimal(row["factor"])
        emission = Decimal(row["emission"])
        assert _close(emission, activity * factor), row
        cumulative += emission
        if "cumulative" in row:
            assert _close(Decimal(row["cumulative"]), cumulative), row


@pytest.mark.clause(
    "ISC-2 §7.2.7",
    "CSMT §11.11",
    "ISC-2 §7.2.5",
    "ISC-2 §7.2.5 a)",
    "ISC-2 §7.2.5 b)",
    "ISC-2 §7.2.5 c)",
    "ISC-2 §7.2.5 d)",
    "ISC-2 §7.3",
    "ISC-2 §7.2.3(5)",
    "CSMT §11.7",
    "CSMT §11.9",
)
async def test_reports_and_statistics_by_scope_and_period(bench: Bench) -> None:
    """Hourly, daily and monthly reports give totals by scope and source, and per unit of
    electricity and heat; statistics compare periods."""
    for period in ("hour", "day", "month"):
        report = await _get(bench, f"/accounting/reports/{period}")
        assert {"total", "by_scope", "by_source"} <= set(report), f"{period} report: {report}"
        scopes = report["by_scope"]
        total = sum((Decimal(v) for v in scopes.values()), Decimal(0))
        assert _close(Decimal(report["total"]), total), report
        assert report.get("key_sources"), f"{period} report names no key emission source"
        assert report.get("activity"), f"{period} report gives no activity data"
    stats = await _get(bench, "/accounting/statistics", period="day")
    assert {"yoy", "mom"} & set(stats), f"statistics: {sorted(stats)}"
    exported = await bench.dut.management.request("GET", "/accounting/reports/day/export")
    assert exported.status_code == 200 and exported.content, "the report does not export"


@pytest.mark.clause("CSMT §11.6")
async def test_manual_entries_become_emissions_at_once(bench: Bench) -> None:
    """A value entered by hand is converted to an emission at once."""
    manual = bench.points(acquisition="manual")
    assert manual, "no manual point to enter a value for"
    t = bench.now()
    await bench.dut.management.enter_manual(manual[0].point, "10.00", t, operator="carbench")
    rows = await _get(bench, "/accounting/emissions", point=manual[0].point, start=t - 1, end=t + 1)
    assert rows and Decimal(rows[-1]["emission"]) > 0, rows


@pytest.mark.clause(
    "CSMT §11.1",
    "CSMT §11.1 a)",
    "CSMT §11.1 b)",
    "CSMT §11.1 c)",
    "CSMT §11.8",
    "CSMT §11.10",
    "CSMT §12.2",
)
async def test_the_meter_ledger_traces_records_to_meters(bench: Bench) -> None:
    """Every meter read is in the ledger with its calibration due date, and every point
    traces back to its meter."""
    ledger = {m["id"]: m for m in await _get(bench, "/meters")}
    for binding in bench.points(acquisition="polled"):
        if binding.meter is None:
            continue
        assert binding.meter in ledger, f"{binding.meter} is not in the meter ledger"
        entry = ledger[binding.meter]
        for field in ("calibration_due", "model", "location", "accuracy", "frequency"):
            assert field in entry, f"{binding.meter}: the ledger has no {field}: {entry}"
    filtered = await _get(bench, "/meters", level="1")
    assert all(str(m.get("level")) == "1" for m in filtered), "the ledger ignores its filter"
    exported = await bench.dut.management.request("GET", "/meters/export")
    assert exported.status_code == 200 and exported.content, "the ledger does not export"


@pytest.mark.clause("ISC-2 §7.2.6", "SSEA §5.4.6")
async def test_emission_anomalies_raise_alarms(bench: Bench) -> None:
    """An emission far above its usual level raises an alarm."""
    await bench.warm()
    counters = [
        b
        for b in bench.points(acquisition="polled")
        if b.kind == "counter" and bench.fleet_meter(b)
    ]
    assert counters, "no counter to make jump"
    binding = counters[0]
    assert binding.meter is not None and binding.quantity is not None
    start = bench.now()
    fault = bench.rig.meter_fault(
        binding.meter, "spike", seconds=120, factor=50, quantities=[binding.quantity]
    )
    await bench.wait(300)
    bench.rig.clear_fault(fault)
    alarms = await bench.dut.management.events(kind="alarm", start=start)
    assert alarms, "no alarm on a fifty-fold emission"


@pytest.mark.clause("CSMT §9.2", "CSMT §9.2 a)", "CSMT §9.2 b)", "CSMT §9.2 c)")
async def test_each_activity_point_is_bound_to_a_method(bench: Bench) -> None:
    """Single-point accounting: every uploaded activity point is bound to a sector, source
    category and source, a gas, and a formula whose data items are named."""
    bindings = {b["point"]: b for b in await _get(bench, "/accounting/bindings")}
    for point in bench.coded():
        if point.kind != "counter":
            continue
        bound = bindings.get(point.point)
        assert bound is not None, f"{point.point} is bound to no method"
        for field in ("sector", "source_category", "source", "gas", "formula", "items"):
            assert bound.get(field), f"{point.point}: no {field} in its binding {bound}"


@pytest.mark.clause(
    "CSMT §9.3 a)",
    "CSMT §9.3 b)",
    "CSMT §9.3 c)",
    "CSMT §9.3 d)",
    "CSMT §9.3 e)",
    "CSMT §9.3 f)",
    "CSMT §11.5",
)
async def test_the_accounting_boundary_is_configured(bench: Bench) -> None:
    """Boundary accounting: the entity, its accounting units, sector and sources, the meters
    bound to each source, and a boundary drawing generated from them."""
    boundary = await _get(bench, "/accounting/boundary")
    for field in ("entity", "units", "sector", "sources", "drawing"):
        assert boundary.get(field), f"the boundary has no {field}"
    meters = {m for s in boundary["sources"] for m in s.get("meters", [])}
    fleet = {b.meter for b in bench.points(acquisition="polled") if b.meter}
    assert fleet & meters, "no meter the terminal reads is bound to a source"


@pytest.mark.clause(
    "CSMT §9.4 a) 1)",
    "CSMT §9.4 a) 2)",
    "CSMT §9.4 a) 3)",
    "CSMT §9.4 a) 4)",
    "CSMT §9.4 a) 5)",
    "CSMT §9.4 b) 1)",
    "CSMT §9.4 b) 2)",
)
async def test_classified_accounting_by_scope_and_category(bench: Bench) -> None:
    """Classified accounting: scope 1 (combustion, process, carbonates, destruction or
    recovery, sector-specific) and scope 2 (electricity, heat), adding up to the total."""
    report = await _get(bench, "/accounting/reports/month")
    categories = report.get("by_category", {})
    scope1 = {"combustion", "process", "carbonates", "destruction_recovery", "sector_specific"}
    scope2 = {"electricity", "heat"}
    assert scope1 <= set(categories.get("scope1", {})), f"scope 1: {categories.get('scope1')}"
    assert scope2 <= set(categories.get("scope2", {})), f"scope 2: {categories.get('scope2')}"
    total = sum((Decimal(v) for scope in categories.values() for v in scope.values()), Decimal(0))
    assert _close(total, Decimal(report["total"])), (total, report["total"])

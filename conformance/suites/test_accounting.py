"""Accounting, for terminals that declare it: the emission-factor library and methods,
emissions computed from activity data (per minute, cumulative; manual entries at once), the
reports and statistics, the meter ledger, and alarms on emission anomalies.

**On the wire** (any terminal): the emissions it uploads under the codes its test parameters
declare (``parameters.emissions``: which source, unit or boundary, which meters, which method)
— per minute, hour and day, per source, unit and boundary, filed by category — are judged
against the meters' logs times each source's rate (:mod:`conformance.wire_emissions`,
:mod:`conformance.emission_plan`), and followed as the bench's platform publishes a new factor
library (CSMT §11.4).

**Through the carbench profile** (``/accounting/…``, ``/meters``): what only it shows — the
library and its export, the stored figures and their registers, reports, statistics, the
ledger, alarms. Every emission figure there is recomputed from the plant's truth by the
accounting oracle (:mod:`conformance.accounting_oracle`): the fleet file says which meter
reading feeds which source with which method, the bench's factor library gives the factors, and
each figure is judged with the tolerance its meters' resolution allows (inconclusive where the
bench cannot tell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import yaml

from conformance.accounting_oracle import (
    Bound,
    Interval,
    Judgement,
    Oracle,
    OracleError,
    Outcome,
    chain_breaks,
    conversion,
    decide,
    half_unit,
    judge_intensity,
    overall,
    unjudged,
)
from conformance.bench import Bench, local
from conformance.dut import PointBinding
from conformance.emission_plan import (
    Plan,
    PlannedSource,
    Rates,
    activity_digits,
    downloaded,
    next_revision,
    plan_for,
    publish,
    published_in_force,
    published_library,
    publishing_centre,
    survey_sources,
)
from conformance.evidence import TestLog, step
from conformance.target import EmissionCategory, EmissionCode
from conformance.verdicts import ClauseFailure, Inconclusive, NotApplicable
from conformance.wire_emissions import (
    DAY_CN,
    FIGURE_LAG_S,
    HOUR_CN,
    MINUTE_CN,
    Known,
    Truth,
    Unknown,
    Uploaded,
    could_tell,
    expected_minute,
    first_hj212_centre,
    judge_figure,
    judge_minutes,
    minutes_uploaded,
    period_sum,
)

pytestmark = pytest.mark.requires("feature:accounting")

#: Relative tolerance of figures that are sums of other reported figures (their own rounding).
TOLERANCE = Decimal("0.001")
#: Relative tolerance of a factor a binding shows against the one the plant's method gives.
FACTOR_TOLERANCE = Decimal("1e-6")
#: How far around a span the meter's answers are searched for its registers (s, beyond one
#: acquisition period).
MARGIN_S = 120.0


async def _get(bench: Bench, path: str, **params: Any) -> Any:
    response = await bench.management.request("GET", path, params=params or None)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}"
    return response.json()


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), Decimal(1))


@pytest.fixture
def oracle(bench: Bench) -> Oracle:
    found = Oracle.for_fleet(bench.rig.fleet)
    if not found.reads:
        raise Inconclusive("the fleet describes no accounting: nothing to recompute")
    found.refresh()
    return found


def _accounted(bench: Bench, oracle: Oracle) -> dict[str, tuple[PointBinding, Bound]]:
    """The terminal's points whose meter reading the fleet's accounting counts."""
    out = {}
    for b in bench.dut.points():
        if b.meter is not None and b.quantity is not None:
            bound = oracle.reads.get((b.meter, b.quantity))
            if bound is not None:
                out[b.point] = (b, bound)
    return out


def _period_s(bench: Bench, binding: PointBinding) -> float:
    return float(bench.dut.target.parameters.periods.get(binding.group, 60))


def _resolution(binding: PointBinding) -> Decimal:
    return Decimal(1).scaleb(-binding.decimals)


def _settle(judged: Sequence[Judgement], evidence: TestLog, name: str) -> None:
    """The test's verdict from its figures' (:func:`overall`)."""
    outcome, summary = overall(judged)
    evidence.record_measurement(f"{name} judged", float(len(judged)))
    evidence.record_measurement(
        f"{name} passed", float(sum(j.outcome is Outcome.PASS for j in judged))
    )
    if outcome is Outcome.FAIL:
        raise ClauseFailure(f"{name}: {summary}")
    if outcome is Outcome.INCONCLUSIVE:
        raise Inconclusive(f"{name}: {summary}")


def _judge_points(
    bench: Bench,
    oracle: Oracle,
    accounted: Mapping[str, tuple[PointBinding, Bound]],
    lines: Sequence[Mapping[str, Any]],
    lo: float,
    hi: float,
    what: str,
) -> list[tuple[str, Judgement]]:
    """Each point figure of a period (``by_point`` of a statistics answer) against the plant."""
    out = []
    for line in lines:
        if line.get("tco2") is None or line["point"] not in accounted:
            continue
        binding, bound = accounted[line["point"]]
        if binding.acquisition == "manual" or not line.get("minutes"):
            continue  # entries are judged at once below; a point without data has nothing
        judged = oracle.judge_span(
            f"{what} {line['point']}",
            bound,
            _resolution(binding),
            first=None if line.get("first") is None else Decimal(line["first"]),
            last=None if line.get("last") is None else Decimal(line["last"]),
            lo=lo - _period_s(bench, binding) - MARGIN_S,
            hi=hi + _period_s(bench, binding) + MARGIN_S,
            emission=Decimal(line["tco2"]),
        )
        out.append((line["point"], judged))
    return out


def _emission_interval(
    accounted: Mapping[str, tuple[PointBinding, Bound]], parts: Sequence[tuple[str, Judgement]]
) -> Interval | str:
    """The period's total emission (scope 1 + scope 2, as intensities divide it) as the bench
    knows it from its points' judgements, or why it cannot."""
    value = limit = uncertainty = Decimal(0)
    for point, part in parts:
        if accounted[point][1].scope is None:
            continue  # biomass CO2 is reported apart, not in the total (GB/T 32150)
        if part.expected is None or part.faults:
            return f"{part.figure}: {part.why}"
        value += part.expected
        limit += part.limit
        uncertainty += part.uncertainty
    return Interval(value, limit, uncertainty)


def _basis_amounts(
    bench: Bench,
    oracle: Oracle,
    lines: Sequence[Mapping[str, Any]],
    lo: float,
    hi: float,
    units: Mapping[str, str],
) -> dict[str, Interval | str]:
    """Each basis's amount over a period (in ``units[basis]``, the unit the terminal reports
    it in) from the plant's truth between the registers the terminal's basis points give, or
    why it cannot be known. Each meter's limit is one resolution step in the basis unit."""
    by_read = {(b.meter, b.quantity): b for b in bench.dut.points() if b.meter and b.quantity}
    line_of = {line["point"]: line for line in lines}
    out: dict[str, Interval | str] = {}
    for key, read in oracle.bases.items():
        if read.basis not in units or isinstance(out.get(read.basis), str):
            continue
        binding = by_read.get(key)
        if binding is None:
            out[read.basis] = f"the terminal reads no point of {read.meter} {read.quantity}"
            continue
        line = line_of.get(binding.point)
        if line is None:
            out[read.basis] = f"the report has no line for the basis point {binding.point}"
            continue
        try:
            scale = conversion(read.unit, units[read.basis])
        except OracleError as exc:
            out[read.basis] = str(exc)
            continue
        span = oracle.span_activity(
            read.meter,
            read.quantity,
            None if line.get("first") is None else Decimal(line["first"]),
            None if line.get("last") is None else Decimal(line["last"]),
            lo - _period_s(bench, binding) - MARGIN_S,
            hi + _period_s(bench, binding) + MARGIN_S,
        )
        if isinstance(span, str) or span.faults:
            out[read.basis] = span if isinstance(span, str) else f"{read.meter} faulted"
            continue
        had = out.get(read.basis, Interval(Decimal(0), Decimal(0), Decimal(0)))
        assert isinstance(had, Interval)
        out[read.basis] = Interval(
            had.value + span.activity * scale,
            had.limit + _resolution(binding) * scale,
            had.uncertainty + span.spread * scale,
        )
    return out


def _judge_intensities(
    bench: Bench,
    oracle: Oracle,
    accounted: Mapping[str, tuple[PointBinding, Bound]],
    report: Mapping[str, Any],
    parts: Sequence[tuple[str, Judgement]],
    lo: float,
    hi: float,
) -> list[Judgement]:
    """Each basis amount and intensity of a report against the plant (ISC-2 §7.2.3(3))."""
    given = report.get("intensities") or {}
    units = {b: str(v.get("amount_unit") or "") for b, v in given.items()}
    amounts = _basis_amounts(bench, oracle, report.get("by_point", []), lo, hi, units)
    emission = _emission_interval(accounted, parts)
    period = report["period"]
    out = []
    for basis, figures in given.items():
        amount = amounts.get(basis)
        what = f"{period} intensity per {basis}"
        if amount is None:
            continue  # a basis the fleet does not describe: nothing to recompute it from
        if figures.get("amount") is not None and not isinstance(amount, str):
            reported = Decimal(figures["amount"])
            out.append(
                decide(
                    f"{period} {basis} amount",
                    reported,
                    amount.value,
                    amount.limit + half_unit(reported),
                    amount.uncertainty,
                )
            )
        if figures.get("value") is None:
            if not isinstance(amount, str) and abs(amount.value) > amount.limit + (
                amount.uncertainty
            ):
                out.append(
                    Judgement(what, Outcome.FAIL, None, None, amount.limit, amount.uncertainty,
                              f"no intensity, though the basis was {amount.value:.6f}")
                )  # fmt: skip
            continue
        reported = Decimal(figures["value"])
        if isinstance(amount, str):
            out.append(unjudged(what, reported, f"the basis: {amount}"))
        elif isinstance(emission, str):
            out.append(unjudged(what, reported, f"the total: {emission}"))
        else:
            out.append(judge_intensity(what, reported, emission, amount))
    return out


def _judge_total(what: str, pairs: Sequence[tuple[str, Judgement]], reported: Decimal) -> Judgement:
    """A total against the sum of its parts' truths (their limits and uncertainties add up)."""
    parts = [p for _, p in pairs]
    if any(p.expected is None for p in parts):
        return Judgement(what, Outcome.INCONCLUSIVE, reported, None, Decimal(0), Decimal(0),
                         "a part could not be recomputed")  # fmt: skip
    expected = sum((p.expected for p in parts if p.expected is not None), Decimal(0))
    limit = sum((p.limit for p in parts), Decimal(0)) + half_unit(reported)
    uncertainty = sum((p.uncertainty for p in parts), Decimal(0))
    return decide(what, reported, expected, limit, uncertainty)


@pytest.mark.clause("ISC-2 §7.2.8", "CSMT §11.4", "CSMT §11.4 a)", "CSMT §11.4 b)", "SSEA §5.4.9.2")
async def test_the_factor_library_is_versioned_and_exportable(bench: Bench) -> None:
    """The built-in emission-factor library lists factors with source and version, and exports."""
    factors = await _get(bench, "/accounting/factors")
    assert factors, "the factor library is empty"
    for factor in factors:
        assert {"id", "value", "unit", "version"} <= set(factor), f"incomplete factor {factor}"
    exported = await bench.management.request("GET", "/accounting/factors/export")
    assert exported.status_code == 200 and exported.content, "the library does not export"
    # offline mode: the exported file imports back as it is
    imported = await bench.management.request(
        "POST", "/accounting/factors/import", content=exported.content
    )
    assert imported.status_code < 300, (
        f"the exported library does not import back: {imported.status_code}"
    )
    # online mode: the library says where its factors came from (downloaded or built in)
    assert all(f.get("source") for f in factors), "factors without a source"


def _revisions(factors: Sequence[Mapping[str, Any]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for f in factors:
        out.setdefault(str(f.get("vintage")), set()).add(int(f["version"]))
    return out


@pytest.mark.requires("feature:factor-download")
@pytest.mark.clause("CSMT §11.4", "CSMT §11.4 a)", "ISC-2 §7.2.8")
async def test_the_factor_library_is_downloaded_from_the_platform(
    bench: Bench, evidence: TestLog
) -> None:
    """Online methodology configuration: the terminal downloads the factor library the bench's
    platform publishes, refuses a publication changed after it was signed (the library left as
    it was), then uses exactly the version published — every factor of every published vintage
    at the published revision — and logs the change with that version."""
    centre = next((c for c in bench.rig.centres if c.factors_url), None)
    if centre is None:
        raise Inconclusive("no centre of the bench publishes a factor library", "CSMT §11.4")
    publisher = bench.rig.platforms.https(centre.name)
    before = _revisions(await _get(bench, "/accounting/factors"))
    revision = max((max(r) for r in before.values()), default=1) + 1
    version = f"carbench-{revision}"
    start = bench.now()
    fetched = len(publisher.library_downloads)
    # published through the registry, so that the wire tests know what was in force when
    publish(bench, centre.name, published_library(revision + 50), f"{version}-x", tamper=True)
    tampered = await bench.management.request("POST", "/accounting/factors/download", json={})
    evidence.attach_json("tampered.json", {"status": tampered.status_code, "body": tampered.text})
    after_tamper = _revisions(await _get(bench, "/accounting/factors"))
    if tampered.status_code < 300 or after_tamper != before:
        raise ClauseFailure(
            f"CSMT §11.4: a library changed after the platform signed it was taken "
            f"(HTTP {tampered.status_code}; revisions {after_tamper}, before {before})"
        )
    published = published_library(revision)
    publish(bench, centre.name, published, version)
    evidence.attach("published.yaml", published, "application/yaml")
    answer = await bench.management.request("POST", "/accounting/factors/download", json={})
    evidence.attach_json("download.json", {"status": answer.status_code, "body": answer.text})
    assert answer.status_code < 300, f"the download was refused: HTTP {answer.status_code}"
    asked = publisher.library_downloads[fetched:]
    assert len(asked) >= 2, (
        f"the terminal did not download from the bench's platform {centre.name} "
        f"({len(asked)} requests)"
    )
    now = _revisions(await _get(bench, "/accounting/factors"))
    published_vintages = {v["vintage"] for v in yaml.safe_load(published)["vintages"]}
    wrong = {v: now.get(v) for v in published_vintages if now.get(v) != {revision}}
    assert not wrong, f"published at revision {revision}, the terminal uses {wrong}"
    events = await bench.management.events(start=start)
    logged = [e for e in events if version in e.details.values()]
    evidence.attach_json("events.json", [{"kind": e.kind, **e.details} for e in logged])
    assert logged, f"the download of version {version} is not in the terminal's log"


@pytest.mark.clause("CSMT §9.1", "CSMT §9.3", "CSMT §9.4", "ISC-2 §7.2.3(4bis)")
async def test_methods_single_point_boundary_and_classified(bench: Bench) -> None:
    """Activity points are bound to methods: single-point, boundary roll-up and classified
    (scope 1 and scope 2) accounting are all offered."""
    methods = await _get(bench, "/accounting/methods")
    kinds = {m.get("kind") for m in methods.get("methods", [])}
    assert {"single-point", "boundary", "classified"} <= kinds, f"methods offered: {kinds}"


@pytest.mark.clause("ISC-2 §7.2.3(3)", "CSMT §9.2")
async def test_stored_minute_emissions_trace_to_the_meters(
    bench: Bench, evidence: TestLog, oracle: Oracle
) -> None:
    """Each minute's emission the terminal keeps for each accounted point (with the activity
    and the registers it spans, CSMT §9.2 "保留转换前后原始数据、碳排放数据") is what the
    plant's truth over the minute's measured span gives with the fleet's method, within its
    meter's resolution; the minutes chain (each starts at the register the one before ended
    at) and the cumulative emission adds them up."""
    await bench.history(900)
    end = bench.now() - 120
    accounted = _accounted(bench, oracle)
    metered = {p for p, (b, _) in accounted.items() if b.acquisition != "manual"}
    assert metered, "the terminal reads none of the meters the fleet accounts with"
    page = await _get(bench, "/accounting/emissions", start=end - 600, end=end)
    rows = [r for r in page["items"] if r["point"] in metered and r.get("kind") != "entry"]
    evidence.attach_json("emissions.json", rows)
    assert rows, "no per-minute emissions"
    oracle.refresh()
    judged: list[Judgement] = []
    problems: list[str] = []
    for point in sorted({r["point"] for r in rows}):
        binding, bound = accounted[point]
        mine = sorted((r for r in rows if r["point"] == point), key=lambda r: r["t"])
        problems += chain_breaks(mine)
        previous: Decimal | None = None
        for row in mine:
            emission = Decimal(row["emission"])
            if previous is not None and row.get("cumulative") is not None:
                cumulative = Decimal(row["cumulative"])
                slack = half_unit(row["cumulative"]) * 2 + half_unit(row["emission"])
                if abs(cumulative - previous - emission) > slack:
                    problems.append(
                        f"{point} at {row['t']}: cumulative {cumulative} is not {previous} + "
                        f"{emission}"
                    )
            if row.get("cumulative") is not None:
                previous = Decimal(row["cumulative"])
            judged.append(
                oracle.judge_span(
                    f"{point} minute {row['t']:.0f}",
                    bound,
                    _resolution(binding),
                    first=None if row.get("first") is None else Decimal(row["first"]),
                    last=None if row.get("last") is None else Decimal(row["last"]),
                    lo=row["start"] - _period_s(bench, binding) - MARGIN_S,
                    hi=row["end"] + _period_s(bench, binding) + MARGIN_S,
                    emission=emission,
                )
            )
    evidence.attach_json("judgements.json", [j.data() for j in judged])
    assert not problems, f"the minutes do not add up: {problems[:3]}"
    _settle(judged, evidence, "minute emissions")


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
async def test_reports_and_statistics_by_scope_and_period(
    bench: Bench, evidence: TestLog, oracle: Oracle
) -> None:
    """Hourly, daily and monthly reports give totals by scope and source, and per unit of
    electricity and heat; statistics compare periods; every point's figure and the total are
    what the plant's truth gives."""
    await bench.history(900)
    accounted = _accounted(bench, oracle)
    oracle.refresh()
    judged: list[Judgement] = []
    for period in ("hour", "day", "month"):
        report = await _get(bench, f"/accounting/reports/{period}")
        evidence.attach_json(f"report-{period}.json", report)
        assert {"total", "by_scope", "by_source"} <= set(report), f"{period} report: {report}"
        scopes = report["by_scope"]
        total = sum((Decimal(v) for v in scopes.values()), Decimal(0))
        assert _close(Decimal(report["total"]), total), report
        assert report.get("key_sources"), f"{period} report names no key emission source"
        assert report.get("activity"), f"{period} report gives no activity data"
        assert report.get("intensities"), f"{period} report gives no intensity"
        span = report["span"]
        parts = _judge_points(
            bench,
            oracle,
            accounted,
            report.get("by_point", []),
            span["start"],
            min(span["end"], bench.now()),
            period,
        )
        manual = {p for p, (b, _) in accounted.items() if b.acquisition == "manual"}
        entered = [
            line
            for line in report.get("by_point", [])
            if line["point"] in manual and line.get("minutes")
        ]
        if not entered and parts:
            judged.append(_judge_total(f"{period} total", parts, Decimal(report["total"])))
            # intensities divide that total: judged where the total is
            judged += _judge_intensities(
                bench,
                oracle,
                accounted,
                report,
                parts,
                span["start"],
                min(span["end"], bench.now()),
            )
        judged += [j for _, j in parts]
    evidence.attach_json("judgements.json", [j.data() for j in judged])
    stats = await _get(bench, "/accounting/statistics", period="day")
    assert {"yoy", "mom"} <= set(stats), f"statistics: {sorted(stats)}"
    exported = await bench.management.request("GET", "/accounting/reports/day/export")
    assert exported.status_code == 200 and exported.content, "the report does not export"
    _settle(judged, evidence, "period figures")


@pytest.mark.clause("CSMT §11.6")
async def test_manual_entries_become_emissions_at_once(
    bench: Bench, evidence: TestLog, oracle: Oracle
) -> None:
    """A value entered by hand is converted to an emission at once, and that emission is what
    the plant's truth between the entries gives."""
    from conformance.suites.readback import plant_text  # noqa: PLC0415

    accounted = _accounted(bench, oracle)
    manual = [b for b, _ in accounted.values() if b.acquisition == "manual"]
    if not manual:
        raise Inconclusive("the fleet accounts no activity entered by hand", "CSMT §11.6")
    binding = manual[0]
    _, bound = accounted[binding.point]
    management = bench.management
    latest = await management.latest(binding.point)
    if latest is None or latest.quality != "manual":
        t0 = bench.now()
        await management.enter_manual(
            binding.point, plant_text(bench, binding, t0), t0, operator="carbench"
        )
        await bench.wait(1800)
    t = bench.now()
    await management.enter_manual(binding.point, plant_text(bench, binding, t), t, "carbench")
    page = await _get(bench, "/accounting/emissions", point=binding.point, start=t - 1, end=t + 1)
    rows = page["items"]
    evidence.attach_json("entry.json", rows)
    assert rows, "the value entered is no emission yet"
    row = rows[-1]
    judgement = oracle.judge_entry(
        f"{binding.point} entry at {t:.0f}",
        bound,
        _resolution(binding),
        t0=float(row["start"]),
        t1=float(row["end"]),
        emission=Decimal(row["emission"]),
    )
    evidence.attach_json("judgement.json", judgement.data())
    assert abs(float(row["end"]) - t) < 1, f"the entry's emission is booked at {row['end']}"
    _settle([judgement], evidence, "hand entry")


@pytest.mark.clause(
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
        points = {p.get("point") for p in entry.get("points", [])}
        assert binding.point in points, f"{binding.point} is not traced to {binding.meter}"
    filtered = await _get(bench, "/meters", level="1")
    assert all(str(m.get("level")) == "1" for m in filtered), "the ledger ignores its filter"
    levels = {getattr(m.nameplate, "level", None) for m in bench.rig.fleet.spec.meters}
    if 1 in levels:
        assert filtered, "no level-1 meter in the ledger, though the plant has some"
    exported = await bench.management.request("GET", "/meters/export")
    assert exported.status_code == 200 and exported.content, "the ledger does not export"


@pytest.mark.clause("ISC-2 §7.2.6", "SSEA §5.4.6.2")
async def test_emission_anomalies_raise_alarms(bench: Bench, oracle: Oracle) -> None:
    """An emission far above its usual level raises an alarm."""
    await bench.history(900)
    accounted = _accounted(bench, oracle)
    end = bench.now()
    page = await _get(bench, "/accounting/emissions", start=end - 600, end=end)
    emitted: dict[str, Decimal] = {}
    for row in page["items"]:
        if row["point"] in accounted and accounted[row["point"]][0].acquisition == "polled":
            emitted[row["point"]] = emitted.get(row["point"], Decimal(0)) + abs(
                Decimal(row["emission"])
            )
    assert emitted, "no accounted counter emits anything to make jump"
    binding, bound = accounted[max(emitted, key=lambda p: emitted[p])]
    start = bench.now()
    fault = bench.rig.meter_fault(
        bound.meter, "spike", seconds=120, factor=50, quantities=[bound.quantity]
    )
    await bench.wait(300)
    bench.rig.clear_fault(fault)
    alarms = await bench.management.events(kind="alarm", start=start)
    assert alarms, f"no alarm on a fifty-fold emission of {binding.point}"


@pytest.mark.clause("CSMT §9.2", "CSMT §9.2 a)", "CSMT §9.2 b)", "CSMT §9.2 c)")
async def test_each_activity_point_is_bound_to_a_method(bench: Bench, oracle: Oracle) -> None:
    """Single-point accounting: every point reading an activity the plant accounts for is
    bound to a sector, source category and source, a gas, and a formula whose data items are
    named, with the factor the plant's method gives."""
    methods = await _get(bench, "/accounting/methods")
    bindings = {b["point"]: b for b in methods.get("bindings", [])}
    problems = []
    for point, (_, bound) in _accounted(bench, oracle).items():
        found = bindings.get(point)
        if found is None:
            problems.append(f"{point} ({bound.source}) is bound to no method")
            continue
        for field in ("sector", "source_category", "source", "gas", "formula", "items"):
            if not found.get(field):
                problems.append(f"{point}: no {field} in its binding {found}")
        factor = found.get("factor")
        off = factor is not None and abs(Decimal(factor) - bound.rate) > abs(bound.rate) * (
            FACTOR_TOLERANCE
        )
        if off:
            problems.append(
                f"{point}: factor {factor} tCO2/{bound.unit}, the plant's method gives "
                f"{bound.rate:.12f}"
            )
    assert not problems, problems[:5]


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
    boundary = await _get(bench, "/accounting/boundaries")
    for field in ("entity", "units", "sector", "sources", "drawing"):
        assert boundary.get(field), f"the boundary has no {field}"
    meters = {m for s in boundary["sources"] for m in s.get("meters", [])}
    fleet = {b.meter for b in bench.points(acquisition="polled") if b.meter}
    assert fleet & meters, "no meter the terminal reads is bound to a source"


@pytest.mark.clause("ISC-2 §7.2.1")
async def test_the_configured_boundary_lists_every_meter_of_the_plant(bench: Bench) -> None:
    """The monitoring boundary the terminal shows follows the plant's real sources: every
    source of the site's survey (the fleet's accounting description), its auxiliary and
    ancillary systems as much as the main production, is inside it with each meter that
    measures it."""
    survey = bench.rig.fleet.spec.accounting
    if survey is None:
        raise Inconclusive(
            "the fleet describes no accounting boundary to compare with", "ISC-2 §7.2.1"
        )
    boundary = await _get(bench, "/accounting/boundaries")
    inside = {m for s in boundary.get("sources", []) for m in s.get("meters", [])}
    outside = [
        f"{unit.id}/{source.id} ({read.meter})"
        for unit, source in survey.sources()
        for read in source.reads
        if read.meter not in inside
    ]
    assert not outside, f"sources of the plant outside the terminal's boundary: {outside}"


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
    total = sum(
        (Decimal(v) for scope in ("scope1", "scope2") for v in categories.get(scope, {}).values()),
        Decimal(0),
    )
    assert _close(total, Decimal(report["total"])), (total, report["total"])


# ---- on the wire: the emissions the terminal uploads (any terminal) -------------------------

#: Seconds of its own a wire test watches.
WATCH_S = 600.0
#: The first seconds of the run, while the terminal starts reading its meters: a period's
#: minutes before them are taken as uploaded (the terminal was starting, not judged).
STARTING_S = 900.0
#: How much the CSMT §11.4 test changes the published library values, and the tampered
#: publication's (which must change nothing).
CHANGED = Decimal("1.25")
TAMPERED = Decimal("1.5")
#: CSMT §9.4 items: the categories of scope 1 (a) 1)–5)) and scope 2 (b) 1)–2)).
CATEGORY_ITEMS: tuple[tuple[EmissionCategory, str], ...] = (
    ("combustion", "CSMT §9.4 a) 1)"),
    ("process", "CSMT §9.4 a) 2)"),
    ("carbonates", "CSMT §9.4 a) 3)"),
    ("destruction_recovery", "CSMT §9.4 a) 4)"),
    ("sector_specific", "CSMT §9.4 a) 5)"),
    ("electricity", "CSMT §9.4 b) 1)"),
    ("heat", "CSMT §9.4 b) 2)"),
)


def item_of(category: str) -> str:
    return next(item for c, item in CATEGORY_ITEMS if c == category)


@pytest.fixture
def plan(bench: Bench) -> Plan:
    return plan_for(bench)


async def _watch(
    bench: Bench,
    plan: Plan,
    codes: Sequence[EmissionCode],
    extra: Sequence[PlannedSource] = (),
) -> tuple[Truth, Rates, Uploaded]:
    """Minutes of the test's own: the terminal warm and on a library the bench knows, then
    :data:`WATCH_S` of it; the truth, the rates and the figures that arrived."""
    await bench.warm()
    await published_in_force(bench, plan)
    start = bench.now()
    await bench.wait(WATCH_S)
    _, truth, rates, uploaded = await minutes_uploaded(
        bench, plan, codes, start, bench.now(), extra
    )
    return truth, rates, uploaded


def _decide(judged: Sequence[Judgement], evidence: TestLog, name: str) -> None:
    """The test's verdict from its figures; a plant that stood still shows nothing."""
    evidence.attach_json(f"{name.replace(' ', '-')}.json", [j.data() for j in judged])
    if not any(j.outcome is Outcome.FAIL for j in judged) and not could_tell(judged):
        raise Inconclusive(f"{name}: no figure judged had an emission other than zero")
    _settle(judged, evidence, name)


@pytest.mark.clause("ISC-2 §7.2.3(3)", "CSMT §9.2", "CSMT §9.2 a)", "CSMT §9.2 b)", "CSMT §9.2 c)")
async def test_emissions_per_minute_follow_activity_and_factor(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """Single-point accounting, every minute: each declared source's emission goes up under its
    code (CN 2051, ``Cou`` in tCO2) and is its meters' increments in that minute, as their logs
    show them, times the rate its declared method gives — each activity point bound to its
    method, formula and factor — within the rounding of the places the terminal reports."""
    codes = [c for c in plan.codes if c.of == "source"]
    if not codes:
        raise NotApplicable("parameters.emissions.codes: no source's code is declared")
    truth, rates, uploaded = await _watch(bench, plan, codes)
    _decide(judge_minutes(plan, truth, rates, codes, uploaded), evidence, "source minutes")


@pytest.mark.clause("ISC-2 §7.2.3(3)")
async def test_hourly_and_daily_emissions_add_up_their_minutes(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """The hourly and daily emission of every code (CN 2061 and 2031, ``Cou``) is its minutes'
    added up: the first hour after the first local midnight the terminal lives through, and the
    day that midnight ends (from the terminal's start) — each minute at its truth where the
    bench knows it, else as it was uploaded (the minute tests judge those)."""
    periods = await _periods(bench, plan, "ISC-2 §7.2.3(3)")
    judged: list[Judgement] = []
    for cn, start, end, what in periods.spans:
        got = Uploaded.read(bench, periods.centre, cn, start, start + 1)
        judged += periods.judge(plan, what, start, end, got)
    _decide(judged, evidence, "period figures on the wire")


@pytest.mark.clause("ISC-2 §7.2.3(5)")
@pytest.mark.requires("transport:hj212", "feature:history-request")
async def test_a_platform_queries_hourly_and_daily_emissions(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """Query and statistics of carbon data, on the wire: the platform asks for the hour and
    the day of ``test_hourly_and_daily_emissions_add_up_their_minutes`` (2061 and 2031 with
    BeginTime = EndTime = the period's start), and every code's ``Cou`` in the answer is its
    minutes added up, as the uploads' must be."""
    periods = await _periods(bench, plan, "ISC-2 §7.2.3(5)")
    commands = await bench.commands(periods.centre, timeout=600)
    judged: list[Judgement] = []
    for cn, start, end, what in periods.spans:
        with step(f"{cn} for the {what} from {local(start):%m-%d %H:%M}"):
            answer = await commands.history(cn, local(start), local(start))
        assert answer.ok, f"{cn}: {answer.status} {answer.reason} {list(answer.departures)}"
        got = Uploaded.answered(answer.records)
        judged += periods.judge(plan, what, start, end, got)
    _decide(judged, evidence, "period figures a platform asked for")


@dataclass(frozen=True)
class _Periods:
    """The hour after the first local midnight the terminal lives through and the day that
    midnight ends, with what judging their figures needs."""

    centre: str
    spans: tuple[tuple[int, float, float, str], ...]  # (CN, start, end, "hour" | "day")
    truth: Truth
    rates: Rates
    minutes: Uploaded

    def judge(
        self, plan: Plan, what: str, start: float, end: float, got: Uploaded
    ) -> list[Judgement]:
        """Each code's figure for ``[start, end)`` in ``got`` against its minutes added up —
        each minute at its truth where the bench knows it, else as it was uploaded."""
        judged: list[Judgement] = []
        windows = [start + 60 * i for i in range(int(end - start) // 60)]
        for code in plan.codes:
            by_hand = all(s.manual for s in plan.members(code))
            if by_hand and not any((code.code, w) in self.minutes.values for w in windows):
                continue  # entered by hand, and nothing entered that period
            expected = period_sum(plan, self.truth, self.rates, code, windows, self.minutes)
            reported = got.values.get((code.code, start), [])
            judged += judge_figure(f"{code.code} {what} {local(start):%m-%d %H:%M}", expected,
                                   reported)  # fmt: skip
        return judged


async def _periods(bench: Bench, plan: Plan, clause: str) -> _Periods:
    await bench.warm()
    await published_in_force(bench, plan)
    midnight = bench.first_midnight()
    hour_end = midnight + 3600
    due = hour_end + bench.settled_after() + FIGURE_LAG_S + 300
    bench.needs(due - bench.now(), (clause,))
    await bench.rig.sleep_until(due)
    centre = first_hj212_centre(bench)
    day_start = midnight - 86400
    truth = Truth(bench, plan.sources.values(), max(day_start, bench.t0 + STARTING_S), hour_end)
    return _Periods(
        centre,
        ((HOUR_CN, midnight, hour_end, "hour"), (DAY_CN, day_start, midnight, "day")),
        truth,
        Rates.now(bench, plan),
        Uploaded.read(bench, centre, MINUTE_CN, day_start, hour_end),
    )


@pytest.mark.clause("CSMT §9.1", "CSMT §9.3", "CSMT §9.3 b)", "CSMT §9.3 d)", "CSMT §9.3 e)")
async def test_units_and_the_boundary_roll_up_their_sources(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """Boundary accounting, rolled up level by level: every minute each accounting unit's
    emission and the whole boundary's go up under their codes, each the sum over the sources
    configured in it (scope 1 and 2) of its meters' increments times its method's rate; a
    source entered by hand counts as its own code's figure."""
    codes = [c for c in plan.codes if c.of != "source"]
    if not codes:
        raise NotApplicable("parameters.emissions.codes: no unit's or boundary's code")
    truth, rates, uploaded = await _watch(bench, plan, codes)
    _decide(judge_minutes(plan, truth, rates, codes, uploaded), evidence, "roll-up minutes")


@pytest.mark.clause("ISC-2 §7.2.1")
async def test_the_boundary_takes_in_every_source_of_the_plant(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """The monitoring boundary follows the plant's real sources: every minute the boundary's
    emission is the sum over every source of the site's survey (the fleet's accounting
    section) — auxiliary and ancillary systems as much as the main production — of its meters'
    increments times its method's rate. A source left outside falls short by its emission."""
    boundary = [c for c in plan.codes if c.of == "boundary"]
    if not boundary:
        raise NotApplicable("parameters.emissions.codes: no code for the whole boundary")
    surveyed = survey_sources(bench, plan)
    if not surveyed:
        raise Inconclusive("the fleet describes no accounting boundary to compare with")
    evidence.attach_json("survey.json", [s.spec.model_dump(mode="json") for s in surveyed])
    truth, rates, uploaded = await _watch(bench, plan, boundary, surveyed)
    judged: list[Judgement] = []
    for code in boundary:
        for w in truth.minutes():
            expected = expected_minute(plan, truth, rates, surveyed, w, uploaded)
            got = uploaded.values.get((code.code, w), [])
            if isinstance(expected, Unknown) and not expected.blame and not got:
                continue
            judged += judge_figure(f"{code.code} {local(w):%H:%M}", expected, got)
    _decide(judged, evidence, "boundary minutes")


def _filed(plan: Plan) -> dict[str, EmissionCategory | None]:
    """Each source code and the category its activity digits file it under."""
    return {
        c.code: plan.emissions.activities.get(activity_digits(c.code) or "")
        for c in plan.codes
        if c.of == "source"
    }


def _misfiled(plan: Plan, category: str | None = None) -> list[str]:
    """Source codes whose activity digits do not say their source's category (of those of
    ``category`` or filed under it, if given)."""
    filed = _filed(plan)
    out = []
    for c in plan.codes:
        if c.of != "source":
            continue
        own = plan.sources[str(c.id)].category
        if filed[c.code] != own and category in (None, own, filed[c.code]):
            out.append(f"{c.code}: {own}, filed as {filed[c.code]}")
    return out


def _sum_of(plan: Plan, uploaded: Uploaded, codes: Sequence[str], w: float) -> list[Decimal]:
    """What a platform adding up ``codes`` has for minute ``w`` (nothing: a metered source's
    figure is missing; a code of entries has none in a minute without one)."""
    by_hand = {c.code for c in plan.codes if all(s.manual for s in plan.members(c))}
    parts = [uploaded.first(code, w) for code in codes]
    if any(p is None for code, p in zip(codes, parts, strict=True) if code not in by_hand):
        return []
    return [sum((p for p in parts if p is not None), Decimal(0))]


def _classified(
    plan: Plan,
    truth: Truth,
    rates: Rates,
    sources: Sequence[PlannedSource],
    codes: Sequence[str],
    uploaded: Uploaded,
    what: str,
) -> list[Judgement]:
    """Each minute's sum of ``codes`` against the emission of ``sources``."""
    judged: list[Judgement] = []
    for w in truth.minutes():
        expected = expected_minute(plan, truth, rates, sources, w, uploaded)
        got = _sum_of(plan, uploaded, codes, w)
        if isinstance(expected, Unknown) and not expected.blame and not got:
            continue
        if isinstance(expected, Known):  # each code rounded on its own
            expected = Known(expected.value, expected.width, max(expected.parts, len(codes)))
        judged += judge_figure(f"{what} {local(w):%H:%M}", expected, got)
    return judged


@pytest.mark.clause("CSMT §9.4")
async def test_figures_filed_by_category_add_up_to_scope_1_and_2(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """Classified accounting on top of single-point and boundary accounting: every source's
    code says its category in its activity digits (as the target declares its terminal files
    them), and every minute the figures so filed — scope 1's categories and scope 2's — add up
    to the emission of every source in the boundary."""
    misfiled = _misfiled(plan)
    assert not misfiled, f"codes whose activity digits do not say their category: {misfiled}"
    sources = [s for s in plan.sources.values() if s.scope is not None]
    filed = sorted(
        c.code for c in plan.codes if c.of == "source" and c.id in {s.id for s in sources}
    )
    truth, rates, uploaded = await _watch(bench, plan, [c for c in plan.codes if c.code in filed])
    judged = _classified(plan, truth, rates, sources, filed, uploaded, "scope 1 + 2")
    _decide(judged, evidence, "classified minutes")


@pytest.mark.parametrize(
    "category",
    [
        pytest.param(category, marks=pytest.mark.clause(item), id=category)
        for category, item in CATEGORY_ITEMS
    ],
)
async def test_each_category_is_filed_under_its_activity_code(
    bench: Bench, evidence: TestLog, plan: Plan, category: EmissionCategory
) -> None:
    """Classified accounting, one category (scope 1: combustion, process, carbonates,
    destruction or recovery, sector-specific; scope 2: electricity, heat): its sources go up
    under codes whose activity digits say it, and a platform adding up the codes so filed gets,
    every minute, the category's emission — its sources' meters' increments times their rates;
    for sources entered by hand, what the bench enters (through the profile) times theirs."""
    sources = [s for s in plan.sources.values() if s.category == category]
    if not sources:
        raise NotApplicable(f"parameters.emissions declares no {category} source")
    filed = sorted(code for code, c in _filed(plan).items() if c == category)
    misfiled = _misfiled(plan, category)
    assert not misfiled, f"codes whose activity digits do not say their category: {misfiled}"
    if all(s.manual for s in sources):
        judged = await _entered(bench, plan, sources, filed, category)
    else:
        codes = [c for c in plan.codes if c.code in filed]
        truth, rates, uploaded = await _watch(bench, plan, codes)
        judged = _classified(plan, truth, rates, sources, filed, uploaded, category)
    _decide(judged, evidence, f"{category} minutes")


async def _entered(
    bench: Bench,
    plan: Plan,
    sources: Sequence[PlannedSource],
    filed: Sequence[str],
    category: str,
) -> list[Judgement]:
    """Sources entered by hand: the bench enters the plant's value of each now (the profile
    is its hand), and the minute's figure of the codes filed under ``category`` must be each
    entry's increment over the value before it times its rate."""
    from conformance.suites.readback import plant_text  # noqa: PLC0415

    management = bench.management  # not applicable without it: an operator must enter them
    await bench.warm()
    await published_in_force(bench, plan)
    by_read = {(b.meter, b.quantity): b for b in bench.dut.points() if b.meter and b.quantity}
    entries: list[tuple[PlannedSource, PointBinding, Decimal]] = []
    for source in sources:
        for meter, quantity, _ in source.reads:
            binding = by_read.get((meter, quantity))
            if binding is None:
                raise Inconclusive(f"the terminal has no point for {meter}'s {quantity} to enter")
            before = await management.latest(binding.point)
            if before is None or before.value is None:  # a first entry is a baseline
                await management.enter_manual(
                    binding.point, plant_text(bench, binding, bench.now()), bench.now(),
                    operator="carbench",
                )  # fmt: skip
                await bench.wait(600)
                before = await management.latest(binding.point)
            assert before is not None and before.value is not None
            entries.append((source, binding, before.value))
    # a hand entry is as good as the ticket it copies: wait for a ticket (a truck on the
    # weighbridge) that makes a difference
    await bench.wait(60)
    for _, binding, before_value in entries:
        t = bench.now()
        while Decimal(plant_text(bench, binding, t)) == before_value and t < bench.now() + 86400:
            t += 60
        bench.needs(t + 60 - bench.now(), (item_of(category),))
        await bench.rig.sleep_until(t + 60)
    t = bench.now()
    w = t - t % 60
    expected = Decimal(0)
    rates = Rates.now(bench, plan)
    for source, binding, before_value in entries:
        text = plant_text(bench, binding, t)
        await management.enter_manual(binding.point, text, t, operator="carbench")
        rate = rates.at(source, 0, w)
        assert not isinstance(rate, str), rate
        expected += (Decimal(text) - before_value) * rate
    centre = first_hj212_centre(bench)

    async def arrived() -> bool:
        got = Uploaded.read(bench, centre, MINUTE_CN, w, w + 60)
        return any(got.first(code, w) is not None for code in filed)

    came = await bench.until(arrived, within=600, every=30)
    got = _sum_of(plan, Uploaded.read(bench, centre, MINUTE_CN, w, w + 60), filed, w)
    got = got if came else []
    known = Known(expected, Decimal(0), len(filed))
    return judge_figure(f"{category} entered {local(t):%H:%M:%S}", known, got)


@pytest.mark.requires("feature:factor-download")
@pytest.mark.clause("CSMT §11.4", "CSMT §11.4 a)")
async def test_emissions_follow_the_library_the_platform_publishes(
    bench: Bench, evidence: TestLog, plan: Plan
) -> None:
    """Online methodology configuration: the terminal looks for the factor library the bench's
    platform publishes as often as it declares, refuses a publication changed after it was
    signed (its emissions stay as they were), and takes a new one: from then on the emissions
    of the sources that take published values follow the new library, minute by minute. The
    bench's own library is published again at the end."""
    published = [s for s in plan.sources.values() if s.spec.published and not s.manual]
    if not published:
        raise NotApplicable("parameters.emissions: no metered source takes published values")
    poll = plan.emissions.factor_poll_s
    if poll is None:
        raise NotApplicable(
            "parameters.emissions.factor_poll_s: the target does not say how often the "
            "terminal looks for a new publication (with the profile, the download is judged "
            "on request)"
        )
    centre = publishing_centre(bench)
    if centre is None:
        raise Inconclusive("no centre of the bench publishes a factor library", "CSMT §11.4")
    names = {s.spec.fuel or s.spec.factor or "" for s in published}
    ids = {s.id for s in published}
    # their own codes (a unit's or the boundary's, when they have none): the other sources'
    # figures are the minute tests' to judge
    codes = [c for c in plan.codes if c.of == "source" and c.id in ids] or [
        c for c in plan.codes if any(s.id in ids for s in plan.members(c))
    ]
    await bench.warm()
    await published_in_force(bench, plan)
    revision = next_revision(bench, centre)
    start = bench.now()
    try:
        taken: dict[str, float] = {}
        # first one tampered with (refused: nothing changes), then a new one (taken)
        for step, (scale, tamper) in enumerate(((TAMPERED, True), (CHANGED, False))):
            version = f"carbench-wire-{revision + step}{'-x' if tamper else ''}"
            text = published_library(revision + step, dict.fromkeys(names, scale))
            since = bench.now()
            publish(bench, centre, text, version, tamper=tamper)
            evidence.attach(f"{version}.yaml", text, "application/yaml")

            async def fetched(version: str = version, since: float = since) -> bool:
                return downloaded(bench, centre, version, since)

            if not await bench.until(fetched, within=poll + 120, every=10):
                raise ClauseFailure(
                    f"CSMT §11.4 a): the terminal did not look for the publication {version} "
                    f"within {poll + 120:.0f} s (it declares it looks every {poll:.0f} s)"
                )
            taken[version] = bench.now()
            await bench.wait(WATCH_S)
        _, truth, rates, uploaded = await minutes_uploaded(bench, plan, codes, start, bench.now())
        # a minute booked as a library was taken may have either rate: not judged
        steady = [w for w in truth.minutes() if not rates.switching(w)]
        judged = judge_minutes(plan, truth, rates, codes, uploaded, steady)
        evidence.attach_json("downloads.json", {v: local(t).isoformat() for v, t in taken.items()})
        _settle(judged, evidence, "minutes around the publications")
        # the new library (the last one taken) must have made a difference the bench can see
        before = Rates(plan, rates.changes[:-1])
        switched = rates.changes[-1][0]
        moved = any(
            _moved(plan, truth, rates, before, code, w, uploaded)
            for code in codes
            for w in steady
            if w >= switched
        )
        if not moved:
            raise Inconclusive("the published library changed no emission the bench could see")
    finally:
        await _republish(bench, plan, centre)


def _moved(
    plan: Plan,
    truth: Truth,
    now: Rates,
    before: Rates,
    code: EmissionCode,
    w: float,
    uploaded: Uploaded,
) -> bool:
    """Whether ``code``'s minute ``w`` is due at a different figure under the new library than
    under the one before (by more than the rounding)."""
    members = plan.members(code)
    new = expected_minute(plan, truth, now, members, w, uploaded)
    old = expected_minute(plan, truth, before, members, w, uploaded)
    if not isinstance(new, Known) or not isinstance(old, Known):
        return False
    return abs(new.value - old.value) > Decimal("1e-9")


async def _republish(bench: Bench, plan: Plan, centre: str) -> None:
    """The bench's own library published again and taken, and the minutes around the change
    behind: tests judging recent figures against the bench's library come after."""
    revision = next_revision(bench, centre)
    version = f"carbench-wire-{revision}"
    since = bench.now()
    publish(bench, centre, published_library(revision), version)

    async def fetched() -> bool:
        return downloaded(bench, centre, version, since)

    poll = plan.emissions.factor_poll_s or 60.0
    await bench.until(fetched, within=poll + 120, every=10)
    await bench.wait(900)

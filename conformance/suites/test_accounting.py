"""Accounting, for terminals that declare it: the emission-factor library and methods,
emissions computed from activity data (per minute, cumulative; manual entries at once), the
reports and statistics, the meter ledger, and alarms on emission anomalies.

The routes are the accounting part of the carbench profile (``/accounting/…``, ``/meters``).
Every emission figure is recomputed from the plant's truth by the accounting oracle
(:mod:`conformance.accounting_oracle`): the fleet file says which meter reading feeds which
source with which method, the bench's factor library gives the factors, and each figure is
judged with the tolerance its meters' resolution allows (inconclusive where the bench cannot
tell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml

from conformance.accounting_oracle import (
    LIBRARY,
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
from conformance.bench import Bench
from conformance.dut import PointBinding
from conformance.evidence import TestLog
from conformance.verdicts import ClauseFailure, Inconclusive

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


@pytest.mark.clause("ISC-2 §7.2.8", "CSMT §11.4", "CSMT §11.4 a)", "CSMT §11.4 b)", "SSEA §5.4.9")
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


def _published_library(revision: int) -> str:
    """The bench's factor library (the oracle's) with every vintage at ``revision``."""
    vintages = []
    for path in sorted(LIBRARY.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for vintage in data.get("vintages", [data]):
            vintages.append(vintage | {"revision": revision})
    return yaml.safe_dump({"vintages": vintages}, allow_unicode=True, sort_keys=False)


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
    with bench.rig.hold():
        at = datetime.fromtimestamp(bench.now(), UTC)
        publisher.publisher.publish(_published_library(revision + 50), f"{version}-x", at,
                                    tamper=True)  # fmt: skip
    tampered = await bench.management.request("POST", "/accounting/factors/download", json={})
    evidence.attach_json("tampered.json", {"status": tampered.status_code, "body": tampered.text})
    after_tamper = _revisions(await _get(bench, "/accounting/factors"))
    if tampered.status_code < 300 or after_tamper != before:
        raise ClauseFailure(
            f"CSMT §11.4: a library changed after the platform signed it was taken "
            f"(HTTP {tampered.status_code}; revisions {after_tamper}, before {before})"
        )
    with bench.rig.hold():
        at = datetime.fromtimestamp(bench.now(), UTC)
        published = _published_library(revision)
        publisher.publisher.publish(published, version, at)
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
async def test_emissions_per_minute_follow_activity_and_factor(
    bench: Bench, evidence: TestLog, oracle: Oracle
) -> None:
    """Each minute's emission of each accounted point is what the plant's truth over the
    minute's measured span gives with the fleet's method, within its meter's resolution; the
    minutes chain (each starts at the register the one before ended at) and the cumulative
    emission adds them up."""
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
        points = {p.get("point") for p in entry.get("points", [])}
        assert binding.point in points, f"{binding.point} is not traced to {binding.meter}"
    filtered = await _get(bench, "/meters", level="1")
    assert all(str(m.get("level")) == "1" for m in filtered), "the ledger ignores its filter"
    levels = {getattr(m.nameplate, "level", None) for m in bench.rig.fleet.spec.meters}
    if 1 in levels:
        assert filtered, "no level-1 meter in the ledger, though the plant has some"
    exported = await bench.management.request("GET", "/meters/export")
    assert exported.status_code == 200 and exported.content, "the ledger does not export"


@pytest.mark.clause("ISC-2 §7.2.6", "SSEA §5.4.6")
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
async def test_the_boundary_takes_in_every_source_of_the_plant(bench: Bench) -> None:
    """The monitoring boundary follows the plant's real sources: every source of the site's
    survey (the fleet's accounting description), its auxiliary and ancillary systems as much
    as the main production, is inside it with each meter that measures it."""
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

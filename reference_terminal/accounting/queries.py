"""What the management API asks of the terminal's accounting: a period's emissions by point,
source, accounting unit, scope and category, its intensities and its comparisons with the
period before and the same period a year before (ISC-2 §7.2.3(3), §7.2.5; CSMT §9.3, §9.4,
§11.7), from the stored figures (:mod:`.records`) and, for a period still open, from the
running accounting.

A period's figure of one point is its stored closed-period row when the point has closed that
period, else the running totals of its open period; a point with neither has no data in it.
Every figure keeps the registers its activity spans (``first``, ``last``: CSMT §11.8, the trace
from a figure to the meter readings behind it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reference_terminal.accounting.bindings import (
    SCOPE1_CATEGORIES,
    SCOPE2_CATEGORIES,
    Bindings,
)
from reference_terminal.accounting.records import Figure, period_kind, select_period, stored
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.accounting.statistics import EXACT, Basis, Span
from reference_terminal.accounting.units import CONTEXT, parse_unit, round_report
from reference_terminal.storage.store import Store

ZERO = Decimal(0)
#: The sources that together make at least this share of the gross emission are "key".
KEY_SHARE = Decimal("0.8")


@dataclass(frozen=True, slots=True)
class PointFigure:
    point: str
    activity: Decimal
    tco2: Decimal | None  # None: the point only feeds a basis
    minutes: int
    first: Decimal | None
    last: Decimal | None
    closed: bool  # from the stored closed period (else the running, open one)


@dataclass(slots=True)
class PeriodReport:
    """One period's accounting, every figure exact (tCO2 as stored: 10 decimals)."""

    span: Span
    points: dict[str, PointFigure] = field(default_factory=dict)
    bases: dict[Basis, Decimal] = field(default_factory=dict)

    def by_source(self, bindings: Bindings) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for point, b in bindings.points.items():
            got = self.points.get(point)
            value = got.tco2 if got is not None and got.tco2 is not None else ZERO
            out[b.source.id] = EXACT.add(out.get(b.source.id, ZERO), value)
        return out

    def scope(self, bindings: Bindings, scope: int | None) -> Decimal:
        total = ZERO
        for point, b in bindings.points.items():
            got = self.points.get(point)
            if b.scope == scope and got is not None and got.tco2 is not None:
                total = EXACT.add(total, got.tco2)
        return total

    def total(self, bindings: Bindings) -> Decimal:
        return EXACT.add(self.scope(bindings, 1), self.scope(bindings, 2))

    def has_data(self) -> bool:
        return any(p.minutes for p in self.points.values())


async def period_report(store: Store, accounting: RunningAccounting, span: Span) -> PeriodReport:
    """The figures of ``span`` (see the module text)."""
    bindings = accounting.bindings
    tracked = bindings.tracked
    start = span.start_minute * 60.0
    rows = await store.run_in_reader(lambda c: select_period(c, tracked, span.period, start))
    report = PeriodReport(span)
    for point in tracked:
        source = point in bindings.points
        row = rows.get((point, period_kind(span.period, basis=not source)))
        figure = _closed(point, row, source) if row is not None else _open(accounting, point, span)
        if figure is None:
            continue
        report.points[point] = figure
        for basis, unit in bindings.basis_points.get(point, ()):
            amount = _in_unit(figure.activity, unit, bindings.bases[basis].unit)
            report.bases[basis] = EXACT.add(report.bases.get(basis, ZERO), amount)
    return report


def _closed(point: str, row: Figure, source: bool) -> PointFigure:
    activity = row.activity if row.activity is not None else ZERO
    return PointFigure(
        point,
        activity,
        row.value if source else None,
        row.minutes or 0,
        row.first,
        row.last,
        True,
    )


def _open(accounting: RunningAccounting, point: str, span: Span) -> PointFigure | None:
    totals = accounting.open_totals(point, span)
    if totals is None:
        return None
    first, last = accounting.open_registers(point, span)
    got = totals.sources.get(point)
    if got is not None:
        return PointFigure(point, got.activity, stored(got.tco2), got.minutes, first, last, False)
    if not totals.bases:
        return None
    sums = next(iter(totals.bases.values()))
    ratio = accounting.to_basis[point][0][1]
    return PointFigure(
        point, EXACT.divide(sums.activity, ratio), None, sums.minutes, first, last, False
    )


def _in_unit(value: Decimal, unit: str, target: str) -> Decimal:
    a, b = parse_unit(unit), parse_unit(target)
    return CONTEXT.divide(CONTEXT.multiply(value, a.scale), b.scale)


# ---- as data -----------------------------------------------------------------------------------


def text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def span_data(span: Span) -> dict[str, Any]:
    return {
        "label": span.label,
        "period": span.period.value,
        "start": span.start_minute * 60.0,
        "end": span.end_minute * 60.0,
        "start_time": span.start.isoformat(),
        "end_time": span.end.isoformat(),
    }


def intensity(report: PeriodReport, bindings: Bindings, basis: Basis) -> Decimal | None:
    amount = report.bases.get(basis)
    if amount is None or amount == 0:
        return None
    return CONTEXT.divide(report.total(bindings), amount)


def comparison(
    current: PeriodReport, base: PeriodReport | None, bindings: Bindings
) -> dict[str, Any]:
    """同比 / 环比 of the total: the base period's figure, the change and its ratio."""
    value = current.total(bindings)
    if base is None or not base.has_data():
        return {
            "base_label": None if base is None else base.span.label,
            "value": text(value),
            "base": None,
            "change": None,
            "ratio": None,
        }
    before = base.total(bindings)
    change = EXACT.subtract(value, before)
    ratio = None if before == 0 else CONTEXT.divide(change, abs(before))
    return {
        "base_label": base.span.label,
        "value": text(value),
        "base": text(before),
        "change": text(change),
        "ratio": None if ratio is None else text(round_report(ratio, 6)),
    }


def statistics_data(
    report: PeriodReport,
    bindings: Bindings,
    *,
    yoy: PeriodReport | None = None,
    mom: PeriodReport | None = None,
) -> dict[str, Any]:
    """A period's statistics as JSON-ready data (decimals as exact text)."""
    sources = report.by_source(bindings)
    scope1, scope2 = report.scope(bindings, 1), report.scope(bindings, 2)
    biomass = report.scope(bindings, None)
    categories: dict[str, dict[str, Decimal]] = {
        "scope1": dict.fromkeys(SCOPE1_CATEGORIES, ZERO),
        "scope2": dict.fromkeys(SCOPE2_CATEGORIES, ZERO),
    }
    units: dict[str, Decimal] = {}
    for point, b in bindings.points.items():
        got = report.points.get(point)
        value = got.tco2 if got is not None and got.tco2 is not None else ZERO
        units[b.unit_id] = EXACT.add(units.get(b.unit_id, ZERO), value)
        if b.scope is None:
            continue
        group = categories[f"scope{b.scope}"]
        group[b.category] = EXACT.add(group.get(b.category, ZERO), value)
    gross = sum((abs(v) for v in sources.values()), ZERO)
    key_sources, share = [], ZERO
    for source_id, value in sorted(sources.items(), key=lambda kv: -abs(kv[1])):
        if gross == 0 or share >= KEY_SHARE or value == 0:
            break
        key_sources.append(source_id)
        share = CONTEXT.add(share, CONTEXT.divide(abs(value), gross))
    by_point = []
    activity = []
    by_source_points: dict[str, list[str]] = {}
    for point in bindings.tracked:
        got = report.points.get(point)
        bound = bindings.points.get(point)
        unit = bound.activity_unit if bound is not None else bindings.basis_points[point][0][1]
        if bound is not None:
            by_source_points.setdefault(bound.source.id, []).append(point)
        entry = {
            "point": point,
            "source": None if bound is None else bound.source.id,
            "unit": unit,
            "activity": text(got.activity if got is not None else ZERO),
            "tco2": None
            if bound is None
            else text(got.tco2 if got and got.tco2 is not None else ZERO),
            "factor": None if bound is None else text(bound.rate.rate),
            "minutes": got.minutes if got is not None else 0,
            "first": text(got.first) if got is not None else None,
            "last": text(got.last) if got is not None else None,
            "closed": got.closed if got is not None else None,
            "meters": list(bound.meters) if bound is not None else [],
        }
        by_point.append(entry)
        activity.append({k: entry[k] for k in ("point", "source", "activity", "unit")})
    source_lines = []
    for source_id, points in by_source_points.items():
        first = bindings.points[points[0]]
        source_lines.append(
            {
                "id": source_id,
                "name": first.source.name,
                "kind": first.kind.value,
                "scope": first.scope,
                "category": first.category,
                "unit_id": first.unit_id,
                "tco2": text(sources[source_id]),
                "points": points,
            }
        )
    intensities = {}
    for basis, given in bindings.bases.items():
        per = intensity(report, bindings, basis)
        intensities[basis.value] = {
            "value": None if per is None else text(round_report(per, 10)),
            "unit": f"tCO2/{given.unit}",
            "amount": text(report.bases.get(basis, ZERO)),
            "amount_unit": given.unit,
            "name": given.name or None,
        }
    data: dict[str, Any] = {
        "period": report.span.period.value,
        "span": span_data(report.span),
        "complete": all(p.closed for p in report.points.values()) and bool(report.points),
        "vintage": bindings.vintage,
        "total": text(EXACT.add(scope1, scope2)),
        "scope1": text(scope1),
        "scope2": text(scope2),
        "biomass": text(biomass),
        "by_scope": {"scope1": text(scope1), "scope2": text(scope2)},
        "by_category": {g: {k: text(v) for k, v in vs.items()} for g, vs in categories.items()},
        "by_unit": {u: text(v) for u, v in units.items()},
        "by_source": source_lines,
        "by_point": by_point,
        "key_sources": key_sources,
        "activity": activity,
        "intensities": intensities,
    }
    if biomass:
        data["by_category"]["biomass"] = {"biomass": text(biomass)}
    if yoy is not None or mom is not None:
        data["yoy"] = comparison(report, yoy, bindings)
        data["mom"] = comparison(report, mom, bindings)
    return data

"""The greenhouse-gas inventory report in the GB/T 32150 structure (ISC-2 §7.2.7, CSMT §11.11),
monthly, quarterly or annual, with the meter ledger and calibration reminders (CSMT §11.1,
§11.10) and the trace of every figure back to its meters (CSMT §11.8).

Sections, in the order GB/T 32150's report format gives them, then this terminal's additions:

1. the reporting entity (报告主体基本信息);
2. the accounting boundary: accounting units → sources → meters;
3. emissions (温室气体排放量): total, scope 1 and scope 2, by GB/T 32150 category, biomass CO2
   apart; intensities per unit of electricity, heat and product; YoY and MoM;
4. activity data and their sources (活动水平数据及来源): per source, its activity, the activity
   data the formula used, its meters and how many of the period's minutes they covered;
5. emission factors and their sources (排放因子数据及来源): every parameter with its value,
   origin, vintage, data year, reference and whether it awaits the primary table;
6. the period by sub-period (days of a month, months of a quarter or a year);
7. the meter ledger with calibration status;
8. traceability: each figure, how it is made, from which sources and meters;
9. notes: rounding, factors to confirm, data gaps, the data file's SM3.

:func:`build_report` makes an :class:`InventoryReport` (plain data, exact decimals);
:mod:`.html` and :mod:`.pdf` render it and :func:`report_data` gives it as JSON-ready data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.methods import SourceKind
from reference_terminal.accounting.report.plant import Enterprise, Plant
from reference_terminal.accounting.statistics import (
    BASIS_UNIT,
    EXACT,
    Basis,
    Comparison,
    MinuteSeries,
    Period,
    PeriodTotals,
    SourceRate,
    Span,
    combined,
    compare,
    exact_sum,
    rolled_up,
    source_rates,
    totals,
)
from reference_terminal.accounting.units import CONTEXT, REPORT_ROUNDING, round_report

TITLES = {
    Period.MONTH: ("Monthly", "月度"),
    Period.QUARTER: ("Quarterly", "季度"),
    Period.YEAR: ("Annual", "年度"),
}
BREAKDOWN = {Period.MONTH: Period.DAY, Period.QUARTER: Period.MONTH, Period.YEAR: Period.MONTH}
DUE_SOON_DAYS = 30

# GB/T 32150 categories: key, English, Chinese, scope.
CATEGORIES: dict[str, tuple[str, str, int | None]] = {
    "combustion": ("Fossil fuel combustion", "化石燃料燃烧排放", 1),
    "process": ("Industrial processes", "工业生产过程排放", 1),
    "recovered": ("CO2 recovered and used (deducted)", "二氧化碳回收利用量（扣减）", 1),
    "electricity": ("Net purchased electricity", "净购入电力产生的排放", 2),
    "heat": ("Net purchased heat", "净购入热力产生的排放", 2),
    "biomass": ("Biomass CO2 (reported apart)", "生物质燃烧排放（单独报告）", None),
}
CATEGORY_OF = {
    SourceKind.COMBUSTION: "combustion",
    SourceKind.PROCESS: "process",
    SourceKind.CARBONATE: "process",
    SourceKind.RECOVERED: "recovered",
    SourceKind.ELECTRICITY: "electricity",
    SourceKind.EXPORTED_ELECTRICITY: "electricity",
    SourceKind.HEAT: "heat",
    SourceKind.EXPORTED_HEAT: "heat",
    SourceKind.BIOMASS: "biomass",
}
BASIS_TITLES = {
    Basis.ELECTRICITY: ("per unit of electricity", "单位电量碳排放"),
    Basis.HEAT: ("per unit of heat", "单位热量碳排放"),
    Basis.PRODUCT: ("per unit of product", "单位产品碳排放"),
}


@dataclass(frozen=True, slots=True)
class FactorLine:
    source: str
    parameter: str
    value: str  # with its unit, as the method used it
    origin: str  # input | library | default
    factor: str  # the library entry's name, or ""
    vintage: str
    data_year: int | None
    reference: str  # where the value comes from
    to_confirm: bool


@dataclass(frozen=True, slots=True)
class SourceLine:
    name: str
    label: str
    kind: str
    category: str
    scope: int | None
    accounting_unit: str
    activity: Decimal  # in ``unit``
    unit: str
    activity_data: Decimal  # AD as the formula uses it (GJ for fuels …)
    activity_data_unit: str
    rate: Decimal  # tCO2 per ``unit``
    formula: str
    tco2: Decimal
    meters: tuple[str, ...]
    minutes: int  # minutes with data (any of its meters)
    coverage: Decimal  # its least covered meter's share of expected readings (0–1)


@dataclass(frozen=True, slots=True)
class CategoryLine:
    key: str
    title: str
    title_zh: str
    scope: int | None
    tco2: Decimal
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntensityLine:
    basis: str
    title: str
    title_zh: str
    value: Decimal | None
    unit: str
    amount: Decimal
    amount_unit: str
    meters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ComparisonLine:
    name: str  # YoY | MoM
    name_zh: str
    base_label: str
    value: Decimal | None
    base: Decimal | None
    change: Decimal | None
    ratio: Decimal | None


@dataclass(frozen=True, slots=True)
class PeriodLine:
    label: str
    scope1: Decimal
    scope2: Decimal
    total: Decimal
    biomass: Decimal
    intensities: tuple[Decimal | None, ...]  # in the order of InventoryReport.intensities


@dataclass(frozen=True, slots=True)
class MeterLine:
    id: str
    name: str
    model: str
    serial: str
    location: str
    accuracy: str
    level: int | None
    unit: str
    resolution: Decimal
    frequency: str
    calibrated: dt.date | None
    calibration_due: dt.date | None
    status: str  # ok | due soon | overdue | unknown
    days_to_due: int | None
    feeds: tuple[str, ...]  # the sources and bases it feeds
    activity: Decimal
    minutes: int  # minutes with a value
    coverage: Decimal  # values / readings expected at its frequency (0–1)


@dataclass(frozen=True, slots=True)
class TraceLine:
    figure: str
    value: Decimal | None
    unit: str
    derivation: str
    sources: tuple[str, ...]
    meters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InventoryReport:
    title: str
    title_zh: str
    span: Span
    issued: dt.date
    enterprise: Enterprise
    boundary: str
    units: tuple[tuple[str, str, tuple[str, ...]], ...]  # (id, name, sources)
    vintage: str | None
    methodology: str
    sources: tuple[SourceLine, ...]
    categories: tuple[CategoryLine, ...]
    scope1: Decimal
    scope2: Decimal
    total: Decimal
    biomass: Decimal
    intensities: tuple[IntensityLine, ...]
    comparisons: tuple[ComparisonLine, ...]
    breakdown_period: Period
    breakdown: tuple[PeriodLine, ...]
    factors: tuple[FactorLine, ...]
    meters: tuple[MeterLine, ...]
    traces: tuple[TraceLine, ...]
    reminders: tuple[str, ...]
    notes: tuple[str, ...]
    data_origin: str
    data_sm3: str | None
    places: int

    def fig(self, value: Decimal | None, places: int | None = None) -> str:
        """A figure as reported: rounded half up once, fixed point; "—" for none."""
        if value is None:
            return "—"
        return f"{round_report(value, self.places if places is None else places):f}"

    def pct(self, value: Decimal | None) -> str:
        return "—" if value is None else f"{round_report(value * 100, 2):f} %"


def _status(due: dt.date | None, issued: dt.date) -> tuple[str, int | None]:
    if due is None:
        return "unknown", None
    days = (due - issued).days
    if days < 0:
        return "overdue", days
    return ("due soon" if days <= DUE_SOON_DAYS else "ok"), days


def _source_activity(plant: Plant, data: Mapping[str, MinuteSeries]) -> dict[str, MinuteSeries]:
    out = {}
    for s in plant.sources:
        missing = [m for m in s.meters if m not in data]
        if missing:
            raise AccountingError(f"source {s.name!r}: no data for meter {missing[0]!r}")
        parts = [data[m] for m in s.meters]
        out[s.name] = combined(s.name, parts, s.unit)
    return out


def _basis_activity(plant: Plant, data: Mapping[str, MinuteSeries]) -> dict[Basis, MinuteSeries]:
    out = {}
    for basis, given in plant.bases.items():
        missing = [m for m in given.meters if m not in data]
        if missing:
            raise AccountingError(f"bases.{basis}: no data for meter {missing[0]!r}")
        unit = BASIS_UNIT.get(basis) or given.unit or data[given.meters[0]].unit
        out[basis] = combined(str(basis), [data[m] for m in given.meters], unit)
    return out


def _period(
    activity: Mapping[str, MinuteSeries],
    rates: Mapping[str, SourceRate],
    bases: Mapping[Basis, MinuteSeries],
    span: Span,
    tz: dt.timezone,
) -> tuple[PeriodTotals, list[PeriodTotals]]:
    parts = totals(activity, rates, BREAKDOWN[span.period], tz=tz, bases=bases, within=span)
    return rolled_up(parts, span), parts


def build_report(
    plant: Plant,
    data: Mapping[str, MinuteSeries],
    library: FactorLibrary | None,
    span: Span,
    *,
    issued: dt.date | None = None,
    places: int = 3,
    data_origin: str = "",
    data_sm3: str | None = None,
) -> InventoryReport:
    """The inventory report of ``plant`` for ``span`` (a month, a quarter or a year) from the
    meters' per-minute ``data``."""
    if span.period not in TITLES:
        raise AccountingError(f"{span}: inventory reports are monthly, quarterly or annual")
    tz = plant.tz
    issued = issued or span.end.date()
    rates = source_rates(plant.specs(), library, plant.vintage)
    activity = _source_activity(plant, data)
    bases = _basis_activity(plant, data)
    whole, parts = _period(activity, rates, bases, span, tz)

    # Bases of the comparisons, when the data reaches back to them.
    table: dict[Span, PeriodTotals] = {span: whole}
    bases_spans = [span.year_before(), span.previous()]
    for base in bases_spans:
        if base is None or base in table:
            continue
        base_totals, _ = _period(activity, rates, bases, base, tz)
        if any(s.minutes for s in base_totals.sources.values()):
            table[base] = base_totals
    comparisons = [("YoY", "同比", span.year_before())]
    if span.period is not Period.YEAR:  # a year's previous period is the year before
        comparisons.append(("MoM", "环比", span.previous()))
    comparison_lines = []
    for name, zh, base_span in comparisons:
        c: Comparison = compare(table, span, base_span if base_span in table else None)
        comparison_lines.append(
            ComparisonLine(
                name,
                zh,
                base_span.label if base_span is not None else "—",
                c.value,
                c.base,
                c.change,
                c.ratio,
            )
        )

    source_lines = []
    factor_lines = []
    for s in plant.sources:
        rate = rates[s.name]
        got = whole.sources[s.name]
        result = rate.result
        ad_per_unit = result.activity_data.value
        unit = plant.unit_of(s.name)
        source_lines.append(
            SourceLine(
                name=s.name,
                label=s.label,
                kind=s.kind,
                category=CATEGORY_OF[SourceKind(s.kind)],
                scope=rate.scope,
                accounting_unit=unit.name if unit is not None else "",
                activity=got.activity,
                unit=s.unit,
                activity_data=CONTEXT.multiply(got.activity, ad_per_unit),
                activity_data_unit=str(result.activity_data.unit),
                rate=rate.rate,
                formula=result.formula,
                tco2=got.tco2,
                meters=tuple(s.meters),
                minutes=got.minutes,
                coverage=Decimal(1),  # set from its meters below
            )
        )
        for p in result.parameters:
            f = p.factor
            factor_lines.append(
                FactorLine(
                    source=s.name,
                    parameter=p.name,
                    value=str(p.value),
                    origin=p.origin,
                    factor=f.name if f is not None else "",
                    vintage=f.vintage if f is not None else "",
                    data_year=f.data_year if f is not None else None,
                    reference=f.source if f is not None else "given in the plant file",
                    to_confirm=f.to_confirm if f is not None else False,
                )
            )

    category_lines = []
    for key, (title, zh, scope) in CATEGORIES.items():
        members = [line for line in source_lines if line.category == key]
        if not members:
            continue
        category_lines.append(
            CategoryLine(
                key,
                title,
                zh,
                scope,
                exact_sum(line.tco2 for line in members),
                tuple(line.name for line in members),
            )
        )

    intensity_lines = []
    for basis, given in plant.bases.items():
        title, zh = BASIS_TITLES[basis]
        amount_unit = BASIS_UNIT.get(basis) or given.unit or data[given.meters[0]].unit
        sums = whole.bases.get(basis)
        label = (
            f"tCO2/{amount_unit}"
            if basis is not Basis.PRODUCT
            else (f"tCO2/{amount_unit} {given.name}".rstrip())
        )
        intensity_lines.append(
            IntensityLine(
                basis.value,
                title,
                zh,
                whole.intensity(basis),
                label,
                sums.activity if sums is not None else Decimal(0),
                amount_unit,
                tuple(given.meters),
            )
        )

    breakdown = tuple(
        PeriodLine(
            p.span.label,
            p.scope1_tco2,
            p.scope2_tco2,
            p.total_tco2,
            p.biomass_tco2,
            tuple(p.intensity(Basis(line.basis)) for line in intensity_lines),
        )
        for p in parts
    )

    meter_lines = []
    feeds: dict[str, list[str]] = {}
    for s in plant.sources:
        for m in s.meters:
            feeds.setdefault(m, []).append(s.name)
    for basis, given in plant.bases.items():
        for m in given.meters:
            feeds.setdefault(m, []).append(f"basis: {basis}")
    for meter in plant.meters:
        series = data.get(meter.id)
        count, minutes = 0, 0
        if series is not None:
            inside = series.window(span.start_minute, span.end_minute)
            count, minutes = int(inside.counts.sum()), len(inside)
        status, days = _status(meter.calibration_due, issued)
        expected = max(1, span.minutes // meter.period_minutes)
        meter_lines.append(
            MeterLine(
                id=meter.id,
                name=meter.name,
                model=meter.model,
                serial=meter.serial,
                location=meter.location,
                accuracy=meter.accuracy,
                level=meter.level,
                unit=meter.unit,
                resolution=meter.resolution,
                frequency=meter.frequency,
                calibrated=meter.calibrated,
                calibration_due=meter.calibration_due,
                status=status,
                days_to_due=days,
                feeds=tuple(feeds.get(meter.id, [])),
                activity=EXACT.multiply(Decimal(count), meter.resolution),
                minutes=minutes,
                coverage=min(Decimal(1), CONTEXT.divide(minutes, expected)),
            )
        )
    coverage = {m.id: m.coverage for m in meter_lines}
    source_lines = [
        dataclasses.replace(line, coverage=min(coverage[m] for m in line.meters))
        for line in source_lines
    ]

    traces = _traces(source_lines, category_lines, intensity_lines, whole)
    reminders = _reminders(meter_lines, source_lines, span)
    to_confirm = sorted({f"{f.factor} ({f.vintage})" for f in factor_lines if f.to_confirm})
    notes = [
        f"tCO2 figures are rounded half up to {places} decimal places once, when shown; "
        "totals are summed from unrounded figures, so shown parts may differ from shown "
        "totals in the last place.",
        "Scope 1 + scope 2 = total (GB/T 32150: combustion + process − recovered + purchased "
        "electricity + purchased heat − exported electricity − exported heat); biomass CO2 is "
        "reported apart and is in no total.",
        "Emissions cover the minutes that had data; a source under 100 % coverage is listed "
        "under reminders.",
    ]
    if to_confirm:
        notes.append(
            "Factors still to confirm against the primary table: " + ", ".join(to_confirm) + "."
        )
    methodology = ""
    if library is not None and plant.vintage is not None and plant.vintage in library.vintages:
        methodology = library.vintages[plant.vintage].methodology
    title, title_zh = TITLES[span.period]
    return InventoryReport(
        title=f"{title} greenhouse gas inventory report {span.label}",
        title_zh=f"{span.label} {title_zh}温室气体排放报告",
        span=span,
        issued=issued,
        enterprise=plant.enterprise,
        boundary=plant.boundary.description,
        units=tuple((u.id, u.name, tuple(u.sources)) for u in plant.boundary.units),
        vintage=plant.vintage or next((r.vintage for r in rates.values() if r.vintage), None),
        methodology=methodology,
        sources=tuple(source_lines),
        categories=tuple(category_lines),
        scope1=whole.scope1_tco2,
        scope2=whole.scope2_tco2,
        total=whole.total_tco2,
        biomass=whole.biomass_tco2,
        intensities=tuple(intensity_lines),
        comparisons=tuple(comparison_lines),
        breakdown_period=BREAKDOWN[span.period],
        breakdown=breakdown,
        factors=tuple(factor_lines),
        meters=tuple(meter_lines),
        traces=traces,
        reminders=reminders,
        notes=tuple(notes),
        data_origin=data_origin,
        data_sm3=data_sm3,
        places=places,
    )


def _traces(
    sources: Sequence[SourceLine],
    categories: Sequence[CategoryLine],
    intensities: Sequence[IntensityLine],
    whole: PeriodTotals,
) -> tuple[TraceLine, ...]:
    by_name = {s.name: s for s in sources}

    def meters_of(names: Sequence[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for n in names for m in by_name[n].meters))

    scoped = {
        1: [s.name for s in sources if s.scope == 1],
        2: [s.name for s in sources if s.scope == 2],
    }
    both = scoped[1] + scoped[2]
    lines = [
        TraceLine(
            "total", whole.total_tco2, "tCO2", "scope 1 + scope 2", tuple(both), meters_of(both)
        )
    ]
    for scope in (1, 2):
        names = scoped[scope]
        value = whole.scope1_tco2 if scope == 1 else whole.scope2_tco2
        lines.append(
            TraceLine(
                f"scope {scope}",
                value,
                "tCO2",
                f"Σ scope {scope} sources",
                tuple(names),
                meters_of(names),
            )
        )
    for c in categories:
        derivation = "Σ its sources"
        lines.append(
            TraceLine(
                f"category: {c.title}", c.tco2, "tCO2", derivation, c.sources, meters_of(c.sources)
            )
        )
    for s in sources:
        lines.append(
            TraceLine(
                f"source: {s.name}",
                s.tco2,
                "tCO2",
                f"activity {s.activity:f} {s.unit} (Σ meters) × {_short(s.rate)} tCO2/{s.unit} "
                f"({s.formula})",
                (s.name,),
                s.meters,
            )
        )
    for i in intensities:
        lines.append(
            TraceLine(
                f"intensity {i.title}",
                i.value,
                i.unit,
                f"total / {i.amount:f} {i.amount_unit} (Σ meters)",
                tuple(both),
                tuple(dict.fromkeys([*meters_of(both), *i.meters])),
            )
        )
    return tuple(lines)


def _short(value: Decimal, digits: int = 12) -> str:
    """A rate for a sentence: at most ``digits`` significant digits, "≈" when that rounds it."""
    shown = value.normalize(Context(prec=digits, rounding=REPORT_ROUNDING))
    return f"{shown:f}" if shown == value else f"≈ {shown:f}"


def _reminders(
    meters: Sequence[MeterLine], sources: Sequence[SourceLine], span: Span
) -> tuple[str, ...]:
    out = []
    for m in meters:
        if m.status == "overdue":
            out.append(
                f"meter {m.id}: calibration overdue since {m.calibration_due} "
                f"({-(m.days_to_due or 0)} days)"
            )
        elif m.status == "due soon":
            out.append(
                f"meter {m.id}: calibration due {m.calibration_due} (in {m.days_to_due} days)"
            )
        elif m.status == "unknown":
            out.append(f"meter {m.id}: no calibration due date in the ledger")
    for s in sources:
        if s.coverage < 1:
            share = round_report(s.coverage * 100, 2)
            out.append(
                f"source {s.name}: its meters gave {share:f} % of the readings expected in "
                f"{span} at their frequency; the emission covers the readings received"
            )
    return tuple(out)


# ---- as data -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def report_data(report: InventoryReport) -> dict[str, Any]:
    """The report as JSON-ready data: exact figures as strings, plus the rounded ones."""
    out: dict[str, Any] = {
        k: _plain(getattr(report, k))
        for k in report.__dataclass_fields__
        if k not in ("span", "enterprise", "breakdown_period")
    }
    out["span"] = {
        "label": report.span.label,
        "period": report.span.period.value,
        "start": report.span.start.isoformat(),
        "end": report.span.end.isoformat(),
    }
    out["breakdown_period"] = report.breakdown_period.value
    out["enterprise"] = report.enterprise.model_dump()
    out["reported_tco2"] = {
        "scope1": report.fig(report.scope1),
        "scope2": report.fig(report.scope2),
        "total": report.fig(report.total),
        "biomass": report.fig(report.biomass),
    }
    return out

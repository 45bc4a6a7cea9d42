"""Emission statistics (ISC-2 §7.2.3(3), §7.2.5; CSMT §11.7): per-minute activity → hourly,
daily, weekly, monthly, quarterly and yearly totals by source and scope, intensities per unit of
electricity, heat and product, and comparisons with the previous period (环比, "MoM") and the
same period a year before (同比, "YoY").

How the figures stay exact
    Every formula of :mod:`.methods` is linear in the activity, so a source has one *rate*: the
    tCO2 of one unit of its activity, computed once by the method (:func:`source_rates`). A
    minute's emission is its activity times that rate, and a period's emission is the period's
    activity sum times the rate. Activity arrives as integer counts of the meter's resolution
    (what a register yields), so period sums are exact integers, and the products and sums that
    follow run in :data:`EXACT`, a context that *traps* inexact results: a figure that would
    need rounding raises instead of drifting. Hence the sum of the hours of a day is the day's
    total to the last digit, and a week across a month boundary splits exactly. Intensities and
    relative changes are quotients; they are computed in the 100-digit :data:`CONTEXT` and are
    the only figures here that are rounded (at the 100th digit). Reported figures are rounded
    once, at the end (:func:`~.units.round_report`).

Calendar
    Periods are calendar periods in one fixed offset from UTC, by default Beijing time (UTC+8,
    which has no daylight saving): hours, days, ISO weeks (Monday to Sunday, numbered as in ISO
    8601, so a week can cross a month or a year boundary), months, quarters, years. Time is
    counted in whole minutes since the Unix epoch (UTC); a minute's activity belongs to the
    period that contains the minute's start.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.inventory import account
from reference_terminal.accounting.methods import SourceKind, SourceResult, SourceSpec
from reference_terminal.accounting.units import CONTEXT, Quantity, parse_unit

#: Products and sums of statistics: exact, or an error (activity ≤ 20 digits times a rate of
#: ≤ 100 digits needs ≤ 120; sums over a century of minutes add a handful more).
EXACT = Context(prec=250, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
BEIJING = timezone(timedelta(hours=8), "UTC+8")
EPOCH = date(1970, 1, 1)  # a Thursday: ISO weeks start 3 days before it
MINUTES_A_DAY = 1440

Counts = npt.NDArray[np.int64]


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# Which periods are made of whole periods of another (a week is not made of months or days of
# one month, a month not of weeks).
_NESTS: dict[Period, set[Period]] = {
    Period.HOUR: set(),
    Period.DAY: {Period.HOUR},
    Period.WEEK: {Period.HOUR, Period.DAY},
    Period.MONTH: {Period.HOUR, Period.DAY},
    Period.QUARTER: {Period.HOUR, Period.DAY, Period.MONTH},
    Period.YEAR: {Period.HOUR, Period.DAY, Period.MONTH, Period.QUARTER},
}


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for v in values:
        total = EXACT.add(total, v)
    return total


def offset_minutes(tz: timezone) -> int:
    """Minutes east of UTC of a fixed-offset zone (the calendar of the statistics)."""
    delta = tz.utcoffset(None)
    if delta % timedelta(minutes=1):
        raise AccountingError(f"time zone {tz}: offset is not a whole number of minutes")
    return delta // timedelta(minutes=1)


def minute_of(t: datetime) -> int:
    """Whole minutes since the Unix epoch of an aware datetime (seconds dropped)."""
    if t.tzinfo is None:
        raise AccountingError(f"{t.isoformat()}: a time without a zone is ambiguous")
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(minutes=1)


# ---- calendar keys -----------------------------------------------------------------------------


def _month_key(day: int) -> int:
    d = EPOCH + timedelta(days=day)
    return (d.year - 1970) * 12 + d.month - 1


def _month_start_day(key: int) -> int:
    year, month = divmod(key, 12)
    return (date(1970 + year, month + 1, 1) - EPOCH).days


def key_of(minute: int, period: Period, offset: int = 480) -> int:
    """The index of the period containing UTC minute ``minute`` (local calendar)."""
    local = minute + offset
    day = local // MINUTES_A_DAY
    match period:
        case Period.HOUR:
            return local // 60
        case Period.DAY:
            return day
        case Period.WEEK:
            return (day + 3) // 7
        case Period.MONTH:
            return _month_key(day)
        case Period.QUARTER:
            return _month_key(day) // 3
        case Period.YEAR:
            return _month_key(day) // 12


def keys_of(minutes: Counts, period: Period, offset: int = 480) -> Counts:
    """:func:`key_of` for an array of minutes."""
    local = minutes + offset
    day = local // MINUTES_A_DAY
    if period is Period.HOUR:
        return local // 60
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return (day + 3) // 7
    months = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    if period is Period.MONTH:
        return months
    return months // 3 if period is Period.QUARTER else months // 12


def _start_local(period: Period, key: int) -> int:
    """First local minute (minutes since 1970-01-01 00:00 local) of period ``key``."""
    match period:
        case Period.HOUR:
            return key * 60
        case Period.DAY:
            return key * MINUTES_A_DAY
        case Period.WEEK:
            return (key * 7 - 3) * MINUTES_A_DAY
        case Period.MONTH:
            return _month_start_day(key) * MINUTES_A_DAY
        case Period.QUARTER:
            return _month_start_day(key * 3) * MINUTES_A_DAY
        case Period.YEAR:
            return _month_start_day(key * 12) * MINUTES_A_DAY


@dataclass(frozen=True, slots=True, order=True, repr=False)
class Span:
    """One calendar period: an hour, a day, an ISO week, a month, a quarter or a year."""

    period: Period
    key: int  # the period's index since the epoch (see key_of)
    offset: int = 480  # the calendar's minutes east of UTC

    @classmethod
    def of(cls, t: datetime | int, period: Period, tz: timezone = BEIJING) -> Span:
        """The period of ``period`` kind that contains ``t`` (a datetime or a UTC minute)."""
        offset = offset_minutes(tz)
        minute = t if isinstance(t, int) else minute_of(t)
        return cls(period, key_of(minute, period, offset), offset)

    @classmethod
    def parse(cls, label: str, tz: timezone = BEIJING) -> Span:
        """A span from its label: ``2024``, ``2024-Q1``, ``2024-03``, ``2024-W09``,
        ``2024-03-01`` or ``2024-03-01 13:00``."""
        text = label.strip()
        try:
            if len(text) == 4:
                t, period = datetime(int(text), 1, 1), Period.YEAR
            elif "-Q" in text:
                year, q = text.split("-Q")
                if not 1 <= int(q) <= 4:
                    raise ValueError(q)
                t, period = datetime(int(year), 3 * int(q) - 2, 1), Period.QUARTER
            elif "-W" in text:
                year, w = text.split("-W")
                t = datetime.combine(
                    date.fromisocalendar(int(year), int(w), 1), datetime.min.time()
                )
                period = Period.WEEK
            elif len(text) == 7:
                t, period = datetime.strptime(text, "%Y-%m"), Period.MONTH
            elif len(text) == 10:
                t, period = datetime.strptime(text, "%Y-%m-%d"), Period.DAY
            else:
                t, period = datetime.strptime(text, "%Y-%m-%d %H:%M"), Period.HOUR
                if t.minute:
                    raise ValueError(text)
        except ValueError:
            raise AccountingError(
                f"period {label!r}: expected 2024, 2024-Q1, 2024-03, 2024-W09, 2024-03-01 or "
                "2024-03-01 13:00"
            ) from None
        return cls.of(t.replace(tzinfo=tz), period, tz)

    @property
    def tz(self) -> timezone:
        return BEIJING if self.offset == 480 else timezone(timedelta(minutes=self.offset))

    @property
    def start_minute(self) -> int:
        return _start_local(self.period, self.key) - self.offset

    @property
    def end_minute(self) -> int:
        return _start_local(self.period, self.key + 1) - self.offset

    @property
    def minutes(self) -> int:
        return self.end_minute - self.start_minute

    @property
    def start(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC).astimezone(self.tz) + timedelta(
            minutes=self.start_minute
        )

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def label(self) -> str:
        # cached: a minute closing an hour labels that hour once per accounted point
        return _label(self)

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        zone = "" if self.offset == 480 else f", offset={self.offset}"
        return f"Span({self.label!r}{zone})"

    def contains(self, minute: int) -> bool:
        return self.start_minute <= minute < self.end_minute

    def next(self) -> Span:
        return dataclasses.replace(self, key=self.key + 1)

    def previous(self) -> Span:
        """The period just before (the base of 环比, "MoM")."""
        return dataclasses.replace(self, key=self.key - 1)

    def year_before(self) -> Span | None:
        """The same period one year earlier (the base of 同比, "YoY"); None when there is none:
        29 February (and its hours), ISO week 53 of a year after a 52-week year."""
        match self.period:
            case Period.YEAR:
                return dataclasses.replace(self, key=self.key - 1)
            case Period.QUARTER:
                return dataclasses.replace(self, key=self.key - 4)
            case Period.MONTH:
                return dataclasses.replace(self, key=self.key - 12)
            case Period.WEEK:
                year, week, _ = self.start.date().isocalendar()
                try:
                    monday = date.fromisocalendar(year - 1, week, 1)
                except ValueError:
                    return None
                return Span.of(
                    datetime.combine(monday, datetime.min.time(), self.tz), Period.WEEK, self.tz
                )
            case Period.DAY | Period.HOUR:
                s = self.start
                try:
                    earlier = s.replace(year=s.year - 1)
                except ValueError:  # 29 February
                    return None
                return Span.of(earlier, self.period, self.tz)

    def children(self, period: Period) -> tuple[Span, ...]:
        """The periods of kind ``period`` this one is made of (refused when they do not nest)."""
        if period not in _NESTS[self.period]:
            raise AccountingError(f"a {self.period} is not made of whole {period}s")
        first = key_of(self.start_minute, period, self.offset)
        last = key_of(self.end_minute - 1, period, self.offset)
        return tuple(Span(period, k, self.offset) for k in range(first, last + 1))


@functools.lru_cache(maxsize=256)
def _label(span: Span) -> str:
    s = span.start
    match span.period:
        case Period.HOUR:
            return s.strftime("%Y-%m-%d %H:00")
        case Period.DAY:
            return s.strftime("%Y-%m-%d")
        case Period.WEEK:
            year, week, _ = s.date().isocalendar()
            return f"{year}-W{week:02d}"
        case Period.MONTH:
            return s.strftime("%Y-%m")
        case Period.QUARTER:
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        case Period.YEAR:
            return str(s.year)


# ---- activity per minute -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class MinuteSeries:
    """One series of activity per minute: increments (not register readings), as integer
    counts of ``resolution`` (in ``unit``), one per minute that has data, minutes increasing.

    A minute without data is absent, not zero: coverage counts the minutes present.
    """

    name: str
    unit: str
    resolution: Decimal
    minutes: Counts
    counts: Counts

    def __post_init__(self) -> None:
        if self.minutes.shape != self.counts.shape or self.minutes.ndim != 1:
            raise AccountingError(f"series {self.name!r}: minutes and counts differ in shape")
        if self.resolution <= 0:
            raise AccountingError(f"series {self.name!r}: resolution must be positive")
        if len(self.minutes) > 1 and not bool(np.all(np.diff(self.minutes) > 0)):
            raise AccountingError(f"series {self.name!r}: minutes must increase strictly")

    @classmethod
    def from_values(
        cls,
        name: str,
        unit: str,
        values: Iterable[tuple[datetime | int, Decimal | str]],
        resolution: Decimal | None = None,
    ) -> MinuteSeries:
        """A series from (time, activity) pairs; times are datetimes or UTC minutes.

        ``resolution`` defaults to the finest decimal place any value uses. Two values in one
        minute are refused (the minute's increment is one figure).
        """
        pairs = sorted(((t if isinstance(t, int) else minute_of(t)), Decimal(v)) for t, v in values)
        if resolution is None:
            places = [0]
            for _, v in pairs:
                exponent = v.as_tuple().exponent
                if isinstance(exponent, int):
                    places.append(-exponent)
            resolution = Decimal(1).scaleb(-max(places))
        minutes, counts = [], []
        for i, (minute, value) in enumerate(pairs):
            if i and minute == pairs[i - 1][0]:
                raise AccountingError(f"series {name!r}: two values in minute {minute}")
            count = EXACT.divide(value, resolution)
            if count != count.to_integral_value():
                raise AccountingError(
                    f"series {name!r}: {value} is not a multiple of the resolution {resolution}"
                )
            minutes.append(minute)
            counts.append(int(count))
        return cls(
            name,
            unit,
            resolution,
            np.array(minutes, dtype=np.int64),
            np.array(counts, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.minutes)

    def _derived(self, **changes: object) -> MinuteSeries:
        """A copy with ``changes``, unchecked: for slices and relabellings of a checked one."""
        new = object.__new__(MinuteSeries)
        for f in ("name", "unit", "resolution", "minutes", "counts"):
            object.__setattr__(new, f, changes.get(f, getattr(self, f)))
        return new

    def value(self, count: int | np.integer) -> Decimal:
        """A count (or a sum of counts) as activity in ``unit``, exactly."""
        return EXACT.multiply(Decimal(int(count)), self.resolution)

    def window(self, start_minute: int, end_minute: int) -> MinuteSeries:
        """The minutes in [start, end)."""
        lo, hi = np.searchsorted(self.minutes, [start_minute, end_minute])
        return self._derived(minutes=self.minutes[lo:hi], counts=self.counts[lo:hi])

    def in_unit(self, unit: str) -> MinuteSeries:
        """The same activity expressed in ``unit`` (same dimension): the resolution changes."""
        if unit == self.unit:
            return self
        mine, target = parse_unit(self.unit), parse_unit(unit)
        Quantity(self.resolution, mine).to(target)  # IncompatibleUnits across dimensions
        try:
            converted = EXACT.divide(EXACT.multiply(self.resolution, mine.scale), target.scale)
        except Inexact:
            raise AccountingError(
                f"series {self.name!r}: {self.unit} → {unit} is not exact (the resolution "
                f"{self.resolution} {self.unit} has no finite decimal in {unit})"
            ) from None
        return self._derived(unit=unit, resolution=converted)


def combined(name: str, series: Sequence[MinuteSeries], unit: str | None = None) -> MinuteSeries:
    """The minute-by-minute sum of several series (a source read by several meters).

    All are brought to ``unit`` (default: the first's) and to the finest resolution, so the
    sum stays an exact integer count; a minute is present if any series has it.
    """
    if not series:
        raise AccountingError(f"series {name!r}: no meters to add up")
    target = unit or series[0].unit
    parts = [s.in_unit(target) for s in series]
    if len(parts) == 1:  # one meter: its series as it is
        return parts[0]._derived(name=name)
    finest = min(p.resolution for p in parts)
    minutes = np.unique(np.concatenate([p.minutes for p in parts]))
    counts = np.zeros(len(minutes), dtype=np.int64)
    for p in parts:
        ratio = EXACT.divide(p.resolution, finest)
        if ratio != ratio.to_integral_value():
            # A resolution that is not a multiple of the finest: use their common divisor.
            raise AccountingError(
                f"series {name!r}: resolutions {p.resolution} and {finest} do not nest"
            )
        where = np.searchsorted(minutes, p.minutes)
        np.add.at(counts, where, p.counts * int(ratio))
    return MinuteSeries(name, target, finest, minutes, counts)


# ---- rates: one unit of activity through the method --------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRate:
    """A source's tCO2 per unit of its activity, and how the method got it (for traceability)."""

    name: str
    kind: SourceKind
    scope: int | None  # None: biomass, reported apart
    unit: str  # the activity unit the rate is per
    rate: Decimal  # tCO2 per unit, signed (deductions negative)
    result: SourceResult  # the method applied to one unit: parameters, factor, formula

    @property
    def vintage(self) -> str | None:
        return self.result.vintage


def source_rates(
    specs: Iterable[SourceSpec],
    library: FactorLibrary | None = None,
    vintage: str | None = None,
) -> dict[str, SourceRate]:
    """Each source's rate: its method applied to one unit of its activity unit.

    A spec's quantity gives the unit (its value is ignored). All library factors come from
    one vintage, as in :func:`~.inventory.account`.
    """
    units = []
    for spec in specs:
        units.append(dataclasses.replace(spec, quantity=Quantity(Decimal(1), spec.quantity.unit)))
    inventory = account(units, library, vintage)
    return {
        r.spec.name: SourceRate(
            r.spec.name, r.spec.kind, r.scope, str(r.spec.quantity.unit), r.tco2, r
        )
        for r in inventory.results
    }


# ---- period totals -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sums:
    """One series summed over one period: exact activity, and the minutes that had data."""

    activity: Decimal
    minutes: int


@dataclass(frozen=True, slots=True)
class SourceTotal:
    activity: Decimal  # in the source's unit
    tco2: Decimal  # exact, signed
    minutes: int  # minutes with data


class Basis(StrEnum):
    """What an intensity is per (ISC-2 §7.2.3(3): per unit of electricity, of heat; CSMT §9:
    per unit of product)."""

    ELECTRICITY = "electricity"  # tCO2/MWh
    HEAT = "heat"  # tCO2/GJ
    PRODUCT = "product"  # tCO2 per unit of product


BASIS_UNIT = {Basis.ELECTRICITY: "MWh", Basis.HEAT: "GJ"}


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """A period's emissions by source and scope, and the bases of its intensities."""

    span: Span
    sources: Mapping[str, SourceTotal]
    scope1_tco2: Decimal
    scope2_tco2: Decimal
    biomass_tco2: Decimal
    bases: Mapping[Basis, Sums]  # electricity in MWh, heat in GJ, product in its unit

    @property
    def total_tco2(self) -> Decimal:
        return EXACT.add(self.scope1_tco2, self.scope2_tco2)

    def intensity(self, basis: Basis) -> Decimal | None:
        """Total tCO2 per unit of the basis; None without a basis or with a zero one."""
        sums = self.bases.get(basis)
        if sums is None or sums.activity == 0:
            return None
        return CONTEXT.divide(self.total_tco2, sums.activity)

    def coverage(self, source: str) -> Decimal:
        """The share of the period's minutes that source had data for (0–1)."""
        total = self.sources.get(source)
        return Decimal(0) if total is None else CONTEXT.divide(total.minutes, self.span.minutes)


def period_sums(series: MinuteSeries, period: Period, offset: int = 480) -> dict[int, Sums]:
    """The series summed per period of ``period`` kind (keys: :attr:`Span.key`); exact.

    The minutes are sorted, so each period is one slice: its bounds are found by bisection
    over the periods' start minutes, with no per-minute calendar arithmetic.
    """
    n = len(series)
    if n == 0:
        return {}
    first = key_of(int(series.minutes[0]), period, offset)
    last = key_of(int(series.minutes[-1]), period, offset)
    keys = np.arange(first, last + 1)
    starts = np.array(
        [_start_local(period, int(k)) - offset for k in keys.tolist()], dtype=np.int64
    )
    lo = np.searchsorted(series.minutes, starts)
    hi = np.append(lo[1:], n)
    full = hi > lo
    lo, hi, keys = lo[full], hi[full], keys[full]
    sums = np.add.reduceat(series.counts, lo)
    return {
        int(k): Sums(series.value(s), int(c))
        for k, s, c in zip(keys.tolist(), sums.tolist(), (hi - lo).tolist(), strict=True)
    }


def totals(
    activity: Mapping[str, MinuteSeries],
    rates: Mapping[str, SourceRate],
    period: Period,
    *,
    tz: timezone = BEIJING,
    bases: Mapping[Basis, MinuteSeries] | None = None,
    within: Span | None = None,
) -> list[PeriodTotals]:
    """Every ``period`` with data, in order: emissions by source and scope, and bases.

    ``activity`` maps a source (a key of ``rates``) to its activity per minute in the rate's
    unit. With ``within`` (a longer period), exactly its sub-periods are returned, those without
    data included, and data outside it is left out; ``period`` must nest in it then (a
    month's weeks do not: ask for the weeks and filter).
    """
    offset = offset_minutes(tz)
    if within is not None and within.offset != offset:
        raise AccountingError(f"period {within} is in another time zone than {tz}")
    for name in activity:
        if name not in rates:
            raise AccountingError(f"activity for {name!r}, which is no source")
    per_source: dict[str, dict[int, Sums]] = {}
    for name, series in activity.items():
        unit = rates[name].unit
        s = series.in_unit(unit) if series.unit != unit else series
        if within is not None:
            s = s.window(within.start_minute, within.end_minute)
        per_source[name] = period_sums(s, period, offset)
    per_basis: dict[Basis, dict[int, Sums]] = {}
    for basis, series in (bases or {}).items():
        s = series.in_unit(BASIS_UNIT[basis]) if basis in BASIS_UNIT else series
        if within is not None:
            s = s.window(within.start_minute, within.end_minute)
        per_basis[basis] = period_sums(s, period, offset)
    if within is not None:
        keys = [c.key for c in within.children(period)]
    else:
        keys = sorted({k for sums in per_source.values() for k in sums})
    out = []
    for key in keys:
        sources: dict[str, SourceTotal] = {}
        by_scope: dict[int | None, list[Decimal]] = {1: [], 2: [], None: []}
        for name, sums in per_source.items():
            got = sums.get(key)
            if got is None:
                sources[name] = SourceTotal(Decimal(0), Decimal(0), 0)
                continue
            rate = rates[name]
            tco2 = EXACT.multiply(got.activity, rate.rate)
            sources[name] = SourceTotal(got.activity, tco2, got.minutes)
            by_scope[rate.scope].append(tco2)
        basis_sums = {b: sums.get(key, Sums(Decimal(0), 0)) for b, sums in per_basis.items()}
        out.append(
            PeriodTotals(
                Span(period, key, offset),
                sources,
                exact_sum(by_scope[1]),
                exact_sum(by_scope[2]),
                exact_sum(by_scope[None]),
                basis_sums,
            )
        )
    return out


def rolled_up(parts: Sequence[PeriodTotals], span: Span) -> PeriodTotals:
    """The totals of ``span`` from the totals of periods that make it up (each inside it)."""
    for p in parts:
        if not (span.start_minute <= p.span.start_minute and p.span.end_minute <= span.end_minute):
            raise AccountingError(f"{p.span} is not inside {span}")
    names = list(dict.fromkeys(n for p in parts for n in p.sources))
    sources = {
        n: SourceTotal(
            exact_sum(p.sources[n].activity for p in parts if n in p.sources),
            exact_sum(p.sources[n].tco2 for p in parts if n in p.sources),
            sum(p.sources[n].minutes for p in parts if n in p.sources),
        )
        for n in names
    }
    bases = {
        b: Sums(
            exact_sum(p.bases[b].activity for p in parts if b in p.bases),
            sum(p.bases[b].minutes for p in parts if b in p.bases),
        )
        for b in dict.fromkeys(b for p in parts for b in p.bases)
    }
    return PeriodTotals(
        span,
        sources,
        exact_sum(p.scope1_tco2 for p in parts),
        exact_sum(p.scope2_tco2 for p in parts),
        exact_sum(p.biomass_tco2 for p in parts),
        bases,
    )


# ---- measures and comparisons ------------------------------------------------------------------


def measure(t: PeriodTotals, name: str) -> Decimal | None:
    """A named figure of a period: ``total``, ``scope1``, ``scope2``, ``biomass``,
    ``source:NAME`` (tCO2), ``activity:NAME`` (the source's activity) or
    ``intensity:electricity|heat|product``. None when the period has no such figure."""
    if name == "total":
        return t.total_tco2
    if name in ("scope1", "scope2", "biomass"):
        value: Decimal = getattr(t, f"{name}_tco2")
        return value
    kind, _, arg = name.partition(":")
    if kind in ("source", "activity"):
        got = t.sources.get(arg)
        if got is None:
            return None
        return got.tco2 if kind == "source" else got.activity
    if kind == "intensity":
        try:
            return t.intensity(Basis(arg))
        except ValueError:
            pass
    raise AccountingError(
        f"measure {name!r}: expected total, scope1, scope2, biomass, source:NAME, "
        "activity:NAME or intensity:electricity|heat|product"
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    """A figure against the same figure of a base period (同比 or 环比)."""

    measure: str
    span: Span
    value: Decimal | None
    base_span: Span | None
    base: Decimal | None  # None: the base period has no data (or does not exist)
    change: Decimal | None  # value − base
    ratio: Decimal | None  # (value − base) / |base|; None when the base is missing or zero


def compare(
    table: Mapping[Span, PeriodTotals], span: Span, base_span: Span | None, what: str = "total"
) -> Comparison:
    """``what`` in ``span`` against ``base_span``, both looked up in ``table``."""
    current = table.get(span)
    value = None if current is None else measure(current, what)
    base_row = None if base_span is None else table.get(base_span)
    base = None if base_row is None else measure(base_row, what)
    change = ratio = None
    if value is not None and base is not None:
        try:
            change = EXACT.subtract(value, base)
        except Inexact:  # intensities are quotients, already rounded at the 100th digit
            change = CONTEXT.subtract(value, base)
        if base != 0:
            ratio = CONTEXT.divide(change, abs(base))
    return Comparison(what, span, value, base_span, base, change, ratio)


def yoy(table: Mapping[Span, PeriodTotals], span: Span, what: str = "total") -> Comparison:
    """同比: against the same period one year earlier."""
    return compare(table, span, span.year_before(), what)


def mom(table: Mapping[Span, PeriodTotals], span: Span, what: str = "total") -> Comparison:
    """环比: against the period just before (the previous month for a month, the previous day
    for a day …)."""
    return compare(table, span, span.previous(), what)


def indexed(rows: Iterable[PeriodTotals]) -> dict[Span, PeriodTotals]:
    return {r.span: r for r in rows}

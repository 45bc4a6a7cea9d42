"""Per-minute accounting as data arrives (ISC-2 §7.2.3(3) "per-minute cumulative emission").

:class:`LiveAccounting` takes each minute's activity per source (the increments the processing
pipeline settles) and answers at once with the minute's emission per source — activity, factor,
emission, cumulative — and, when a minute opens a new hour, day, week, month, quarter or year,
with the totals of the periods that just closed, and the alarms they raise. Its figures are the
same as :func:`~.statistics.totals` computed afterwards from the stored minutes, to the last
digit (the same exact arithmetic: activity sums × the source's rate).

Minutes come in order; a minute may be given more than once (a manual entry after the metered
values), its activity adds up. A minute before the last one is refused: late data belongs to a
recomputation with :func:`~.statistics.totals`, not to running totals that were already sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from typing import NamedTuple

from reference_terminal.accounting.alarms import MINUTE, AlarmEvent, AlarmMonitor
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.statistics import (
    BEIJING,
    EXACT,
    Basis,
    Period,
    PeriodTotals,
    SourceRate,
    SourceTotal,
    Span,
    Sums,
    key_of,
    offset_minutes,
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class MinuteEmission:
    """One source in one minute (the row the conformance suite recomputes)."""

    source: str
    minute: int  # UTC minutes since the epoch
    activity: Decimal  # in the source's unit
    factor: Decimal  # tCO2 per unit of activity
    emission: Decimal  # tCO2, exact, signed
    cumulative: Decimal  # tCO2 since the accounting started, exact


@dataclass(frozen=True, slots=True)
class MinuteUpdate:
    minute: int
    rows: tuple[MinuteEmission, ...]
    scope1_tco2: Decimal
    scope2_tco2: Decimal
    closed: tuple[PeriodTotals, ...]  # periods that ended before this minute, shortest first
    alarms: tuple[AlarmEvent, ...]
    opened: tuple[Span, ...] = ()  # periods this minute began, shortest first

    @property
    def total_tco2(self) -> Decimal:
        return EXACT.add(self.scope1_tco2, self.scope2_tco2)


class SourceMinute(NamedTuple):
    """One source's minute (:meth:`LiveAccounting.update_source`)."""

    emission: Decimal  # tCO2, exact, signed
    cumulative: Decimal  # tCO2 since the accounting started, exact
    closed: list[PeriodSums]  # as MinuteUpdate's, their figures not made (totals() makes them)
    opened: list[Span]
    alarms: list[AlarmEvent]


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: it is cached
class Calendar:
    """The periods open at a minute, and the minutes [lo, hi) in which none of them changes."""

    spans: tuple[Span, ...]
    lo: int
    hi: int


@functools.lru_cache(maxsize=64)
def calendar_at(minute: int, periods: tuple[Period, ...], offset: int) -> Calendar:
    """The calendar at UTC minute ``minute``. The same for every point's accounting: a minute
    that closes an hour asks it of a hundred points, and the calendar arithmetic was a third of
    that minute's work; the spans are shared too."""
    spans = tuple(Span(period, key_of(minute, period, offset), offset) for period in periods)
    lo, hi = minute, 1 << 40
    for span in spans:
        lo, hi = max(lo, span.start_minute), min(hi, span.end_minute)
    return Calendar(spans, lo, hi)


@functools.lru_cache(maxsize=64)
def _changes(before: Calendar, after: Calendar) -> tuple[tuple[Span, ...], bool]:
    """The periods that change from ``before`` to ``after`` (the same for every point moving on
    in step), and whether any but the shortest does."""
    changed = tuple(t for s, t in zip(before.spans, after.spans, strict=True) if s.key != t.key)
    return changed, any(t.period is not after.spans[0].period for t in changed)


class PeriodSums:
    """The sums of one period: activity and minutes with data per source, and per basis (its
    figures are :meth:`LiveAccounting.totals`). Those of the open periods are as of the last
    fold (see :class:`_Pending`); a closed period's are final."""

    __slots__ = ("activity", "bases", "basis_minutes", "minutes", "seen", "span")

    def __init__(self, span: Span, sources: list[str], bases: list[Basis]) -> None:
        self.span = span
        self.activity = dict.fromkeys(sources, ZERO)
        self.minutes = dict.fromkeys(sources, 0)
        self.bases = dict.fromkeys(bases, ZERO) if bases else {}
        self.basis_minutes = dict.fromkeys(bases, 0) if bases else {}
        self.seen = False


class _Pending:
    """Sums of minutes not yet added to the open periods they lie in (see
    :meth:`LiveAccounting._roll`): a minute adds to one of these rather than to each of the six
    periods. Sums start from the first value, not from zero, so that each period's sum is the
    same decimal, exponent included, as if every minute had been added to it (exact addition
    is associative)."""

    __slots__ = ("activity", "bases", "basis_minutes", "minutes", "seen")

    def __init__(self) -> None:
        self.activity: dict[str, Decimal] = {}
        self.minutes: dict[str, int] = {}
        self.bases: dict[Basis, Decimal] = {}
        self.basis_minutes: dict[Basis, int] = {}
        self.seen = False

    def add(self, name: str, value: Decimal, *, new_minute: bool) -> None:
        got = self.activity.get(name)
        self.activity[name] = value if got is None else EXACT.add(got, value)
        if new_minute:
            self.minutes[name] = self.minutes.get(name, 0) + 1
        self.seen = True

    def add_basis(self, basis: Basis, value: Decimal) -> None:
        got = self.bases.get(basis)
        self.bases[basis] = value if got is None else EXACT.add(got, value)
        self.basis_minutes[basis] = self.basis_minutes.get(basis, 0) + 1
        self.seen = True  # a period with only basis data closes with its totals too

    def absorb(self, other: _Pending) -> None:
        """Take ``other``'s sums on (minutes that came before the ones still to come here)."""
        for name, value in other.activity.items():
            got = self.activity.get(name)
            self.activity[name] = value if got is None else EXACT.add(got, value)
        for name, count in other.minutes.items():
            self.minutes[name] = self.minutes.get(name, 0) + count
        if other.bases:
            for basis, value in other.bases.items():
                got = self.bases.get(basis)
                self.bases[basis] = value if got is None else EXACT.add(got, value)
            for basis, count in other.basis_minutes.items():
                self.basis_minutes[basis] = self.basis_minutes.get(basis, 0) + count
        self.seen = self.seen or other.seen

    def fold_into(self, o: PeriodSums) -> None:
        add = EXACT.add
        for name, value in self.activity.items():
            o.activity[name] = add(o.activity[name], value)
        for name, count in self.minutes.items():
            o.minutes[name] += count
        if self.bases:
            for basis, value in self.bases.items():
                o.bases[basis] = add(o.bases.get(basis, ZERO), value)
                o.basis_minutes[basis] = o.basis_minutes.get(basis, 0) + self.basis_minutes[basis]
        o.seen = True


@dataclass(frozen=True, slots=True)
class Feed:
    """A point that only feeds a basis: its activity, in its own unit, is its basis's activity
    over ``ratio`` (the basis's units per unit of the point)."""

    point: str
    basis: Basis
    ratio: Decimal

    @property
    def measure(self) -> str:
        return f"activity:{self.point}"

    def activity(self, totals: PeriodTotals) -> dict[str, Decimal]:
        sums = totals.bases.get(self.basis)
        return {} if sums is None else {self.measure: EXACT.divide(sums.activity, self.ratio)}


class LiveAccounting:
    """Running per-minute accounting for a set of sources with their rates."""

    def __init__(
        self,
        rates: Mapping[str, SourceRate],
        *,
        tz: timezone = BEIJING,
        bases: Mapping[Basis, str] | None = None,
        periods: tuple[Period, ...] = tuple(Period),
        monitor: AlarmMonitor | None = None,
        feeds: Feed | None = None,
    ) -> None:
        self.rates = dict(rates)
        #: set when this is the accounting of a point that only feeds a basis: its rules
        #: measure its activity, which no source holds
        self.feeds = feeds
        self.offset = offset_minutes(tz)
        #: basis → the unit its activity is given in (MWh for electricity, GJ for heat …)
        self.bases = dict(bases or {})
        self.periods = periods
        self.monitor = monitor
        self.cumulative = dict.fromkeys(self.rates, ZERO)
        self.last_minute: int | None = None
        self._sources = list(self.rates)
        self._basis_names = list(self.bases)
        self._open: dict[Period, PeriodSums] = {}
        # The minutes since the calendar last changed, in every open period; and what the
        # minutes before them added to the longer periods while only the shortest changed:
        # the longer periods take it when one of them changes (every day, not every hour).
        self._pending = _Pending()
        self._deferred = _Pending()
        # The minute's per-source figures, once per source (rows are rebuilt per update).
        self._rate = {n: r.rate for n, r in self.rates.items()}
        self._scope = {n: r.scope for n, r in self.rates.items()}
        self._last_seen: dict[str, int] = {}
        # Minutes [lo, hi) in which no open period changes (an hour, usually): inside it a
        # minute closes nothing and needs no calendar arithmetic.
        self._same = (0, 0)
        self._calendar: Calendar | None = None  # that of the open periods, if one is

    def update(
        self,
        minute: int,
        activity: Mapping[str, Decimal],
        bases: Mapping[Basis, Decimal] | None = None,
    ) -> MinuteUpdate:
        """Account one minute: ``activity`` per source (in its rate's unit); ``bases`` are the
        minute's intensity bases (electricity in MWh, heat in GJ, product in its unit)."""
        ended, opened = self._advance(minute)
        closed = [self.totals(sums) for sums in ended]
        rows = []
        scope1 = scope2 = ZERO
        for name, value in activity.items():
            emission, cumulative = self._account(minute, name, value)
            scope = self._scope[name]
            if scope == 1:
                scope1 = EXACT.add(scope1, emission)
            elif scope == 2:
                scope2 = EXACT.add(scope2, emission)
            rows.append(MinuteEmission(name, minute, value, self._rate[name], emission, cumulative))
        if bases:
            self._add_bases(bases)
        alarms: list[AlarmEvent] = []
        if self.monitor is not None:
            by_source = {r.source: r for r in rows}

            def value_of(name: str) -> Decimal | None:
                kind, _, arg = name.partition(":")
                if name == "total":
                    return EXACT.add(scope1, scope2)
                if name == "scope1":
                    return scope1
                if name == "scope2":
                    return scope2
                row = by_source.get(arg)
                if row is None:
                    return None
                return row.emission if kind == "source" else row.activity

            alarms = self._judge(self.monitor, minute, closed, value_of)
        self.last_minute = minute
        return MinuteUpdate(
            minute, tuple(rows), scope1, scope2, tuple(closed), tuple(alarms), tuple(opened)
        )

    def update_source(
        self,
        minute: int,
        name: str | None,
        value: Decimal,
        bases: Mapping[Basis, Decimal] | None = None,
    ) -> SourceMinute:
        """``update(minute, {name: value}, bases)`` for one source (None: ``update(minute, {},
        bases)``), the same figures without the minute's rows and with the closed periods'
        sums: what the running terminal books for each point every minute."""
        closed, opened = self._advance(minute)
        emission = cumulative = ZERO
        if name is not None:
            emission, cumulative = self._account(minute, name, value)
        if bases:
            self._add_bases(bases)
        alarms: list[AlarmEvent] = []
        monitor = self.monitor
        if monitor is not None:
            scope = None if name is None else self._scope[name]

            feeds = self.feeds

            def value_of(measure: str) -> Decimal | None:
                kind, _, arg = measure.partition(":")
                if measure in ("total", "scope1", "scope2"):
                    mine = measure in ("total", f"scope{scope}")
                    return EXACT.add(ZERO, emission) if mine and scope is not None else ZERO
                if feeds is not None and measure == feeds.measure:
                    return value
                if name is None or arg != name:
                    return None
                return emission if kind == "source" else value

            judged = [self.totals(c) for c in closed if monitor.judges(c.span.period)]
            alarms = self._judge(monitor, minute, judged, value_of, feeds)
        self.last_minute = minute
        return SourceMinute(emission, cumulative, closed, opened, alarms)

    def set_rate(self, name: str, rate: SourceRate) -> None:
        """Account ``name`` at ``rate`` from the next minute on (a new factor library); the
        periods open now are totalled at it too, as :func:`~.statistics.totals` would."""
        if name not in self.rates:
            raise AccountingError(f"{name!r} is no source of this accounting")
        self.rates[name] = rate
        self._rate[name] = rate.rate
        self._scope[name] = rate.scope

    def _advance(self, minute: int) -> tuple[list[PeriodSums], list[Span]]:
        """Move on to ``minute``: the periods it closes and those it opens (none, mostly)."""
        if self.last_minute is not None and minute < self.last_minute:
            raise AccountingError(
                f"minute {minute} is before minute {self.last_minute} already accounted: late "
                "data is recomputed from the store (statistics.totals), not added to totals sent"
            )
        lo, hi = self._same
        return ([], []) if lo <= minute < hi else self._roll(minute)

    def _account(self, minute: int, name: str, value: Decimal) -> tuple[Decimal, Decimal]:
        """One source's activity in ``minute``: its emission and cumulative emission."""
        rate = self._rate.get(name)
        if rate is None:
            raise AccountingError(f"activity for {name!r}, which is no source")
        emission = EXACT.multiply(value, rate)
        cumulative = self.cumulative[name] = EXACT.add(self.cumulative[name], emission)
        self._pending.add(name, value, new_minute=self._last_seen.get(name) != minute)
        self._last_seen[name] = minute
        return emission, cumulative

    def _add_bases(self, bases: Mapping[Basis, Decimal]) -> None:
        for basis, value in bases.items():
            self._pending.add_basis(basis, value)

    @staticmethod
    def _judge(
        monitor: AlarmMonitor,
        minute: int,
        closed: list[PeriodTotals],
        value_of: Callable[[str], Decimal | None],
        feeds: Feed | None = None,
    ) -> list[AlarmEvent]:
        """The alarms of the periods ``closed`` and of the minute's figures."""
        alarms: list[AlarmEvent] = []
        for t in closed:
            alarms += monitor.observe_totals(t, None if feeds is None else feeds.activity(t))
        alarms += monitor.observe(MINUTE, str(minute), float((minute + 1) * 60), value_of)
        return alarms

    def _roll(self, minute: int) -> tuple[list[PeriodSums], list[Span]]:
        """Close the open periods that ``minute`` is past; open the ones it starts."""
        calendar = calendar_at(minute, self.periods, self.offset)
        self._same = (calendar.lo, calendar.hi)
        if self._calendar is not None:  # the open periods are this calendar's
            changed, longer = _changes(self._calendar, calendar)
        else:
            opened = self._open
            changed = tuple(
                s
                for s in calendar.spans
                if (o := opened.get(s.period)) is None or o.span.key != s.key
            )
            longer = any(s.period is not self.periods[0] for s in changed)
        self._calendar = calendar
        self._fold(longer=longer)
        closed = []
        for span in changed:
            current = self._open.get(span.period)
            if current is not None and current.seen:
                closed.append(current)
            self._open[span.period] = PeriodSums(span, self._sources, self._basis_names)
        return closed, list(changed)

    def _fold(self, *, longer: bool = True) -> None:
        """Add the pending minutes to the shortest open period, and to the longer ones what
        is deferred (if ``longer``; else defer them too)."""
        pending = self._pending
        if pending.seen:
            shortest = self._open.get(self.periods[0])
            if shortest is not None:
                pending.fold_into(shortest)
            if self._deferred.seen:
                self._deferred.absorb(pending)
            else:  # nothing deferred yet: these sums are all there is
                self._deferred = pending
            self._pending = _Pending()
        deferred = self._deferred
        if longer and deferred.seen:
            for period in self.periods[1:]:
                o = self._open.get(period)
                if o is not None:
                    deferred.fold_into(o)
            self._deferred = _Pending()

    def totals(self, o: PeriodSums) -> PeriodTotals:
        """A period's figures from its sums: each source's activity × its rate, by scope."""
        sources = {}
        scope1 = scope2 = biomass = ZERO
        for name, activity in o.activity.items():
            tco2 = EXACT.multiply(activity, self._rate[name])
            sources[name] = SourceTotal(activity, tco2, o.minutes[name])
            scope = self._scope[name]
            if scope == 1:
                scope1 = EXACT.add(scope1, tco2)
            elif scope == 2:
                scope2 = EXACT.add(scope2, tco2)
            else:
                biomass = EXACT.add(biomass, tco2)
        bases = {b: Sums(v, o.basis_minutes[b]) for b, v in o.bases.items()} if o.bases else {}
        return PeriodTotals(o.span, sources, scope1, scope2, biomass, bases)

    def restore(
        self,
        last_minute: int,
        cumulative: Mapping[str, Decimal],
        opened: Mapping[Period, PeriodTotals],
    ) -> None:
        """Continue after a restart from what was stored: the last minute accounted, each
        source's cumulative emission, and the sums so far of the periods open at that minute
        (``opened[p].sources[name]``: activity and minutes; ``.bases``: basis sums)."""
        self.last_minute = last_minute
        self._same = (0, 0)
        self._calendar = None
        for name, value in cumulative.items():
            if name in self.cumulative:
                self.cumulative[name] = value
        self._open.clear()
        self._pending = _Pending()
        self._deferred = _Pending()
        for period in self.periods:
            span = Span(period, key_of(last_minute, period, self.offset), self.offset)
            o = PeriodSums(span, self._sources, self._basis_names)
            given = opened.get(period)
            if given is not None:
                for name, total in given.sources.items():
                    if name in o.activity:
                        o.activity[name] = total.activity
                        o.minutes[name] = total.minutes
                        o.seen = o.seen or total.minutes > 0
                for basis, sums in given.bases.items():
                    o.bases[basis] = sums.activity
                    o.basis_minutes[basis] = sums.minutes
                    o.seen = o.seen or sums.minutes > 0
            self._open[period] = o
        self._last_seen = dict.fromkeys(self._sources, last_minute)

    def open_totals(self, period: Period) -> PeriodTotals | None:
        """The running totals of the open period of kind ``period`` (so far)."""
        self._fold()
        o = self._open.get(period)
        return None if o is None else self.totals(o)

    def flush(self) -> list[PeriodTotals]:
        """Close every open period (at shutdown, or at the end of a replay)."""
        self._fold()
        closed = [self.totals(o) for o in self._open.values() if o.seen]
        self._open.clear()
        self._same = (0, 0)
        self._calendar = None
        return closed

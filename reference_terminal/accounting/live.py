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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal

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

    @property
    def total_tco2(self) -> Decimal:
        return EXACT.add(self.scope1_tco2, self.scope2_tco2)


@functools.lru_cache(maxsize=64)
def calendar_at(
    minute: int, periods: tuple[Period, ...], offset: int
) -> tuple[tuple[int, ...], tuple[int, int]]:
    """The keys of ``periods`` at UTC minute ``minute``, and the minutes [lo, hi) in which none
    of them changes. The same for every point's accounting: a minute that closes an hour asks
    it of a hundred points, and the calendar arithmetic was a third of that minute's work."""
    keys = []
    lo, hi = minute, 1 << 40
    for period in periods:
        key = key_of(minute, period, offset)
        span = Span(period, key, offset)
        lo, hi = max(lo, span.start_minute), min(hi, span.end_minute)
        keys.append(key)
    return tuple(keys), (lo, hi)


class _Open:
    """Running sums of one open period."""

    __slots__ = ("activity", "bases", "basis_minutes", "key", "minutes", "seen")

    def __init__(self, key: int, sources: list[str], bases: list[Basis]) -> None:
        self.key = key
        self.activity = dict.fromkeys(sources, ZERO)
        self.minutes = dict.fromkeys(sources, 0)
        self.bases = dict.fromkeys(bases, ZERO)
        self.basis_minutes = dict.fromkeys(bases, 0)
        self.seen = False


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
    ) -> None:
        self.rates = dict(rates)
        self.offset = offset_minutes(tz)
        #: basis → the unit its activity is given in (MWh for electricity, GJ for heat …)
        self.bases = dict(bases or {})
        self.periods = periods
        self.monitor = monitor
        self.cumulative = dict.fromkeys(self.rates, ZERO)
        self.last_minute: int | None = None
        self._sources = list(self.rates)
        self._open: dict[Period, _Open] = {}
        # The minute's per-source figures, once per source (rows are rebuilt per update).
        self._rate = {n: r.rate for n, r in self.rates.items()}
        self._scope = {n: r.scope for n, r in self.rates.items()}
        self._last_seen: dict[str, int] = {}
        # Minutes [lo, hi) in which no open period changes (an hour, usually): inside it a
        # minute closes nothing and needs no calendar arithmetic.
        self._same = (0, 0)

    @property
    def same_periods(self) -> tuple[int, int]:
        """Minutes [lo, hi) of the periods open now: a minute in there changes none of them."""
        return self._same

    def update(
        self,
        minute: int,
        activity: Mapping[str, Decimal],
        bases: Mapping[Basis, Decimal] | None = None,
    ) -> MinuteUpdate:
        """Account one minute: ``activity`` per source (in its rate's unit); ``bases`` are the
        minute's intensity bases (electricity in MWh, heat in GJ, product in its unit)."""
        if self.last_minute is not None and minute < self.last_minute:
            raise AccountingError(
                f"minute {minute} is before minute {self.last_minute} already accounted: late "
                "data is recomputed from the store (statistics.totals), not added to totals sent"
            )
        lo, hi = self._same
        closed = [] if lo <= minute < hi else self._roll(minute)
        rows = []
        scope1 = scope2 = ZERO
        add, mul = EXACT.add, EXACT.multiply
        opened = [self._open[p] for p in self.periods]
        for name, value in activity.items():
            rate = self._rate.get(name)
            if rate is None:
                raise AccountingError(f"activity for {name!r}, which is no source")
            emission = mul(value, rate)
            cumulative = self.cumulative[name] = add(self.cumulative[name], emission)
            scope = self._scope[name]
            if scope == 1:
                scope1 = add(scope1, emission)
            elif scope == 2:
                scope2 = add(scope2, emission)
            first = self._last_seen.get(name) != minute
            self._last_seen[name] = minute
            for o in opened:
                o.activity[name] = add(o.activity[name], value)
                if first:
                    o.minutes[name] += 1
                o.seen = True
            rows.append(MinuteEmission(name, minute, value, rate, emission, cumulative))
        for basis, value in (bases or {}).items():
            for o in opened:
                o.bases[basis] = add(o.bases.get(basis, ZERO), value)
                o.basis_minutes[basis] = o.basis_minutes.get(basis, 0) + 1
                o.seen = True  # a period with only basis data closes with its totals too
        alarms: list[AlarmEvent] = []
        if self.monitor is not None:
            for t in closed:
                alarms += self.monitor.observe_totals(t)
            by_source = {r.source: r for r in rows}
            total = add(scope1, scope2)

            def value_of(name: str) -> Decimal | None:
                kind, _, arg = name.partition(":")
                if name == "total":
                    return total
                if name == "scope1":
                    return scope1
                if name == "scope2":
                    return scope2
                row = by_source.get(arg)
                if row is None:
                    return None
                return row.emission if kind == "source" else row.activity

            alarms += self.monitor.observe(MINUTE, str(minute), float((minute + 1) * 60), value_of)
        self.last_minute = minute
        return MinuteUpdate(minute, tuple(rows), scope1, scope2, tuple(closed), tuple(alarms))

    def _roll(self, minute: int) -> list[PeriodTotals]:
        """Close the open periods that ``minute`` is past; open the ones it starts."""
        closed = []
        keys, self._same = calendar_at(minute, self.periods, self.offset)
        for period, key in zip(self.periods, keys, strict=True):
            current = self._open.get(period)
            if current is None or current.key != key:
                if current is not None and current.seen:
                    closed.append(self._totals(period, current))
                self._open[period] = _Open(key, self._sources, list(self.bases))
        return closed

    def _totals(self, period: Period, o: _Open) -> PeriodTotals:
        sources = {}
        by_scope: dict[int | None, Decimal] = {1: ZERO, 2: ZERO, None: ZERO}
        for name, activity in o.activity.items():
            tco2 = EXACT.multiply(activity, self._rate[name])
            sources[name] = SourceTotal(activity, tco2, o.minutes[name])
            scope = self._scope[name]
            by_scope[scope] = EXACT.add(by_scope[scope], tco2)
        bases = {b: Sums(v, o.basis_minutes[b]) for b, v in o.bases.items()}
        return PeriodTotals(
            Span(period, o.key, self.offset),
            sources,
            by_scope[1],
            by_scope[2],
            by_scope[None],
            bases,
        )

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
        for name, value in cumulative.items():
            if name in self.cumulative:
                self.cumulative[name] = value
        self._open.clear()
        for period in self.periods:
            o = _Open(key_of(last_minute, period, self.offset), self._sources, list(self.bases))
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
        o = self._open.get(period)
        return None if o is None else self._totals(period, o)

    def flush(self) -> list[PeriodTotals]:
        """Close every open period (at shutdown, or at the end of a replay)."""
        closed = [self._totals(p, o) for p, o in self._open.items() if o.seen]
        self._open.clear()
        self._same = (0, 0)
        return closed

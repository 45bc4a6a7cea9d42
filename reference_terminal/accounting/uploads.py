"""The emission figures the terminal uploads (``accounting.uploads``; CSMT §7.2 codes, ISC-2
§7.2.3(3)): each code's tCO2 per minute, hour, day and month — one source's, an accounting
unit's or the whole boundary's (scope 1 and 2; biomass, reported apart, only under its own
source's code).

They are derived values of a point of their own, ``co2@<code>``, of the kinds the uplink sends
(``minute``, ``hour``, ``day``, ``month``; :func:`upload_point`): the uplink puts them in the
minute, hourly and daily frames beside the activity data, as ``Cou``. No configured point can
be called so (a point id has no ``@``).

A code's minute goes up once, complete: when every metered point it adds up has booked that
minute or a later one (a point that had no window that minute adds nothing). A point that has
not got that far :data:`STALE_MINUTES` after the others is not waited for: the minute goes up
without it, flagged (communication fault). Hand entries add to the minute they are booked in
and are never waited for. A period's figure is the sum of its minutes (exact; rounded once
when stored, like every tCO2 figure), sent when the code's first minute of the next one goes
up, or once any point has booked a minute :data:`STALE_MINUTES` past its end (a code of hand
entries has no next minute for a month). A minute sent after its period's figure counts in
no period figure. After a restart each code continues from the store: its last minute sent, the
sums of its open periods, and the points' minutes booked after it (their figure was not sent
yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection

from reference_terminal.accounting.bindings import Bindings
from reference_terminal.accounting.records import (
    ENTRY,
    MINUTE,
    note,
    select_figures,
    select_latest,
    stored,
)
from reference_terminal.accounting.statistics import EXACT, Period, Span, key_of
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived
from reference_terminal.uplink.codes import render_code

PREFIX = "co2@"
#: Minutes a code's minute waits for a point that has fallen behind the others.
STALE_MINUTES = 5
#: The periods a code's figures are summed over (the uplink's hourly, daily, monthly data).
PERIODS = (Period.HOUR, Period.DAY, Period.MONTH)
#: A figure's quality is its worst part's (the data flag it goes up with).
_RANK = {
    Quality.GOOD: 0,
    Quality.BACKUP: 1,
    Quality.MANUAL: 2,
    Quality.SUSPECT: 3,
    Quality.OUT_OF_RANGE: 4,
    Quality.INTERPOLATED: 5,
    Quality.COMM_FAULT: 6,
}
ZERO = Decimal(0)


def upload_point(code: str) -> str:
    """The point whose derived values are the figures uploaded under ``code``."""
    return PREFIX + code


def _worse(a: Quality, b: Quality) -> Quality:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(slots=True)
class _Sum:
    total: Decimal
    quality: Quality
    minutes: int = 0
    seen: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Code:
    """One uploaded figure: the points it adds up and what it has sent."""

    point: str  # upload_point(code)
    members: frozenset[str]
    waiting: tuple[str, ...]  # its metered points: a minute goes up once each has passed it
    pending: dict[int, _Sum] = field(default_factory=dict)  # minute → what came so far
    sent: int | None = None  # the last minute sent
    open: dict[Period, tuple[int, _Sum]] = field(default_factory=dict)  # period → (key, sums)
    closed: dict[Period, int] = field(default_factory=dict)  # period → the last key sent


class UploadedEmissions:
    """Each upload code's figures as the points' minutes are booked (see the module text)."""

    def __init__(self, codes: list[_Code], offset: int) -> None:
        self.codes = codes
        self.offset = offset  # the calendar's minutes east of UTC
        self.of_point: dict[str, list[_Code]] = {}
        for code in codes:
            for point in code.members:
                self.of_point.setdefault(point, []).append(code)
        #: each point's last minute booked
        self.last: dict[str, int] = {}
        #: the latest minute any point booked
        self.newest = -1

    @classmethod
    def from_bindings(cls, bindings: Bindings, offset: int) -> UploadedEmissions | None:
        """None when the accounting uploads nothing."""
        uploads = bindings.config.uploads
        if not uploads:
            return None
        codes = []
        for upload in uploads:
            members = frozenset(
                p
                for p, b in bindings.points.items()
                if (upload.of == "source" and b.source.id == upload.id)
                # a unit's and the boundary's totals are scope 1 + scope 2 (GB/T 32150)
                or (upload.of == "unit" and b.unit_id == upload.id and b.scope is not None)
                or (upload.of == "boundary" and b.scope is not None)
            )
            waiting = tuple(sorted(p for p in members if not bindings.points[p].manual))
            codes.append(_Code(upload_point(render_code(upload.code)), members, waiting))
        return cls(codes, offset)

    # ---- booking ---------------------------------------------------------------------------
    def add(
        self, point: str, minute: int, emission: Decimal, quality: Quality, now: float
    ) -> list[Derived]:
        """``point``'s emission booked in ``minute``: the figures that can go up now."""
        codes = self.of_point.get(point)
        if not codes:
            return []
        last = self.last.get(point)
        if last is None or minute > last:
            self.last[point] = minute
        rows: list[Derived] = []
        if minute > self.newest:
            self.newest = minute
            self._close_stale(now, rows)
        for code in codes:
            if code.sent is not None and minute <= code.sent:
                continue  # that minute went up already: a figure sent is not changed
            part = code.pending.get(minute)
            if part is None:
                code.pending[minute] = _Sum(emission, quality, seen={point})
            else:
                part.total = EXACT.add(part.total, emission)
                part.quality = _worse(part.quality, quality)
                part.seen.add(point)
            self._release(code, now, rows)
        return rows

    def _release(self, code: _Code, now: float, rows: list[Derived]) -> None:
        """Send the code's pending minutes that are complete (or stale), oldest first."""
        last = self.last
        newest = max((last.get(p, -1) for p in code.waiting), default=-1)
        for minute in sorted(code.pending):
            part = code.pending[minute]
            missing = [p for p in code.waiting if p not in part.seen and last.get(p, -1) <= minute]
            if missing and newest - minute < STALE_MINUTES:
                return  # later minutes cannot be complete either
            del code.pending[minute]
            quality = _worse(part.quality, Quality.COMM_FAULT) if missing else part.quality
            self._send(code, minute, part.total, quality, len(part.seen), now, rows)

    def _close_stale(self, now: float, rows: list[Derived]) -> None:
        """Send the period figures whose periods ended :data:`STALE_MINUTES` ago."""
        for code in self.codes:
            for period, (key, sums) in list(code.open.items()):
                if Span(period, key, self.offset).end_minute + STALE_MINUTES <= self.newest:
                    rows.append(self._period_row(code, period, key, sums, now))
                    del code.open[period]
                    code.closed[period] = key

    def _send(
        self,
        code: _Code,
        minute: int,
        total: Decimal,
        quality: Quality,
        parts: int,
        now: float,
        rows: list[Derived],
    ) -> None:
        start = minute * 60.0
        rows.append(
            Derived(code.point, "minute", start, start + 60, stored(total), quality,
                    note(n=parts), now)
        )  # fmt: skip
        code.sent = minute
        for period in PERIODS:
            key = key_of(minute, period, self.offset)
            if key <= code.closed.get(period, key - 1):
                continue  # that period's figure went up already
            held = code.open.get(period)
            if held is not None and held[0] != key:
                rows.append(self._period_row(code, period, *held, now))
                code.closed[period] = held[0]
                held = None
            if held is None:
                code.open[period] = (key, _Sum(total, quality, 1))
            else:
                sums = held[1]
                sums.total = EXACT.add(sums.total, total)
                sums.quality = _worse(sums.quality, quality)
                sums.minutes += 1

    def _period_row(self, code: _Code, period: Period, key: int, sums: _Sum, now: float) -> Derived:
        span = Span(period, key, self.offset)
        return Derived(
            code.point, period.value, span.start_minute * 60.0, span.end_minute * 60.0,
            stored(sums.total), sums.quality, note(n=sums.minutes), now,
        )  # fmt: skip

    # ---- after a restart -----------------------------------------------------------------
    def resume(self, conn: Connection, last: Mapping[str, int]) -> None:
        """Continue from the store (see the module text); ``last``: each point's last minute
        booked before the restart."""
        self.last = dict(last)
        self.newest = max(last.values(), default=-1)
        for code in self.codes:
            code.pending.clear()
            code.open.clear()
            code.closed.clear()
            newest = select_latest(conn, code.point, "minute")
            code.sent = None if newest is None else int(newest.start // 60)
            if code.sent is None:
                continue  # nothing sent yet: it starts with the next minute booked
            self._reopen(conn, code, code.sent)
            booked = select_figures(
                conn, sorted(code.members), (MINUTE, ENTRY), (code.sent + 1) * 60.0, 1e12
            )
            for figure in booked:
                if figure.value is None:
                    continue
                minute = int(figure.t // 60)
                part = code.pending.setdefault(minute, _Sum(ZERO, figure.quality))
                part.total = EXACT.add(part.total, figure.value)
                part.quality = _worse(part.quality, figure.quality)
                part.seen.add(figure.point)

    def _reopen(self, conn: Connection, code: _Code, minute: int) -> None:
        """The sums of the periods open at ``minute``, from the code's stored figures: the
        minutes of the open hour, the hours of the open day, the days of the open month."""
        shorter: _Sum | None = None
        shorter_start = (minute + 1) * 60.0
        kind = "minute"
        for period in PERIODS:
            span = Span(period, key_of(minute, period, self.offset), self.offset)
            start = span.start_minute * 60.0
            found = select_figures(conn, [code.point], (kind,), start, shorter_start)
            sums = _Sum(ZERO, Quality.GOOD)
            for figure in found:
                if figure.value is not None:
                    sums.total = EXACT.add(sums.total, figure.value)
                    sums.quality = _worse(sums.quality, figure.quality)
                    sums.minutes += figure.minutes if kind != "minute" and figure.minutes else 1
            if shorter is not None:
                sums.total = EXACT.add(sums.total, shorter.total)
                sums.quality = _worse(sums.quality, shorter.quality)
                sums.minutes += shorter.minutes
            code.open[period] = (span.key, sums)
            shorter, shorter_start, kind = sums, start, period.value

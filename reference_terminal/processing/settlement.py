"""Real-time windows, daily settlement and the month and year roll-ups of one point (CSMT §8.2.1).

"日结数据是某一活动数据在一天内的增量和当天采集间隔时间内的最大值、最小值;根据活动数据的日结数据,
进而计算出逐月、逐年数据;根据此数学计算,同样计算出秒、分钟、小时数据,作为实时数据。"

Every window is an :class:`Aggregate` emitted once, when it closes: when a sample falls in a
later window, or when the caller promises with :meth:`PointWindows.close_until` that nothing
earlier will come. Windows without any sample are not emitted.

**What goes into a window.**

- A gauge's usable readings, each at its own time ``t``.
- A counter's increments (CSMT §8.2.1: activity data are increments), each at the middle of its
  interval (:attr:`Increment.mid`). A poll answered at 00:00:00.3 covers the last minute of the
  day, and it is attributed to that day: this is the meters' own daily freeze at 00:00. An
  increment is never split between windows: an interval longer than a window lands whole in
  the window of its middle (interpolation splits long gaps first, see ``interpolation.py``).

**The figures.** ``count`` valid samples; ``first``/``last`` are readings (for a counter the
register at the start of its first increment and at the end of its last, so ``last − first`` is
the window's increment when nothing rolled over); ``min``/``max``/``mean`` are of the readings
for a gauge and of the interval increments for a counter (CSMT's
"当天采集间隔时间内的最大值、最小值": the largest and smallest consumption of one acquisition
interval); ``increment`` is the sum of a
counter's valid increments. SUSPECT increments are counted in ``excluded`` and mark the window
SUSPECT but add nothing. ``mean`` is rounded half-even to the samples' digits.

**Plant-local time.** Windows are aligned on the plant's local time, a fixed UTC offset (China
+08:00 by default; no daylight saving there), so days start at local midnight and hour windows
stay on local hours for offsets like +05:30. Real-time periods must divide a day.

Month and year are rolled up from days, never recomputed from samples, so a month is exactly
the sum of its days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from reference_terminal.construct import frozen
from reference_terminal.model import Quality, Reading, counted, figures_of
from reference_terminal.processing.increments import Increment
from reference_terminal.processing.validation import BY_RANK, RANK

Kind = Literal["counter", "gauge"]

DAY = 86_400
#: China Standard Time, the plant-local time of every standard in the catalogue.
CHINA_OFFSET_S = 8 * 3600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SUSPECT_RANK = RANK[Quality.SUSPECT]
_ZERO = Decimal(0)
_NAMES = {1: "second", 60: "minute", 3600: "hour"}


class WindowError(ValueError):
    """Windows that cannot be laid out, or a sample that arrives after its window closed."""


class LateSample(WindowError):
    """A sample for a window already closed: the caller broke its time-order promise."""


def period_name(period_s: int) -> str:
    """``second``, ``minute``, ``hour`` or ``<n>s`` (e.g. ``300s``) for a real-time period."""
    return _NAMES.get(period_s, f"{period_s}s")


def check_periods(periods: Sequence[int], utc_offset_s: int) -> None:
    """Raise :class:`WindowError` unless the real-time periods and the offset can be aligned."""
    if abs(utc_offset_s) > 14 * 3600 or utc_offset_s % 60:
        raise WindowError(
            f"utc_offset_s {utc_offset_s}: a plant's UTC offset is whole minutes within ±14 h"
        )
    for p in periods:
        if not isinstance(p, int) or p <= 0 or p >= DAY or DAY % p:
            raise WindowError(
                f"real-time period {p!r} s: must be a whole number of seconds that divides a day "
                f"(CSMT §8.2.1 秒、分钟、小时数据; windows align on local midnight)"
            )
    if list(periods) != sorted(set(periods)):
        raise WindowError(f"real-time periods {list(periods)}: give each once, shortest first")


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One closed window of one point: a real-time figure, a daily settlement, a month or a
    year (see the module text for what each field holds). ``start`` is inclusive and ``end``
    exclusive, POSIX seconds; ``label`` is the window's start in plant-local time."""

    point: str
    period: str  # second, minute, hour, <n>s, day, month, year
    start: float
    end: float
    label: str
    kind: Kind
    count: int
    first: Decimal | None
    last: Decimal | None
    min: Decimal | None
    max: Decimal | None
    mean: Decimal | None
    increment: Decimal | None  # counters only
    excluded: int
    digits: int
    quality: Quality
    note: str = ""

    @property
    def value(self) -> Decimal | None:
        """The window's main figure: a counter's increment, a gauge's mean."""
        return self.increment if self.kind == "counter" else self.mean

    def figures(self) -> tuple[tuple[str, Decimal | None], ...]:
        """The window as (kind, value) pairs for a store with one value per row: ``day`` (the
        main figure), ``day_max``, ``day_min``, ``day_first``, ``day_last``, and for gauges
        ``day_mean`` is the main figure itself. Windows of an hour or longer add ``_count``:
        a restart merges them back into the open day or month, and a mean needs its count."""
        names = figure_names(self.period)
        main = (
            (names[0], self.value),
            (names[1], self.max),
            (names[2], self.min),
            (names[3], self.first),
            (names[4], self.last),
        )
        if len(names) > 5:
            return (*main, (names[5], Decimal(self.count)))
        return main


if TYPE_CHECKING:
    new_aggregate = Aggregate
else:  # one per window closed, several per reading: without the per-field setattr calls
    new_aggregate = frozen(Aggregate)

#: Each period's figure names (see :meth:`Aggregate.figures`), worked out once.
_FIGURE_NAMES: dict[str, tuple[str, ...]] = {}


def figure_names(period: str) -> tuple[str, ...]:
    """The kinds :meth:`Aggregate.figures` gives a window of ``period``, in its order: the main
    figure, ``_max``, ``_min``, ``_first``, ``_last``, and ``_count`` for counted periods."""
    names = _FIGURE_NAMES.get(period)
    if names is None:
        names = _FIGURE_NAMES[period] = (period, *(f"{period}_{f}" for f in figures_of(period)))
    return names


class _Acc:
    """What a window has gathered so far (mutable, one per open window)."""

    __slots__ = ("count", "digits", "excluded", "first", "hi", "last", "lo", "rank", "total")

    def __init__(self) -> None:
        self.count = 0
        self.first: Decimal | None = None
        self.last: Decimal | None = None
        # Meaningful once count > 0; zero before, so the hot path needs no None checks.
        self.lo = self.hi = self.total = _ZERO
        self.digits = 0
        self.rank = 0
        self.excluded = 0

    def add(self, value: Decimal, first: Decimal, last: Decimal, digits: int, rank: int) -> None:
        if self.count:
            self.count += 1
            if value < self.lo:
                self.lo = value
            elif value > self.hi:
                self.hi = value
            self.total += value
        else:
            self.count = 1
            self.lo = self.hi = self.total = value
        if self.first is None:
            self.first = first
        self.last = last
        # Comparisons, not max(): this runs per value and window, and the call costs more.
        if digits > self.digits:  # noqa: PLR1730
            self.digits = digits
        if rank > self.rank:  # noqa: PLR1730
            self.rank = rank

    def exclude(self, rank: int) -> None:
        self.excluded += 1
        self.rank = max(self.rank, rank)

    def merge(self, other: _Acc) -> None:
        # Comparisons, not min()/max(), as in add: every closed window is merged into the next
        # (each point's minute into its hour, every minute). A tie keeps self's value, as
        # min(self.lo, other.lo) would (equal Decimals may show different digits).
        if other.count:
            if self.count:
                if other.lo < self.lo:  # noqa: PLR1730
                    self.lo = other.lo
                if other.hi > self.hi:  # noqa: PLR1730
                    self.hi = other.hi
                self.total += other.total
            else:
                self.lo, self.hi, self.total = other.lo, other.hi, other.total
            self.count += other.count
        if self.first is None:
            self.first = other.first
        if other.last is not None:
            self.last = other.last
        if other.digits > self.digits:  # noqa: PLR1730
            self.digits = other.digits
        if other.rank > self.rank:  # noqa: PLR1730
            self.rank = other.rank
        self.excluded += other.excluded


class _Level:
    __slots__ = ("acc", "end", "fed", "idx", "name", "p")

    def __init__(self, p: int, name: str, *, fed: bool) -> None:
        self.p = p
        self.name = name
        #: Takes samples itself; else its window gathers the closed windows of the level
        #: before, which nest in it (an hour of minutes: one sum per value instead of three).
        self.fed = fed
        self.idx: int | None = None
        self.acc: _Acc | None = None
        # Where the open window ends (local seconds): a sample before it, and not before
        # where it starts (later samples never are: time order), falls in it.
        self.end = -math.inf


class _Span:
    """An open month or year: closed days (or months) merged so far."""

    __slots__ = ("acc", "end_day", "label", "start_day")

    def __init__(self, start_day: int, end_day: int, label: str) -> None:
        self.start_day = start_day
        self.end_day = end_day
        self.label = label
        self.acc = _Acc()


_QUANTA = tuple(Decimal(1).scaleb(-d) for d in range(19))


def _quantum(digits: int) -> Decimal:
    return _QUANTA[digits] if digits < len(_QUANTA) else Decimal(1).scaleb(-digits)


#: Recent window labels: every point closes the same windows, so formatting a time once per
#: window instead of once per point and window keeps second windows cheap.
_LABELS: dict[tuple[int, int], str] = {}


def _label(period_s: int, local: int) -> str:
    """The plant-local label of a window starting at ``local`` (POSIX seconds + offset)."""
    key = (period_s, local)
    label = _LABELS.get(key)
    if label is None:
        if len(_LABELS) > 4096:
            _LABELS.clear()
        when = datetime.fromtimestamp(local, UTC)
        if period_s == DAY:
            label = f"{when:%Y-%m-%d}"
        elif period_s % 60:
            label = f"{when:%Y-%m-%dT%H:%M:%S}"
        else:
            label = f"{when:%Y-%m-%dT%H:%M}"
        _LABELS[key] = label
    return label


def _day_date(day: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + day)


def _day_index(d: date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


class PointWindows:
    """The open windows of one point: the real-time periods, the day, the month and the year.

    Gauges feed readings with :meth:`add_reading`, counters increments with
    :meth:`add_increment`; both return the windows their sample closed, shortest period first.
    """

    __slots__ = ("_closed", "_due", "_levels", "_month", "_year", "kind", "offset", "point")

    def __init__(
        self,
        point: str,
        kind: Kind,
        periods: Sequence[int] = (60, 3600),
        utc_offset_s: int = CHINA_OFFSET_S,
    ) -> None:
        check_periods(periods, utc_offset_s)
        self.point = point
        self.kind: Kind = kind
        self.offset = utc_offset_s
        self._levels: list[_Level] = []
        finer = 0
        for p, name in [*((p, period_name(p)) for p in periods), (DAY, "day")]:
            self._levels.append(_Level(p, name, fed=not finer or p % finer != 0))
            finer = p
        self._month: _Span | None = None
        self._year: _Span | None = None
        # Local seconds before which the shortest windows are closed: a sample there is late.
        self._closed = float("-inf")
        # Local seconds before which close_until has nothing to close (-inf: work it out): most
        # points have nothing to close most minutes, and a terminal asks about all of them.
        self._due = -math.inf

    # ---- feeding ----------------------------------------------------------------------------
    def add_reading(self, reading: Reading) -> list[Aggregate]:
        """A gauge's usable reading, attributed to its time."""
        v = reading.value
        assert v is not None
        return self._add(reading.t, v, v, v, reading.digits, RANK[reading.quality])

    def add_increment(self, inc: Increment) -> list[Aggregate]:
        """A counter's increment, attributed to the middle of its interval; a SUSPECT one is
        counted as excluded."""
        if inc.quality is Quality.SUSPECT:
            return self._add(inc.mid, None, inc.start, inc.end, inc.digits, _SUSPECT_RANK)
        return self._add(inc.mid, inc.value, inc.start, inc.end, inc.digits, RANK[inc.quality])

    def add_reading_in_time(self, reading: Reading) -> list[Aggregate] | None:
        """:meth:`add_reading`, or None (nothing added) when the reading :meth:`is_late`: the
        check and the add in one call, as processing makes them for every reading."""
        if reading.t + self.offset < self._closed:
            return None
        return self.add_reading(reading)

    def add_increment_in_time(self, inc: Increment) -> list[Aggregate] | None:
        """:meth:`add_increment`, or None (nothing added) when its middle :meth:`is_late`, as
        :meth:`add_reading_in_time` (``mid`` worked out once: it is a property)."""
        mid = inc.mid
        if mid + self.offset < self._closed:
            return None
        if inc.quality is Quality.SUSPECT:
            return self._add(mid, None, inc.start, inc.end, inc.digits, _SUSPECT_RANK)
        return self._add(mid, inc.value, inc.start, inc.end, inc.digits, RANK[inc.quality])

    def closed_before(self, x: float) -> None:
        """Treat every window ending at or before ``x`` as closed (a restart: those before the
        replay are stored)."""
        p = self._levels[0].p
        self._closed = max(self._closed, (x + self.offset) // p * p)

    def is_late(self, x: float) -> bool:
        """Whether a sample attributed to ``x`` falls in a window already closed (emitted)."""
        return x + self.offset < self._closed

    def _add(
        self,
        x: float,
        value: Decimal | None,
        first: Decimal,
        last: Decimal,
        digits: int,
        rank: int,
    ) -> list[Aggregate]:
        out: list[Aggregate] = []
        shifted = x + self.offset
        self._due = -math.inf
        if shifted < self._closed:
            raise LateSample(
                f"{self.point}: a sample at t={x} belongs to a window already closed "
                f"(emitted windows are never revised)"
            )
        for k, level in enumerate(self._levels):
            acc = level.acc
            end = level.end
            if not level.fed:
                # a sample past its window: the window is over (the finer one, closed just
                # before in this loop, is merged in)
                if acc is None or shifted >= end:
                    if acc is not None:
                        self._close(k, out)
                    if level.p == DAY:
                        self._roll(int(shifted // DAY), out)
                continue
            if acc is not None and end - level.p <= shifted < end:
                # Most samples: the window of the last one (the test below, without dividing).
                if value is None:
                    acc.exclude(rank)
                else:
                    acc.add(value, first, last, digits, rank)
                continue
            idx = int(shifted // level.p)
            if idx != level.idx or acc is None:
                if level.idx is not None and acc is not None:
                    if idx < level.idx:
                        raise LateSample(
                            f"{self.point}: a sample at t={x} belongs to a {level.name} window "
                            f"already closed (samples must come in time order)"
                        )
                    self._close(k, out)
                    if k == 0:
                        self._closed = idx * level.p
                if level.p == DAY:
                    self._roll(idx, out)
                level.idx = idx
                level.end = (idx + 1) * level.p
                level.acc = acc = _Acc()
            if value is None:
                acc.exclude(rank)
            else:
                acc.add(value, first, last, digits, rank)
        return out

    def _close(self, k: int, out: list[Aggregate]) -> None:
        """Emit level ``k``'s open window and merge it into the window of the next level
        that it nests in, if that level is not fed samples itself."""
        level = self._levels[k]
        idx, acc = level.idx, level.acc
        assert idx is not None and acc is not None
        out.append(self._emit(level, idx, acc))
        if level.p == DAY:
            self._settle_day(idx, acc, out)
        level.idx = level.acc = None
        level.end = -math.inf
        if k + 1 == len(self._levels):
            return
        coarser = self._levels[k + 1]
        if coarser.fed:
            return
        into = idx * level.p // coarser.p
        if coarser.acc is not None and coarser.idx != into:
            self._close(k + 1, out)
        if coarser.acc is None:
            if coarser.p == DAY:
                self._roll(into, out)
            coarser.idx, coarser.end, coarser.acc = into, (into + 1) * coarser.p, _Acc()
        coarser.acc.merge(acc)

    def close_until(self, threshold: float) -> list[Aggregate]:
        """Close every window that ends at or before ``threshold``: the caller promises that no
        sample attributed to ``threshold`` or earlier will come."""
        shifted = threshold + self.offset
        if shifted < self._due:
            return []
        out: list[Aggregate] = []
        for k, level in enumerate(self._levels):
            # An open window (acc set) ends at level.end, (idx + 1) * p: no multiplying here,
            # once per point and level every minute.
            if level.acc is not None and level.end <= shifted:
                end = level.end
                self._close(k, out)
                if k == 0 and end > self._closed:
                    self._closed = end
        self._roll(int(shifted // DAY), out)
        self._due = self._next_due()
        return out

    def _next_due(self) -> float:
        """Where the earliest open window ends, or the open month (the year, with no month)."""
        due = math.inf
        for level in self._levels:
            if level.acc is not None and level.end < due:
                due = level.end
        span = self._month if self._month is not None else self._year
        if span is not None and span.end_day * DAY < due:
            due = span.end_day * DAY
        return due

    @property
    def coarsest(self) -> str | None:
        """The name of the longest real-time period (the one a restart merges into the day)."""
        return self._levels[-2].name if len(self._levels) > 1 else None

    def restore(self, stored: Aggregate) -> None:
        """Merge a stored closed window back after a restart: a ``day`` of the open month, a
        ``month`` of the open year, or a window of the longest real-time period (if it is an
        hour or longer) into the open day. A gauge's mean comes back as mean × count: its
        rounding stays. Give them in time order, before any sample of the open day."""
        self._due = -math.inf
        rolling = stored.period in ("day", "month")
        if stored.point != self.point or not (
            rolling or (stored.period == self.coarsest and counted(stored.period))
        ):
            raise WindowError(
                f"{self.point}: only stored days and months (and {self.coarsest} windows of the "
                f"open day) of this point can be restored, got a {stored.period} of "
                f"{stored.point}"
            )
        acc = _Acc()
        acc.count = stored.count
        if stored.count and stored.min is not None and stored.max is not None:
            acc.lo, acc.hi = stored.min, stored.max
            if self.kind == "counter":
                acc.total = stored.increment if stored.increment is not None else _ZERO
            elif stored.mean is not None:
                acc.total = stored.mean * stored.count
        acc.first, acc.last = stored.first, stored.last
        acc.digits, acc.rank, acc.excluded = stored.digits, RANK[stored.quality], stored.excluded
        first_day = int((stored.start + self.offset) // DAY)
        if not rolling:
            day = self._levels[-1]
            if day.idx is None or day.acc is None:
                day.idx, day.acc = first_day, _Acc()
                day.end = (first_day + 1) * DAY
            elif day.idx != first_day:
                raise WindowError(
                    f"{self.point}: a stored {stored.period} of {stored.label} is not in the "
                    f"open day; restore only the open day's windows"
                )
            day.acc.merge(acc)
            return
        if stored.period == "day":
            self._settle_day(first_day, acc, [])
            return
        y = _day_date(first_day).year
        year = self._year
        if year is None:
            year = self._year = _Span(
                _day_index(date(y, 1, 1)), _day_index(date(y + 1, 1, 1)), f"{y:04d}"
            )
        year.acc.merge(acc)

    # ---- month and year -----------------------------------------------------------------------
    def _settle_day(self, day: int, acc: _Acc, out: list[Aggregate]) -> None:
        month = self._month
        if month is None or day >= month.end_day:
            self._roll(day, out)
            d = _day_date(day)
            first = d.replace(day=1)
            nxt = (first + timedelta(days=32)).replace(day=1)
            month = self._month = _Span(_day_index(first), _day_index(nxt), f"{d:%Y-%m}")
        month.acc.merge(acc)

    def _roll(self, day: int, out: list[Aggregate]) -> None:
        """Emit the month (and year) that ended before local day ``day``."""
        month = self._month
        if month is not None and day >= month.end_day:
            out.append(self._emit_span("month", month))
            year = self._year
            if year is None or month.start_day >= year.end_day:
                if year is not None:
                    out.append(self._emit_span("year", year))
                y = _day_date(month.start_day).year
                year = self._year = _Span(
                    _day_index(date(y, 1, 1)), _day_index(date(y + 1, 1, 1)), f"{y:04d}"
                )
            year.acc.merge(month.acc)
            self._month = None
        year = self._year
        if year is not None and day >= year.end_day and self._month is None:
            out.append(self._emit_span("year", year))
            self._year = None

    # ---- emitting -----------------------------------------------------------------------------
    def _emit(self, level: _Level, idx: int, acc: _Acc) -> Aggregate:
        local = idx * level.p
        start = float(local - self.offset)
        return self._aggregate(level.name, start, start + level.p, _label(level.p, local), acc)

    def _emit_span(self, name: str, span: _Span) -> Aggregate:
        start = float(span.start_day * DAY - self.offset)
        end = float(span.end_day * DAY - self.offset)
        return self._aggregate(name, start, end, span.label, span.acc)

    def _aggregate(self, name: str, start: float, end: float, label: str, acc: _Acc) -> Aggregate:
        counter = self.kind == "counter"
        n = acc.count
        if n:
            digits = acc.digits
            quantum = _QUANTA[digits] if digits < len(_QUANTA) else _quantum(digits)
            mean = (acc.total / n).quantize(quantum)
        else:
            mean = None
        return new_aggregate(
            self.point,
            name,
            start,
            end,
            label,
            self.kind,
            acc.count,
            acc.first,
            acc.last,
            acc.lo if n else None,
            acc.hi if n else None,
            mean,
            acc.total if counter and n else None,
            acc.excluded,
            acc.digits,
            BY_RANK[acc.rank],
        )

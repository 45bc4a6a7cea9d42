"""The plant: the ground truth every meter reads and every verdict is judged against.

``Plant(spec, seed=…, start=…)`` answers ``value(name, t)`` for any quantity at any instant since
the start, exactly and always the same for the same seed. Rates and states are constant within
a minute; totals are the exact integrals of their rates (sums of whole minutes plus the part
of the current one), so a meter's energy counter at t is what its power was, integrated.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from simulators.plant.profiles import MINUTES, day_load
from simulators.plant.sources import Quantity, day_arrays, quantities
from simulators.plant.spec import PlantSpec, Source

_CACHED_DAYS = 64  # per source: a meter fleet reads around "now", rarely far back


class PlantTimeError(ValueError):
    """A time before the plant's start: there is no truth there."""


@dataclass(frozen=True, slots=True)
class _Day:
    arrays: dict[str, np.ndarray]  # rate and state per minute
    cumulative: dict[str, np.ndarray]  # per rate: integral from the day's start, 1441 points
    #: per rate, made when first asked: the integral from the plant's start to each minute,
    #: the day's start total added to ``cumulative`` element by element (the same double
    #: additions value() made per call)
    totals: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Instant:
    """Where a time falls, worked out once for every value asked at it: a fleet's reads in
    one period all fall on one instant."""

    t: float
    day: int
    minute: int
    within: float  # hours since the minute's start


#: Before any instant was asked (no time is NaN: it never matches).
_NO_INSTANT = _Instant(math.nan, 0, 0, 0.0)


class Plant:
    def __init__(self, spec: PlantSpec, *, seed: int, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the plant's start needs a time zone (e.g. 2026-01-01T00:00:00+08:00)")
        self.spec = spec
        self.seed = seed
        offset = timedelta(hours=spec.utc_offset_hours)
        local = start.astimezone(UTC) + offset
        self._first_day = local.date()
        #: POSIX time of local midnight on the start date: day 0 begins here.
        self.origin = (
            datetime(local.year, local.month, local.day, tzinfo=UTC) - offset
        ).timestamp()
        self.start = start.timestamp()
        self._sources = list(spec.sources)
        self._quantities: dict[str, tuple[int, Quantity]] = {}
        #: per name, for value(): (source index, whether a total, the array read (its own,
        #: or a total's rate), the total's factor)
        self._lookup: dict[str, tuple[int, bool, str, float]] = {}
        for index, source in enumerate(self._sources):
            for q in quantities(source):
                self._quantities[q.name] = (index, q)
                total = q.kind == "total"
                array = q.rate if q.rate is not None and total else q.name.split(".", 1)[1]
                self._lookup[q.name] = (index, total, array, q.factor)
        #: the last instant asked about, and the values given at it (one value, read by
        #: several meters at one instant, is worked out once)
        self._instant = _NO_INSTANT
        self._given: dict[str, float] = {}
        self._days: list[OrderedDict[int, _Day]] = [OrderedDict() for _ in self._sources]
        #: per source: the day last asked for (the newest in its cache), skipping the cache's
        #: bookkeeping for the next question about the same day
        self._recent: list[tuple[int, _Day] | None] = [None for _ in self._sources]
        self._day_start: list[list[dict[str, float]]] = [[{}] for _ in self._sources]
        self._rates = [sorted(_rates_of(source)) for source in self._sources]

    # ---- what there is ------------------------------------------------------------------
    @property
    def quantities(self) -> dict[str, Quantity]:
        return {name: q for name, (_, q) in self._quantities.items()}

    def quantity(self, name: str) -> Quantity:
        try:
            return self._quantities[name][1]
        except KeyError:
            raise KeyError(
                f"no quantity {name!r} in the plant; known: {', '.join(sorted(self._quantities))}"
            ) from None

    # ---- the truth ------------------------------------------------------------------------
    def value(self, name: str, t: float) -> float:
        """The quantity's exact value at POSIX time ``t``."""
        instant = self._instant
        if t == instant.t:
            given = self._given.get(name)
            if given is not None:
                return given
        found = self._lookup.get(name)
        if found is None:
            self.quantity(name)  # raises
        assert found is not None
        if t != instant.t:
            instant = self._at(t)
        index, total, array, factor = found
        d, minute = instant.day, instant.minute
        recent = self._recent[index]
        data = recent[1] if recent is not None and recent[0] == d else self._day(index, d)
        # .item(): the element as a Python float, the same double numpy's scalar holds, and
        # the arithmetic below the same IEEE double arithmetic, without numpy scalars.
        if not total:
            value = float(data.arrays[array].item(minute))
        else:
            totals = data.totals.get(array)
            if totals is None:
                totals = data.totals[array] = (
                    self._start_total(index, d, array) + data.cumulative[array]
                )
            rate = data.arrays[array].item(minute)
            value = float((totals.item(minute) + rate * instant.within) * factor)
        self._given[name] = value
        return value

    def _at(self, t: float) -> _Instant:
        """Make ``t`` the instant values are given at (none given yet)."""
        if t < self.start:
            raise PlantTimeError(
                f"{datetime.fromtimestamp(t, UTC).isoformat()} is before the plant's start"
            )
        day, seconds = divmod(t - self.origin, 86400.0)
        minute = min(int(seconds // 60), MINUTES - 1)
        within = (seconds - minute * 60.0) / 3600.0
        self._instant = _Instant(t, int(day), minute, within)
        self._given = {}
        return self._instant

    def prepare(self, t: float) -> None:
        """Compute every source's day containing ``t`` now, so the first reads after local
        midnight do not all stall on it at once."""
        if t < self.start:
            return
        d = int((t - self.origin) // 86400.0)
        for index, rates in enumerate(self._rates):
            self._day(index, d)
            for rate in rates:
                self._start_total(index, d, rate)

    def values(self, names: list[str], t: float) -> dict[str, float]:
        return {name: self.value(name, t) for name in names}

    def local_time(self, t: float) -> datetime:
        """Plant-local wall time of ``t`` (naive), for shifts and meter clocks."""
        return datetime.fromtimestamp(t, UTC).replace(tzinfo=None) + timedelta(
            hours=self.spec.utc_offset_hours
        )

    # ---- days ---------------------------------------------------------------------------
    def _day(self, index: int, d: int) -> _Day:
        cache = self._days[index]
        found = cache.get(d)
        if found is not None:
            cache.move_to_end(d)
            self._recent[index] = (d, found)
            return found
        arrays = self._arrays(index, d, totals_only=False)
        cumulative = {
            name: np.concatenate(([0.0], np.cumsum(arrays[name] / 60.0)))
            for name in self._rates[index]
        }
        found = _Day(arrays, cumulative)
        cache[d] = found
        if len(cache) > _CACHED_DAYS:
            cache.popitem(last=False)
        self._recent[index] = (d, found)
        return found

    def _arrays(self, index: int, d: int, *, totals_only: bool) -> dict[str, np.ndarray]:
        source = self._sources[index]
        rng = np.random.default_rng([self.seed, index, d])
        weekday = (self._first_day + timedelta(days=d)).weekday()
        running_before = source.load.profile in ("continuous", "three_shift")
        load = day_load(source.load, rng, weekday, running_before)
        if d == 0:  # nothing ran before the start instant
            first = int((self.start - self.origin) // 60)
            load[:first] = 0.0
        return day_arrays(source, load, rng, totals_only=totals_only)

    def _day_sums(self, index: int, d: int) -> dict[str, float]:
        """Each rate's integral over day ``d``."""
        # Summed the same way whether the day is cached or not: a total must not depend on
        # which days happened to be read before.
        cached = self._days[index].get(d)
        arrays = cached.arrays if cached is not None else self._arrays(index, d, totals_only=True)
        return {name: float(arrays[name].sum() / 60.0) for name in self._rates[index]}

    def _start_total(self, index: int, d: int, rate: str) -> float:
        """Integral of ``rate`` from the plant's start to the start of day ``d``."""
        starts = self._day_start[index]
        while len(starts) <= d:
            previous = len(starts) - 1
            before = starts[previous]
            sums = self._day_sums(index, previous)
            starts.append({k: before.get(k, 0.0) + v for k, v in sums.items()})
        return starts[d].get(rate, 0.0)


def _rates_of(source: Source) -> set[str]:
    return {q.rate for q in quantities(source) if q.rate is not None}


def isclose(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)

"""Picking up after a restart (a power cut, a new configuration): processing starts from what
the store holds, so nothing measured across the restart goes uncounted, and no window goes
missing because the power failed while it was open or before its figures were written.

A counter's increment is the difference between two readings. Without its last usable reading
before the restart as the baseline, the first reading after it would only start a new series,
and the energy (or gas, or steam) used meanwhile would never be counted. Its complete months go
back too, for the second check against history (CSMT §8.1.2).

The open windows come back from two sources: the stored windows (days of the open month, months
of the open year, hours of the open day) and the readings stored since the last stored hour,
replayed. The open day is the one that hour ends in, not the day of the last reading: after a
restart just past midnight the day before may not be stored yet. A reading is durable before
the window it falls in is written (the figures are written behind), so the replay also closes
the windows a power cut kept from the store, and those are stored now: the minute of the cut
reaches the platforms like any other.

Virtual points (CSMT §8.3.2) come back too. An integrate point is rebuilt like a metered
counter: its stored windows merged back, its rate's readings since they end replayed (its exact
running total is not stored, so a window after a restart may differ from an uninterrupted
run's in the last digit, where rounding falls; the difference does not accumulate). The others
are computed from their inputs' windows, so each gets, in plan order, the input windows that
closed after its last stored result (stored, or closed again by the replay, or computed just
before for a virtual input): results a cut kept from the store are computed again, and a window
whose other inputs were still open at the restart completes when they close, instead of coming
out with no value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, bindparam, literal_column, select, union_all

from reference_terminal.config import IntegratePoint, Point
from reference_terminal.model import Reading, counted
from reference_terminal.processing.pipeline import Processor
from reference_terminal.processing.settlement import DAY, Aggregate, Kind, period_name
from reference_terminal.processing.virtual import WindowRule, inputs_of, outputs_of
from reference_terminal.storage.schema import (
    READING_COLUMNS,
    WindowFigures,
    derived_recent,
    derived_settled,
    derived_values,
    newest_reading_t,
    readings,
    usable_values,
    values_reading,
)
from reference_terminal.storage.statements import Prepared
from reference_terminal.storage.store import (
    Store,
    select_last_reading,
    select_newest,
    select_windows,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resumed:
    baselines: int  # points given their last usable reading
    months: int  # monthly totals restored for the second check
    replayed: int = 0  # stored readings replayed into the open windows
    #: windows that closed before the restart but never reached the store (a power cut took
    #: them with the write-behind queue): the caller stores them now
    recovered: tuple[Aggregate, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class _PointPlan:
    """What the store holds to rebuild one point from."""

    since: float  # where its stored windows end; readings from here on are replayed
    baseline: Reading | None  # its last usable reading before ``since``
    closed: list[Aggregate]  # stored windows to merge back, in time order
    readings: list[Reading]  # stored from ``since`` on, in time order


def _local_day_start(t: float, offset: int) -> float:
    return float((t + offset) // DAY * DAY - offset)


def _stored_windows(
    conn: Connection,
    point: str,
    kind: str,
    period: str,
    lo: float,
    hi: float,
    *,
    end_after: float | None = None,
) -> list[Aggregate]:
    """The point's stored ``period`` windows starting in [lo, hi) (and ending after
    ``end_after``), rebuilt from their figures."""
    out = []
    for d in select_windows(conn, point, period, lo, hi, end_after=end_after):
        f = d.figures or WindowFigures(None, None, None, None)
        values = (d.value, f.max, f.min, f.first, f.last, f.count)
        digits = max(
            (max(0, -int(v.as_tuple().exponent)) for v in values if v is not None), default=0
        )
        out.append(
            Aggregate(
                point,
                period,
                d.start,
                d.end,
                "",
                "counter" if kind == "counter" else "gauge",
                # stores written before counts were kept: one sample a window
                int(f.count) if f.count is not None else 1,
                f.first,
                f.last,
                f.min,
                f.max,
                None if kind == "counter" else d.value,
                d.value if kind == "counter" else None,
                0,
                digits,
                d.quality,
            )
        )
    return out


def _first(conn: Connection, ordered: Select[Any]) -> float | None:
    """The first value of ``ordered``, or None. Not MIN/MAX: over the views' UNION ALL, SQLite
    computes those by scanning the recent table once per point (30–70 ms each on the works
    fleet after ten days, and a configuration change planned every point: over 30 s), while an
    ordered LIMIT 1 merges the two tables' indexes."""
    value = conn.execute(ordered.limit(1)).scalar()
    return None if value is None else float(value)


def _plan_point(
    conn: Connection, point: Point | IntegratePoint, level: str, offset: int
) -> _PointPlan | None:
    """Replay from the end of the point's last stored ``level`` window (its first reading if
    none is stored); merge back the stored windows of the day, month and year that are open
    there. Not from the day of its last reading: a restart just after midnight, before the
    closing day's windows were written, would lose that day (and month, and year).

    An integrate point is a counter made of its rate's readings: those are replayed."""
    kind = point.kind if isinstance(point, Point) else "counter"
    source = point.source if isinstance(point, IntegratePoint) else point.id
    first = _FIRST_READING.run(conn, source).fetchone()
    if first is None:
        return None
    stored = select_newest(conn, point.id, level)
    since = float(first[0] if stored is None else stored.end)
    day = _local_day_start(since - 1.0, offset)  # the day open just before ``since``
    local = datetime.fromtimestamp(day + offset, UTC)
    month = day - (local.day - 1) * DAY
    year = datetime(local.year, 1, 1, tzinfo=UTC).timestamp() - offset
    closed = _stored_windows(conn, point.id, kind, "month", year, month)
    closed += _stored_windows(conn, point.id, kind, "day", month, day)
    closed += _stored_windows(conn, point.id, kind, level, day, since)
    baseline = select_last_reading(conn, source, before=since, usable=True)
    replay = [values_reading(*r) for r in _REPLAY.run(conn, source, since).fetchall()]
    return _PointPlan(since, baseline, closed, replay)


# A boot asks these of every point (and the two below): prepared, they cost the database's
# time, not SQLAlchemy's.
_r = readings.c
_FIRST_READING = Prepared(
    select(_r.t).where(_r.point == bindparam("point")).order_by(_r.t).limit(1), ["point"]
)
_REPLAY = Prepared(
    select(*(_r[name] for name in READING_COLUMNS))
    .where(_r.point == bindparam("point"), _r.t >= bindparam("since"))
    .order_by(_r.t, _r.id),
    ["point", "since"],
)


def select_plans(
    conn: Connection,
    points: Sequence[Point],
    level: str,
    offset: int,
    integrals: Sequence[IntegratePoint] = (),
) -> dict[str, _PointPlan]:
    every: list[Point | IntegratePoint] = [*points, *integrals]
    plans = {p.id: _plan_point(conn, p, level, offset) for p in every}
    return {point: plan for point, plan in plans.items() if plan is not None}


def select_stored(conn: Connection, windows: Sequence[Aggregate]) -> set[tuple[str, str, float]]:
    """Which of ``windows`` the store has: (point, period, start). Each period of a point is
    looked up over the span of its own windows: from the earliest of all, a replay that closed
    a day read every minute window of that day again (a works-fleet boot on 40 hours of data
    spent 0.37–0.50 s here, 0.06 s so)."""
    found: set[tuple[str, str, float]] = set()
    spans: dict[str, dict[str, tuple[float, float]]] = {}
    for a in windows:
        of_point = spans.setdefault(a.point, {})
        lo, hi = of_point.get(a.period, (a.start, a.start))
        of_point[a.period] = (min(lo, a.start), max(hi, a.start))
    for point, periods in spans.items():
        for period, (lo, hi) in periods.items():
            rows = _STORED_STARTS.run(conn, point, period, lo, hi).fetchall()
            found.update((point, period, float(start)) for (start,) in rows)
    return found


def select_months(
    conn: Connection, points: Sequence[str], count: int, utc_offset_s: int
) -> dict[str, dict[str, Decimal]]:
    """The latest ``count`` usable monthly totals of each point, by plant-local label
    ``YYYY-MM``."""
    offset = timedelta(seconds=utc_offset_s)
    found: dict[str, dict[str, Decimal]] = {}
    for point in points:
        months = {
            f"{datetime.fromtimestamp(start, UTC) + offset:%Y-%m}": Decimal(value)
            for start, value in _MONTHS.run(conn, point, count).fetchall()
        }
        if months:
            found[point] = months
    return found


def _stored_starts() -> Prepared:
    arms = []
    for table in (derived_settled, derived_recent):
        c = table.c
        arms.append(
            select(c.period_start).where(
                c.point == bindparam("point"),
                c.kind == bindparam("kind"),
                c.period_start >= bindparam("lo"),
                c.period_start <= bindparam("hi"),
            )
        )
    return Prepared(union_all(*arms), ["point", "kind", "lo", "hi"])


def _months() -> Prepared:
    arms = []
    for table in (derived_settled, derived_recent):
        c = table.c
        arms.append(
            select(c.period_start, c.value).where(
                c.point == bindparam("point"),
                c.kind == "month",
                *usable_values(c),
            )
        )
    query = union_all(*arms).order_by(literal_column("period_start").desc())
    return Prepared(query.limit(bindparam("count")), ["point", "count"])


_STORED_STARTS = _stored_starts()
_MONTHS = _months()


async def resume(processor: Processor, store: Store) -> Resumed:
    """Rebuild ``processor`` from ``store`` (before it processes anything): baselines, monthly
    history, and the open windows; returns the windows the store was missing."""
    settings = processor.settings
    points = processor.points
    # replay from the last stored window of the longest real-time period if it keeps its
    # sample count (an hour: it merges back into the day exactly), else of the day
    coarsest = period_name(max(settings.windows))
    level = coarsest if counted(coarsest) else "day"
    integrals = processor.plan.integrals
    plans = await store.run_in_reader(
        lambda c: select_plans(c, points, level, settings.utc_offset_s, integrals)
    )
    counters = [p.id for p in points if p.kind == "counter"]
    months = await store.run_in_reader(
        lambda c: select_months(c, counters, settings.history_months, settings.utc_offset_s)
    )
    emitted: list[Aggregate] = []
    for point in points:
        plan = plans.get(point.id)
        processor.seed(
            point.id, last=None if plan is None else plan.baseline, months=months.get(point.id)
        )
        if plan is not None:
            emitted += processor.rebuild(
                point.id, closed=plan.closed, readings=plan.readings, since=plan.since
            )
    for integral in integrals:
        plan = plans.pop(integral.id, None)  # counted below with its rate's readings
        if plan is not None:
            processor.seed(integral.id, last=plan.baseline)
            emitted += processor.rebuild(
                integral.id, closed=plan.closed, readings=plan.readings, since=plan.since
            )
    emitted += await _rebuild_virtual(processor, store, emitted)
    stored = await store.run_in_reader(lambda c: select_stored(c, emitted)) if emitted else set()
    recovered = tuple(a for a in emitted if (a.point, a.period, a.start) not in stored)
    resumed = Resumed(
        sum(
            1
            for p in plans.values()
            if p.baseline is not None or any(r.quality.usable for r in p.readings)
        ),
        sum(len(m) for m in months.values()),
        sum(len(p.readings) for p in plans.values()),
        recovered,
    )
    log.info(
        "resumed from the store: %d baseline(s), %d monthly total(s), %d reading(s) replayed, "
        "%d window(s) recovered",
        resumed.baselines,
        resumed.months,
        resumed.replayed,
        len(recovered),
    )
    return resumed


# ---- virtual points computed from windows -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Since:
    """Which input windows of one period a window rule is given at a restart: those starting
    after its last stored result of that period or, none stored yet, ending after its first
    stored result of any period; none older than the rules wait for an input."""

    start_after: float
    end_after: float

    def __contains__(self, a: object) -> bool:
        return isinstance(a, Aggregate) and a.start > self.start_after and a.end > self.end_after


def select_virtual_inputs(
    conn: Connection,
    rules: Sequence[WindowRule],
    kinds: Mapping[str, Kind],
    periods: Sequence[str],
    max_lag_s: float,
) -> tuple[dict[tuple[str, str], _Since], dict[str, list[Aggregate]]]:
    """For each window rule and period, which input windows it is given (by rule id and
    period), and the stored ones among them (by rule id). A rule with no result stored yet
    (new) is given none: it starts with the windows closing from now on."""
    c = derived_values.c
    newest = newest_reading_t(conn)
    if newest is None:
        return {}, {}
    oldest = float(newest) - max_lag_s
    lo, hi = 0.0, float(newest) + 2 * 366 * DAY  # every window of the store starts in there
    bounds: dict[tuple[str, str], _Since] = {}
    stored: dict[str, list[Aggregate]] = {}
    for rule in rules:
        out = outputs_of(rule)[0]  # an allocation's targets are written together
        first = _first(conn, select(c.period_start).where(c.point == out).order_by(c.period_start))
        if first is None:
            continue
        found: list[Aggregate] = []
        for period in periods:
            last = select_newest(conn, out, period)
            if last is None:
                since = _Since(float("-inf"), max(float(first), oldest))
            else:
                since = _Since(last.start, oldest)
            bounds[(rule.id, period)] = since
            for x in dict.fromkeys(inputs_of(rule)):
                windows = _stored_windows(
                    conn, x, kinds[x], period, lo, hi, end_after=since.end_after
                )
                found += [a for a in windows if a in since]
        stored[rule.id] = found
    return bounds, stored


async def _rebuild_virtual(
    processor: Processor, store: Store, emitted: Sequence[Aggregate]
) -> list[Aggregate]:
    """The window rules' results a restart would otherwise lose (see the module text), rule by
    rule in plan order, each seeing the results of the rules it reads."""
    rules = processor.plan.rules
    if not rules:
        return []
    periods = [period_name(w) for w in processor.settings.windows] + ["day", "month", "year"]
    kinds = processor.plan.kinds
    lag = processor.virtual_max_lag_s
    bounds, stored = await store.run_in_reader(
        lambda c: select_virtual_inputs(c, rules, kinds, periods, lag)
    )
    made: list[Aggregate] = []
    for rule in rules:
        needed = set(inputs_of(rule))
        given: dict[tuple[str, str, float], Aggregate] = {}
        for a in [*emitted, *made]:
            since = bounds.get((rule.id, a.period))
            if a.point in needed and since is not None and a in since:
                given[(a.point, a.period, a.start)] = a
        # a stored window is what went up to the platforms: it wins over its replayed twin
        given.update({(a.point, a.period, a.start): a for a in stored.get(rule.id, [])})
        made += processor.rebuild_virtual(rule.id, given.values())
    return made

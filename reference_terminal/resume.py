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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, func, select

from reference_terminal.config import Point
from reference_terminal.model import Quality, Reading
from reference_terminal.processing.pipeline import Processor
from reference_terminal.processing.settlement import DAY, Aggregate, counted, period_name
from reference_terminal.storage.schema import (
    Derived,
    derived_values,
    readings,
    row_derived,
    row_reading,
)
from reference_terminal.storage.store import Store

log = logging.getLogger(__name__)

_USABLE = [q.value for q in Quality if q.usable]


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
    conn: Connection, point: str, kind: str, period: str, lo: float, hi: float
) -> list[Aggregate]:
    """The point's stored ``period`` windows starting in [lo, hi), rebuilt from their figures
    (``<period>``, ``_max``, ``_min``, ``_first``, ``_last``, ``_count``)."""
    c = derived_values.c
    kinds = [period, *(f"{period}_{f}" for f in ("max", "min", "first", "last", "count"))]
    query = (
        select(derived_values)
        .where(c.point == point, c.kind.in_(kinds), c.period_start >= lo, c.period_start < hi)
        .order_by(c.period_start)
    )
    by_start: dict[float, dict[str, Derived]] = {}
    for row in conn.execute(query).mappings():
        d = row_derived(row)
        by_start.setdefault(d.start, {})[d.kind.removeprefix(period).lstrip("_") or "main"] = d
    out = []
    for figures in by_start.values():
        main = figures.get("main")
        if main is None:
            continue
        value = {name: d.value for name, d in figures.items()}
        count = value.get("count")
        present = [v for v in value.values() if v is not None]
        digits = max((max(0, -int(v.as_tuple().exponent)) for v in present), default=0)
        out.append(
            Aggregate(
                point,
                period,
                main.start,
                main.end,
                "",
                "counter" if kind == "counter" else "gauge",
                # stores written before counts were kept: one sample a window
                int(count) if count is not None else 1,
                value.get("first"),
                value.get("last"),
                value.get("min"),
                value.get("max"),
                None if kind == "counter" else main.value,
                main.value if kind == "counter" else None,
                0,
                digits,
                main.quality,
            )
        )
    return out


def _plan_point(conn: Connection, point: Point, level: str, offset: int) -> _PointPlan | None:
    """Replay from the end of the point's last stored ``level`` window (its first reading if
    none is stored); merge back the stored windows of the day, month and year that are open
    there. Not from the day of its last reading: a restart just after midnight, before the
    closing day's windows were written, would lose that day (and month, and year)."""
    c = readings.c
    d = derived_values.c
    first = conn.execute(select(func.min(c.t)).where(c.point == point.id)).scalar()
    if first is None:
        return None
    stored_until = conn.execute(
        select(func.max(d.period_end)).where(d.point == point.id, d.kind == level)
    ).scalar()
    since = float(first if stored_until is None else stored_until)
    day = _local_day_start(since - 1.0, offset)  # the day open just before ``since``
    local = datetime.fromtimestamp(day + offset, UTC)
    month = day - (local.day - 1) * DAY
    year = datetime(local.year, 1, 1, tzinfo=UTC).timestamp() - offset
    closed = _stored_windows(conn, point.id, point.kind, "month", year, month)
    closed += _stored_windows(conn, point.id, point.kind, "day", month, day)
    closed += _stored_windows(conn, point.id, point.kind, level, day, since)
    usable = c.quality.in_(_USABLE)
    before = (
        select(readings)
        .where(c.point == point.id, c.t < since, usable, c.value.is_not(None))
        .order_by(c.t.desc(), c.id.desc())
        .limit(1)
    )
    row = conn.execute(before).mappings().first()
    after = select(readings).where(c.point == point.id, c.t >= since).order_by(c.t, c.id)
    replay = [row_reading(r) for r in conn.execute(after).mappings()]
    return _PointPlan(since, None if row is None else row_reading(row), closed, replay)


def select_plans(
    conn: Connection, points: Sequence[Point], level: str, offset: int
) -> dict[str, _PointPlan]:
    plans = {p.id: _plan_point(conn, p, level, offset) for p in points}
    return {point: plan for point, plan in plans.items() if plan is not None}


def select_stored(conn: Connection, windows: Sequence[Aggregate]) -> set[tuple[str, str, float]]:
    """Which of ``windows`` the store has: (point, period, start)."""
    c = derived_values.c
    found: set[tuple[str, str, float]] = set()
    by_point: dict[str, list[Aggregate]] = {}
    for a in windows:
        by_point.setdefault(a.point, []).append(a)
    for point, some in by_point.items():
        query = select(c.kind, c.period_start).where(
            c.point == point,
            c.kind.in_(sorted({a.period for a in some})),
            c.period_start >= min(a.start for a in some),
        )
        found.update((point, kind, start) for kind, start in conn.execute(query))
    return found


def select_months(
    conn: Connection, points: Sequence[str], count: int, utc_offset_s: int
) -> dict[str, dict[str, Decimal]]:
    """The latest ``count`` usable monthly totals of each point, by plant-local label
    ``YYYY-MM``."""
    c = derived_values.c
    offset = timedelta(seconds=utc_offset_s)
    found: dict[str, dict[str, Decimal]] = {}
    for point in points:
        query = (
            select(c.period_start, c.value)
            .where(
                c.point == point,
                c.kind == "month",
                c.quality.in_(_USABLE),
                c.value.is_not(None),
            )
            .order_by(c.period_start.desc())
            .limit(count)
        )
        months = {
            f"{datetime.fromtimestamp(start, UTC) + offset:%Y-%m}": Decimal(value)
            for start, value in conn.execute(query)
        }
        if months:
            found[point] = months
    return found


async def resume(processor: Processor, store: Store) -> Resumed:
    """Rebuild ``processor`` from ``store`` (before it processes anything): baselines, monthly
    history, and the open windows; returns the windows the store was missing."""
    settings = processor.settings
    points = processor.points
    # replay from the last stored window of the longest real-time period if it keeps its
    # sample count (an hour: it merges back into the day exactly), else of the day
    coarsest = period_name(max(settings.windows))
    level = coarsest if counted(coarsest) else "day"
    plans = await store.run_in_reader(
        lambda c: select_plans(c, points, level, settings.utc_offset_s)
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

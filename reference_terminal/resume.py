"""Picking up after a restart (a power cut, a new configuration): processing starts from what
the store holds, so nothing measured across the restart goes uncounted.

A counter's increment is the difference between two readings. Without its last usable reading
before the restart as the baseline, the first reading after it would only start a new series,
and the energy (or gas, or steam) used meanwhile would never be counted. Its complete months go
back too, for the second check against history (CSMT §8.1.2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, select

from reference_terminal.model import Quality, Reading
from reference_terminal.processing.pipeline import Processor
from reference_terminal.storage.schema import derived_values, readings, row_reading
from reference_terminal.storage.store import Store

log = logging.getLogger(__name__)

_USABLE = [q.value for q in Quality if q.usable]


@dataclass(frozen=True, slots=True)
class Resumed:
    baselines: int  # counters given their last usable reading
    months: int  # monthly totals restored for the second check


def select_baselines(conn: Connection, points: Sequence[str]) -> dict[str, Reading]:
    """Each point's latest usable reading (one backwards seek of the (point, t) index each)."""
    c = readings.c
    found: dict[str, Reading] = {}
    for point in points:
        query = (
            select(readings)
            .where(c.point == point, c.quality.in_(_USABLE), c.value.is_not(None))
            .order_by(c.t.desc(), c.id.desc())
            .limit(1)
        )
        row = conn.execute(query).mappings().first()
        if row is not None:
            found[point] = row_reading(row)
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
    """Seed ``processor``'s counters from ``store`` (before it processes anything)."""
    counters = [p.id for p in processor.points if p.kind == "counter"]
    if not counters:
        return Resumed(0, 0)
    settings = processor.settings
    baselines = await store.run_in_reader(lambda c: select_baselines(c, counters))
    months = await store.run_in_reader(
        lambda c: select_months(c, counters, settings.history_months, settings.utc_offset_s)
    )
    for point in counters:
        processor.seed(point, last=baselines.get(point), months=months.get(point))
    resumed = Resumed(len(baselines), sum(len(m) for m in months.values()))
    log.info(
        "resumed from the store: %d counter baseline(s), %d monthly total(s)",
        resumed.baselines,
        resumed.months,
    )
    return resumed

"""Retention (ISC-2 §7.2.3(4): ≥ 6 months online) and capacity sizing (ISC-2 §9.2: 5 years).

``purge`` deletes what is older than the retention period in small batches, each its own short
transaction run by the store's writer in turn with the writes, so acquisition never waits
behind a long delete. Readings are found per point through the (point, t) index; no index on
time alone is kept, because it would slow every insert for a job that runs once a day.

``sizing`` estimates the disk space for N points read every P seconds over Y years from the
row size *measured* on a scratch SQLite store with realistic rows (see ``measured_row_sizes``).
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, and_, bindparam, literal, select

from reference_terminal.model import Quality, Reading
from reference_terminal.storage.migrations import migrate
from reference_terminal.storage.schema import (
    READING_COLUMNS,
    Derived,
    derived_recent,
    derived_row,
    derived_settled,
    events,
    reading_values,
    readings_recent,
    readings_settled,
)
from reference_terminal.storage.statements import Prepared
from reference_terminal.storage.store import Store, checkpoint, list_points, make_engine, sqlite_url

#: ISC-2 §7.2.3(4): local history of at least 6 months (183 days covers any 6 months).
MIN_RETENTION_DAYS = 183
DAY_S = 86400.0
YEAR_DAYS = 365.25


@dataclass(frozen=True, slots=True)
class Purged:
    cutoff: float  # everything before this instant was deleted (POSIX seconds)
    readings: int
    events: int
    derived: int


def cutoff_for(retention_days: float, now: float) -> float:
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"retention of {retention_days} days is below the {MIN_RETENTION_DAYS} days "
            "(6 months) of local history ISC-2 §7.2.3(4) requires"
        )
    return now - retention_days * DAY_S


def _delete_from_both(
    conn: Connection, tables: tuple[Table, Table], which: Callable[[Table], Any], batch: int
) -> int:
    """Delete up to ``batch`` rows matching ``which`` from a settled table and its recent one."""
    deleted = 0
    for table in tables:
        ids = conn.scalars(select(table.c.id).where(which(table)).limit(batch - deleted)).all()
        if ids:
            conn.execute(table.delete().where(table.c.id.in_(ids)))
        deleted += len(ids)
        if deleted >= batch:
            break
    return deleted


def _older_of(point: str, cutoff: float) -> Callable[[Table], Any]:
    return lambda t: and_(t.c.point == point, t.c.t < cutoff)


def _has_older(table: Table) -> Prepared:
    c = table.c
    return Prepared(
        select(literal(1)).where(c.point == bindparam("point"), c.t < bindparam("cutoff")).limit(1),
        ("point", "cutoff"),
    )


#: Whether a point has a reading older than the cutoff, in either table: an index seek each,
#: compiled once. Built per point through SQLAlchemy, the selects that found nothing to delete
#: took a boot's purge of 200 points 107 ms; now 8.5 (``bench_store``: purge_nothing_due).
_HAS_OLDER: Final = (_has_older(readings_settled), _has_older(readings_recent))


def _delete_readings(
    conn: Connection, points: Sequence[str], cutoff: float, batch: int
) -> tuple[int, int]:
    """Delete up to ``batch`` readings of ``points``, point by point; the rows deleted and how
    many of ``points`` have none left. One transaction covers as many points as its batch
    allows: most have nothing to delete, and a commit each was a boot's hundreds of fsyncs."""
    deleted = 0
    for done, point in enumerate(points):
        if not any(has.run(conn, point, cutoff).fetchone() for has in _HAS_OLDER):
            continue
        deleted += _delete_from_both(
            conn,
            (readings_settled, readings_recent),
            _older_of(point, cutoff),
            batch - deleted,
        )
        if deleted >= batch:
            return deleted, done
    return deleted, len(points)


def _delete_events(conn: Connection, cutoff: float, batch: int) -> int:
    c = events.c
    ids = conn.scalars(select(c.id).where(c.t < cutoff).limit(batch)).all()
    if ids:
        conn.execute(events.delete().where(c.id.in_(ids)))
    return len(ids)


def _delete_derived(conn: Connection, cutoff: float, batch: int) -> int:
    return _delete_from_both(
        conn, (derived_settled, derived_recent), lambda t: t.c.period_end <= cutoff, batch
    )


async def purge(
    store: Store, retention_days: float, *, now: float, batch_rows: int = 1000
) -> Purged:
    """Delete readings and events older than ``retention_days`` before ``now``, and derived
    values whose period ended by then, ``batch_rows`` rows per transaction."""
    cutoff = cutoff_for(retention_days, now)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be ≥ 1, got {batch_rows}")

    async def batches(step: Callable[[Connection], int]) -> int:
        total = 0
        while True:
            n = await store.run_in_writer(step)
            total += n
            if n < batch_rows:
                return total

    n_readings = 0
    points = await store.points()
    while points:
        n, done = await store.run_in_writer(
            functools.partial(_delete_readings, points=points, cutoff=cutoff, batch=batch_rows)
        )
        n_readings += n
        points = points[done:]
    n_events = await batches(functools.partial(_delete_events, cutoff=cutoff, batch=batch_rows))
    n_derived = await batches(functools.partial(_delete_derived, cutoff=cutoff, batch=batch_rows))
    return Purged(cutoff, n_readings, n_events, n_derived)


def purge_engine(
    engine: Engine, retention_days: float, *, now: float, batch_rows: int = 1000
) -> Purged:
    """``purge`` for maintenance without a running store (the terminal stopped)."""
    cutoff = cutoff_for(retention_days, now)

    def batches(step: Callable[[Connection], int]) -> int:
        total = 0
        while True:
            with engine.begin() as conn:
                n = step(conn)
            total += n
            if n < batch_rows:
                return total

    with engine.connect() as conn:
        points = list_points(conn)
    n_readings = 0
    while points:
        with engine.begin() as conn:
            n, done = _delete_readings(conn, points, cutoff, batch_rows)
        n_readings += n
        points = points[done:]
    n_events = batches(functools.partial(_delete_events, cutoff=cutoff, batch=batch_rows))
    n_derived = batches(functools.partial(_delete_derived, cutoff=cutoff, batch=batch_rows))
    return Purged(cutoff, n_readings, n_events, n_derived)


# ---- sizing ------------------------------------------------------------------------------------

#: Derived values per point and day: 24 hourly increments, the daily settlement with its max and
#: min (CSMT §8.2.1), and the monthly and yearly settlements spread over their days.
DERIVED_PER_POINT_DAY = 24 + 3 + 12 / YEAR_DAYS + 1 / YEAR_DAYS


@dataclass(frozen=True, slots=True)
class RowSizes:
    reading: float  # bytes per stored reading, table and index together
    derived: float  # bytes per derived value


def sample_reading(i: int, points: int = 100, period_s: float = 60.0) -> Reading:
    """A realistic reading: an energy register (DL/T 645 XXXXXX.XX kWh) of one of ``points``
    meters with its BCD bytes as raw text, read every ``period_s``."""
    point = i % points
    register = (10_000_000 + i * 37) % 100_000_000  # 8 BCD digits, XXXXXX.XX
    bcd = f"{register:08d}"
    return Reading(
        point=f"EM{point:03d}.ep_forward",
        t=1_767_225_600.0 + (i // points) * period_s,
        raw=" ".join(bcd[k : k + 2] for k in (6, 4, 2, 0)),  # low byte first
        value=Decimal(register).scaleb(-2),
        quality=Quality.GOOD,
        digits=2,
        device=f"meter-{point:03d}",
    )


def _file_bytes(engine: Engine) -> int:
    checkpoint(engine)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    return int((pages - free) * size)


@functools.cache
def measured_row_sizes(samples: int = 10_000) -> RowSizes:
    """Bytes per reading and per derived value, measured by filling a scratch SQLite store."""
    with tempfile.TemporaryDirectory(prefix="carbench-sizing-") as tmp:
        engine = make_engine(sqlite_url(Path(tmp) / "sizing.db"))
        try:
            migrate(engine)
            empty = _file_bytes(engine)
            rows: list[dict[str, Any]] = [
                dict(zip(READING_COLUMNS, reading_values(sample_reading(i)), strict=True))
                for i in range(samples)
            ]
            with engine.begin() as conn:
                conn.execute(readings_settled.insert(), rows)
            with_readings = _file_bytes(engine)
            derived = [
                derived_row(
                    Derived(
                        point=f"EM{i % 100:03d}.ep_forward",
                        kind="hour",
                        start=1_767_225_600.0 + (i // 100) * 3600.0,
                        end=1_767_225_600.0 + (i // 100 + 1) * 3600.0,
                        value=Decimal(1000 + i).scaleb(-2),
                        quality=Quality.GOOD,
                        computed_at=1_767_225_600.0 + (i // 100 + 1) * 3600.0,
                    )
                )
                for i in range(samples)
            ]
            with engine.begin() as conn:
                conn.execute(derived_settled.insert(), derived)
            with_derived = _file_bytes(engine)
        finally:
            engine.dispose()
    return RowSizes(
        reading=(with_readings - empty) / samples, derived=(with_derived - with_readings) / samples
    )


def sizing(points: int, period_s: float, years: float = 5.0) -> int:
    """Bytes of local storage for ``points`` read every ``period_s`` over ``years`` (ISC-2
    §9.2), readings and derived values, from the measured row sizes; events are few and left
    out. SQLite reuses the pages retention frees, so the file stays near this size."""
    if points < 0 or period_s <= 0 or years < 0:
        raise ValueError("points and years must be ≥ 0 and period_s > 0")
    sizes = measured_row_sizes()
    days = years * YEAR_DAYS
    n_readings = points * days * DAY_S / period_s
    n_derived = points * days * DERIVED_PER_POINT_DAY
    return math.ceil(n_readings * sizes.reading + n_derived * sizes.derived)

"""Plant databases: a DCS or MES historian that records its tags as plant time passes.

One database per :class:`~simulators.fleet.schema.SqlHistorian` meter: a SQLite file
``<work dir>/<meter id>.sqlite`` by default, or the SQLAlchemy URL the fleet gives (PostgreSQL
…). Three tables, named from the meter's ``prefix`` (``plant`` by default), the way plant
historians lay them out (a tag dictionary, an archive, and a snapshot of the latest values —
Wonderware's Tag/History/Live, PI's point table, archive and snapshot)::

    <prefix>_tags     tag (key), description (the plant quantity), unit, decimals
    <prefix>_history  tag, ts, value, quality      one row per tag per recording; index (tag, ts)
    <prefix>_live     tag (key), ts, value, quality   each tag's latest recording

``ts`` is the recording time in UTC (naive in SQLite). ``value`` is a double, what historians
store: the value the system shows (``MeterRuntime.read``: the plant's truth with value faults,
cut to the tag's decimals), whose double reads back as the same shortest decimal. ``quality`` is
the OPC DA quality byte the DCS got from its field device (:data:`GOOD` …); a bad one comes with
a NULL value. The bench owns these tables: they are emptied when the historian starts, so a
re-run never reads an earlier run's rows.

Every ``interval_s`` of fleet time one row per tag goes into history and live, in one
transaction, stamped with the recording time; history older than ``history_days`` is deleted
once an hour. The terminal reads :func:`live_query`'s (tag, value) rows, a good value or NULL.

Communication faults (between the DCS and its field devices), drawn once per recording; a fault
with ``quantities`` hits only those tags:

* ``no_answer`` → quality 24 (bad, communication failure), value NULL;
* ``exception`` → 16 (bad, sensor failure), value NULL;
* ``garbled``, ``truncated``, ``bad_checksum`` → 68 (uncertain, last usable value) with the
  last good value;
* ``slow`` → the recording is written ``delay_ms`` late, stamped with its reading time.

Writes are synchronous on the event loop: a recording is a few rows, and the row must be in the
table at the time it is stamped with (virtual time stands still meanwhile).
"""

from __future__ import annotations

import asyncio  # TaskGroup only: time comes from fleet.clock
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
)

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Fault, NamedPoint, SqlHistorian
from simulators.plant import PlantTimeError

PROTOCOL: Final = "sql"
#: OPC DA quality bytes (the historian's quality column).
GOOD: Final = 192
UNCERTAIN_LAST_USABLE: Final = 68
BAD_COMM_FAILURE: Final = 24
BAD_SENSOR_FAILURE: Final = 16
BAD_WAITING_FOR_INITIAL_DATA: Final = 32
FAULT_QUALITY: Final = {
    "no_answer": BAD_COMM_FAILURE,
    "exception": BAD_SENSOR_FAILURE,
    "garbled": UNCERTAIN_LAST_USABLE,
    "truncated": UNCERTAIN_LAST_USABLE,
    "bad_checksum": UNCERTAIN_LAST_USABLE,
}
PRUNE_EVERY_S: Final = 3600.0


class HistorianError(RuntimeError):
    """A historian that could not set up or write its database."""


@dataclass(frozen=True, slots=True)
class Tables:
    tags: Table
    history: Table
    live: Table


def tables(prefix: str, metadata: MetaData | None = None) -> Tables:
    """The historian's three tables (see the module docstring)."""
    metadata = metadata or MetaData()
    history = Table(
        f"{prefix}_history",
        metadata,
        Column("tag", String(64), nullable=False),
        Column("ts", DateTime(timezone=True), nullable=False),
        Column("value", Float, nullable=True),
        Column("quality", Integer, nullable=False),
    )
    Index(f"{prefix}_history_tag_ts", history.c.tag, history.c.ts)
    return Tables(
        tags=Table(
            f"{prefix}_tags",
            metadata,
            Column("tag", String(64), primary_key=True),
            Column("description", String(200), nullable=False),
            Column("unit", String(32), nullable=False),
            Column("decimals", Integer, nullable=False),
        ),
        history=history,
        live=Table(
            f"{prefix}_live",
            metadata,
            Column("tag", String(64), primary_key=True),
            Column("ts", DateTime(timezone=True), nullable=False),
            Column("value", Float, nullable=True),
            Column("quality", Integer, nullable=False),
        ),
    )


def live_query(prefix: str) -> str:
    """The query a terminal is configured with: each tag's latest value, NULL unless good."""
    return f"SELECT tag, CASE WHEN quality >= {GOOD} THEN value END AS value FROM {prefix}_live"


def database_url(spec: SqlHistorian, work_dir: Path) -> str:
    """The historian's database: the fleet's URL, or a SQLite file in ``work_dir``."""
    if spec.url is not None:
        return spec.url
    return f"sqlite:///{(work_dir / f'{spec.id}.sqlite').resolve()}"


def _engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(connection: Any, _record: Any) -> None:
            # WAL: the terminal's reads never wait for a recording, nor a recording for them
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


Row = dict[str, Any]


class Historian:
    """One historian's database: set up, one recording at a time, closed."""

    def __init__(self, fleet: FleetRuntime, meter: MeterRuntime, url: str) -> None:
        spec = meter.spec
        if not isinstance(spec, SqlHistorian):
            raise TypeError(f"meter {meter.id} is {spec.protocol}, not {PROTOCOL}")
        self.fleet = fleet
        self.meter = meter
        self.spec = spec
        self.url = url
        self.tables = tables(spec.prefix)
        self.engine = _engine(url)
        self._last: dict[str, float] = {}  # last good value of each tag, for Uncertain rows
        self._pruned = float("-inf")
        self._new = True  # live has no rows yet: the first recording inserts them

    def open(self) -> None:
        """Create the tables if need be, empty them, list the tags."""
        t = self.tables
        try:
            t.tags.metadata.create_all(self.engine)
            with self.engine.begin() as db:
                for table in (t.live, t.history, t.tags):
                    db.execute(table.delete())
                db.execute(
                    t.tags.insert(),
                    [
                        {
                            "tag": tag.name,
                            "description": tag.quantity,
                            "unit": self.fleet.plant.quantity(tag.quantity).unit,
                            "decimals": tag.decimals,
                        }
                        for tag in self.spec.tags
                    ],
                )
        except Exception as exc:
            raise HistorianError(
                f"historian {self.meter.id}: cannot set up {self.url}: {exc}"
            ) from exc

    def recording(self, t: float) -> tuple[list[Row], Fault | None]:
        """The rows of a recording at ``t``, and the communication fault it played, if any."""
        stamp = datetime.fromtimestamp(t, UTC)
        fault = self.meter.communication_fault(t)
        rows = []
        for tag in self.spec.tags:
            hit = fault if _hits(fault, tag) else None
            value: float | None
            if hit is not None and hit.kind in FAULT_QUALITY:
                quality = FAULT_QUALITY[hit.kind]
                value = self._last.get(tag.name) if quality == UNCERTAIN_LAST_USABLE else None
            else:
                try:
                    value = float(self.meter.read(tag, t))
                    quality = GOOD
                    self._last[tag.name] = value
                except PlantTimeError:  # before the plant's start there is nothing to record
                    value, quality = None, BAD_WAITING_FOR_INITIAL_DATA
            rows.append({"tag": tag.name, "ts": stamp, "value": value, "quality": quality})
        return rows, fault

    def write(self, rows: list[Row], t: float) -> None:
        """Append ``rows`` to history and make them the live values (one transaction)."""
        live = self.tables.live
        history = self.tables.history
        with self.engine.begin() as db:
            db.execute(history.insert(), rows)
            if self._new:
                db.execute(live.insert(), rows)
                self._new = False
            else:
                db.execute(
                    live.update()
                    .where(live.c.tag == bindparam("b_tag"))
                    .values(
                        ts=bindparam("ts"), value=bindparam("value"), quality=bindparam("quality")
                    ),
                    [{**row, "b_tag": row["tag"]} for row in rows],
                )
            if t - self._pruned >= PRUNE_EVERY_S:
                cutoff = datetime.fromtimestamp(t - self.spec.history_days * 86400.0, UTC)
                db.execute(history.delete().where(history.c.ts < cutoff))
                self._pruned = t

    def close(self) -> None:
        self.engine.dispose()


def _hits(fault: Fault | None, tag: NamedPoint) -> bool:
    return fault is not None and (not fault.quantities or tag.quantity in fault.quantities)


async def serve_sql_historians(fleet: FleetRuntime, work_dir: Path) -> None:
    """Run every historian of the fleet until cancelled (SQLite files go to ``work_dir``).

    Returns at once if the fleet has none.
    """
    meters = [m for m in fleet.meters.values() if isinstance(m.spec, SqlHistorian)]
    async with asyncio.TaskGroup() as group:
        for meter in meters:
            assert isinstance(meter.spec, SqlHistorian)
            url = database_url(meter.spec, work_dir)
            group.create_task(_serve_one(fleet, meter, url), name=f"historian {meter.id}")


async def _serve_one(fleet: FleetRuntime, meter: MeterRuntime, url: str) -> None:
    with _opened(Historian(fleet, meter, url)) as historian:
        rows, _ = historian.recording(fleet.now())
        historian.write(rows, fleet.now())  # values in place before the terminal first reads
        fleet.listening(meter.id, PROTOCOL, url)
        clock = fleet.clock
        interval = historian.spec.interval_s
        due = clock.monotonic()
        while True:
            await fleet.pushing()  # FleetRuntime.push
            due = max(due + interval, clock.monotonic())
            await clock.sleep(max(0.0, due - clock.monotonic()))
            t = fleet.now()
            rows, fault = historian.recording(t)
            if fault is not None and fault.kind == "slow":
                await clock.sleep(fault.delay_ms / 1000.0)
            historian.write(rows, t)


@contextlib.contextmanager
def _opened(historian: Historian) -> Iterator[Historian]:
    historian.open()
    try:
        yield historian
    finally:
        historian.close()

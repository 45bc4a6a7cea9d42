"""The terminal's durable local store (ISC-2 §9.2, §7.2.3(4); CSMT §9.2).

``Store`` is used from the terminal's event loop and never blocks it:

- ``await store.write(readings)`` returns only once the rows are *on disk*. SQLite: appended
  and synced to the intake log (``intake_log.py``), which the writer applies to the database
  behind (WAL with ``synchronous=FULL``, which lost no acknowledged commit in the power-cut
  test of FACTS.md); without the log, committed with FULL. PostgreSQL:
  ``synchronous_commit=on``; MariaDB: InnoDB with ``innodb_flush_log_at_trx_commit=1``,
  checked and warned about when it is not.
- One writer thread owns all writes. While it commits, new writes queue up; it then takes as
  many whole writes as fit in ``batch_max`` rows into the next transaction (group commit), so
  a hundred acquisition tasks writing a few readings each share one fsync (writes made in the
  same turn of the event loop reach the writer together, so they always do). One ``write`` call
  is one atomic unit: all its rows commit together or not at all; a call larger than
  ``batch_max`` gets a transaction of its own. Writes commit in the order they were made.
- A write whose rows are invalid fails alone (with a clear error) and does not fail the others
  in its group; a database error retries each write of the group on its own, so one bad write
  cannot make the others fail. A connection lost during COMMIT fails the writes although the
  server may have committed them (the usual ambiguity): a failed write may be in the store,
  an acknowledged one always is.
- ``write_behind`` is for figures computed from rows already stored (closed windows): they are
  written in small transactions of their own whenever no write is waiting, so a minute's close
  of every point never holds up the readings arriving meanwhile; ``close`` writes them all.
- Cancelling a ``write`` before it was taken stops it; after that, it commits anyway. With the
  intake log a small write is taken at the end of the loop's turn in which it was made.
- Queries run in a small thread pool on their own connections (SQLite WAL readers do not block
  the writer) and see every write that has been acknowledged.

Recent and settled: readers see a view over two tables for readings and for derived values
(``schema.py``). The writer puts new rows in the recent tables, keyed time first, where a
minute of every point fills a few pages; once they hold ``settle_rows`` rows and the writer has
nothing else to do, it moves them all into the settled tables (keyed point first, for a
point's history) in one transaction, so each point's page there is written once
per move rather than once per minute. Beside a synced intake log, that transaction commits
without its own fsync and then goes to the disk in steps, with its checkpoint
(``writeback.py``). A derived value rewritten for a period already settled (a recomputation)
is updated where it is, keeping its id, as it always was.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Index,
    MetaData,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from reference_terminal.config import Storage
from reference_terminal.model import Event, Reading, figures_of
from reference_terminal.storage import writeback
from reference_terminal.storage.intake_log import (
    IntakeLog,
    IntakeLogError,
    Rows,
    log_path,
    payload_of,
    rows_of,
)
from reference_terminal.storage.migrations import migrate
from reference_terminal.storage.schema import (
    DERIVED_COLUMNS,
    EVENT_COLUMNS,
    FIGURE_COLUMNS,
    FIGURE_SUFFIXES,
    READING_COLUMNS,
    RECENT_AND_SETTLED,
    Derived,
    StoreError,
    derived_extent,
    derived_recent,
    derived_settled,
    derived_tuple,
    derived_values,
    event_values,
    events,
    intake_state,
    reading_values,
    readings,
    readings_recent,
    readings_settled,
    row_derived,
    row_event,
    row_reading,
    usable_values,
    values_derived,
    values_reading,
    window_figures,
)
from reference_terminal.storage.statements import Prepared, insert_rows
from reference_terminal.storage.threads import ThreadPlacement

T = TypeVar("T")
#: Told of a write once it is acknowledged: its readings and derived values.
OnDurable = Callable[[Sequence[Reading], Sequence[Derived]], None]

log = logging.getLogger(__name__)

DEFAULT_URL = Storage().url
DEFAULT_BATCH_MAX = Storage().batch_max
#: Derived values per statement of a write behind: about a millisecond of the writer's time,
#: what a write arriving meanwhile waits for (with the commit) ...
DEFAULT_BEHIND_CHUNK = 100
#: ... and per transaction, while nothing else waits (a commit per chunk was the writer's
#: largest cost in a 48-hour works-fleet scenario: a minute's close is a thousand values).
BEHIND_TRANSACTION_ROWS = 5000
#: A backlog this small for each write the writer applies next is written in their
#: transaction (a commit fewer a minute on the works fleet: its counters' windows close as
#: their readings arrive).
BEHIND_WITH_WRITES = 500
#: Calls queued together that share one transaction, at most (``_Writer._run_calls``).
CALLS_PER_TRANSACTION = 64
#: SQLite: how often the checkpointer thread folds the WAL into the database while writes come.
CHECKPOINT_INTERVAL_S = 0.25
#: SQLite: WAL pages after which the writer checkpoints by itself (SQLite's default is 1 000).
WRITER_AUTOCHECKPOINT = 20_000
#: ... and with no checkpointer thread (``Storage.checkpoint_thread``).
WRITER_ALONE_AUTOCHECKPOINT = 1_000
#: SQLite: the page size of a new database. A commit writes each page it touched to the WAL,
#: one write call for its frame header and one for the page; with 16 KiB pages a commit of a
#: minute's readings touches half as many (measured on a 6-hour works-fleet scenario: 146 000
#: WAL writes instead of 270 000, 29.7 s instead of 36.1; 32 and 64 KiB were no faster).
PAGE_SIZE = 16384
#: SQLite: the writer's page cache (KiB), an upper bound. Each point appends to its own leaf of
#: each index, so a minute of a 200-point plant touches on the order of a thousand pages (a
#: reading and five window figures per point), more than SQLite's default 2 MiB holds. Measured
#: beside the LIFO pool: a works-fleet scenario 14 % faster over four virtual hours than with
#: neither, 7 % with the pool alone.
WRITER_CACHE_KIB = 64 * 1024
#: ... and every other connection's (the readers'). Each read transaction after a write starts
#: with an empty cache (WAL mode), but a query reading a point's history touches its pages
#: again and again: with SQLite's default 2 MiB, the scenario's check of six virtual hours read
#: the same pages through the disk over and over (13.5 s against 1.4 s with 16 MiB).
READER_CACHE_KIB = 16 * 1024
#: Rows the recent tables gather before the writer settles them (module text).
DEFAULT_SETTLE_ROWS = Storage().settle_rows
#: ... and how many it may hold before it settles them even while writes keep coming.
SETTLE_OVERDUE = 4
#: How long the writer gathers intake-log records before applying them (``_Writer._linger``).
DEFAULT_LINGER_S = Storage().apply_linger_ms / 1000
#: Where the store's threads run, and how readily those behind the intake log yield the CPU.
DEFAULT_PLACEMENT = ThreadPlacement(background_nice=Storage().background_nice)
#: How long a query waits for acknowledged writes to reach the database before it fails.
READ_WAIT_S = 30.0
#: An intake log this large waits for the database to catch up before it grows further.
LOG_MAX_BYTES = 256 << 20
#: A turn of the event loop whose writes hold at most this many rows logs them itself, when
#: the intake thread has nothing in hand: its append and fdatasync take ~0.3 ms, and the two
#: hand-overs between threads cost more than that (measured with bench_edge_latency). Larger
#: writes go to the thread, so the loop never stops for long.
INLINE_INTAKE_ROWS = 1000


class StoreClosed(StoreError):
    """The store was closed; nothing more can be written or read."""


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{Path(path)}"


# ---- engines -----------------------------------------------------------------------------------


#: SQLite's synchronous settings a store may run with; FULL is the only durable one in WAL mode
#: (FACTS.md: NORMAL lost acknowledged commits on a power cut, OFF whole tables).
SYNCHRONOUS = ("FULL", "NORMAL", "OFF")


def _sqlite_on_connect(busy_timeout_s: float, synchronous: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (see _sqlite_on_begin), so transactions, DDL included,
        # are real transactions and the writer can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new database's; else no-op
            mode = _wal(cursor, busy_timeout_s)
            if mode != "wal":
                raise StoreError(
                    f"SQLite would not switch to WAL mode (journal_mode is {mode!r}); "
                    "the file system may not support it (network file systems do not)"
                )
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
            # statement journals (an upsert of many rows, a savepoint) in memory, not in files
            # under /var/tmp: only a failing statement's own rollback ever reads one
            cursor.execute("PRAGMA temp_store = MEMORY")
        finally:
            cursor.close()

    return on_connect


def _wal(cursor: Any, timeout_s: float) -> str:
    """Put the database in WAL mode (once per file). Switching modes needs an exclusive lock
    and SQLite's busy handler does not cover it, so openers racing on a new file retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode != "wal":
                mode = str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            return mode
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _postgres_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Whatever the server default, a commit is acknowledged only once it is flushed to disk.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO on")
    dbapi_connection.commit()


def make_engine(
    url: str | URL, *, busy_timeout_s: float = 10.0, synchronous: str = "FULL"
) -> Engine:
    """An engine set up for durable writes: SQLite (WAL, synchronous=FULL, busy timeout),
    PostgreSQL (psycopg 3) or MariaDB/MySQL (PyMySQL, utf8mb4). ``synchronous`` weakens SQLite
    on purpose (a bench proving its power cuts catch a weak terminal)."""
    if synchronous not in SYNCHRONOUS:
        raise StoreError(f"synchronous={synchronous!r}: SQLite takes one of {SYNCHRONOUS}")
    try:
        u = make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"storage url {str(url)!r} is not a database URL: {exc}") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        database = u.database or ""
        if database in ("", ":memory:") or u.query.get("mode") == "memory":
            raise StoreError(
                f"storage url {u!s} is an in-memory SQLite database: the store must be durable "
                "and shared between its writer and readers, give it a file (sqlite:///path.db)"
            )
        if u.query.get("uri") not in ("true", "1"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # LIFO: the writer takes back the connection it just returned. In WAL mode a
        # connection drops its page cache whenever another one wrote since, so handing the
        # writer the pool's connections in turn (FIFO) read every page it touched anew
        # (measured: 114 000 against 56 000 page reads in a virtual hour of the works fleet).
        engine = create_engine(u, connect_args={"timeout": busy_timeout_s}, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_on_connect(busy_timeout_s, synchronous))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        # positional parameters: the writer's executemany of tuples is ~1.6× faster than dicts
        engine = create_engine(u, pool_pre_ping=True, paramstyle="format")
        event.listen(engine, "connect", _postgres_on_connect)
        return engine
    if backend in ("mysql", "mariadb"):
        if "+" not in u.drivername:
            u = u.set(drivername=f"{backend}+pymysql")
        if "charset" not in u.query:
            u = u.update_query_dict({"charset": "utf8mb4"})
        return create_engine(u, pool_pre_ping=True, pool_recycle=3600)
    raise StoreError(
        f"storage url {u!s}: backend {backend!r} is not supported "
        "(use sqlite:///…, postgresql://… or mariadb://… / mysql://…)"
    )


def durability(conn: Connection) -> tuple[str, bool]:
    """What makes a commit durable on this connection's backend, and whether it is enough."""
    backend = conn.dialect.name
    if backend == "sqlite":
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(level or 0), str(level))
        # WAL + NORMAL lost acknowledged commits in the power-cut test (FACTS.md); FULL did not
        enough = mode == "wal" and sync in ("FULL", "EXTRA")
        return f"sqlite journal_mode={mode} synchronous={sync}", enough
    if backend == "postgresql":
        fsync = conn.exec_driver_sql("SHOW fsync").scalar()
        commit = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
        return f"postgresql fsync={fsync} synchronous_commit={commit}", fsync == "on" and (
            commit in ("on", "remote_write", "remote_apply", "local")
        )
    flush = conn.exec_driver_sql("SELECT @@innodb_flush_log_at_trx_commit").scalar()
    return f"{backend} innodb_flush_log_at_trx_commit={flush}", str(flush) == "1"


# ---- queries (synchronous; the Store runs them in its reader threads) ---------------------------


def list_points(conn: Connection) -> list[str]:
    """Every point with readings, sorted: the settled ones by a loose index scan of (point, t),
    one index seek per point instead of a scan of five years of rows; the recent ones (a few
    minutes' worth) by a plain scan."""
    settled = conn.execute(
        text(
            "WITH RECURSIVE p(point) AS ("
            " SELECT MIN(point) FROM readings_settled"
            " UNION ALL"
            " SELECT (SELECT MIN(r.point) FROM readings_settled r WHERE r.point > p.point)"
            " FROM p WHERE p.point IS NOT NULL)"
            " SELECT point FROM p WHERE point IS NOT NULL"
        )
    ).scalars()
    recent = conn.scalars(select(readings_recent.c.point).distinct())
    return sorted({*settled, *recent})


def select_readings(
    conn: Connection, point: str, start: float, end: float, limit: int | None = None
) -> list[Reading]:
    c = readings.c
    query = (
        select(readings)
        .where(c.point == point, c.t >= start, c.t < end)
        .order_by(c.t, c.id)
        .limit(limit)
    )
    return [row_reading(row) for row in conn.execute(query).mappings()]


def select_latest(conn: Connection, points: Iterable[str] | None = None) -> dict[str, Reading]:
    out: dict[str, Reading] = {}
    for point in list_points(conn) if points is None else points:
        last = select_last_reading(conn, point)
        if last is not None:
            out[point] = last
    return out


def select_last_reading(
    conn: Connection, point: str, *, before: float | None = None, usable: bool = False
) -> Reading | None:
    """``point``'s last reading (by time, then as stored), of those before ``before`` and, if
    ``usable``, of the usable ones with a value. Asked of each table by its index: through the
    ``readings`` view, or ordered by time and id at once, SQLite gathered and sorted every
    reading of the point first (1–1.5 ms a point on six hours of the works fleet, growing
    with the store)."""
    last = None
    for statement in _last_reading_statements(before=before is not None, usable=usable):
        row = statement.run(conn, point, *(() if before is None else (before,))).fetchone()
        if row is not None and (last is None or (row[1], row[-1]) > (last[1], last[-1])):
            last = row  # later by (t, id)
    return None if last is None else values_reading(*last[:-1])


@functools.cache
def _last_reading_statements(*, before: bool, usable: bool) -> tuple[Prepared, ...]:
    statements = []
    for table in (readings_settled, readings_recent):
        c = table.c
        kept = [c.point == bindparam("point")]
        if usable:
            kept += usable_values(c)
        earlier = [c.t < bindparam("before")] if before else []
        # Not ORDER BY t, id: SQLite does not take the id's order from a time index, it sorts
        # the point's rows; so the time first, then the last stored at it.
        t = select(c.t).where(*kept, *earlier).order_by(c.t.desc()).limit(1).scalar_subquery()
        query = (
            select(*(c[name] for name in READING_COLUMNS), c.id)
            .where(*kept, c.t == t)
            .order_by(c.id.desc())
            .limit(1)
        )
        statements.append(Prepared(query, ["point", *(["before"] * before)]))
    return tuple(statements)


def select_events(
    conn: Connection,
    *,
    kind: str | None = None,
    point: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int | None = None,
) -> list[Event]:
    c = events.c
    query = select(events).order_by(c.t, c.id).limit(limit)
    if kind is not None:
        query = query.where(c.kind == kind)
    if point is not None:
        query = query.where(c.point == point)
    if start is not None:
        query = query.where(c.t >= start)
    if end is not None:
        query = query.where(c.t < end)
    return [row_event(row) for row in conn.execute(query).mappings()]


def derived_query(
    point: str,
    kind: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> Select[Any]:
    """Derived values of ``point`` (of ``kind``, by period start in [start, end)), in order."""
    c = derived_values.c
    query = select(derived_values).where(c.point == point).order_by(c.period_start, c.kind)
    if kind is not None:
        query = query.where(c.kind == kind)
    if start is not None:
        query = query.where(c.period_start >= start)
    if end is not None:
        query = query.where(c.period_start < end)
    return query


def select_derived(
    conn: Connection,
    point: str,
    kind: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[Derived]:
    query = derived_query(point, kind, start, end)
    return [row_derived(row) for row in conn.execute(query).mappings()]


def select_windows(
    conn: Connection,
    point: str,
    kind: str,
    start: float,
    end: float | None = None,
    *,
    end_after: float | None = None,
) -> list[Derived]:
    """``point``'s windows of ``kind`` starting in [start, end) (and ending after
    ``end_after``), each with its figures, by period start: read from their rows (through
    ``derived_values`` a window is a value per figure, each found again by the view)."""
    statement = _windows_statement(ended=end is not None, ending_after=end_after is not None)
    bounds = [b for b in (end, end_after) if b is not None]
    rows = statement.run(conn, point, kind, start, *bounds).fetchall()
    return [values_derived(*row) for row in rows]


@functools.cache
def _windows_statement(*, ended: bool, ending_after: bool) -> Prepared:
    names = ["point", "kind", "start"]
    parts = []
    for table in (derived_settled, derived_recent):
        c = table.c
        where = [
            c.point == bindparam("point"),
            c.kind == bindparam("kind"),
            c.period_start >= bindparam("start"),
        ]
        if ended:
            where.append(c.period_start < bindparam("end"))
        if ending_after:
            where.append(c.period_end > bindparam("end_after"))
        parts.append(select(*(c[name] for name in DERIVED_COLUMNS)).where(*where))
    names += ["end"] * ended + ["end_after"] * ending_after
    return Prepared(union_all(*parts).order_by("period_start"), names)


def select_newest(conn: Connection, point: str, kind: str) -> Derived | None:
    """``point``'s stored value of ``kind`` with the latest period start (its figures with it,
    for a window), or None. Asked of each table by its index: over ``derived_values``, whose
    figure arms are joins, SQLite gathers and sorts every value of the point and kind first,
    so a boot read each point's whole history of minutes (10 ms a question on two days of
    the works fleet, growing with the store). Not for a figure's kind (``minute_max``): only
    the view shows those."""
    if kind.endswith(FIGURE_SUFFIXES):
        raise ValueError(f"{kind!r} is a window's figure, not a stored kind")
    newest = None
    for statement in _NEWEST:
        row = statement.run(conn, point, kind).fetchone()
        if row is not None and (newest is None or row[2] > newest[2]):  # period_start
            newest = row
    return None if newest is None else values_derived(*newest)


_NEWEST = tuple(
    Prepared(
        select(*(table.c[name] for name in DERIVED_COLUMNS))
        .where(table.c.point == bindparam("point"), table.c.kind == bindparam("kind"))
        .order_by(table.c.period_start.desc())
        .limit(1),
        ["point", "kind"],
    )
    for table in (derived_settled, derived_recent)
)


# ---- the writer --------------------------------------------------------------------------------


class _Job:
    """One write (readings, events, derived values: one atomic unit), one write behind
    (derived values only, written in chunks), one call, or one record of the intake log to
    apply (``seq``, its rows already checked)."""

    __slots__ = (
        "behind",
        "call",
        "derived",
        "done",
        "events",
        "future",
        "readings",
        "riders",
        "rows",
        "seq",
        "size",
    )

    def __init__(
        self,
        readings: Sequence[Reading] = (),
        events: Sequence[Event] = (),
        derived: Sequence[Derived] = (),
        call: Callable[[Connection], Any] | None = None,
        *,
        behind: bool = False,
    ) -> None:
        self.readings = readings
        self.events = events
        self.derived = derived
        self.call = call
        self.behind = behind
        self.done = 0  # write behind: derived values committed so far
        self.size = len(readings) + len(events) + len(derived)
        self.seq = 0
        self.rows: Rows | bytes | None = None  # a logged record's (``logged``)
        #: a logged record's: the writes behind handed over with its writes, which join its
        #: transaction (queued after it, the writer could take them apart)
        self.riders: Sequence[_Job] = ()
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    @classmethod
    def logged(cls, seq: int, rows: Rows | bytes, size: int) -> _Job:
        """Record ``seq`` of the intake log, to apply. While it waits, its rows stay the
        record's payload: bytes, which the cyclic collector never walks (as tuples, a second of
        them waiting out a settle made its young pass stop the event loop for 30–70 ms)."""
        job = cls()
        job.seq, job.rows, job.size = seq, rows, size
        return job

    @property
    def is_write(self) -> bool:
        return self.call is None and not self.behind


_STOP = _Job()
#: Ends the writer's linger at once: a reader or the intake log needs the records in hand.
_WAKE = _Job()


def _untaken(jobs: queue.SimpleQueue[_Job], thread: threading.Thread) -> bool:
    """Whether jobs wait in ``jobs`` for ``thread``, which is alive to take them."""
    return not jobs.empty() and thread.is_alive()


def _joins_calls(job: _Job) -> bool:
    return job.call is not None and job.call is not _settle_now


_DERIVED_KEY = ("point", "kind", "period_start")  # the first three of DERIVED_COLUMNS


def _prepare(job: _Job) -> Rows:
    if isinstance(job.rows, bytes):
        return rows_of(job.rows)
    if job.rows is not None:
        return job.rows
    return (
        [reading_values(r) for r in job.readings],
        [event_values(e) for e in job.events],
        [derived_tuple(d) for d in job.derived],
    )


def _count(rows: Rows) -> int:
    return sum(len(part) for part in rows)


def _merge(batches: Sequence[Rows]) -> Rows:
    """One transaction's rows; of derived values for the same period the last one wins."""
    latest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for rows in batches:
        for row in rows[2]:
            latest[row[:3]] = row
    return (
        [row for rows in batches for row in rows[0]],
        [row for rows in batches for row in rows[1]],
        list(latest.values()),
    )


def _take_group(
    first: _Job,
    jobs: queue.SimpleQueue[_Job],
    limit: int,
    joins: Callable[[_Job], bool],
    passed: list[_Job] | None = None,
) -> tuple[list[_Job], _Job | None]:
    """``first`` and the jobs queued behind it that ``joins`` admits, up to ``limit`` rows in
    all (one group commit; a call counts as one), and the job that ended the group, to run
    next. Jobs cancelled meanwhile are dropped. With ``passed``, writes behind queued among
    them go there, as they came, instead of ending the group."""
    group = [first]
    return group, _gather(group, jobs.get_nowait, limit, joins, passed)


def _gather(
    group: list[_Job],
    take: Callable[[], _Job],
    limit: int,
    joins: Callable[[_Job], bool],
    passed: list[_Job] | None = None,
) -> _Job | None:
    """Add to ``group`` the jobs ``take`` gives until it raises ``queue.Empty``, as
    :func:`_take_group` says; return the job that ended the group."""
    size = sum(max(1, job.size) for job in group)
    while size < limit:
        try:
            nxt = take()
        except queue.Empty:
            return None
        if nxt is _WAKE:
            continue
        if passed is not None and nxt.behind:
            passed.append(nxt)
            continue
        if nxt is _STOP or not joins(nxt) or size + max(1, nxt.size) > limit:
            return nxt
        if nxt.future.set_running_or_notify_cancel():
            group.append(nxt)
            size += max(1, nxt.size)
    return None


@dataclass(frozen=True, slots=True)
class StoreStats:
    groups: int  # durable group commits of writes: intake-log records, or transactions
    transactions: int  # database write transactions (writes applied, writes behind, calls)
    rows: int  # rows of writes acknowledged
    writes: int  # acknowledged write calls
    largest: int  # rows in the largest durable group commit
    settles: int = 0  # moves of the recent rows to the settled tables
    #: Wall seconds the writer thread has spent on each kind of work (``WORK_KINDS``): where
    #: a store's time goes, and in virtual time what a step waits for (its writer is busy).
    busy_s: Mapping[str, float] = field(default_factory=dict)


#: The writer's kinds of work: applying writes (intake-log records, or writes without the
#: log), writing behind, running calls, settling the recent rows (their write-out included).
WORK_KINDS = ("apply", "behind", "calls", "settle")


class _Tally:
    """What was acknowledged, counted by whichever thread acknowledges (the intake thread,
    or the writer when there is no intake log)."""

    def __init__(self) -> None:
        self.groups = self.writes = self.rows = self.largest = 0

    def acknowledged(self, writes: int, rows: int) -> None:
        self.groups += 1
        self.writes += writes
        self.rows += rows
        self.largest = max(self.largest, rows)


def _work(kind: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Counts the wall time of a ``_Writer`` method in the writer's ``busy[kind]``."""

    def wrap(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def timed(writer: _Writer, *args: Any) -> T:
            started = time.perf_counter()
            try:
                return method(writer, *args)
            finally:
                writer.busy[kind] += time.perf_counter() - started

        return timed

    return wrap


class _Writer:
    """The one thread that writes to the database: writes (or the intake log's records), in
    the order they were made, calls in line with them, writes behind in its idle time."""

    def __init__(
        self,
        engine: Engine,
        batch_max: int,
        behind_chunk: int,
        tally: _Tally,
        applied: int = 0,
        settle_rows: int = DEFAULT_SETTLE_ROWS,
        paced_wal: Path | None = None,
        placement: ThreadPlacement = DEFAULT_PLACEMENT,
        linger_s: float = 0.0,
        checkpoint_thread: bool = True,
        apply_records: int = 0,
    ) -> None:
        self._engine = engine
        self._linger_s = linger_s
        self._apply_records = apply_records
        #: whether the writer gathers intake-log records before applying them (``_linger``)
        self._lingers = linger_s > 0 or apply_records > 0
        self.placement = placement
        #: SQLite beside a synced intake log: the WAL a settle writes out in steps
        self._paced_wal = paced_wal
        self.paced_db_fd: int | None = None  # the database file, for its paced write-out
        self.settling = False
        self._tally = tally
        self._batch_max = batch_max
        self._behind_chunk = behind_chunk
        self._settle_rows = settle_rows
        self._backlog: deque[_Job] = deque()  # writes behind, oldest first (writer thread only)
        self._sqlite = engine.dialect.name == "sqlite"
        self._insert_readings = _bulk_insert(engine, readings_recent, READING_COLUMNS)
        self._insert_events = _bulk_insert(engine, events, EVENT_COLUMNS)
        self._upsert_recent = _BulkStatement(engine, _derived_upsert(engine), DERIVED_COLUMNS)
        self._update_settled = _settled_update(engine)
        #: derived_extent as committed, and about how many rows the recent tables hold: both
        #: read on first use, in this thread (the only one that changes them)
        self._extent: dict[str, float] | None = None
        self._listed: set[str] | None = None  # window kinds whose figures are listed
        self._recent_rows = 0
        self.settles = 0
        self.busy = dict.fromkeys(WORK_KINDS, 0.0)  # wall seconds by kind (StoreStats)
        self._checkpointer = (
            _Checkpointer(engine, self) if self._sqlite and checkpoint_thread else None
        )
        self._own: Connection | None = None  # SQLite: the writer's connection (``_connect``)
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = placement.thread(self._run, "store-writer", background=True)
        self._stopping = threading.Event()
        #: The newest intake-log record the database holds (durably: it commits with FULL).
        self.applied_seq = applied
        self._applied = threading.Condition()
        #: The newest record someone waits for the database to hold: no linger until it does.
        self._wanted = applied
        self.ended = False  # the thread is gone: nothing more will be applied
        #: A settle or a checkpoint pass is writing (the event loop then leaves the intake
        #: log's syncs to the intake thread: see ``_Intake.takes_inline``)
        self.bursting = 0
        self.transactions = 0
        self._thread.start()

    def submit(self, job: _Job) -> concurrent.futures.Future[Any]:
        self._queue.put(job)
        return job.future

    def untaken(self) -> bool:
        return _untaken(self._queue, self._thread)

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(_STOP)

    def join(self) -> None:
        self._thread.join()
        if self._checkpointer is not None:
            self._checkpointer.stop()

    def hurry(self, seq: int) -> None:
        """Someone needs the database to hold the intake log up to record ``seq``: the writer
        stops lingering and applies what it has."""
        if not self._lingers:
            return
        with self._applied:
            if self.applied_seq < seq and self._wanted < seq:
                self._wanted = seq
                self._queue.put(_WAKE)

    def wait_applied(self, seq: int, timeout_s: float | None = None) -> bool:
        """Wait until the database holds the intake log up to record ``seq``."""
        self.hurry(seq)
        with self._applied:
            self._applied.wait_for(lambda: self.applied_seq >= seq or self.ended, timeout_s)
            return self.applied_seq >= seq

    # -- in the writer thread --

    def _connect(self) -> contextlib.AbstractContextManager[Connection]:
        """The connection for one unit of work. SQLite: always the writer's own, so its page
        cache lives on (a pooled one that a reader had used since came with an empty cache:
        a connection drops it whenever another one touched the database in between)."""
        if not self._sqlite:
            return self._open()
        if self._own is None or self._own.invalidated:
            if self._own is not None:
                self._own.close()
            self._own = self._open()
        return contextlib.nullcontext(self._own)

    def _open(self) -> Connection:
        conn = self._engine.connect()
        if self._sqlite:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            info = conn.connection.info
            if "carbench_autocheckpoint" not in info:
                # The checkpointer thread folds the WAL into the database; the writer's own
                # checkpoint after a commit is only the safety net should it fall behind
                # (without the thread it is all there is, at SQLite's usual size).
                # on the DBAPI connection: through SQLAlchemy the PRAGMA would autobegin
                dbapi: Any = conn.connection.dbapi_connection
                pages = (
                    WRITER_AUTOCHECKPOINT
                    if self._checkpointer is not None
                    else WRITER_ALONE_AUTOCHECKPOINT
                )
                dbapi.execute(f"PRAGMA wal_autocheckpoint = {pages}").close()
                dbapi.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}").close()
                info["carbench_autocheckpoint"] = True
        return conn

    def _next(self) -> _Job | None:
        """The next job; None once a chunk of the backlog was written, or the recent rows
        settled, instead (the queue was empty): both only ever take the writer's idle time."""
        settle = self._recent_rows >= self._settle_rows
        if not self._backlog and not settle:
            return self._queue.get()
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            if self._backlog:
                self._write_behind()
            else:
                self._settle()
            return None

    def _run(self) -> None:
        try:
            self._serve()
        finally:  # a reader waiting for records this thread will never apply must not wait on
            if self._own is not None:
                with contextlib.suppress(Exception):  # a dead disk's: the pool disposes of it
                    self._own.close()
            with self._applied:
                self.ended = True
                self._applied.notify_all()

    def _serve(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._next()
            carry = None
            if job is None or job is _WAKE:
                continue
            if job is _STOP:
                while self._backlog:
                    self._write_behind()
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            if job.behind:
                self._backlog.append(job)
                continue
            if job.call is _settle_now:
                self._settle()
                job.future.set_result(None)
                continue
            if job.call is not None:
                calls: list[_Job] = []
                taken, carry = _take_group(
                    job, self._queue, CALLS_PER_TRANSACTION, _joins_calls, calls
                )
                # writes behind queued among the calls
                self._backlog.extend(j for j in calls if j.future.set_running_or_notify_cancel())
                self._run_calls(taken)
                continue
            taken, carry = _take_group(job, self._queue, self._batch_max, lambda j: j.call is None)
            if job.seq and carry is None and self._lingers:
                carry = self._linger(taken)
            self._backlog.extend(j for j in taken if j.behind)
            self._backlog.extend(
                r for j in taken for r in j.riders if r.future.set_running_or_notify_cancel()
            )
            group = [j for j in taken if not j.behind]
            try:
                if group[0].seq:
                    self._apply_logged(group)
                else:
                    self._commit_group(group)
            except BaseException as exc:  # a bug here must not leave writers waiting forever
                log.exception("store writer: unexpected failure")
                for waiting in group:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)
            if self._recent_rows >= SETTLE_OVERDUE * self._settle_rows:
                self._settle()  # writes never let up: settle between them all the same
            checkpointer = self._checkpointer
            if checkpointer is not None and checkpointer.tail_due:
                try:
                    with self._connect() as conn:
                        checkpointer.tail(conn)
                except Exception:
                    log.exception("store writer: WAL checkpoint failed")

    def _linger(self, taken: list[_Job]) -> _Job | None:
        """Intake-log records are acknowledged already, so applying them can wait: gather into
        ``taken`` the records that come within ``linger_s`` (until it holds ``apply_records``),
        for one transaction instead of one each (``Storage.apply_linger_ms`` says what it costs
        and saves). Ends at once when someone needs the records (``hurry``), or with a job that
        cannot join (returned)."""
        deadline = time.monotonic() + self._linger_s if self._linger_s else None
        records = sum(1 for job in taken if job.seq)

        def take() -> _Job:
            nonlocal records
            if self._wanted > self.applied_seq:  # someone needs them now (a _WAKE came)
                raise queue.Empty
            if self._apply_records and records >= self._apply_records:
                raise queue.Empty
            job = self._next_within(None if deadline is None else deadline - time.monotonic())
            records += 1 if job.seq else 0
            return job

        return _gather(taken, take, self._batch_max, lambda j: j.call is None)

    def _next_within(self, timeout_s: float | None) -> _Job:
        """The next job within ``timeout_s`` (None: however long it takes; a place the virtual
        clock knows as waiting)."""
        if timeout_s is not None and timeout_s <= 0:
            raise queue.Empty
        return self._queue.get(timeout=timeout_s)

    @_work("behind")
    def _write_behind(self) -> None:
        """Write the backlog's derived values ``behind_chunk`` at a time, all in one
        transaction while nothing else waits for the writer (up to ``BEHIND_TRANSACTION_ROWS``):
        a write arriving meanwhile waits for one chunk and the commit, and an idle writer does
        not pay a commit per chunk. A write behind whose values are invalid fails alone; if
        the transaction fails, every write behind with values in it fails."""
        taken: dict[_Job, int] = {}  # values of each job in this transaction
        # Taken before the transaction begins: if it cannot (a dead disk), these fail, and the
        # backlog still shrinks.
        rows = self._behind_rows(taken)
        written = 0
        try:
            if rows:
                with self._connect() as conn, conn.begin():
                    while rows:
                        self._write_derived(conn, rows)
                        written += len(rows)
                        if written >= BEHIND_TRANSACTION_ROWS or not self._queue.empty():
                            break
                        rows = self._behind_rows(taken)
        except Exception as exc:
            self._listed = None
            error = _commit_error(exc, written)
            for job in taken:
                if not job.future.done():
                    job.future.set_exception(error)
                job.done = len(job.derived)
        else:
            if written:
                self.transactions += 1
                if self._checkpointer is not None:
                    self._checkpointer.nudge()
            self._behind_written(taken)
            return
        self._behind_written({})

    def _behind_written(self, taken: dict[_Job, int]) -> None:
        """``taken`` values of the backlog are committed: its finished writes are done."""
        for job, n in taken.items():
            job.done = min(job.done + n, len(job.derived))
        while self._backlog and self._backlog[0].done >= len(self._backlog[0].derived):
            finished = self._backlog.popleft()
            if not finished.future.done():
                finished.future.set_result(None)

    def _behind_with_writes(self, conn: Connection, taken: dict[_Job, int], writes: int) -> None:
        """In a transaction of ``writes`` writes: the backlog too, when it is small (a minute's
        windows of a few hundred points a write, which then share the readings' commit); a
        large one (every point's close of a big plant) is still written behind, in chunks of
        its own."""
        left = sum(len(job.derived) - job.done for job in self._backlog)
        if not 0 < left <= BEHIND_WITH_WRITES * writes:
            return
        while rows := self._behind_rows(taken):
            self._write_derived(conn, rows)

    def _behind_rows(self, taken: dict[_Job, int]) -> list[tuple[Any, ...]]:
        """The next ``behind_chunk`` values of the backlog after those ``taken`` (counted in)."""
        rows: list[tuple[Any, ...]] = []
        for job in self._backlog:
            start = job.done + taken.get(job, 0)
            if start >= len(job.derived):
                continue
            take = job.derived[start : start + self._behind_chunk - len(rows)]
            try:
                rows += [derived_tuple(d) for d in take]
            except Exception as exc:
                job.future.set_exception(exc)
                job.done = len(job.derived)
                continue
            taken[job] = taken.get(job, 0) + len(take)
            if len(rows) >= self._behind_chunk:
                break
        return rows

    @_work("calls")
    def _run_calls(self, calls: list[_Job]) -> None:
        """Calls queued together share one transaction (one commit, one fsync: the producers
        of every centre scan at the same instant), each in a savepoint of its own, so one that
        fails is rolled back alone. A caller hears of its call once it is committed."""
        outcomes: list[tuple[_Job, BaseException | None, Any]] = []
        try:
            with self._connect() as conn, conn.begin():
                for job in calls:
                    assert job.call is not None
                    try:
                        if len(calls) == 1:
                            result = job.call(conn)
                        else:
                            with conn.begin_nested():
                                result = job.call(conn)
                    except Exception as exc:
                        if len(calls) == 1:
                            raise
                        outcomes.append((job, exc, None))
                    else:
                        outcomes.append((job, None, result))
        except BaseException as exc:
            for job in calls:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.transactions += 1
        for job, error, result in outcomes:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

    @_work("apply")
    def _commit_group(self, group: list[_Job]) -> None:
        """Writes without an intake log: their transaction is what makes them durable."""
        prepared: list[tuple[_Job, Rows]] = []
        for job in group:
            try:
                prepared.append((job, _prepare(job)))
            except Exception as exc:  # invalid rows: this write fails alone
                job.future.set_exception(exc)
        if not prepared:
            return
        try:
            self._execute(_merge([rows for _, rows in prepared]))
        except Exception as exc:
            if len(prepared) > 1 and not _is_disconnect(exc):
                for job, rows in prepared:  # find the write at fault; the others commit
                    try:
                        self._execute(rows)
                    except Exception as one:
                        job.future.set_exception(_commit_error(one, job.size))
                    else:
                        self._tally.acknowledged(1, job.size)
                        job.future.set_result(None)
            else:
                error = _commit_error(exc, sum(job.size for job, _ in prepared))
                for job, _ in prepared:
                    job.future.set_exception(error)
            return
        self._tally.acknowledged(len(prepared), sum(job.size for job, _ in prepared))
        for job, _ in prepared:
            job.future.set_result(None)

    @_work("apply")
    def _apply_logged(self, group: list[_Job]) -> None:
        """Apply intake-log records, already acknowledged: they cannot fail any more, so a
        database that refuses them (disk full, locked for long) is tried again until it takes
        them; a store closing meanwhile leaves them in the log for the next start."""
        seq = group[-1].seq
        rows = _merge([_prepare(job) for job in group])
        delay = 0.05
        while True:
            try:
                self._execute(rows, applied=seq, writes=len(group))
                break
            except Exception as exc:
                if self._stopping.is_set():
                    log.error(
                        "store closing with intake-log records up to %d not in the database "
                        "(%s): the log keeps them and the next start applies them",
                        seq,
                        exc,
                    )
                    return
                log.error(
                    "store writer: applying intake-log record %d failed, retrying: %s", seq, exc
                )
                self._stopping.wait(delay)  # a store closing meanwhile ends the wait at once
                delay = min(delay * 2, 2.0)
        with self._applied:
            self.applied_seq = seq
            self._applied.notify_all()
        for job in group:
            job.future.set_result(None)

    def _execute(self, rows: Rows, *, applied: int = 0, writes: int = 1) -> None:
        reading_rows, event_rows, derived_rows = rows
        behind: dict[_Job, int] = {}
        try:
            with self._connect() as conn, conn.begin():
                if reading_rows:
                    self._load(conn)
                    self._insert_readings(conn, reading_rows)
                    self._recent_rows += len(reading_rows)
                if event_rows:
                    self._insert_events(conn, event_rows)
                if derived_rows:
                    self._write_derived(conn, derived_rows)
                self._behind_with_writes(conn, behind, writes)
                if applied:
                    conn.execute(_MARK_APPLIED, {"seq": applied})
        except BaseException:
            self._listed = None
            raise
        self.transactions += 1  # counted before anyone hears of it (StoreStats)
        self._behind_written(behind)
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    def _load(self, conn: Connection) -> dict[str, float]:
        if self._extent is None:
            self._extent = {k: s for k, s in conn.execute(select(derived_extent))}
            self._recent_rows = sum(
                int(conn.scalar(select(func.count()).select_from(recent)) or 0)
                for _, _, recent in RECENT_AND_SETTLED
            )
        return self._extent

    def _write_derived(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Upsert derived values (``DERIVED_COLUMNS`` tuples): in ``derived_recent``, unless
        their period may already be settled and is (then updated there, keeping its id)."""
        extent = self._load(conn)
        listed = self._listed_windows(conn)
        for row in rows:
            if row[1] not in listed and row[_FIGURES_AT:] != _NO_FIGURES:
                self._list_window(conn, row[1])
        fresh = rows
        if extent:
            fresh = []
            for row in rows:
                settled_until = extent.get(row[1])
                settled = settled_until is not None and row[2] <= settled_until
                if not (settled and self._update_settled(conn, row)):
                    fresh.append(row)
        if fresh:
            self._upsert_recent(conn, fresh)
            self._recent_rows += len(fresh)

    def _listed_windows(self, conn: Connection) -> set[str]:
        """The window kinds ``window_figures`` lists (read on first use: only this thread
        changes it; forgotten when a transaction fails, which may have listed one)."""
        if self._listed is None:
            self._listed = set(conn.scalars(select(window_figures.c.window_kind).distinct()))
        return self._listed

    def _list_window(self, conn: Connection, kind: str) -> None:
        """List the figures of the window kind ``kind``, so readers see them (schema.py)."""
        conn.execute(
            window_figures.insert(),
            [{"kind": f"{kind}_{f}", "window_kind": kind, "figure": f} for f in figures_of(kind)],
        )
        assert self._listed is not None
        self._listed.add(kind)

    @_work("settle")
    def _settle(self) -> None:
        """Move every row of the recent tables into the settled ones (module text)."""
        if self._extent is None:
            with self._connect() as conn, conn.begin():
                self._load(conn)
        if not self._recent_rows:
            return
        self.settling = True
        try:
            self._move_recent()
        finally:
            self.settling = False
        if self._checkpointer is not None:
            self._checkpointer.nudge()

    def _move_recent(self) -> None:
        paced = self._paced_wal
        try:
            with (
                _bursting(self),
                self._connect() as conn,
                _commit_unsynced(conn, paced is not None),
                conn.begin(),
            ):
                extent = dict(self._load(conn))
                r = derived_recent.c
                latest = conn.execute(select(r.kind, func.max(r.period_start)).group_by(r.kind))
                for kind, start in latest:
                    if kind not in extent:
                        conn.execute(derived_extent.insert().values(kind=kind, max_start=start))
                    elif start > extent[kind]:
                        conn.execute(
                            derived_extent.update()
                            .where(derived_extent.c.kind == kind)
                            .values(max_start=start)
                        )
                    else:
                        continue
                    extent[kind] = start
                for _, settled, recent in RECENT_AND_SETTLED:
                    # In id order the table appends; its point-first index then takes each
                    # point's entries in turn, its leaves held in the writer's page cache.
                    # Sorted point first instead, the ids landed all over the new range: a
                    # settle of 200 000 rows took 1.35 s, against 0.84 s in id order.
                    cols = ", ".join(c.name for c in recent.columns)
                    conn.exec_driver_sql(
                        f"INSERT INTO {settled.name} ({cols}) SELECT {cols} FROM {recent.name} "
                        "ORDER BY id"
                    )
                    conn.execute(recent.delete())
        except Exception:
            # Rows stay in the recent tables, where readers see them all the same; try again
            # after as many more.
            log.exception("store writer: settling the recent rows failed")
            self._recent_rows = 0
            return
        self._extent = extent
        self._recent_rows = 0
        self.transactions += 1
        self.settles += 1
        if paced is not None:
            with _bursting(self):
                self._write_out(paced)

    def _write_out(self, wal: Path) -> None:
        """After a settle committed unsynced: the WAL, then the checkpoint of its pages, on
        disk in steps (``writeback.py``). The database file is synced whatever the checkpoint
        did, before this thread's next transaction (which could start the WAL afresh)."""
        try:
            writeback.push(wal)
            if self.paced_db_fd is None:
                # held open until the store's connections are closed (writeback.push)
                self.paced_db_fd = os.open(wal.with_name(wal.name[: -len("-wal")]), os.O_RDONLY)
            try:
                with self._connect() as conn:
                    dbapi: Any = conn.connection.dbapi_connection
                    dbapi.execute("PRAGMA synchronous = OFF").close()
                    try:
                        dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    finally:
                        dbapi.execute("PRAGMA synchronous = FULL").close()
            finally:
                writeback.push_fd(self.paced_db_fd)
        except (sqlite3.Error, SQLAlchemyError, OSError) as exc:
            # the checkpointer's next pass (synced) checkpoints; a sync that fails is a disk
            # failing, which the next commit (FULL) reports to its writes
            log.error("store writer: paced write-out after a settle failed: %s", exc)


@contextlib.contextmanager
def _commit_unsynced(conn: Connection, unsynced: bool) -> Iterator[None]:
    """SQLite: the transaction inside commits without its fsync (``writeback.py``)."""
    if not unsynced:
        yield
        return
    dbapi: Any = conn.connection.dbapi_connection
    dbapi.execute("PRAGMA synchronous = NORMAL").close()
    try:
        yield
    finally:
        dbapi.execute("PRAGMA synchronous = FULL").close()


@contextlib.contextmanager
def _bursting(writer: _Writer) -> Iterator[None]:
    """Marks a large write to the database (a settle, a checkpoint pass) while it runs.
    Two threads may hold it at once: += on an int is not atomic, a lock is (cheap here)."""
    with _BURSTS:
        writer.bursting += 1
    try:
        yield
    finally:
        with _BURSTS:
            writer.bursting -= 1


_BURSTS = threading.Lock()


#: The recent tables' point-first indexes while a restart reads them (``indexed_by_point``),
#: on copies of the tables: not part of the schema that ``create_all`` and migrations make.
_BOOT = MetaData()
_r, _d = (table.to_metadata(_BOOT).c for table in (readings_recent, derived_recent))
_BOOT_INDEXES = (
    Index("ix_boot_readings_recent_point", _r.point, _r.t),
    Index("ix_boot_derived_recent_point", _d.point, _d.kind, _d.period_start),
)


def _create_boot_indexes(conn: Connection) -> None:
    for index in _BOOT_INDEXES:
        index.create(conn, checkfirst=True)  # left by a restart that died: there already


def _drop_boot_indexes(conn: Connection) -> None:
    for index in _BOOT_INDEXES:
        index.drop(conn, checkfirst=True)


def _settle_now(conn: Connection) -> None:
    """Marks the writer's job that settles the recent rows now (``Store.settle``)."""
    raise AssertionError("the writer settles itself")


#: Where a ``DERIVED_COLUMNS`` tuple's window figures begin, and a value's without any.
_FIGURES_AT = len(DERIVED_COLUMNS) - len(FIGURE_COLUMNS)
_NO_FIGURES = (None,) * len(FIGURE_COLUMNS)

_MARK_APPLIED = (
    intake_state.update().where(intake_state.c.id == 1).values(applied_seq=bindparam("seq"))
)


class _CountingQueue(queue.SimpleQueue[_Job]):
    """A queue that counts the jobs taken from it by its one consumer thread: here when taken
    without waiting, by the intake's ``_next`` when it waits (there its thread blocks in C,
    where the virtual clock knows a thread to be waiting; a frame of ours would look busy)."""

    def __init__(self) -> None:
        self.taken = 0

    def get_nowait(self) -> _Job:
        job = super().get_nowait()
        self.taken += 1
        return job


class _Intake:
    """The intake thread: makes writes durable in the intake log (one record and one sync per
    group of writes waiting) and acknowledges them, then hands them to the writer to apply.
    Calls and writes behind pass through in order, so a call still sees every write made
    before it."""

    def __init__(
        self, intake_log: IntakeLog, writer: _Writer, batch_max: int, tally: _Tally
    ) -> None:
        self._log = intake_log
        self._writer = writer
        self._tally = tally
        self._batch_max = batch_max
        self._queue = _CountingQueue()
        #: The newest record acknowledged: a query made now must see the database hold it.
        self.acked_seq = intake_log.last_seq
        # Jobs handed to the thread (counted on the event loop) and dealt with (by the thread).
        self._submitted = 0
        self._finished = 0
        self._thread = writer.placement.thread(self._run, "store-intake")
        self._thread.start()

    def submit(self, job: _Job) -> concurrent.futures.Future[Any]:
        self._submitted += 1
        self._queue.put(job)
        return job.future

    def untaken(self) -> bool:
        return _untaken(self._queue, self._thread)

    def takes_inline(self, jobs: Sequence[_Job]) -> bool:
        """Whether the event loop may log ``jobs`` itself: few rows, and nothing handed to
        the thread is still in its hands (so the log keeps the order writes were made in)."""
        return (
            self._finished == self._submitted
            and sum(job.size for job in jobs if job.is_write) <= INLINE_INTAKE_ROWS
            and self._log.offset < LOG_MAX_BYTES  # else making room waits for the writer
            and not self._writer.bursting
        )

    def log_inline(self, jobs: Sequence[_Job]) -> None:
        """What the thread does with ``jobs``, done by the caller (see :meth:`takes_inline`)."""
        group: list[_Job] = []
        behind: list[_Job] = []

        def flush() -> None:
            self._log_group(group, behind)
            group.clear()
            behind.clear()

        for job in jobs:
            if job.behind:
                behind.append(job)
            elif not job.is_write:
                flush()
                self._writer.submit(job)
            elif job.future.set_running_or_notify_cancel():
                if group and sum(j.size for j in group) + job.size > self._batch_max:
                    flush()
                group.append(job)
        flush()

    def stop(self) -> None:
        self._queue.put(_STOP)

    def join(self) -> None:
        self._thread.join()

    def _next(self) -> _Job:
        job = self._queue.get()
        self._queue.taken += 1
        return job

    def _run(self) -> None:
        carry: _Job | None = None
        while True:
            self._finished = self._queue.taken - (carry is not None)
            job = carry if carry is not None else self._next()
            carry = None
            if job is _STOP:
                self._writer.stop()
                return
            if not job.is_write:
                self._writer.submit(job)
                continue
            if not job.future.set_running_or_notify_cancel():
                continue
            # A minute's close queues each device's write behind its write: passed on after
            # the group, they no longer split it (the writer takes them in its idle time, after
            # the writes queued before them, anyway).
            behind: list[_Job] = []
            group, carry = _take_group(
                job, self._queue, self._batch_max, lambda j: j.is_write, behind
            )
            try:
                self._log_group(group, behind)
            except BaseException as exc:  # a bug here must not leave writers waiting forever
                log.exception("store intake: unexpected failure")
                for waiting in group:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)

    def _log_group(self, group: list[_Job], behind: Sequence[_Job] = ()) -> None:
        """Log ``group``'s writes as one record and hand it to the writer, with the writes
        behind made beside them (``behind``) riding on it, or alone if nothing was logged."""
        behind = list(behind)  # the caller's list is reused
        prepared: list[tuple[_Job, Rows]] = []
        for job in group:
            try:
                prepared.append((job, _prepare(job)))
            except Exception as exc:  # invalid rows: this write fails alone
                job.future.set_exception(exc)
        if not prepared:
            self._pass_on(behind)
            return
        rows = _merge([r for _, r in prepared])
        payload = payload_of(rows)
        self._make_room()
        try:
            seq = self._log.append(payload)
        except IntakeLogError as exc:
            for job, _ in prepared:
                job.future.set_exception(exc)
            self._pass_on(behind)
            return
        self.acked_seq = seq
        record = _Job.logged(seq, payload, _count(rows))
        record.riders = behind
        self._writer.submit(record)
        self._tally.acknowledged(len(prepared), sum(job.size for job, _ in prepared))
        for job, _ in prepared:
            job.future.set_result(None)

    def _pass_on(self, behind: Sequence[_Job]) -> None:
        for job in behind:
            self._writer.submit(job)

    def _make_room(self) -> None:
        """Start the log afresh once the database holds all of it; far beyond its usual size,
        wait for the database to catch up first (a writer that cannot keep up slows intake
        rather than letting the log grow without bound)."""
        if not self._log.rewind_due:
            return
        # Rewinding needs the writer to have caught up: it applies this record and the next
        # one as they come (lingering, it would always be a record behind).
        self._writer.hurry(self._log.last_seq + 1)
        if self._log.offset >= LOG_MAX_BYTES:
            self._writer.wait_applied(self._log.last_seq)
        if self._writer.applied_seq >= self._log.last_seq:
            self._log.rewind()


def _derived_upsert(engine: Engine) -> Any:
    """INSERT of a recent derived value replacing the one with the same (point, kind,
    period_start): one statement and one index probe per row (a DELETE then INSERT took two)."""
    name = engine.dialect.name
    dialects: dict[str, Any] = {"sqlite": sqlite, "postgresql": postgresql}
    keep = [c for c in DERIVED_COLUMNS if c not in _DERIVED_KEY]
    if name in dialects:
        stmt = dialects[name].insert(derived_recent)
        return stmt.on_conflict_do_update(
            index_elements=list(_DERIVED_KEY), set_={c: stmt.excluded[c] for c in keep}
        ).compile(dialect=engine.dialect, column_keys=list(DERIVED_COLUMNS))
    if name in ("mysql", "mariadb"):
        stmt = mysql.insert(derived_recent)
        return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in keep}).compile(
            dialect=engine.dialect, column_keys=list(DERIVED_COLUMNS)
        )
    raise StoreError(f"no upsert of derived values for the {name} dialect")


def _settled_update(engine: Engine) -> Callable[[Connection, tuple[Any, ...]], bool]:
    """An UPDATE of a settled derived value from a ``DERIVED_COLUMNS`` tuple; whether the
    value was there to update."""
    s = derived_settled.c
    keep = [c for c in DERIVED_COLUMNS if c not in _DERIVED_KEY]
    statement = (
        derived_settled.update()
        .where(*(s[c] == bindparam(f"k_{c}") for c in _DERIVED_KEY))
        .values({c: bindparam(f"v_{c}") for c in keep})
    )

    def update(conn: Connection, row: tuple[Any, ...]) -> bool:
        params = {
            f"{'k' if c in _DERIVED_KEY else 'v'}_{c}": v
            for c, v in zip(DERIVED_COLUMNS, row, strict=True)
        }
        return bool(conn.execute(statement, params).rowcount)

    return update


class _BulkStatement:
    """A compiled statement run straight through the driver with rows as tuples of its bound
    parameters in ``columns`` order: the writer's hot path (twice as fast as
    ``Connection.execute`` with dicts on SQLite). SQLite takes many rows a statement
    (``insert_rows``); other databases the driver's ``executemany``."""

    def __init__(self, engine: Engine, compiled: Any, columns: Sequence[str]) -> None:
        self.sql = str(compiled)
        self.columns = tuple(columns)
        self.positional = compiled.positional and list(compiled.positiontup or ()) == list(columns)
        # SQLite: straight to sqlite3 inside the transaction SQLAlchemy began (a quarter of a
        # small group commit's time went to SQLAlchemy's execution bookkeeping otherwise)
        self.direct = self.positional and engine.dialect.name == "sqlite"
        # the single row's VALUES, which ``insert_rows`` repeats
        head, _, rest = self.sql.partition(" VALUES (")
        self.head, self.tail = head, rest.partition(")")[2]

    def __call__(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self.direct:
            dbapi: Any = conn.connection.dbapi_connection
            insert_rows(dbapi, self.head, len(self.columns), rows, self.tail)
        elif self.positional:
            conn.exec_driver_sql(self.sql, rows)
        else:
            conn.exec_driver_sql(self.sql, [dict(zip(self.columns, r, strict=True)) for r in rows])


def _bulk_insert(engine: Engine, table: Table, columns: Sequence[str]) -> _BulkStatement:
    compiled = table.insert().compile(dialect=engine.dialect, column_keys=list(columns))
    return _BulkStatement(engine, compiled, columns)


class _Checkpointer:
    """SQLite only: folds the WAL into the database file beside the writer, so that commits
    do not stop for it. (SQLite's automatic checkpoint runs inside the commit that crosses
    ``wal_autocheckpoint`` pages: with synchronous=FULL it copies the pages and fsyncs the
    database file, several milliseconds every few hundred milliseconds of a busy writer.)

    A thread runs a PASSIVE checkpoint (WAL mode lets it run beside the writer) at most every
    ``CHECKPOINT_INTERVAL_S`` while commits come. A WAL is only reused from its start once
    every frame is checkpointed, and a busy writer adds frames while the pass runs: the writer
    then checkpoints the short tail itself, between two groups (:meth:`tail`), and the next
    commit starts the WAL afresh. Should all this fall behind, the writer's own automatic
    checkpoint at ``WRITER_AUTOCHECKPOINT`` pages still bounds the WAL."""

    def __init__(self, engine: Engine, writer: _Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.tail_due = False  # set here, cleared by the writer thread
        self.passes = 0
        self.tails = 0
        self._thread = writer.placement.thread(self._run, "store-checkpointer", background=True)
        self._thread.start()

    def nudge(self) -> None:
        """A commit happened (called by the writer thread)."""
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join()

    def tail(self, conn: Connection) -> None:
        """The writer thread, between groups: checkpoint what the last pass left."""
        self.tail_due = False
        self.tails += 1
        dbapi: Any = conn.connection.dbapi_connection
        try:
            dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # another checkpoint running: the next pass does it
            log.debug("WAL tail checkpoint skipped: %s", exc)

    def _run(self) -> None:
        try:
            raw = self._engine.raw_connection()
        except Exception as exc:
            log.warning("WAL checkpointer not started (the writer checkpoints itself): %s", exc)
            return
        try:
            while True:
                self._wake.wait()
                if self._stopped.is_set():
                    return
                self._wake.clear()
                while self._writer.settling and not self._stopped.is_set():
                    time.sleep(0.005)  # its WAL is being written out in steps: not all at once
                self.passes += 1
                with _bursting(self._writer):
                    busy, frames, _done = raw.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                if not busy and frames > 0:
                    # ``frames`` counts the WAL as the pass began: what the writer added since
                    # is the tail (the writer's next transaction reuses the WAL from its start
                    # only if nothing is left when it begins)
                    self.tail_due = True
                if self._stopped.wait(CHECKPOINT_INTERVAL_S):
                    return
        except Exception as exc:  # the writer's automatic checkpoint still bounds the WAL
            log.warning("WAL checkpointer stopped: %s", exc)
        finally:
            raw.close()


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _commit_error(exc: Exception, rows: int) -> Exception:
    if isinstance(exc, SQLAlchemyError | sqlite3.Error):
        detail = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
        error = StoreError(f"could not commit {rows} row(s): {detail}")
        error.__cause__ = exc
        return error
    return exc


# ---- the store ---------------------------------------------------------------------------------


class Store:
    """The durable store. Open with ``await Store.open(url)``; close with ``await close()``
    (or ``async with``), which commits every write made before it."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = DEFAULT_BATCH_MAX,
        behind_chunk: int = DEFAULT_BEHIND_CHUNK,
        readers: int = 4,
        intake_log: IntakeLog | None = None,
        read_wait_s: float = READ_WAIT_S,
        settle_rows: int = DEFAULT_SETTLE_ROWS,
        placement: ThreadPlacement = DEFAULT_PLACEMENT,
        linger_s: float = DEFAULT_LINGER_S,
        checkpoint_thread: bool = True,
        apply_records: int = 0,
    ) -> None:
        """Wraps an engine whose database is already migrated (and, with ``intake_log``, has
        applied that log's every record); use ``Store.open``."""
        if batch_max < 1 or behind_chunk < 1 or settle_rows < 1:
            raise ValueError(
                "batch_max, behind_chunk and settle_rows must be ≥ 1: "
                f"{batch_max}, {behind_chunk}, {settle_rows}"
            )
        self.engine = engine
        self.batch_max = batch_max
        self.read_wait_s = read_wait_s
        self._tally = _Tally()
        applied = intake_log.last_seq if intake_log is not None else 0
        # Settles are paced only beside a synced intake log: without one, no durable write
        # waits for the disk while a settle writes (the writer makes them in turn).
        database = _sqlite_path(engine) if intake_log is not None and intake_log.sync else None
        self._writer = _Writer(
            engine,
            batch_max,
            behind_chunk,
            self._tally,
            applied,
            settle_rows=settle_rows,
            paced_wal=database.with_name(database.name + "-wal") if database else None,
            # without an intake log the writer's commit is the acknowledgement: not background
            placement=replace(placement, background_nice=0) if intake_log is None else placement,
            linger_s=linger_s,
            checkpoint_thread=checkpoint_thread,
            apply_records=apply_records,
        )
        self._log = intake_log
        self._intake = (
            _Intake(intake_log, self._writer, batch_max, self._tally)
            if intake_log is not None
            else None
        )
        self._readers = concurrent.futures.ThreadPoolExecutor(
            readers, "store-reader", initializer=placement.enter
        )
        self._closed = False
        self._reads = 0  # reads handed to the reader threads and not yet back (event loop)
        self._behind: concurrent.futures.Future[Any] | None = None  # the latest write behind
        self._outgoing: list[_Job] = []  # writes made in this turn of the event loop
        #: Told of every write as it is acknowledged (durable): for a bench that must know
        #: what the terminal had promised at the instant its power died.
        self.on_durable: OnDurable | None = None

    @classmethod
    async def open(
        cls,
        url: str | URL = DEFAULT_URL,
        *,
        batch_max: int = DEFAULT_BATCH_MAX,
        behind_chunk: int = DEFAULT_BEHIND_CHUNK,
        busy_timeout_s: float = 10.0,
        readers: int = 4,
        synchronous: str = "FULL",
        intake_log: bool = True,
        read_wait_s: float = READ_WAIT_S,
        settle_rows: int = DEFAULT_SETTLE_ROWS,
        placement: ThreadPlacement = DEFAULT_PLACEMENT,
        linger_s: float = DEFAULT_LINGER_S,
        checkpoint_thread: bool = True,
        apply_records: int = 0,
    ) -> Store:
        """Open (and create or upgrade) the store at ``url``. A SQLite file gets an intake log
        beside it (``intake_log=False``: none, every write then waits for its own database
        commit); a database server's commit is its own durable step."""
        engine = make_engine(url, busy_timeout_s=busy_timeout_s, synchronous=synchronous)
        database = _sqlite_path(engine) if intake_log else None
        try:
            await asyncio.to_thread(_prepare_database, engine)
            opened = (
                None
                if database is None
                else await asyncio.to_thread(
                    _open_intake_log, engine, database, sync=synchronous == "FULL"
                )
            )
        except DBAPIError as exc:
            engine.dispose()
            where = engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the store at {where}: {exc.orig}") from exc
        except BaseException:
            engine.dispose()
            raise
        store = cls(
            engine,
            batch_max=batch_max,
            behind_chunk=behind_chunk,
            readers=readers,
            intake_log=opened,
            read_wait_s=read_wait_s,
            settle_rows=settle_rows,
            placement=placement,
            linger_s=linger_s,
            checkpoint_thread=checkpoint_thread,
            apply_records=apply_records,
        )
        return store

    @classmethod
    async def from_config(cls, storage: Storage) -> Store:
        return await cls.open(
            storage.url,
            batch_max=storage.batch_max,
            synchronous=storage.synchronous,
            intake_log=storage.intake_log,
            settle_rows=storage.settle_rows,
            placement=ThreadPlacement(frozenset(storage.cpus), storage.background_nice),
            linger_s=storage.apply_linger_ms / 1000,
            checkpoint_thread=storage.checkpoint_thread,
            apply_records=storage.apply_records,
        )

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return self.engine.dialect.name

    @property
    def stats(self) -> StoreStats:
        t = self._tally
        return StoreStats(
            groups=t.groups,
            transactions=self._writer.transactions,
            rows=t.rows,
            writes=t.writes,
            largest=t.largest,
            settles=self._writer.settles,
            busy_s=dict(self._writer.busy),
        )

    # -- writes --

    async def write(
        self,
        readings: Iterable[Reading] = (),
        *,
        events: Iterable[Event] = (),
        derived: Iterable[Derived] = (),
    ) -> None:
        """Store readings (and events, derived values) atomically; return once durable."""
        job = _Job(list(readings), list(events), list(derived))
        if job.size:
            await _acknowledgement(self._submit(job))
            if self.on_durable is not None:
                self.on_durable(job.readings, job.derived)

    def _submit(self, job: _Job) -> concurrent.futures.Future[Any]:
        """Queue ``job`` for the writer at the end of this turn of the event loop, with every
        other write made in the same turn: tasks woken together (devices answering at the same
        instant) then share one commit. Handed over one by one, the writer would commit the
        first alone and the others after it, one fsync later."""
        if self._closed:
            raise StoreClosed("the store is closed")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush_outgoing)
        self._outgoing.append(job)
        return job.future

    def _flush_outgoing(self) -> None:
        jobs, self._outgoing = self._outgoing, []
        if self._intake is not None and self._intake.takes_inline(jobs):
            self._intake.log_inline(jobs)
            return
        first = self._intake if self._intake is not None else self._writer
        for job in jobs:
            first.submit(job)

    def write_behind(self, derived: Iterable[Derived]) -> concurrent.futures.Future[None]:
        """Write derived values after everything waiting now, in chunks of ``behind_chunk``
        whenever the writer is otherwise idle: for figures computed from rows already stored
        (closed windows). A minute's close of 10 000 points gives 50 000 rows at once; written
        in line, the readings that keep arriving would wait behind them. Not durable when this
        returns: the future is done once all are committed (``flush_behind`` waits for every
        one; ``close`` writes them all first). A value with the same (point, kind, start) as a
        stored one replaces it."""
        job = _Job(derived=list(derived), behind=True)
        if not job.size:
            job.future.set_result(None)
            return job.future
        self._behind = self._submit(job)
        return self._behind

    async def flush_behind(self) -> None:
        """Wait until every write behind made so far is committed (or has failed). A writer
        gathering intake-log records (``apply_records``) applies them at once: it writes
        behind with them or once idle, and the records it waits for may not come meanwhile (a
        restart waits here before acquisition runs again)."""
        if self._behind is not None:
            if self._log is not None:
                self._writer.hurry(self._log.last_seq)
            await asyncio.wait([asyncio.wrap_future(self._behind)])

    async def write_events(self, events: Iterable[Event]) -> None:
        await self.write(events=events)

    async def write_derived(self, values: Iterable[Derived]) -> None:
        """Store derived values; one with the same (point, kind, start) is replaced."""
        await self.write(derived=values)

    async def settle(self) -> None:
        """Move the recent rows to the settled tables now, in line with the writes made before."""
        await asyncio.wrap_future(self._submit(_Job(call=_settle_now)))

    @contextlib.asynccontextmanager
    async def indexed_by_point(self) -> AsyncIterator[None]:
        """The recent tables indexed point first while the block runs: a restart reads each
        point's history (``resume.py``, the accounting's resume), which tables keyed time first
        answer only by scanning them, once per point (boots took up to 88 s with 200 000
        recent rows, before opening settled them). Building the indexes is a sort of the
        recent rows, a fraction of moving them (measured here on 200 000 derived values and
        33 000 readings: 0.13 s, against 0.84 s to settle them); they go again afterwards,
        since an index keyed point first there costs every commit a page per point, which
        is what the recent tables are for."""
        await self.run_in_writer(_create_boot_indexes)
        try:
            yield
        finally:
            if not self._closed:
                await self.run_in_writer(_drop_boot_indexes)

    async def run_in_writer(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in the writer thread in a transaction of its own, in order
        with the writes (retention deletes, maintenance). Keep it short: writes wait."""
        job = _Job(call=fn)
        result: T = await asyncio.wrap_future(self._submit(job))
        return result

    # -- queries --

    async def run_in_reader(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a reader thread (one read transaction) that sees every
        write acknowledged before this call."""
        if self._closed:
            raise StoreClosed("the store is closed")
        seen = self._intake.acked_seq if self._intake is not None else 0
        loop = asyncio.get_running_loop()
        self._reads += 1
        try:
            return await loop.run_in_executor(self._readers, self._read, fn, seen)
        finally:
            self._reads -= 1

    @property
    def acknowledging_file(self) -> Path | None:
        """The file whose sync makes a write durable (the intake log); None when it is the
        database's own commit."""
        return self._log.path if self._log is not None else None

    def work_untaken(self) -> bool:
        """Whether work was handed to the store's threads that none has taken up yet. A thread
        blocked on its queue looks idle (its innermost frame is a waiting one) until it wakes
        and takes what was put there, so a virtual clock that moves whenever every thread
        waits (``common.clock_follower.Quiescence``) must also ask this: otherwise a transaction
        handed over just before the clock looks "takes" the time to the next sleeper. A read
        counts until its result is back on the event loop."""
        return (
            self._reads > 0
            or self._writer.untaken()
            or (self._intake is not None and self._intake.untaken())
        )

    def _read(self, fn: Callable[[Connection], T], seen: int) -> T:
        # Acknowledged writes may still be on their way from the intake log to the database
        # (milliseconds): a query waits for them rather than miss them.
        if seen and not self._writer.wait_applied(seen, self.read_wait_s):
            if self._writer.ended:
                raise StoreClosed(
                    f"the store closed before the database took in intake log record {seen} "
                    "(the log keeps it for the next start)"
                )
            raise StoreError(
                f"the database has not taken in acknowledged writes for {self.read_wait_s:g} s "
                f"(intake log record {seen}, applied {self._writer.applied_seq}): see the "
                "store writer's errors in the log; nothing is lost, the log keeps them"
            )
        with self.engine.connect() as conn:
            return fn(conn)

    async def readings(
        self, point: str, start: float, end: float, *, limit: int | None = None
    ) -> list[Reading]:
        """Readings of ``point`` with ``start <= t < end``, oldest first."""
        return await self.run_in_reader(lambda c: select_readings(c, point, start, end, limit))

    async def latest(self, points: Iterable[str] | None = None) -> dict[str, Reading]:
        """The latest reading of each point (of ``points``, or of every point)."""
        wanted = None if points is None else list(points)
        return await self.run_in_reader(lambda c: select_latest(c, wanted))

    async def points(self) -> list[str]:
        return await self.run_in_reader(list_points)

    async def events(
        self,
        *,
        kind: str | None = None,
        point: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events by kind, point and time (``start <= t < end``), oldest first."""
        return await self.run_in_reader(
            lambda c: select_events(c, kind=kind, point=point, start=start, end=end, limit=limit)
        )

    async def derived(
        self,
        point: str,
        kind: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[Derived]:
        """Derived values of ``point`` whose period starts in ``[start, end)``."""
        return await self.run_in_reader(lambda c: select_derived(c, point, kind, start, end))

    async def durability(self) -> str:
        """What makes a write durable here, e.g. ``intake log fdatasync, then sqlite
        journal_mode=wal synchronous=FULL``."""
        database = (await self.run_in_reader(durability))[0]
        if self._log is None:
            return database
        return f"intake log {'fdatasync' if self._log.sync else 'unsynced'}, then {database}"

    # -- closing --

    async def close(self) -> None:
        """Commit every write already made, then release the database."""
        if self._closed:
            return
        self._closed = True
        self._flush_outgoing()
        (self._intake if self._intake is not None else self._writer).stop()
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        try:
            if self._intake is not None:
                self._intake.join()
            self._writer.join()
            self._readers.shutdown(wait=True)
            if self.backend == "sqlite":
                checkpoint(self.engine)
            if self._log is not None and self._writer.applied_seq >= self._log.last_seq:
                self._log.clear()  # one tidy file: the database holds everything
        finally:
            # Whatever failed above (a disk that died), the connections must go: a connection
            # left open in this process would share its view of the WAL index with the next
            # store opened on the file.
            if self._log is not None:
                self._log.close()
            self.engine.dispose()
            if self._writer.paced_db_fd is not None:
                os.close(self._writer.paced_db_fd)  # only now: see writeback.push


def _acknowledgement(future: concurrent.futures.Future[T]) -> asyncio.Future[T]:
    """``asyncio.wrap_future`` for a write's future, except that one completed on the event
    loop's own thread (a write the loop logged itself, ``_Intake.log_inline``) wakes its waiter
    at once: wrap_future always goes through the loop's self-pipe, a send and a turn of the
    loop per write, each a moment the GIL may go to the writer thread."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()
    owner = threading.get_ident()

    def copy(done: concurrent.futures.Future[T]) -> None:
        if waiter.cancelled():
            return
        if done.cancelled():
            waiter.cancel()
        elif (error := done.exception()) is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    def completed(done: concurrent.futures.Future[T]) -> None:
        if threading.get_ident() == owner:
            copy(done)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(copy, done)

    def abandoned(_: asyncio.Future[T]) -> None:
        if waiter.cancelled():
            future.cancel()  # stops only a write not yet taken (``Store.write``)

    waiter.add_done_callback(abandoned)
    future.add_done_callback(completed)
    return waiter


def checkpoint(engine: Engine) -> None:
    """Fold SQLite's WAL into the database file and truncate it (one tidy file); a reader in
    another process only makes this partial, never wrong."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
    except Exception as exc:
        log.info("WAL checkpoint skipped: %s", exc)
    finally:
        raw.close()


def _sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite store (None for a server, or a URI this store cannot place)."""
    u = engine.url
    if u.get_backend_name() != "sqlite" or not u.database or u.query.get("uri") is not None:
        return None
    return Path(u.database)


def _open_intake_log(engine: Engine, database: Path, *, sync: bool) -> IntakeLog:
    """Open the intake log of ``database`` and apply what the database does not hold yet
    (the writes acknowledged before a kill or a power cut)."""
    with engine.connect() as conn:
        applied = int(conn.scalar(select(intake_state.c.applied_seq)) or 0)
    intake_log, pending = IntakeLog.open(log_path(database), applied=applied, sync=sync)
    if pending:
        writer = _Writer(engine, DEFAULT_BATCH_MAX, DEFAULT_BEHIND_CHUNK, _Tally(), applied)
        try:
            for record in pending:
                writer.submit(_Job.logged(record.seq, record.rows, _count(record.rows)))
        finally:
            writer.stop()
            writer.join()
        if writer.applied_seq < intake_log.last_seq:
            intake_log.close()
            raise StoreError(
                f"could not apply the intake log {intake_log.path} up to record "
                f"{intake_log.last_seq} (the database holds up to {writer.applied_seq}): see "
                "the errors above; the log is kept for the next start"
            )
        log.info("store: applied %d intake-log record(s) left by the last run", len(pending))
    return intake_log


def _prepare_database(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        description, enough = durability(conn)
    if not enough:
        log.warning("store at %s may lose acknowledged commits: %s", engine.url, description)

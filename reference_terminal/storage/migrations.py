"""Ordered schema migrations, applied when a store opens (``Store.open`` calls ``migrate``).

Each migration is frozen once released: it builds the tables *as they were* at its version,
never from ``schema.py`` (which describes the latest state). ``schema_version`` records every
applied version with its time. Applying is idempotent and safe when two processes open the
same database at once:

- SQLite: all pending steps run in one ``BEGIN IMMEDIATE`` transaction (DDL is transactional);
- PostgreSQL: one transaction holding an advisory lock;
- MariaDB/MySQL: DDL commits implicitly, so a named lock (``GET_LOCK``) serialises openers and
  every step creates only what is missing (``checkfirst``), so a step interrupted half-way is
  completed on the next start.

A database newer than this code is refused rather than used: an old terminal must not write
into a schema it does not know.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)
from sqlalchemy import func as sqlfunc
from sqlalchemy.schema import SchemaItem

from reference_terminal.model import figure_kind, figures_of
from reference_terminal.storage.schema import (
    TABLE_OPTIONS,
    VALUE_LENGTH,
    StoreError,
    identifier,
    row_id,
    schema_version,
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    md = MetaData()
    Table(
        "schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", String(200), nullable=False),
        Column("applied_at", Double, nullable=False),
        **TABLE_OPTIONS,
    )
    Table(
        "readings",
        md,
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("point", identifier(), nullable=False),
        Column("t", Double, nullable=False),
        Column("raw", Text, nullable=False),
        Column("value", String(VALUE_LENGTH), nullable=True),
        Column("quality", String(16), nullable=False),
        Column("digits", SmallInteger, nullable=False),
        Column("device", identifier(), nullable=False),
        Column("note", Text, nullable=False),
        Index("ix_readings_point_t", "point", "t"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    )
    Table(
        "events",
        md,
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("t", Double, nullable=False),
        Column("kind", identifier(), nullable=False),
        Column("point", identifier(), nullable=True),
        Column("device", identifier(), nullable=True),
        Column("period_start", Double, nullable=True),
        Column("period_end", Double, nullable=True),
        Column("details", Text, nullable=False),
        Index("ix_events_kind_t", "kind", "t"),
        Index("ix_events_t", "t"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    )
    md.create_all(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    md = MetaData()
    events = Table("events", md, Column("point", identifier()), Column("t", Double))
    Index("ix_events_point_t", events.c.point, events.c.t).create(conn, checkfirst=True)
    Table(
        "derived_values",
        md,
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("point", identifier(), nullable=False),
        Column("kind", identifier(), nullable=False),
        Column("period_start", Double, nullable=False),
        Column("period_end", Double, nullable=False),
        Column("value", String(VALUE_LENGTH), nullable=True),
        Column("quality", String(16), nullable=False),
        Column("note", Text, nullable=False),
        Column("computed_at", Double, nullable=False),
        UniqueConstraint("point", "kind", "period_start", name="uq_derived_values_period"),
        Index("ix_derived_values_period_end", "period_end"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)


def _v3(conn: Connection) -> None:
    md = MetaData()
    Table(
        "uplink_outbox",
        md,
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("centre", identifier(), nullable=False),
        Column("cn", Integer, nullable=False),
        Column("data_time", Double, nullable=False),
        Column("payload", Text, nullable=False),
        Column("origin", String(16), nullable=False),
        Column("qn", String(32), nullable=True),
        Column("created_at", Double, nullable=False),
        Column("first_sent_at", Double, nullable=True),
        Index("ix_uplink_outbox_centre_id", "centre", "id"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)
    Table(
        "uplink_state",
        md,
        Column("centre", identifier(), primary_key=True),
        Column("key", identifier(), primary_key=True),
        Column("value", String(VALUE_LENGTH), nullable=False),
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    md = MetaData()
    Table(
        "audit_log",
        md,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("t", Double, nullable=False),
        Column("user_id", identifier(), nullable=False),
        Column("event_type", identifier(), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("details", Text, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        Column("seal", String(64), nullable=False),
        Index("ix_audit_log_t", "t"),
        Index("ix_audit_log_user_t", "user_id", "t"),
        Index("ix_audit_log_type_t", "event_type", "t"),
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)


def _v5(conn: Connection) -> None:
    md = MetaData()
    state = Table(
        "intake_state",
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("applied_seq", BigInteger, nullable=False),
        **TABLE_OPTIONS,
    )
    state.create(conn, checkfirst=True)
    if conn.scalar(select(sqlfunc.count()).select_from(state)) == 0:
        conn.execute(state.insert().values(id=1, applied_seq=0))


def _v6(conn: Connection) -> None:
    """Readings and derived values each in two tables behind a view (schema.py, "recent and
    settled"): the old tables become the settled ones with their data; new rows go to the
    recent ones, whose ids continue above the old ones."""
    md = MetaData()

    def reading_columns() -> list[SchemaItem]:
        return [
            Column("id", row_id(), primary_key=True, autoincrement=True),
            Column("point", identifier(), nullable=False),
            Column("t", Double, nullable=False),
            Column("raw", Text, nullable=False),
            Column("value", String(VALUE_LENGTH), nullable=True),
            Column("quality", String(16), nullable=False),
            Column("digits", SmallInteger, nullable=False),
            Column("device", identifier(), nullable=False),
            Column("note", Text, nullable=False),
        ]

    def derived_columns() -> list[SchemaItem]:
        return [
            Column("id", row_id(), primary_key=True, autoincrement=True),
            Column("point", identifier(), nullable=False),
            Column("kind", identifier(), nullable=False),
            Column("period_start", Double, nullable=False),
            Column("period_end", Double, nullable=False),
            Column("value", String(VALUE_LENGTH), nullable=True),
            Column("quality", String(16), nullable=False),
            Column("note", Text, nullable=False),
            Column("computed_at", Double, nullable=False),
        ]

    names = set(inspect(conn).get_table_names())
    for old, settled in (("readings", "readings_settled"), ("derived_values", "derived_settled")):
        if settled not in names:  # MariaDB: a step interrupted after a rename
            conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {settled}")
    Table(
        "readings_recent",
        md,
        *reading_columns(),
        Index("ix_readings_recent_t", "t", "point"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)
    Table(
        "derived_recent",
        md,
        *derived_columns(),
        UniqueConstraint("period_start", "kind", "point", name="uq_derived_recent_period"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)
    Table(
        "derived_extent",
        md,
        Column("kind", identifier(), primary_key=True),
        Column("max_start", Double, nullable=False),
        **TABLE_OPTIONS,
    ).create(conn, checkfirst=True)
    settled_copied(conn)
    have = set(inspect(conn).get_view_names())
    for view, settled, recent, columns in (
        ("readings", "readings_settled", "readings_recent", _READING_COLUMNS),
        ("derived_values", "derived_settled", "derived_recent", _DERIVED_COLUMNS),
    ):
        if view not in have:
            conn.exec_driver_sql(
                f"CREATE VIEW {view} AS SELECT {columns} FROM {settled} "
                f"UNION ALL SELECT {columns} FROM {recent}"
            )


_READING_COLUMNS = "id, point, t, raw, value, quality, digits, device, note"
_DERIVED_COLUMNS = "id, point, kind, period_start, period_end, value, quality, note, computed_at"


def settled_copied(conn: Connection) -> None:
    """After rows were put into the settled tables with their ids (by this migration or a
    restore): ``derived_extent`` from what they hold, and the recent tables' ids above them."""
    conn.exec_driver_sql("DELETE FROM derived_extent")
    conn.exec_driver_sql(
        "INSERT INTO derived_extent (kind, max_start) "
        "SELECT kind, MAX(period_start) FROM derived_settled GROUP BY kind"
    )
    for settled, recent in (
        ("readings_settled", "readings_recent"),
        ("derived_settled", "derived_recent"),
    ):
        top = conn.scalar(text(f"SELECT MAX(id) FROM {settled}"))
        if top:
            continue_ids_after(conn, recent, int(top))


def continue_ids_after(conn: Connection, table: str, top: int) -> None:
    """Make ``table``'s next generated id greater than ``top`` (never lower it)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # AUTOINCREMENT keeps its high-water mark in sqlite_sequence, one row per table
        updated = conn.execute(
            text("UPDATE sqlite_sequence SET seq = MAX(seq, :top) WHERE name = :t"),
            {"top": top, "t": table},
        ).rowcount
        if not updated:
            conn.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :top)"),
                {"top": top, "t": table},
            )
    elif dialect == "postgresql":
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                "GREATEST(:top, (SELECT COALESCE(MAX(id), 0) FROM " + table + ")) + 1, false)"
            ),
            {"t": table, "top": top},
        )
    elif dialect in ("mysql", "mariadb"):
        # AUTO_INCREMENT only ever rises by this statement (a value below the table's maximum
        # is raised to it); DDL: it commits
        conn.exec_driver_sql(f"ALTER TABLE {table} AUTO_INCREMENT = {top + 1}")
    else:
        raise StoreError(f"cannot set the next id of {table} on {dialect}")


def _v7(conn: Connection) -> None:
    """A closed window in one row: its figures beside its main one (max, min, first, last, and
    an hour's or longer window's count) in columns of the window's row, and ``derived_values``
    showing each as a value of its own kind as before (schema.py, "windows"). Figures stored
    as rows of their own are folded into their windows' rows."""
    for table in _V7_TABLES:
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        for figure in _V7_FIGURES:
            if f"window_{figure}" not in have:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN window_{figure} VARCHAR(64)")
    md = MetaData()
    listing = Table(
        "window_figures",
        md,
        Column("kind", identifier(), primary_key=True),
        Column("window_kind", identifier(), nullable=False),
        Column("figure", identifier(), nullable=False),
        Index("ix_window_figures_window_kind", "window_kind"),
        **TABLE_OPTIONS,
    )
    listing.create(conn, checkfirst=True)
    listed = set(conn.scalars(select(listing.c.kind)))
    # the kinds stored: the settled table's from derived_extent (every kind it holds, kept by
    # each settle: a DISTINCT would read the whole table), the recent table's own
    kinds = set(conn.scalars(text("SELECT kind FROM derived_extent")))
    kinds |= set(conn.scalars(text("SELECT DISTINCT kind FROM derived_recent")))
    for window in sorted({w for w, _ in filter(None, map(figure_kind, kinds))}):
        for figure in figures_of(window):
            if f"{window}_{figure}" not in listed:
                conn.execute(
                    listing.insert().values(
                        kind=f"{window}_{figure}", window_kind=window, figure=figure
                    )
                )
    for table in _V7_TABLES:
        _fold(conn, table)
    for table in _V7_TABLES:
        _drop_folded(conn, table)
    if "derived_values" in set(inspect(conn).get_view_names()):
        conn.exec_driver_sql("DROP VIEW derived_values")
    value = (
        "CASE f.figure "
        + " ".join(f"WHEN '{f}' THEN d.window_{f}" for f in _V7_FIGURES[:-1])
        + " ELSE d.window_count END"
    )
    columns = (
        f"d.id, d.point, f.kind, d.period_start, d.period_end, {value}, d.quality, d.note, "
        "d.computed_at"
    )
    arms = [f"SELECT {_DERIVED_COLUMNS} FROM {table}" for table in _V7_TABLES]
    arms += [
        f"SELECT {columns} FROM window_figures f JOIN {table} d ON d.kind = f.window_kind"
        for table in _V7_TABLES
    ]
    conn.exec_driver_sql("CREATE VIEW derived_values AS " + " UNION ALL ".join(arms))


_V7_TABLES = ("derived_settled", "derived_recent")
_V7_FIGURES = ("max", "min", "first", "last", "count")


def _fold(conn: Connection, target: str) -> None:
    """Copy the figures stored as values of their own (``minute_max`` …, in either table) into
    the rows of ``target``'s windows, for every window kind ``window_figures`` lists."""
    mysql = conn.dialect.name in ("mysql", "mariadb")

    def figure_kind(figure: str) -> str:  # w.kind || '_max'; MySQL reads || as OR
        return f"CONCAT(w.kind, '_{figure}')" if mysql else f"w.kind || '_{figure}'"

    def match(alias: str, figure: str) -> str:
        return (
            f"{alias}.point = w.point AND {alias}.period_start = w.period_start "
            f"AND {alias}.kind = {figure_kind(figure)}"
        )

    windows = "w.kind IN (SELECT window_kind FROM window_figures)"
    if mysql:  # a subquery may not read the table an UPDATE writes: joins instead
        joins, sets = [], []
        for figure in _V7_FIGURES:
            aliases = []
            for n, source in enumerate(_V7_TABLES):
                alias = f"{figure[:3]}{n}"
                joins.append(f"LEFT JOIN {source} {alias} ON {match(alias, figure)}")
                aliases.append(f"{alias}.value")
            sets.append(f"w.window_{figure} = COALESCE({', '.join(aliases)})")
        sql = f"UPDATE {target} w {' '.join(joins)} SET {', '.join(sets)} WHERE {windows}"
    else:
        sets = []
        for figure in _V7_FIGURES:
            found = ", ".join(
                f"(SELECT c.value FROM {source} c WHERE {match('c', figure)})"
                for source in _V7_TABLES
            )
            sets.append(f"window_{figure} = COALESCE({found})")
        sql = f"UPDATE {target} AS w SET {', '.join(sets)} WHERE {windows}"
    conn.exec_driver_sql(sql)


def _drop_folded(conn: Connection, table: str) -> None:
    """Delete ``table``'s figures stored as values of their own whose window has a row (in
    either table: folded into it); a figure without its window stays a value of its own."""
    window_row = " OR ".join(
        f"EXISTS (SELECT 1 FROM window_figures f JOIN {w} w ON w.kind = f.window_kind "
        f"WHERE f.kind = c.kind AND w.point = c.point AND w.period_start = c.period_start)"
        for w in _V7_TABLES
    )
    figures = "c.kind IN (SELECT kind FROM window_figures)"
    if conn.dialect.name in ("mysql", "mariadb"):  # a subquery may not read the table either
        for n, w in enumerate(_V7_TABLES):
            conn.exec_driver_sql(
                f"DELETE c FROM {table} c JOIN window_figures f ON f.kind = c.kind "
                f"JOIN {w} w{n} ON w{n}.kind = f.window_kind AND w{n}.point = c.point "
                f"AND w{n}.period_start = c.period_start"
            )
        return
    conn.exec_driver_sql(f"DELETE FROM {table} AS c WHERE {figures} AND ({window_row})")


def _v8(conn: Connection) -> None:
    """A centre's outbox in DataTime order: a backlog's next chunk is read from this index,
    not sorted out of every entry of the centre."""
    md = MetaData()
    outbox = Table(
        "uplink_outbox",
        md,
        Column("id", row_id(), primary_key=True),
        Column("centre", identifier(), nullable=False),
        Column("data_time", Double, nullable=False),
    )
    index = Index("ix_uplink_outbox_centre_time", outbox.c.centre, outbox.c.data_time, outbox.c.id)
    index.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "readings and events", _v1),
    Migration(2, "derived values (increments, settlements); events by point", _v2),
    Migration(3, "upload outbox and per-centre upload state", _v3),
    Migration(4, "security audit log, SM3 hash-chained (ISC-2 §7.4.1.3)", _v4),
    Migration(5, "intake log position: writes durable before the database holds them", _v5),
    Migration(6, "readings, derived values: recent (time first), settled (point first)", _v6),
    Migration(7, "a closed window in one row, its figures in columns; shown as values", _v7),
    Migration(8, "upload outbox indexed by centre and DataTime (backlog chunks in order)", _v8),
)
LATEST = MIGRATIONS[-1].version

_KNOWN_TABLES = ("readings", "events", "derived_values", "readings_settled", "derived_settled")
_PG_LOCK_KEY = 0x63617262  # "carb"
_MYSQL_LOCK = "carbench.store.migrate"


def current_version(conn: Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    names = set(inspect(conn).get_table_names())
    if "schema_version" not in names:
        found = sorted(names.intersection(_KNOWN_TABLES))
        if found:
            raise StoreError(
                f"the database has table(s) {', '.join(found)} but no schema_version table: "
                "it is not a carbench store this code can upgrade; restore into a fresh database"
            )
        return 0
    version = conn.scalar(select(sqlfunc.max(schema_version.c.version)))
    return int(version or 0)


def _check(version: int) -> None:
    if version > LATEST:
        raise StoreError(
            f"the database's schema is version {version}, newer than this terminal's "
            f"({LATEST}); refusing to open it (upgrade the terminal, or restore a backup)"
        )


@contextmanager
def _mysql_lock(conn: Connection, timeout_s: int = 60) -> Iterator[None]:
    got = conn.scalar(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": _MYSQL_LOCK, "timeout": timeout_s}
    )
    conn.commit()
    if got != 1:
        raise StoreError(f"could not take the migration lock {_MYSQL_LOCK!r} in {timeout_s} s")
    try:
        yield
    finally:
        conn.rollback()
        conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _MYSQL_LOCK})
        conn.commit()


def _record(conn: Connection, m: Migration) -> None:
    conn.execute(
        schema_version.insert().values(
            version=m.version, description=m.description, applied_at=time.time()
        )
    )


def migrate(engine: Engine, target: int = LATEST) -> list[int]:
    """Bring the database up to ``target`` (default: the latest); return the versions applied."""
    if not 1 <= target <= LATEST:
        raise ValueError(f"target version must be 1..{LATEST}, got {target}")
    applied: list[int] = []
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect in ("mysql", "mariadb"):
            with _mysql_lock(conn):
                current = current_version(conn)
                conn.commit()
                _check(current)
                for m in MIGRATIONS:
                    if current < m.version <= target:
                        m.apply(conn)
                        _record(conn, m)
                        conn.commit()
                        applied.append(m.version)
            return applied
        if dialect == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            current = current_version(conn)
            _check(current)
            for m in MIGRATIONS:
                if current < m.version <= target:
                    m.apply(conn)
                    _record(conn, m)
                    applied.append(m.version)
    return applied

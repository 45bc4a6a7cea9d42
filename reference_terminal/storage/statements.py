"""Frequent small statements, compiled once per dialect and run through the driver.

A producer scan runs a handful of small statements every minute for every centre, a backlog's
drain a few per window of frames, a boot a few per point. Through ``Connection.execute`` most
of their time went to SQLAlchemy building, keying and caching each statement (a third of a
scan, most of a boot's replay plan), not to the database. Each :class:`Prepared` is a Core
statement compiled once per dialect, so quoting and the parameter style stay the dialect's and
one text serves SQLite, PostgreSQL and MariaDB. On SQLite it runs straight on the sqlite3
connection, inside the transaction SQLAlchemy began (as the store's own bulk writes do);
elsewhere through ``exec_driver_sql``.

Values come back as the driver gives them: callers convert (``int``, ``float``, ``str``).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement


class Rows(Protocol):
    """What both a sqlite3 cursor and a SQLAlchemy ``CursorResult`` offer."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Prepared:
    """``statement`` with its bind parameters ``names``, in the order :meth:`run` takes them
    (parameters the compiler adds, such as SQLite's ``OFFSET 0``, keep their values)."""

    def __init__(self, statement: ClauseElement, names: Sequence[str]) -> None:
        self.statement = statement
        self.names = tuple(names)
        self._forms: dict[tuple[Any, ...], _Form] = {}
        self._lock = threading.Lock()  # writer and reader threads may compile it at once

    def _form(self, dialect: Dialect) -> _Form:
        key = (type(dialect), dialect.paramstyle, getattr(dialect, "is_mariadb", False))
        form = self._forms.get(key)
        if form is None:
            with self._lock:
                form = self._forms[key] = self._compile(dialect)
        return form

    def _compile(self, dialect: Dialect) -> _Form:
        compiled: Any = self.statement.compile(dialect=dialect)  # a SQLCompiler
        extra = [n for n in compiled.params if n not in self.names]
        constants = tuple(compiled.params[n] for n in extra)
        where = {n: i for i, n in enumerate((*self.names, *extra))}
        order = None
        if compiled.positional:
            order = tuple(where[n] for n in compiled.positiontup or ())
        as_given = order == tuple(range(len(self.names))) and not constants
        direct = dialect.name == "sqlite" and dialect.driver == "pysqlite"
        return _Form(str(compiled), order, as_given, (*self.names, *extra), constants, direct)

    def _params(self, form: _Form, args: Sequence[Any]) -> Any:
        if form.as_given:
            return tuple(args)
        full = (*args, *form.constants)
        if form.order is not None:
            return tuple(full[i] for i in form.order)
        return dict(zip(form.names, full, strict=True))

    def run(self, conn: Connection, *args: Any) -> Rows:
        form = self._form(conn.dialect)
        params = self._params(form, args)
        if form.direct:
            cursor: Rows = conn.connection.dbapi_connection.execute(form.sql, params)  # type: ignore[union-attr]
            return cursor
        return conn.exec_driver_sql(form.sql, params)

    def run_many(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """The statement once per row of arguments (the driver's ``executemany``)."""
        if not rows:
            return
        form = self._form(conn.dialect)
        params = [self._params(form, r) for r in rows]
        if form.direct:
            conn.connection.dbapi_connection.executemany(form.sql, params).close()  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(form.sql, params)


class _Form(NamedTuple):
    sql: str
    order: tuple[int, ...] | None  # positional: where each parameter comes from; None: named
    as_given: bool  # positional, in the order the caller gives them
    names: tuple[str, ...]  # every parameter: the caller's, then the compiler's
    constants: tuple[Any, ...]  # the compiler's parameters' values
    direct: bool  # straight on the sqlite3 connection


#: Bound parameters a SQLite statement may carry (SQLITE_MAX_VARIABLE_NUMBER; 999 before 3.32).
SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def _sqlite_json_sets() -> bool:
    """Whether this SQLite takes a set of rows as one JSON text: ``json_each`` (JSON1, built
    in since 3.38) in ``UPDATE … FROM`` (3.33)."""
    if sqlite3.sqlite_version_info < (3, 33):
        return False
    with contextlib.closing(sqlite3.connect(":memory:")) as probe:
        try:
            probe.execute("SELECT value FROM json_each('[1]')").close()
        except sqlite3.OperationalError:
            return False
    return True


#: Whether SQLite statements may take their rows as one JSON text (``_sqlite_json_sets``).
SQLITE_JSON_SETS = _sqlite_json_sets()
#: Rows per statement of :func:`insert_rows`, at most.
ROWS_PER_STATEMENT = 256


def insert_rows(
    db: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """``head VALUES (…), (…) tail`` on SQLite: ``rows`` (``width`` values each) in statements of
    many rows, in order (an upsert's later row updates an earlier one, as one at a time would).

    ``executemany`` lets go of the interpreter lock around each row's step and must take it
    back: beside a thread busy in Python a writer then waits a switch interval per row. On a
    centre's readings table, 300 transactions of 190 rows beside a spinning thread took 2.86 s
    that way and 0.40 s in statements of many rows (alone: 0.23 s and 0.17 s); the store's
    readings and window upserts of a 189-point minute 0.31 and 0.36 ms against 0.42 and 0.51.
    A remainder goes in powers of two, so each table needs a dozen statement texts at most."""
    per = max(1, min(ROWS_PER_STATEMENT, SQLITE_MAX_PARAMS // width))
    start = 0
    while start < len(rows):
        left = len(rows) - start
        n = per if left >= per else 1 << (left.bit_length() - 1)
        chunk = rows[start : start + n]
        sql = _values_sql(head, width, n, tail)
        db.execute(sql, [value for row in chunk for value in row]).close()
        start += n


@functools.lru_cache(maxsize=256)
def _values_sql(head: str, width: int, n: int, tail: str) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([one] * n)}{tail}"


def sqlite_connection(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under ``conn``; None on other backends."""
    if conn.dialect.name != "sqlite" or conn.dialect.driver != "pysqlite":
        return None
    dbapi = conn.connection.dbapi_connection
    return dbapi if isinstance(dbapi, sqlite3.Connection) else None


def sqlite_changes(conn: Connection) -> int | None:
    """Rows this SQLite connection has inserted, updated or deleted since it was opened
    (``sqlite3_total_changes``); None on other backends. Within one transaction nothing else
    can change what the connection reads (one writer; a WAL reader keeps its snapshot), so
    an unchanged count means unchanged data."""
    sqlite = sqlite_connection(conn)
    return None if sqlite is None else sqlite.total_changes

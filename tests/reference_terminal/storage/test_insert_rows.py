"""Many rows a statement on SQLite (``statements.insert_rows``) store exactly what one row at a
time would: every row, in order, an upsert's later row updating an earlier one of its key, for
any count (whole statements and the remainder's powers of two alike)."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from reference_terminal.storage.statements import ROWS_PER_STATEMENT, insert_rows

UPSERT_HEAD = "INSERT INTO t (k, v, n)"
UPSERT_TAIL = " ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = t.n + 1"


def _table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER UNIQUE, v TEXT, n INTEGER)")
    return db


def _contents(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute("SELECT id, k, v, n FROM t ORDER BY id").fetchall()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.text(max_size=3)),
        max_size=3 * ROWS_PER_STATEMENT + 7,
    )
)
def test_an_upsert_of_many_rows_a_statement_leaves_what_one_at_a_time_leaves(
    pairs: list[tuple[int, str]],
) -> None:
    rows = [(k, v, 0) for k, v in pairs]
    one_by_one, batched = _table(), _table()
    one_by_one.executemany(f"{UPSERT_HEAD} VALUES (?, ?, ?){UPSERT_TAIL}", rows)
    insert_rows(batched, UPSERT_HEAD, 3, rows, UPSERT_TAIL)
    assert _contents(batched) == _contents(one_by_one)


def test_every_count_of_rows_is_inserted_in_order() -> None:
    for count in (0, 1, 2, 3, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 1000):
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute("CREATE TABLE t (a INTEGER, b TEXT)")
        rows = [(i, f"r{i}") for i in range(count)]
        insert_rows(db, "INSERT INTO t (a, b)", 2, rows)
        assert db.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == rows

"""What a producer scan reads of a stream's derived values, read once for every centre.

Every centre's producer scans at the same instant, and the store's writer runs calls queued
together in one transaction (``Store.run_in_writer``, each call in a savepoint): the centres'
scans then read the very same rows past the very same cursor, and with the same code table
build the very same frames. :func:`shared_reads` keeps what one scan read and built, on the
connection, for the next scan of the same transaction.

Served only while it cannot have changed: the same transaction, and not one row inserted,
updated or deleted on the connection since the scan that kept it ended (SQLite's change
count: a scan writes the outbox and its cursor, which count, only before it ends; any other
call in between that writes anything drops it). Within a transaction nothing else changes
what the connection reads (one writer; a WAL reader keeps its snapshot). PostgreSQL and
MariaDB give no such count: each scan reads for itself there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, func, select, union_all

from reference_terminal.storage.schema import derived_recent, derived_settled
from reference_terminal.storage.statements import Prepared, sqlite_changes
from reference_terminal.uplink.frames import (
    STREAM_KINDS,
    Coding,
    Frame,
    StoredValue,
    Stream,
    stored_period_frames,
)

#: Main rows read per scan transaction (a backlog is enqueued in several).
SCAN_ROWS = 5_000

_INFO_KEY = "carbench.uplink.shared_reads"


def _take(table: Table) -> Select[Any]:
    c = table.c
    return select(
        c.id, c.point, c.kind, c.period_start, c.value, c.quality, c.window_min, c.window_max
    ).where(c.id > bindparam("cursor"), c.id <= bindparam("top"), c.kind == bindparam("main"))


#: The windows of a stream's kind past a cursor, up to a top id, with their min and max (only
#: what frames are made of; each window is one row, its figures beside its main one).
_TAKE = Prepared(
    union_all(_take(derived_settled), _take(derived_recent))
    .order_by("id")
    .limit(bindparam("limit")),
    ("cursor", "top", "main", "limit"),
)
#: The largest derived-value id: each table's maximum from its key (``schema.derived_top_id``).
_TOP = Prepared(
    select(
        select(func.max(derived_settled.c.id)).scalar_subquery(),
        select(func.max(derived_recent.c.id)).scalar_subquery(),
    ),
    (),
)

#: A taken row: id, point, kind, period start, value text, quality text, min and max text.
Row = tuple[int, str, str, float, str | None, str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Taken:
    """A stream's frames from the rows past ``cursor`` up to ``top``, for one code table."""

    frames: tuple[Frame, ...]  # unsigned, oldest period first
    payloads: tuple[str, ...]  # ``Frame.payload()`` of each
    mains: tuple[tuple[int, float], ...]  # (id, period start) of each coded main row taken
    more: bool  # a full chunk: there is more past ``cursor_after``
    cursor_after: int  # where the cursor goes once every frame is enqueued


@dataclass(eq=False)
class _Memo:
    transaction: Any  # the root transaction it belongs to
    changes: int  # the connection's change count when the last scan using it ended
    top: int | None = None
    rows: dict[tuple[int, int, str], list[Row]] = field(default_factory=dict)
    taken: dict[tuple[int, int, Stream, int], list[tuple[Coding, Taken]]] = field(
        default_factory=dict
    )


class Reads:
    """One scan's reads; shared with the other scans of its transaction when possible."""

    def __init__(self, conn: Connection, memo: _Memo | None) -> None:
        self.conn = conn
        self.memo = memo

    def top(self) -> int:
        """The largest derived-value id, 0 if none."""
        memo = self.memo
        if memo is not None and memo.top is not None:
            return memo.top
        row = _TOP.run(self.conn).fetchone()
        top = int(max((t for t in row if t is not None), default=0))
        if memo is not None:
            memo.top = top
        return top

    def taken(self, stream: Stream, cursor: int, top: int, cn: int, coding: Coding) -> Taken:
        """Frames of ``stream`` (CN ``cn``) from the rows with ``cursor < id <= top``."""
        memo = self.memo
        key = (cursor, top, stream, cn)
        if memo is not None:
            for known, taken in memo.taken.get(key, ()):
                if known is coding or known == coding:
                    return taken
        taken = _build(self._rows(cursor, top, STREAM_KINDS[stream][0]), top, stream, cn, coding)
        if memo is not None:
            memo.taken.setdefault(key, []).append((coding, taken))
        return taken

    def _rows(self, cursor: int, top: int, main: str) -> list[Row]:
        memo = self.memo
        key = (cursor, top, main)
        if memo is not None and key in memo.rows:
            return memo.rows[key]
        rows: list[Row] = _TAKE.run(self.conn, cursor, top, main, SCAN_ROWS).fetchall()  # type: ignore[assignment]
        if memo is not None:
            memo.rows[key] = rows
        return rows


@contextmanager
def shared_reads(conn: Connection) -> Iterator[Reads]:
    """The reads of one scan (which writes only the outbox and the upload state). What it
    reads is kept for the next scan of the same transaction if it ends without an error."""
    info = conn.info
    changes = sqlite_changes(conn)
    transaction = conn.get_transaction()
    memo: _Memo | None = info.get(_INFO_KEY)
    if memo is not None and (
        changes is None or memo.transaction is not transaction or memo.changes != changes
    ):
        memo = None
    if memo is None and changes is not None and transaction is not None:
        memo = _Memo(transaction, changes)
    info.pop(_INFO_KEY, None)  # until this scan ends well
    yield Reads(conn, memo)
    if memo is not None:
        memo.changes = sqlite_changes(conn) or 0
        info[_INFO_KEY] = memo


def _build(rows: list[Row], top: int, stream: Stream, cn: int, coding: Coding) -> Taken:
    main, low, high = STREAM_KINDS[stream]
    more = len(rows) == SCAN_ROWS
    cursor_after = int(rows[-1][0]) if more else top
    codes = coding.codes
    values: list[StoredValue] = []
    mains: list[tuple[int, float]] = []
    for id_, point, _, start, value, quality, least, most in rows:
        if point in codes:
            values += (
                (point, main, start, value, quality),
                (point, low, start, least, quality),
                (point, high, start, most, quality),
            )
            mains.append((int(id_), start))
    frames = stored_period_frames(values, stream, cn, coding)
    return Taken(
        tuple(frames), tuple(f.payload() for f in frames), tuple(mains), more, cursor_after
    )

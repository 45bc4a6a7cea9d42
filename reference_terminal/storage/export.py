"""Export a time range of the store to CSV, JSON lines or Parquet (ISC-2 §7.2.3(4) "easy export").

Values are exported as the exact decimal text stored (``"0.00"`` stays ``"0.00"``; a missing
value is an empty CSV field, JSON ``null``, Parquet null). Every row also carries ``time``, the
instant in ISO 8601 UTC, next to the exact POSIX seconds ``t``.

Readings come point by point, each in time order, read through the (point, t) index in chunks
inside one read transaction: a consistent snapshot however long the export takes, and memory
bounded by the chunk size. The file is written under a temporary name, flushed to disk, then
renamed: a file with the final name is always complete.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import ColumnElement, Connection, Select, and_, or_, select

from reference_terminal.durable import publish
from reference_terminal.storage.schema import derived_values, events, readings
from reference_terminal.storage.store import Store, list_points

Format = Literal["csv", "jsonl", "parquet"]
What = Literal["readings", "events", "derived"]
FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

_COLUMNS: dict[What, tuple[tuple[str, pa.DataType], ...]] = {
    "readings": (
        ("id", pa.int64()),
        ("point", pa.string()),
        ("t", pa.float64()),
        ("time", pa.string()),
        ("raw", pa.string()),
        ("value", pa.string()),
        ("quality", pa.string()),
        ("digits", pa.int16()),
        ("device", pa.string()),
        ("note", pa.string()),
    ),
    "events": (
        ("id", pa.int64()),
        ("t", pa.float64()),
        ("time", pa.string()),
        ("kind", pa.string()),
        ("point", pa.string()),
        ("device", pa.string()),
        ("period_start", pa.float64()),
        ("period_end", pa.float64()),
        ("details", pa.string()),  # a JSON object (an object in JSON lines)
    ),
    "derived": (
        ("id", pa.int64()),
        ("point", pa.string()),
        ("kind", pa.string()),
        ("period_start", pa.float64()),
        ("period_end", pa.float64()),
        ("time", pa.string()),  # of period_start
        ("value", pa.string()),
        ("quality", pa.string()),
        ("note", pa.string()),
        ("computed_at", pa.float64()),
    ),
}


def columns(what: What) -> list[str]:
    return [name for name, _ in _COLUMNS[what]]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def _after(order: Sequence[ColumnElement[Any]], last: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after ``last`` in ``order`` (keyset pagination; works on every backend)."""
    head, *rest = order
    later: ColumnElement[bool] = head > last[0]
    if rest:
        later = or_(later, and_(head == last[0], _after(rest, last[1:])))
    return later


def _pages(
    conn: Connection, query: Select[Any], order: Sequence[ColumnElement[Any]], chunk: int
) -> Iterator[list[dict[str, Any]]]:
    last: tuple[Any, ...] | None = None
    query = query.order_by(*order).limit(chunk)
    while True:
        page = query if last is None else query.where(_after(order, last))
        rows = [dict(row) for row in conn.execute(page).mappings()]
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        last = tuple(rows[-1][col.key] for col in order)


def iter_rows(
    conn: Connection,
    what: What,
    start: float,
    end: float,
    points: Sequence[str] | None = None,
    *,
    chunk_rows: int = 10_000,
) -> Iterator[list[dict[str, Any]]]:
    """Chunks of rows (as exported) of ``what`` with time in ``[start, end)``."""
    if what == "readings":
        c = readings.c
        for point in list_points(conn) if points is None else points:
            query = select(readings).where(c.point == point, c.t >= start, c.t < end)
            for rows in _pages(conn, query, (c.t, c.id), chunk_rows):
                for row in rows:
                    row["time"] = iso(row["t"])
                yield rows
    elif what == "events":
        e = events.c
        query = select(events).where(e.t >= start, e.t < end)
        if points is not None:
            query = query.where(e.point.in_(list(points)))
        for rows in _pages(conn, query, (e.t, e.id), chunk_rows):
            for row in rows:
                row["time"] = iso(row["t"])
            yield rows
    elif what == "derived":
        d = derived_values.c
        if points is None:
            points = list(conn.scalars(select(d.point).distinct().order_by(d.point)))
        for point in points:
            query = select(derived_values).where(
                d.point == point, d.period_start >= start, d.period_start < end
            )
            for rows in _pages(conn, query, (d.period_start, d.kind), chunk_rows):
                for row in rows:
                    row["time"] = iso(row["period_start"])
                yield rows
    else:
        raise ValueError(f"cannot export {what!r}: choose readings, events or derived")


def _write_csv(out: TextIO, what: What, chunks: Iterator[list[dict[str, Any]]]) -> int:
    names = columns(what)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    n = 0
    for rows in chunks:
        writer.writerows([["" if r[k] is None else r[k] for k in names] for r in rows])
        n += len(rows)
    return n


def _write_jsonl(out: TextIO, what: What, chunks: Iterator[list[dict[str, Any]]]) -> int:
    names = columns(what)
    n = 0
    for rows in chunks:
        for r in rows:
            record = {k: r[k] for k in names}
            if what == "events":
                record["details"] = json.loads(r["details"])
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")
        n += len(rows)
    return n


def _write_parquet(path: Path, what: What, chunks: Iterator[list[dict[str, Any]]]) -> int:
    schema = pa.schema(list(_COLUMNS[what]))
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        for rows in chunks:
            arrays = [pa.array([r[name] for r in rows], type=t) for name, t in _COLUMNS[what]]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += len(rows)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n


def export(
    conn: Connection,
    path: str | Path,
    *,
    start: float,
    end: float,
    points: Sequence[str] | None = None,
    what: What = "readings",
    fmt: Format | None = None,
    chunk_rows: int = 10_000,
) -> int:
    """Write ``what`` with time in ``[start, end)`` (of ``points``, or all) to ``path`` and
    return the number of rows. The format comes from ``fmt`` or the file's suffix."""
    path = Path(path)
    if fmt is None:
        if path.suffix.lower() not in FORMATS:
            raise ValueError(
                f"{path}: cannot tell the export format from the suffix; "
                f"use one of {', '.join(FORMATS)} or give fmt"
            )
        fmt = FORMATS[path.suffix.lower()]
    if fmt not in ("csv", "jsonl", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}: choose csv, jsonl or parquet")
    if what not in _COLUMNS:
        raise ValueError(f"cannot export {what!r}: choose readings, events or derived")
    if conn.dialect.name != "sqlite" and not conn.in_transaction():
        conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot throughout
    chunks = iter_rows(conn, what, start, end, points, chunk_rows=chunk_rows)
    part = path.with_name(path.name + ".part")
    try:
        if fmt == "parquet":
            n = _write_parquet(part, what, chunks)
        else:
            with part.open("w", encoding="utf-8", newline="") as out:
                n = (
                    _write_csv(out, what, chunks)
                    if fmt == "csv"
                    else _write_jsonl(out, what, chunks)
                )
        publish(part, path, durable=False)  # an export is re-made, not kept across a cut
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return n


async def export_store(
    store: Store,
    path: str | Path,
    *,
    start: float,
    end: float,
    points: Sequence[str] | None = None,
    what: What = "readings",
    fmt: Format | None = None,
    chunk_rows: int = 10_000,
) -> int:
    """``export`` from a running store, in one of its reader threads."""
    wanted = None if points is None else list(points)
    return await store.run_in_reader(
        lambda conn: export(
            conn,
            path,
            start=start,
            end=end,
            points=wanted,
            what=what,
            fmt=fmt,
            chunk_rows=chunk_rows,
        )
    )

"""A page of derived values as JSON straight from the store's rows: the same document as
``Page[DerivedOut]`` (``/points/{id}/derived``), made without a dataclass and a pydantic model
per value.

Why: a year of hours is 8 760 values. Built through ``Derived`` → ``DerivedOut`` →
``model_dump_json`` it held the GIL for ~0.5 s in the store's reader thread; built from the
rows with ``json.dumps`` still ~80 ms. Every time the event loop gave the GIL up (each socket
read and write), it waited for it again behind that thread, so every other request of the API
slowed down while a long history was being answered (CPCIF §6.2).

On SQLite each item's JSON text is therefore made by SQLite itself (:mod:`.sqlite_json`),
while the reader thread does not hold the GIL; Python only joins the texts. A page with a row
SQLite cannot print exactly as Python would (a time outside 1970–2514, say) is printed here,
as it is on the other databases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, literal_column

from reference_terminal.api import sqlite_json as sq
from reference_terminal.model import Quality
from reference_terminal.storage.schema import derived_values
from reference_terminal.storage.store import derived_query

#: The columns of a derived value in ``Page[DerivedOut]``'s order.
_COLUMNS = (
    "point",
    "kind",
    "period_start",
    "period_end",
    "value",
    "quality",
    "note",
    "computed_at",
)
_TIMES = ("period_start", "period_end", "computed_at")


def derived_page_json(
    conn: Connection,
    point: str,
    kind: str | None,
    start: float | None,
    end: float | None,
    limit: int,
    offset_s: int,
) -> bytes | None:
    """Up to ``limit`` values of ``point`` by period start, as the JSON of ``Page[DerivedOut]``;
    None when there are none (the caller tells an unknown point from an empty range)."""
    zone = timezone(timedelta(seconds=offset_s))
    query = derived_query(point, kind, start, end).limit(limit + 1)
    items: Sequence[str | None] = []
    if conn.dialect.name == "sqlite":
        items = conn.execute(query.with_only_columns(_sqlite_item(offset_s, zone))).scalars().all()
    if conn.dialect.name != "sqlite" or None in items:
        # another database, or a value SQLite does not print as Python would: the page
        # again, in Python (the same read transaction: the same rows)
        columns = [derived_values.c[name] for name in _COLUMNS]
        items = [_item(row, zone) for row in conn.execute(query.with_only_columns(*columns))]
    if not items:
        return None
    truncated = "true" if len(items) > limit else "false"
    body = ",".join(cast(list[str], items[:limit]))
    page = f'{{"items":[{body}],"count":{min(len(items), limit)},"truncated":{truncated}}}'
    return page.encode()


def _item(row: Sequence[Any], zone: timezone) -> str:
    """One value's JSON text, printed in Python."""
    p, k, s, e, v, q, n, t = row
    stamp = datetime.fromtimestamp
    item = {
        "point": p,
        "kind": k,
        "start": s,
        "start_time": stamp(s, zone).isoformat(),
        "end": e,
        "end_time": stamp(e, zone).isoformat(),
        "value": None if v is None else str(Decimal(v)),
        "quality": str(Quality(q)),
        "note": n,
        "computed_at": t,
        "computed_time": stamp(t, zone).isoformat(),
    }
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _sqlite_item(offset_s: int, zone: timezone) -> ColumnElement[Any]:
    """One value's JSON text as SQLite prints it, NULL when it cannot print it as
    :func:`_item` would: a time outside :func:`sq.fits`'s domain, a quality :class:`Quality`
    does not know (Python refuses it), a column of another type than the store writes. The
    value is printed as stored: the store writes ``str(Decimal)``, which ``Decimal`` prints
    again unchanged."""
    # the offset is a validated whole number of seconds and the suffix what isoformat()
    # prints for it ("+08:00"): both are safe to write into the statement
    offset = str(int(offset_s))
    suffix = _literal(datetime.fromtimestamp(0, zone).isoformat()[19:])
    qualities = ", ".join(f"'{q.value}'" for q in Quality)
    fits = " AND ".join(
        [
            *[sq.fits(name) for name in _TIMES],
            *[f"typeof({name}) = 'text'" for name in ("point", "kind", "note")],
            "(value IS NULL OR typeof(value) = 'text')",
            f"quality IN ({qualities})",
        ]
    )
    start, end, computed = _TIMES
    text = " || ".join(
        [
            _literal('{"point":'),
            sq.string("point"),
            _literal(',"kind":'),
            sq.string("kind"),
            _literal(',"start":'),
            sq.float_text(start),
            _literal(',"start_time":"'),
            sq.iso_time(start, offset, suffix),
            _literal('","end":'),
            sq.float_text(end),
            _literal(',"end_time":"'),
            sq.iso_time(end, offset, suffix),
            _literal('","value":'),
            f"coalesce({sq.string('value')}, 'null')",
            _literal(',"quality":"'),
            "quality",  # one of Quality's values: nothing to escape
            _literal('","note":'),
            sq.string("note"),
            _literal(',"computed_at":'),
            sq.float_text(computed),
            _literal(',"computed_time":"'),
            sq.iso_time(computed, offset, suffix),
            _literal('"}'),
        ]
    )
    return literal_column(f"CASE WHEN {fits} THEN {text} END")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

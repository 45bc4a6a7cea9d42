"""A page of derived values as JSON straight from the store's rows: the same document as
``Page[DerivedOut]`` (``/points/{id}/derived``), made without a dataclass and a pydantic model
per value.

Why: a year of hours is 8 760 values, and building them through ``Derived`` → ``DerivedOut`` →
``model_dump_json`` held the GIL for ~0.5 s in the store's reader thread. Every time the event
loop gave the GIL up (each socket read and write), it waited for it again behind that thread,
so every other request of the API slowed down while a long history was being answered."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection

from reference_terminal.model import Quality
from reference_terminal.storage.schema import derived_values
from reference_terminal.storage.store import DERIVED_COLUMNS, derived_query


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
    columns = [derived_values.c[name] for name in DERIVED_COLUMNS]
    query = derived_query(point, kind, start, end).with_only_columns(*columns).limit(limit + 1)
    rows = conn.execute(query).all()
    if not rows:
        return None
    zone = timezone(timedelta(seconds=offset_s))
    stamp = datetime.fromtimestamp
    items = [
        {
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
        for p, k, s, e, v, q, n, t in rows[:limit]
    ]
    page = {"items": items, "count": len(items), "truncated": len(rows) > limit}
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()

"""The fast page of derived values is the very document ``Page[DerivedOut]`` makes, byte for
byte what Python's ``json.dumps`` prints, whether SQLite or Python printed it."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert

from reference_terminal.api import derived_pages
from reference_terminal.api.derived_pages import derived_page_json
from reference_terminal.api.wire import DerivedOut, Page
from reference_terminal.model import Quality
from reference_terminal.storage.schema import create_all, derived_recent
from reference_terminal.storage.store import select_derived

QUALITIES = list(Quality)
POINT = "kiln.kw"
T0 = 1_767_196_800.0  # 2027-01-01T00:00:00+08:00


def python_page(
    engine: Engine, kind: str | None, start: Any, end: Any, limit: int, offset: int
) -> bytes:
    """The page as the API printed it before SQLite did: ``json.dumps`` of the whole document."""
    zone = timezone(timedelta(seconds=offset))
    with engine.connect() as conn:
        found = select_derived(conn, POINT, kind, start, end)[: limit + 1]

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, zone).isoformat()

    items = [
        {
            "point": d.point,
            "kind": d.kind,
            "start": d.start,
            "start_time": stamp(d.start),
            "end": d.end,
            "end_time": stamp(d.end),
            "value": None if d.value is None else str(d.value),
            "quality": str(d.quality),
            "note": d.note,
            "computed_at": d.computed_at,
            "computed_time": stamp(d.computed_at),
        }
        for d in found[:limit]
    ]
    page = {"items": items, "count": len(items), "truncated": len(found) > limit}
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()


def store_of(rows: list[dict[str, Any]]) -> Engine:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        create_all(conn)
        conn.execute(insert(derived_recent), rows)
    return engine


def year_of_hours(rng: random.Random, *, first: float = T0) -> list[dict[str, Any]]:
    """A year of hourly values as processing writes them: periods on whole hours, computed a
    few seconds after their end at a clock time to the sub-microsecond, a note now and then."""
    notes = ["", "", "", 'gap “filled” \\ "x"\n', "tab\there\x01\x1f", "电表更换 ✓"]
    return [
        {
            "point": POINT,
            "kind": "hour" if i % 7 else "increment",
            "period_start": first + 3600 * i,
            "period_end": first + 3600 * (i + 1),
            "value": None if i % 97 == 0 else str(Decimal(rng.randrange(-(10**6), 10**9)) / 1000),
            "quality": str(QUALITIES[i % len(QUALITIES)]),
            "note": notes[i % len(notes)],
            "computed_at": first + 3600 * (i + 1) + rng.random() * 5,
        }
        for i in range(8760)
    ]


OFFSETS = [28800, 0, -3600 * 5 - 1800, 14 * 3600, -14 * 3600]


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_year_printed_by_sqlite_is_byte_for_byte_pythons(
    offset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = store_of(year_of_hours(random.Random(offset)))
    expected = python_page(engine, None, None, None, 100_000, offset)
    # every row of this year is in SQLite's domain: Python prints none of them
    monkeypatch.setattr(derived_pages, "_item", _must_not_print)
    with engine.connect() as conn:
        assert derived_page_json(conn, POINT, None, None, None, 100_000, offset) == expected


def _must_not_print(*_: object) -> str:
    raise AssertionError("a row of SQLite's domain was printed in Python")


def test_kinds_ranges_and_truncation() -> None:
    engine = store_of(year_of_hours(random.Random(3))[:500])
    with engine.connect() as conn:
        for kind, start, end, limit in [
            ("hour", None, None, 1000),
            (None, T0 + 3600 * 10, T0 + 3600 * 50, 7),
            ("increment", None, None, 1),
            ("hour", T0 + 3600 * 40, None, 40),
        ]:
            fast = derived_page_json(conn, POINT, kind, start, end, limit, 28800)
            assert fast == python_page(engine, kind, start, end, limit, 28800)
        assert derived_page_json(conn, "no.such", None, None, None, 10, 0) is None
        assert derived_page_json(conn, POINT, None, T0 - 10, T0 - 5, 10, 0) is None


@pytest.mark.parametrize(
    "odd",
    [
        {"period_start": 1.5, "period_end": 60.0},  # fractional before mid-April 1970
        {"computed_at": 2.0**34 + 0.5},  # after 2514
        {"computed_at": 0.0},  # the default: whole, in SQLite's domain
        {"period_start": T0 + 0.25, "computed_at": T0 + 3600 + 1e-7},
    ],
)
def test_rows_outside_sqlites_domain_are_printed_by_python(odd: dict[str, float]) -> None:
    rows = year_of_hours(random.Random(5))[:50]
    rows[20] |= odd
    engine = store_of(rows)
    with engine.connect() as conn:
        fast = derived_page_json(conn, POINT, None, None, None, 1000, 28800)
    assert fast == python_page(engine, None, None, None, 1000, 28800)


def test_same_document_as_the_pydantic_page() -> None:
    rows = year_of_hours(random.Random(9))[:300]
    for i, row in enumerate(rows):
        if i % 11 == 0:
            row["period_start"] += 0.25
        if i % 5 == 0:
            row["value"] = ["1.50", "-0.001", "12345678.9", "0", "1E+3"][i % 5]
    engine = store_of(rows)
    with engine.connect() as conn:
        for kind, start, end, limit, offset in [
            ("hour", None, None, 1000, 28800),
            (None, T0 + 3600 * 10, T0 + 3600 * 50, 7, -3600 * 5 - 1800),
            ("increment", None, None, 1, 0),
        ]:
            found = select_derived(conn, POINT, kind, start, end)[: limit + 1]
            page = Page[DerivedOut].of([DerivedOut.of(d, offset) for d in found], limit)
            fast = derived_page_json(conn, POINT, kind, start, end, limit, offset)
            assert fast is not None
            assert json.loads(fast) == json.loads(page.model_dump_json())


def test_an_unknown_quality_fails_as_it_did() -> None:
    """Python refuses a quality it does not know; SQLite does not print it either."""
    rows = year_of_hours(random.Random(1))[:5]
    rows[2]["quality"] = "great"
    engine = store_of(rows)
    with engine.connect() as conn, pytest.raises(ValueError, match="great"):
        derived_page_json(conn, POINT, None, None, None, 10, 0)

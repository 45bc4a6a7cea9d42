"""The fast page of derived values is the very document ``Page[DerivedOut]`` makes."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, insert

from reference_terminal.api.derived_pages import derived_page_json
from reference_terminal.api.wire import DerivedOut, Page
from reference_terminal.model import Quality
from reference_terminal.storage.schema import derived_values, metadata
from reference_terminal.storage.store import select_derived

QUALITIES = list(Quality)


def test_same_document_as_the_pydantic_page() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    rows = [
        {
            "point": "kiln.kw",
            "kind": "hour" if i % 3 else "increment",
            "period_start": 1.7e9 + 3600 * i + (0.25 if i % 11 == 0 else 0),
            "period_end": 1.7e9 + 3600 * (i + 1),
            "value": None if i % 13 == 0 else ["1.50", "-0.001", "12345678.9", "0", "1E+3"][i % 5],
            "quality": str(QUALITIES[i % len(QUALITIES)]),
            "note": "" if i % 7 else 'gap “filled” \\ "x"\n',
            "computed_at": 1.7e9 + 3600 * i + 0.123,
        }
        for i in range(300)
    ]
    with engine.begin() as conn:
        conn.execute(insert(derived_values), rows)
    with engine.connect() as conn:
        for kind, start, end, limit, offset in [
            ("hour", None, None, 1000, 28800),
            (None, 1.7e9 + 3600 * 10, 1.7e9 + 3600 * 50, 7, -3600 * 5 - 1800),
            ("increment", None, None, 1, 0),
        ]:
            found = select_derived(conn, "kiln.kw", kind, start, end)[: limit + 1]
            page = Page[DerivedOut].of([DerivedOut.of(d, offset) for d in found], limit)
            fast = derived_page_json(conn, "kiln.kw", kind, start, end, limit, offset)
            assert fast is not None
            assert json.loads(fast) == json.loads(page.model_dump_json())
        assert derived_page_json(conn, "no.such", None, None, None, 10, 0) is None

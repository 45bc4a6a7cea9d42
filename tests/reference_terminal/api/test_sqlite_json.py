"""SQLite prints floats, times and strings exactly as Python's ``repr``, ``isoformat`` and
``json.dumps`` do, wherever :func:`fits` says it can."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reference_terminal.api import sqlite_json as sq

OFFSETS = [28800, 0, -19800, -50400, 50400, 3600 * 5 + 1800]


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x DOUBLE, s TEXT)")
    yield conn
    conn.close()


def printed(db: sqlite3.Connection, x: float, offset: int) -> tuple[bool, str, str]:
    zone = timezone(timedelta(seconds=offset))
    suffix = "'" + datetime.fromtimestamp(0, zone).isoformat()[19:] + "'"
    db.execute("DELETE FROM t")
    db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    query = f"SELECT {sq.fits('x')}, {sq.float_text('x')}, {sq.iso_time('x', str(offset), suffix)}"
    fits, text, iso = db.execute(query + " FROM t").fetchone()
    return bool(fits), text, iso


fractional = st.floats(min_value=sq.LOW, max_value=sq.HIGH, exclude_max=True)
whole = st.integers(min_value=0, max_value=2**34 - 1).map(float)
# what a clock gives: a time to the microsecond, or to a power of two
clocked = st.builds(
    lambda s, us, bits: s + us / 10**6 + (1 / 2**bits if bits else 0),
    st.integers(min_value=2**23, max_value=2**34 - 2),
    st.integers(min_value=0, max_value=999_999),
    st.integers(min_value=0, max_value=30),
)


@settings(max_examples=3000, deadline=None)
@given(x=st.one_of(fractional, whole, clocked), offset=st.sampled_from(OFFSETS))
@example(x=1_073_741_824 + 1 / 256, offset=0)  # a tie at the 7th place: to even (…062)
@example(x=1_767_196_800.9999995, offset=28800)  # microseconds round up to a whole second
@example(x=1_767_196_800.0000005, offset=28800)  # a tie at the microsecond: to even
@example(x=math.nextafter(2.0**30, 0), offset=0)  # the last float of a binade
@example(x=0.0, offset=-50400)  # before 1970 in the plant's zone
def test_floats_and_times_in_the_domain(db: sqlite3.Connection, x: float, offset: int) -> None:
    fits, text, iso = printed(db, x, offset)
    assert fits
    assert text == repr(x) == json.dumps(x)
    assert iso == datetime.fromtimestamp(x, timezone(timedelta(seconds=offset))).isoformat()


@pytest.mark.parametrize("x", [1.5, 100.25, sq.LOW - 0.5, sq.HIGH, sq.HIGH + 0.5, -1.0, -0.5])
def test_floats_outside_the_domain_are_left_to_python(db: sqlite3.Connection, x: float) -> None:
    fits, _, _ = printed(db, x, 0)
    assert not fits


@settings(max_examples=500, deadline=None)
@given(s=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
@example(s='"\\\b\f\n\r\t\x01\x1f\x7f é “” 电')
def test_strings_are_escaped_as_json_dumps_does(db: sqlite3.Connection, s: str) -> None:
    db.execute("DELETE FROM t")
    db.execute("INSERT INTO t (s) VALUES (?)", (s,))
    (quoted,) = db.execute(f"SELECT {sq.string('s')} FROM t").fetchone()
    assert quoted == json.dumps(s, ensure_ascii=False)

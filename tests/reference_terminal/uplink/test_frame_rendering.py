"""Frames are built from the store's text and rendered as CP text without the general machinery,
for speed: what comes out is exactly what the general path makes (``Cp.build`` of one
``Pollutant`` per item; ``period_frames`` of ``Derived`` values), for any input, odd ones
included — those take the general path and fail as it does."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.hj212 import Cp, Pollutant
from protocols.hj212.errors import HJ212Error
from protocols.hj212.record_signature import with_signature
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, values_derived
from reference_terminal.uplink.frames import (
    STREAM_KINDS,
    Coding,
    Frame,
    FrameError,
    Item,
    Stream,
    local_time,
    period_frames,
    stored_period_frames,
)
from tests.protocols.hj212.strategies import said

T0 = 1_800_000_000.0
OFFSET_S = 8 * 3600
CODING = Coding({"P1": "C301103001e0101", "P2": "a05001", "P3": "a21026"}, frozenset({"P1"}))

numbers = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-1e9, max_value=1e9),
    st.sampled_from(
        ["0", "-0", "0.00", "1E+2", "1.5E-7", "0E-7", "123456789.123456", "-0.001"]
    ).map(Decimal),
)
odd_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "sNaN"]).map(Decimal)
names = st.sampled_from(["Rtd", "Avg", "Cou", "Min", "Max"])
odd_names = st.sampled_from(["Rtd", "Avg", "Cou", "Min", "Max", "ZsAvg", "Ia", "Flag"])
flags = st.sampled_from(["N", "D", "T", "B", "S", "F", "M", "C", "X", "", "N;", "a,b"])
codes = st.sampled_from(["a05001", "C301103001e0101", "e10101", "w00000", "a-1"])


@st.composite
def items(draw: st.DrawFn, *, odd: bool) -> Item:
    fields = draw(
        st.lists(odd_names, max_size=4) if odd else st.lists(names, max_size=4, unique=True)
    )
    value = st.one_of(numbers, odd_numbers) if odd else numbers
    values = tuple((name, draw(value)) for name in fields)
    return Item(draw(codes), values, draw(flags) if odd else draw(st.sampled_from("NDTB")))


def frames(*, odd: bool) -> st.SearchStrategy[Frame]:
    return st.builds(
        Frame,
        st.sampled_from([2011, 2051, 2061]),
        st.integers(0, 10**6).map(lambda m: T0 + 60 * m),
        st.lists(items(odd=odd), max_size=6, unique_by=None if odd else (lambda i: i.code)).map(
            tuple
        ),
        st.sampled_from(["", "ab" * 64]),
    )


def built(frame: Frame) -> Cp:
    """What the uplink always sent: Cp.build of the frame's items, then the signature."""
    pollutants = [Pollutant(i.code, dict(i.values), i.flag) for i in frame.items]
    cp = Cp.build(data_time=local_time(frame.data_time, OFFSET_S), pollutants=pollutants)
    return with_signature(cp, frame.signature) if frame.signature else cp


def outcome(render: object, frame: Frame) -> tuple[object, ...]:
    try:
        cp = render(frame)  # type: ignore[operator]
    except HJ212Error as exc:
        return "error", type(exc).__name__
    return said(cp)


@settings(max_examples=400, deadline=None)
@given(frames(odd=False))
def test_a_frame_renders_the_cp_that_cp_build_makes_of_its_items(frame: Frame) -> None:
    """Text and typed view alike: the view is made beside the text, not parsed from it."""
    assert said(frame.cp(OFFSET_S)) == said(built(frame))


@settings(max_examples=200, deadline=None)
@given(frames(odd=False), st.data())
def test_the_parts_of_a_frames_cp_say_what_parsing_their_text_says(
    frame: Frame, data: st.DataObject
) -> None:
    cp = frame.cp(OFFSET_S)
    texts = cp.group_texts()
    selection = sorted(set(data.draw(st.lists(st.sampled_from(range(len(texts)))))))
    part = cp.parts([selection])[0]
    assert said(part) == said(Cp.parse(";".join(texts[i] for i in selection)))


@settings(max_examples=400, deadline=None)
@given(frames(odd=True))
def test_odd_items_render_or_fail_as_cp_build_does(frame: Frame) -> None:
    assert outcome(lambda f: f.cp(OFFSET_S), frame) == outcome(built, frame)


def test_a_minute_frame_renders_min_avg_max_in_the_standards_order() -> None:
    frame = Frame(
        2051,
        T0,
        (
            Item(
                "a05001",
                (("Avg", Decimal("1.50")), ("Min", Decimal("1")), ("Max", Decimal("2"))),
                "N",
            ),
            Item("C301103001e0101", (("Cou", Decimal("12.5")),), "D"),
            Item("a21026", (), "B"),
        ),
    )
    assert frame.cp(OFFSET_S).text == (
        "DataTime=20270115160000;a05001-Min=1,a05001-Avg=1.50,a05001-Max=2,a05001-Flag=N;"
        "C301103001e0101-Cou=12.5,C301103001e0101-Flag=D;a21026-Flag=B"
    )


# ---- frames from the store's text ------------------------------------------------------------


def reference_period_frames(
    rows: Iterable[Derived], stream: Stream, cn: int, coding: Coding
) -> list[Frame]:
    """``period_frames`` as it was written first, from ``Derived`` values."""
    main_kind, min_kind, max_kind = STREAM_KINDS[stream]
    periods: dict[float, dict[str, dict[str, Derived]]] = {}
    for row in rows:
        if row.point in coding.codes and row.kind in (main_kind, min_kind, max_kind):
            periods.setdefault(row.start, {}).setdefault(row.point, {})[row.kind] = row
    out = []
    for start in sorted(periods):
        made = []
        for point in sorted(periods[start], key=lambda p: coding.codes[p]):
            kinds = periods[start][point]
            main = kinds.get(main_kind)
            if main is None:
                continue
            values: list[tuple[str, Decimal]] = []
            if main.value is not None:
                values.append(("Cou" if point in coding.counters else "Avg", main.value))
                for name, extreme in (("Min", kinds.get(min_kind)), ("Max", kinds.get(max_kind))):
                    if extreme is not None and extreme.value is not None:
                        values.append((name, extreme.value))
            made.append(Item(coding.codes[point], tuple(values), coding.flag(main.quality)))
        if made:
            out.append(Frame(cn, start, tuple(made)))
    return out


stored_rows = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", "P3", "P9"]),
        st.sampled_from(["minute", "minute_min", "minute_max", "minute_first", "hour"]),
        st.integers(0, 3).map(lambda m: T0 + 60 * m),
        st.one_of(st.none(), numbers.map(str)),
        st.sampled_from([q.value for q in Quality]),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(stored_rows)
def test_frames_from_the_stores_text_are_the_frames_of_its_derived_values(
    rows: list[tuple[str, str, float, str | None, str]],
) -> None:
    derived = [values_derived(p, k, s, s + 60, v, q, "", s + 60) for p, k, s, v, q in rows]
    expected = reference_period_frames(derived, Stream.MINUTE, 2051, CODING)
    assert stored_period_frames(rows, Stream.MINUTE, 2051, CODING) == expected
    assert period_frames(derived, Stream.MINUTE, 2051, CODING) == expected


def test_a_stored_quality_that_is_not_one_is_an_error() -> None:
    with pytest.raises(KeyError):
        stored_period_frames([("P1", "minute", T0, "1", "great")], Stream.MINUTE, 2051, CODING)


def test_a_frame_every_centre_is_sent_is_read_and_rendered_once() -> None:
    frame = Frame(2051, T0, (Item("a05001", (("Avg", Decimal("1.5")),), "N"),))
    payload = frame.payload()
    first, second = Frame.from_row(2051, T0, payload), Frame.from_row(2051, T0, payload)
    assert first is second and first == frame
    assert first.cp(OFFSET_S) is second.cp(OFFSET_S)
    assert said(first.cp(OFFSET_S)) == said(built(frame))
    # another offset, another DataTime: not the CP made for the first
    assert first.cp(0).params["DataTime"] != first.cp(OFFSET_S).params["DataTime"]


@settings(max_examples=400, deadline=None)
@given(frames(odd=False))
def test_a_frame_read_back_from_its_outbox_row_renders_what_cp_build_makes(frame: Frame) -> None:
    """A plain frame's row is its CP groups: read back, they go out as they are."""
    row = frame.payload()
    assert (row == frame.body) == (not frame.signature and frame.body is not None)
    read = Frame.from_row(frame.cn, frame.data_time, row)
    assert said(read.cp(OFFSET_S)) == said(built(frame))
    assert read == frame and read.items == frame.items


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40), st.from_regex(r"[a-z0-9]{1,4}-(Avg|Min|Flag)=[-0-9.NDX,;]{0,6}")
    )
)
def test_a_damaged_row_is_a_frame_error_or_groups_that_parse_as_their_items(text: str) -> None:
    try:
        read = Frame.from_row(2051, T0, text)
    except FrameError:
        return
    assert said(read.cp(OFFSET_S)) == said(built(read))

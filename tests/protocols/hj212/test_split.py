"""Split packets (Flag D=1): every part fits the limits, and the parts reassemble in any order."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import hj212
from protocols.hj212 import Cp, Flag, HeaderError, Packet, Pollutant, Reassembler, split
from protocols.hj212.split import _joined_groups
from tests.protocols.hj212.strategies import said

MN = "010000A8900016F000169DC0"


def big_upload(count: int) -> Packet:
    pollutants = [
        Pollutant(f"a{i:05d}", {"Avg": Decimal("123.456"), "Max": Decimal("234.5")}, flag="N")
        for i in range(count)
    ]
    cp = Cp.build(data_time=datetime(2026, 11, 21, 10, 0), pollutants=pollutants)
    return Packet(
        cn=2051,
        st="31",
        mn=MN,
        pw="123456",
        cp=cp,
        qn="20261121100100000",
        flag=Flag(1, False, True),
    )


def test_small_packets_are_left_alone() -> None:
    packet = big_upload(3)
    assert split(packet) == [packet]


def test_parts_fit_carry_pnum_pno_and_the_shared_datatime() -> None:
    packet = big_upload(60)
    parts = split(packet)
    assert len(parts) > 1
    for number, part in enumerate(parts, start=1):
        raw = hj212.encode(part)  # raises if over 1024/950
        assert len(raw) - 12 <= 1024
        assert (part.pnum, part.pno) == (len(parts), number)
        assert part.flag == Flag(1, True, True)
        assert part.qn == packet.qn
        assert part.cp.data_time == packet.cp.data_time


def test_one_cp_split_for_several_platforms_is_cut_once_per_layout() -> None:
    packet = big_upload(60)
    other = split(replace(packet, mn="010000A8900016F000169DC1", pw="654321"))  # same lengths
    parts = split(packet)
    assert [p.cp for p in other] == [p.cp for p in parts]
    assert all(a.cp is b.cp for a, b in zip(other, parts, strict=True))  # the same CP objects
    longer = split(replace(packet, mn=MN + "0" * 300))  # less room: cut otherwise
    assert len(longer) > len(parts)
    assert all(len(hj212.encode(p)) - 12 <= 1024 for p in longer)


def test_reassembly_in_any_order_gives_back_the_packet() -> None:
    packet = big_upload(60)
    parts = [hj212.decode(hj212.encode(p)) for p in split(packet)]
    random.Random(7).shuffle(parts)
    reassembler = Reassembler()
    results = [reassembler.add(p) for p in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == packet
    assert not reassembler.pending


def test_parts_that_disagree_on_pnum_are_an_error() -> None:
    parts = split(big_upload(60))
    reassembler = Reassembler()
    reassembler.add(parts[0])
    with pytest.raises(HeaderError, match="PNUM"):
        reassembler.add(parts[1].replace(pnum=99))


def test_a_single_group_too_big_for_any_packet_is_refused() -> None:
    huge = Pollutant("a05001", {f"X{i}": Decimal(i) for i in range(200)})
    packet = Packet(cn=2051, st="31", mn=MN, pw="1", cp=Cp.build(pollutants=[huge]))
    with pytest.raises(hj212.DataTooLong, match="alone"):
        split(packet)


@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(0, 6), st.sampled_from(["N", "D", "中"])),
        min_size=1,
        max_size=150,
    ),
    st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_each_part_is_as_full_as_the_limits_allow(
    values: list[tuple[int, int, str]], timed: bool
) -> None:
    """Greedy packing: a part ends only where the next group would not have fitted (part sizes
    are added up, not rendered again per group: this checks the sums against the wire)."""
    pollutants = [
        Pollutant(f"a{i:05d}", {"Avg": Decimal(v).scaleb(-e)}, flag=f)
        for i, (v, e, f) in enumerate(values)
    ]
    data_time = datetime(2026, 11, 21, 10, 0) if timed else None
    packet = big_upload(0).replace(cp=Cp.build(data_time=data_time, pollutants=pollutants))
    parts = split(packet)
    for part in parts:
        hj212.encode(part)  # raises if over the limits
    if len(parts) == 1:
        return
    shared = 1 if timed else 0
    for part, following in itertools.pairwise(parts):
        fuller = Cp.from_groups([*part.cp.groups, following.cp.groups[shared]])
        with pytest.raises(hj212.DataTooLong):
            hj212.encode(part.replace(cp=fuller))


# ---- the parts' typed views: taken from the whole, never different from parsing the parts ----

#: Items whose names collide on purpose: a code's fields in two groups, a parameter twice, a
#: text field (the general parser), whitespace before a name (a lenient reading, noted).
_ITEMS = [
    ("DataTime", "20261121100000"),
    ("OverTime", "5"),
    ("a01-Avg", "1.5"),
    ("a01-Flag", "N"),
    ("a02-Avg", "-0.20"),
    ("a02-Info", "x y"),
    (" a03-Avg", "7"),
]


@st.composite
def group_lists(draw: st.DrawFn) -> list[list[tuple[str, str]]]:
    """Some of ``_ITEMS``, each once, in any order, cut into groups anywhere."""
    items = draw(st.permutations(_ITEMS))[: draw(st.integers(1, len(_ITEMS)))]
    cuts = draw(st.lists(st.integers(1, len(items) - 1), unique=True)) if len(items) > 1 else []
    bounds = [0, *sorted(cuts), len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def parsed(text: str) -> Cp | str:
    """``Cp.parse(text)``, or the error's class name."""
    try:
        return Cp.parse(text)
    except hj212.CpError as exc:
        return type(exc).__name__


def view(cp: Cp | str) -> object:
    """Everything a CP says, or the error's name."""
    return cp if isinstance(cp, str) else said(cp)


@given(group_lists(), st.data())
@settings(max_examples=300, deadline=None)
def test_a_cps_parts_say_what_parsing_their_text_says(
    groups: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    whole = parsed(";".join(",".join(f"{k}={v}" for k, v in g) for g in groups))
    if isinstance(whole, str):
        return
    texts = whole.group_texts()
    assert len(texts) == len(whole.groups)
    # any indexes, in any order, repeated: out of the ordinary ones are parsed (and refused)
    selections = data.draw(st.lists(st.lists(st.sampled_from(range(len(texts)))), max_size=4))
    for selection in selections:
        try:
            part: Cp | str = whole.parts([selection])[0]
        except hj212.CpError as exc:
            part = type(exc).__name__
        assert view(part) == view(parsed(";".join(texts[i] for i in selection)))


@given(st.lists(group_lists(), min_size=1, max_size=3), st.data())
@settings(max_examples=300, deadline=None)
def test_joined_cps_say_what_parsing_the_joined_text_says(
    pieces: list[list[list[tuple[str, str]]]], data: st.DataObject
) -> None:
    cps = [parsed(";".join(",".join(f"{k}={v}" for k, v in g) for g in p)) for p in pieces]
    chosen = []
    for cp in cps:
        if isinstance(cp, str):
            return
        indexes = range(len(cp.group_texts()))
        chosen.append((cp, data.draw(st.lists(st.sampled_from(indexes)))))
    text = ";".join(cp.group_texts()[i] for cp, selection in chosen for i in selection)
    try:
        joined: Cp | str = Cp.joined(chosen)
    except hj212.CpError as exc:
        joined = type(exc).__name__
    assert view(joined) == view(parsed(text))


def test_a_split_record_is_typed_without_parsing_it_again() -> None:
    """Each part's pollutants are the whole's own objects (taken, not parsed again), and the
    reassembled packet's are the parts' own."""
    packet = big_upload(60)
    parts = split(packet)
    for part in parts:
        for code, pollutant in part.cp.pollutants.items():
            assert pollutant is packet.cp.pollutants[code]
    whole = hj212.merge(parts)
    assert view(whole.cp) == view(Cp.parse(whole.cp.text))
    assert all(
        p is next(part.cp.pollutants[c] for part in parts if c in part.cp.pollutants)
        for c, p in whole.cp.pollutants.items()
    )


def test_a_cp_made_without_its_typed_view_is_parsed_when_cut_or_joined() -> None:
    text = "DataTime=20261121100000;a01-Avg=1.5,a01-Flag=N;a02-Avg=2"
    bare = Cp(text)  # the text alone: its view is empty, not the text's
    cut = view(Cp.parse("a01-Avg=1.5,a01-Flag=N;a02-Avg=2"))
    assert view(bare.parts([[1, 2]])[0]) == cut
    assert view(Cp.joined([(bare, [1, 2])])) == cut


_TIME_GROUPS = ["DataTime=20261121100000", "DataTime=20261121100000,a04-Avg=3", ""]


@given(st.lists(st.tuples(st.sampled_from(_TIME_GROUPS), group_lists()), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_merged_parts_say_what_joining_them_group_by_group_says(
    parts: list[tuple[str, list[list[tuple[str, str]]]]],
) -> None:
    """The quick join of a usual split upload (each part opening with its one DataTime) is
    the group-by-group join, whatever the parts hold."""
    packets = []
    for number, (time_group, groups) in enumerate(parts, start=1):
        text = ";".join(
            [
                *([time_group] if time_group else []),
                *(",".join(f"{k}={v}" for k, v in g) for g in groups),
            ]
        )
        cp = parsed(text)
        if isinstance(cp, str):
            return
        packets.append(big_upload(0).replace(cp=cp, pnum=len(parts), pno=number))
    try:
        merged: Cp | str = hj212.merge(packets).cp
    except hj212.CpError as exc:
        merged = type(exc).__name__
    try:
        by_groups: Cp | str = _joined_groups(packets)
    except hj212.CpError as exc:
        by_groups = type(exc).__name__
    assert view(merged) == view(by_groups)
    if isinstance(merged, Cp) and isinstance(by_groups, Cp):
        assert merged.text == by_groups.text

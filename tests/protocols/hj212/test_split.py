"""Split packets (Flag D=1): every part fits the limits, and the parts reassemble in any order."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import hj212
from protocols.hj212 import Cp, Flag, HeaderError, Packet, Pollutant, Reassembler, split

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

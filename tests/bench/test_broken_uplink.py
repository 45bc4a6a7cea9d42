"""The broken uplink's frame edits (the mutation check's faults on the wire): what leaves the
relay is still a sound HJ 212 frame, with only the fault in it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bench.adapters.relay import as_carried_out, relay_fault, without_extremes
from protocols.hj212.cp import Cp, Pollutant
from protocols.hj212.packet import Packet, decode, encode


def minute_frame(*pollutants: Pollutant) -> bytes:
    cp = Cp.build(data_time=datetime(2026, 1, 1, 12, 0), pollutants=pollutants)
    packet = Packet(2051, "32", "010000A8900016F000169DC0", "123456", cp, "20260101120000001")
    return encode(packet)


def test_no_extremes_leaves_a_sound_frame_without_min_and_max() -> None:
    frame = minute_frame(
        Pollutant("a01", {"Min": Decimal("1.5"), "Avg": Decimal(2), "Max": Decimal(3)}, "N"),
        Pollutant("a02", {"Cou": Decimal("10.25")}, "F"),
    )
    edited = decode(without_extremes(frame))  # strict: length and CRC must be right
    assert edited.cp.pollutants["a01"].values == {"Avg": Decimal(2)}
    assert edited.cp.pollutants["a01"].flag == "N"
    assert edited.cp.pollutants["a02"].values == {"Cou": Decimal("10.25")}
    assert edited.cp.pollutants["a02"].flag == "F"
    assert edited.qn == decode(frame).qn


def test_a_frame_without_extremes_goes_as_it_came() -> None:
    frame = minute_frame(Pollutant("a02", {"Cou": Decimal(1)}, "N"))
    assert without_extremes(frame) == frame


QN = "20260101120000001"


def answer(cn: int, **params: int) -> bytes:
    packet = Packet(cn, "91", "010000A8900016F000169DC0", "123456", Cp.build(params=params), QN)
    return encode(packet)


def test_a_refusal_leaves_as_accepted_and_carried_out() -> None:
    out = as_carried_out(answer(9011, QnRtn=3))
    frames = [decode(f + b"\r\n") for f in out.split(b"\r\n") if f]
    assert [(f.cn, f.qn) for f in frames] == [(9011, QN), (9012, QN)]
    assert frames[0].cp.qn_rtn == 1
    assert frames[1].cp.get("ExeRtn") == "1"


def test_a_failure_leaves_as_success_and_success_as_it_came() -> None:
    assert decode(as_carried_out(answer(9012, ExeRtn=3))).cp.get("ExeRtn") == "1"
    for done in (answer(9012, ExeRtn=1), answer(9011, QnRtn=1)):
        assert as_carried_out(done) == done


def test_only_the_relays_mutations_are_its_faults() -> None:
    assert relay_fault("no-extremes") == "no-extremes"
    assert relay_fault("sync-off") is None

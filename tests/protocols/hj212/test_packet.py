"""Packets: building from typed values, encoding, and the errors for each kind of damage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given

from protocols import hj212
from protocols.hj212 import (
    Command,
    Cp,
    CpError,
    DataTooLong,
    FramingError,
    HeaderError,
    LengthMismatch,
    Packet,
    Pollutant,
    UnknownCommand,
)
from protocols.hj212.cp import _parse_general
from protocols.hj212.crc import crc16, crc16_modbus, crc16_reference
from protocols.hj212.packet import enclose
from tests.protocols.hj212.strategies import cps, packets

MN = "010000A8900016F000169DC0"


def frame(data: str) -> bytes:
    raw = data.encode()
    return b"##%04d%s%04X\r\n" % (len(raw), raw, crc16(raw))


def test_crc_of_the_appendix_a_example_and_why_it_is_not_modbus() -> None:
    data = f"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN={MN};Flag=5;CP=&&RtdInterval=30&&"
    assert crc16(data.encode()) == crc16_reference(data.encode()) == 0x1C80
    assert crc16_modbus(data.encode()) == 0x0759


@given(packets())
def test_build_encode_decode_round_trip(packet: Packet) -> None:
    raw = hj212.encode(packet, allow_oversize=True)
    decoded = hj212.decode(raw, hj212.DecodeOptions(allow_oversize=True))
    assert decoded == packet.replace(lenience=decoded.lenience)
    assert decoded.lenience <= {hj212.Lenience.DATA_TOO_LONG}
    assert hj212.encode(decoded, allow_oversize=True) == raw
    # a data segment edited on the wire (a relay, a platform's answer) framed again
    assert enclose(raw[6:-6]) == raw


def test_a_minute_upload_built_from_typed_values() -> None:
    cp = Cp.build(
        data_time=datetime(2026, 11, 21, 10, 0),
        pollutants=[
            Pollutant("a05001", {"Avg": Decimal("412.50"), "Cou": Decimal("3.2")}, flag="N")
        ],
    )
    packet = Packet(
        cn=Command.MINUTE_DATA,
        st="31",
        mn=MN,
        pw="123456",
        cp=cp,
        qn="20261121100100000",
        flag=hj212.Flag(1, False, True),
    )
    assert packet.data_segment() == (
        "QN=20261121100100000;ST=31;CN=2051;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
        "CP=&&DataTime=20261121100000;a05001-Avg=412.50,a05001-Cou=3.2,a05001-Flag=N&&"
    )


def test_length_counts_utf8_bytes_and_character_counting_devices_are_tolerated() -> None:
    packet = Packet(
        cn=Command.GET_SITE_INFO,
        st="32",
        mn=MN,
        pw="123456",
        cp=Cp.build(params={"i11001-Info": "在线"}),
        qn="20260101000000000",
    )
    raw = hj212.encode(packet)
    assert int(raw[2:6]) == len(packet.data_segment().encode()) == len(packet.data_segment()) + 4
    by_characters = b"##%04d" % len(packet.data_segment()) + raw[6:]
    decoded = hj212.decode(by_characters)
    assert decoded.lenience == {hj212.Lenience.LENGTH_COUNTS_CHARACTERS}
    assert hj212.encode(decoded) == by_characters


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"#0101QN=1;CP=&&&&1C80\r\n", FramingError, "starts with '##'"),
        (b"##01a1QN=1;ST=32;CP=&&&&1C80\r\n", FramingError, "4 decimal digits"),
        (b"##0005CP=&&&&1C80", FramingError, "<CR><LF>"),
        (b"##0007CP=&&&&1C8G\r\n", FramingError, "4 hex digits"),
        (
            b"##0009CP=&&&&FFFF\r\n",
            LengthMismatch,
            "declares a data segment of 9 bytes, the frame has 7",
        ),
    ],
)
def test_framing_errors_say_what_is_wrong(raw: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        hj212.decode(raw)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        ("QN=20160801085857223;ST=32;CN=1062;PW=1;Flag=5;CP=&&&&", HeaderError, "MN is missing"),
        (f"ST=32;CN=1062;PW=1;MN={MN};Flag=300;CP=&&&&", HeaderError, "Flag='300'"),
        (f"ST=32;CN=1062;PW=1;MN={MN};Flag=60;CP=&&&&", HeaderError, "version bits V5..V0 = 15"),
        (f"ST=32;CN=7777;PW=1;MN={MN};Flag=4;CP=&&&&", UnknownCommand, "unknown CN '7777'"),
        (f"QN=2016;ST=32;CN=2011;PW=1;MN={MN};CP=&&&&", HeaderError, "17 digits"),
        (
            f"ST=32;CN=2011;PW=1;MN={MN};Flag=6;PNUM=2;PNO=3;CP=&&&&",
            HeaderError,
            "PNO=3 is outside",
        ),
        (f"ST=32;CN=2011;PW=1;MN={MN};ST=31;CP=&&&&", HeaderError, "ST appears twice"),
        (f"ST=32;CN=2011;PW=1;MN={MN};Flag=4", HeaderError, "no 'CP=&&'"),
        (f"ST=32;CN=2011;PW=1;MN={MN};Flag=4;CP=&&DataTime=2016&&", CpError, "14 digits"),
        (
            f"ST=32;CN=2011;PW=1;MN={MN};Flag=4;CP=&&a05001-Rtd=1.2.3&&",
            CpError,
            "a05001-Rtd='1.2.3'",
        ),
        (f"ST=32;CN=2011;PW=1;MN={MN};Flag=4;CP=&&a05001-Rtd=1,a05001-Rtd=2&&", CpError, "twice"),
        (f"ST=32;CN=2011;PW=1;MN={MN};Flag=4;CP=&&OverTime&&", CpError, "has no '='"),
    ],
)
def test_header_and_cp_errors_name_the_field(data: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        hj212.decode(frame(data))


def test_unknown_cn_is_accepted_when_asked_and_reported() -> None:
    packet = hj212.decode(
        frame(f"ST=32;CN=7777;PW=1;MN={MN};Flag=4;CP=&&&&"),
        hj212.DecodeOptions(allow_unknown_cn=True),
    )
    assert packet.cn == 7777 and packet.command is None
    assert packet.lenience == {hj212.Lenience.UNKNOWN_CN}


def test_oversize_is_refused_on_encode_and_decode() -> None:
    big = Cp.build(params={f"i1100{i % 10}-Info{i}": "x" * 40 for i in range(30)})
    packet = Packet(cn=Command.GET_SITE_INFO, st="32", mn=MN, pw="1", cp=big)
    with pytest.raises(DataTooLong, match=r"CP is .* the limit is 950"):
        hj212.encode(packet)
    raw = hj212.encode(packet, allow_oversize=True)
    with pytest.raises(DataTooLong):
        hj212.decode(raw)


def test_values_that_would_break_the_structure_are_refused() -> None:
    with pytest.raises(CpError, match="separator"):
        Cp.build(params={"PolId": "a;b"})
    with pytest.raises(hj212.EncodingError, match="MN='A;B' contains a separator"):
        hj212.encode(Packet(cn=2011, st="32", mn="A;B", pw="1"))


def test_flag_bits() -> None:
    assert hj212.Flag.from_int(7) == hj212.Flag(version=1, split=True, ack=True)
    assert int(hj212.Flag(version=2, split=False, ack=True)) == 9  # the 2025 profile
    assert hj212.Flag.from_int(3) == hj212.Flag(version=0, split=True, ack=True)  # 2005 example


def test_2025_profile_is_chosen_by_flag_and_knows_the_heartbeat() -> None:
    packet = hj212.decode(
        frame(f"QN=20260101000000000;ST=32;CN=9015;PW=1;MN={MN};Flag=8;RF=1;CP=&&&&")
    )
    assert packet.edition is hj212.HJ212_2025
    assert packet.command is Command.HEARTBEAT
    assert packet.extra == (("RF", "1"),)
    assert not packet.lenience
    with pytest.raises(UnknownCommand):  # 9015 is not a 2017 command
        hj212.decode(frame(f"QN=20260101000000000;ST=32;CN=9015;PW=1;MN={MN};Flag=4;CP=&&&&"))


def test_2005_request_example_with_flag_3_and_no_packet_numbers() -> None:
    # HJ/T 212-2005 Appendix C.1: "Flag=3" (split + ack) on a request that is not split.
    data = "QN=20040516010101001;ST=32;CN=1072;PW=123456;MN=88888880000001;Flag=3;CP=&&PW=654321&&"
    packet = hj212.decode(frame(data))
    assert packet.edition is hj212.HJ212_2005
    assert packet.lenience == {hj212.Lenience.D_WITHOUT_PACKET_NUMBERS}
    assert packet.cp.get("PW") == "654321"
    assert hj212.encode(packet) == frame(data)


def test_2025_cp_encryption_keeps_the_crc_over_the_plaintext() -> None:
    # a fixed IV: with a fresh one per packet, one run in 65 536 would find the ciphertext's
    # CRC equal to the plaintext's, and the key-less decode below would not fail on the CRC
    cipher = hj212.Sm4CpCipher(key=bytes(range(16)), iv=bytes(16))
    cp = Cp.build(
        data_time=datetime(2026, 1, 1), pollutants=[Pollutant("a05001", {"Avg": Decimal("1.5")})]
    )
    packet = Packet(
        cn=Command.MINUTE_DATA,
        st="31",
        mn=MN,
        pw="1",
        cp=cp,
        qn="20260101000100000",
        flag=hj212.Flag(2, False, True),
        edition=hj212.HJ212_2025,
    )
    wire = hj212.encode(packet, cp_cipher=cipher)
    assert b"a05001" not in wire
    assert wire[-6:-2] == b"%04X" % crc16(packet.data_segment().encode())
    assert int(wire[2:6]) == len(wire) - 12
    assert hj212.decode(wire, hj212.DecodeOptions(cp_cipher=cipher)) == packet
    with pytest.raises(hj212.CrcMismatch):  # without the key the CRC cannot match
        hj212.decode(wire)
    with pytest.raises(CpError, match="could not be decrypted"):
        hj212.decode(wire, hj212.DecodeOptions(cp_cipher=hj212.Sm4CpCipher(key=bytes(16))))


@given(cps())
def test_the_fast_cp_parser_agrees_with_the_general_one(cp: Cp) -> None:
    text = cp.render()
    params, pollutants, notes = _parse_general(text)
    assert (cp.params, cp.pollutants, cp.notes) == (params, pollutants, notes)


@pytest.mark.parametrize(
    "text",
    ["a-Rtd=1e5", "a-Rtd=NaN", "a-Rtd=١٢", "a-Rtd=1_0", "a-Rtd=1.2.3", "a-Rtd=+"],
)
def test_numbers_decimal_would_accept_but_the_standard_does_not(text: str) -> None:
    with pytest.raises(CpError, match="expected a decimal number"):
        Cp.parse(text)


def test_custom_non_numeric_fields_stay_text() -> None:
    cp = Cp.parse("DataTime=20260101000000;e10001-Info=abc,e10001-Rtd=1.0,e10001-Flag=N")
    assert cp.pollutants["e10001"].texts == {"Info": "abc"}
    assert cp.pollutants["e10001"].rtd == Decimal("1.0")


@pytest.mark.parametrize("field", ["Flag=٥", "CN=٢٠١١", "PNUM=٢;PNO=1"])
def test_non_ascii_digits_in_the_header_are_refused(field: str) -> None:
    data = f"ST=32;CN=2011;PW=1;MN={MN};Flag=4;CP=&&&&"
    key = field.partition("=")[0]
    data = ";".join(item for item in data.split(";") if not item.startswith(f"{key}="))
    with pytest.raises(HeaderError):
        hj212.decode(frame(data.replace(";CP=", f";{field};CP=")))

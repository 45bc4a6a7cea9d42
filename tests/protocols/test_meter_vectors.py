"""Acceptance: every public example frame in fixtures/vectors/meters.txt gets its recorded verdict.

The frames are read from the file, not copied here. Each vector's header fields (address, C, L,
DI, data) are checked against the decoded frame, every valid frame re-encodes byte for byte,
and the values the file states (2.26 kWh, 0.238 A, 100 V …) are asserted explicitly below.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from bench.vectors import MeterVector as Vector
from bench.vectors import meter_vectors
from protocols import cjt188, dlt645
from protocols.errors import CodecError

VECTORS = meter_vectors()
DLT645_VECTORS = [v for v in VECTORS if v.tag.startswith("645")]
CJT188_VECTORS = [v for v in VECTORS if v.tag == "188"]


def vector(text: str) -> Vector:
    """The one vector whose block contains ``text``."""
    found = [v for v in VECTORS if text in v.text]
    assert len(found) == 1, f"{len(found)} vectors mention {text!r}"
    return found[0]


def test_the_file_holds_the_expected_vectors() -> None:
    assert len(DLT645_VECTORS) == 21
    assert sum(v.tag == "645-1997" for v in VECTORS) == 3
    assert len(CJT188_VECTORS) == 6
    assert [v.checksum_ok for v in VECTORS].count(False) == 1


# Verdicts for every vector ---------------------------------------------------------------------
@pytest.mark.parametrize("v", DLT645_VECTORS, ids=lambda v: v.id)
def test_dlt645_vector_decodes_to_its_header_fields_and_reencodes_byte_for_byte(
    v: Vector,
) -> None:
    assert v.checksum_ok and v.reencode == "same"
    frame = dlt645.decode(v.raw)  # edition inferred from C
    assert frame.edition == v.tag[4:]
    assert frame.address.digits == v.fields["addr"]
    assert f"{frame.control:02X}" == v.fields["C"]
    assert len(frame.data) == int(v.fields["L"])
    assert (frame.di_hex or "-") == v.fields["DI"] or v.fields["C"] == "08"  # 08: no DI
    assert frame.data.hex(" ") == v.fields.get("data-33", "").lower()
    assert dlt645.encode(frame) == v.raw
    described = dlt645.describe(v.raw)
    assert described["checksum"]["found"] == described["checksum"]["computed"]
    assert described["raw_hex"] == v.raw.hex(" ").upper()


@pytest.mark.parametrize("v", CJT188_VECTORS, ids=lambda v: v.id)
def test_cjt188_vector_gets_its_verdict(v: Vector) -> None:
    if not v.checksum_ok:
        with pytest.raises(cjt188.CJT188Error) as info:
            cjt188.decode(v.raw)
        assert info.value.reason == "checksum"
        return
    frame = cjt188.decode(v.raw)
    assert f"{frame.meter_type:02X}" == v.fields["T"]
    assert frame.address.digits == v.fields["addr"]
    assert f"{frame.control:02X}" == v.fields["C"]
    assert frame.data[:2].hex(" ") == v.fields["DI(wire)"]
    assert frame.ser == int(v.fields["SER"], 16)
    assert cjt188.encode(frame) == v.raw  # also for the AA wildcard vector ("n/a" in file)


# DL/T 645-2007 values --------------------------------------------------------------------------
def test_read_address_request_to_the_wildcard_address() -> None:
    frame = dlt645.decode(vector("read address (C=13), wildcard").raw)
    assert frame.address == dlt645.WILDCARD
    assert frame.address.kind == "wildcard"
    assert frame.function_name == "read address"
    assert frame == dlt645.read_address_request(preamble=4)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("read-address reply C=93", "558890213594"),
        ("read-address reply, address 000000000001", "000000000001"),
    ],
)
def test_read_address_reply_carries_the_address_in_its_data(text: str, address: str) -> None:
    v = vector(text)
    frame = dlt645.decode(v.raw)
    assert dlt645.parse_reply_address(frame) == dlt645.Address(address)
    rebuilt = dlt645.read_address_reply(dlt645.Address(address), preamble=frame.preamble)
    assert dlt645.encode(rebuilt) == v.raw


@pytest.mark.parametrize(
    ("text", "di", "name", "value", "unit"),
    [
        ("value = 2.26 kWh", 0x00010000, "forward active energy total", "2.26", "kWh"),
        ("value = 0.238 A", 0x02020100, "phase A current", "0.238", "A"),
        ("reply: 0.00 kWh", 0x00000000, "combined active energy total", "0.00", "kWh"),
        ("112280.26", 0x00010000, "forward active energy total", "112280.26", "kWh"),
        ("meter no = 002241020208", 0x04000402, "meter number", "002241020208", ""),
        ("value = 100 V", 0xB611, "phase A voltage", "100", "V"),
        ("value = 0.01 kWh", 0x9010, "forward active energy total", "0.01", "kWh"),
    ],
)
def test_read_reply_values_keep_the_meters_digits_and_rebuild_the_frame(
    text: str, di: int, name: str, value: str, unit: str
) -> None:
    v = vector(text)
    frame = dlt645.decode(v.raw)
    assert frame.is_reply and not frame.is_error and frame.di == di
    [decoded] = dlt645.read_values(frame)
    assert (decoded.name, decoded.unit) == (name, unit)
    assert str(decoded.value) == value  # exact text: "0.00" stays "0.00", "2.26" stays "2.26"
    if isinstance(decoded.value, Decimal):
        assert decoded.value == Decimal(value)
        assert decoded.value.as_tuple().exponent == Decimal(value).as_tuple().exponent
    rebuilt = dlt645.read_reply(
        frame.address, di, decoded.value, edition=frame.edition, preamble=frame.preamble
    )
    assert dlt645.encode(rebuilt) == v.raw


def test_read_requests_name_their_di() -> None:
    cases = {
        "read DI 02010100 phase-A voltage": "phase A voltage",
        "read DI 02020100 phase-A current": "phase A current",
        "read DI 0201FF00 voltage block": "voltage block",
        "read DI 00000000 combined": "combined active energy total",
        "point-to-point": "forward active energy total",
        "read DI 04000402": "meter number",
        "1997 read (C=01)": "phase A voltage",
    }
    for text, name in cases.items():
        v = vector(text)
        described = dlt645.describe(v.raw)
        assert described["di_name"] == name, text
        assert described["control"]["direction"] == "request"
        frame = dlt645.decode(v.raw)
        assert frame.di is not None
        rebuilt = dlt645.read_request(
            frame.address, frame.di, edition=frame.edition, preamble=frame.preamble
        )
        assert dlt645.encode(rebuilt) == v.raw, text


def test_reversed_di_request_is_a_valid_frame_with_an_unknown_di() -> None:
    frame = dlt645.decode(vector("sent DI bytes reversed").raw)
    assert frame.di == 0x00000302
    assert dlt645.describe(vector("sent DI bytes reversed").raw)["di_name"] is None


def test_broadcast_time_is_seconds_first() -> None:
    v = vector("time = 2017-06-05 10:22:51")
    frame = dlt645.decode(v.raw)
    assert frame.address == dlt645.BROADCAST and frame.address.kind == "broadcast"
    assert dlt645.parse_broadcast_time(frame) == datetime(2017, 6, 5, 10, 22, 51)
    assert dlt645.describe(v.raw)["time"] == "2017-06-05T10:22:51"
    rebuilt = dlt645.broadcast_time_request(datetime(2017, 6, 5, 10, 22, 51), preamble=0)
    assert dlt645.encode(rebuilt) == v.raw


def test_year_first_broadcast_time_of_the_pypi_library_is_refused_as_content() -> None:
    v = vector("dlt645 lib broadcast time")
    frame = dlt645.decode(v.raw)  # the frame itself is sound (CS OK) and re-encodes
    assert dlt645.encode(frame) == v.raw
    with pytest.raises(dlt645.DLT645Error) as info:
        dlt645.parse_broadcast_time(frame)
    assert info.value.reason == "time"
    assert "month 34" in str(info.value) and "seconds first" in str(info.value)
    described = dlt645.describe(v.raw)
    assert described["time"] is None
    assert described["content_error"]["reason"] == "time"


def test_1997_frames_infer_their_edition_from_the_control_code() -> None:
    described = dlt645.describe(vector("value = 100 V").raw)
    assert (described["edition"], described["edition_inferred"]) == ("1997", True)
    assert described["di"] == "B611"
    assert described["control"]["function_name"] == "read"


# CJ/T 188 values -------------------------------------------------------------------------------
def test_cjt188_read_request_with_swapped_di_order_is_recorded() -> None:
    v = vector("sent as 1F 90!")
    frame = cjt188.decode(v.raw)
    assert (frame.di, frame.di_order) == (0x901F, "swapped")
    assert frame.meter_type_name == "cold water meter"
    described = cjt188.describe(v.raw)
    assert (described["di"], described["di_order"], described["di_wire"]) == (
        "901F",
        "swapped",
        "1F 90",
    )
    rebuilt = cjt188.read_request(0x10, frame.address, di_order="swapped", preamble=4)
    assert cjt188.encode(rebuilt) == v.raw


def test_cjt188_water_reply_with_wrong_published_checksum_is_rejected_with_both_values() -> None:
    v = vector("PUBLISHED CS 08 IS WRONG")
    with pytest.raises(CodecError) as info:
        cjt188.decode(v.raw)
    assert isinstance(info.value, cjt188.CJT188Error)
    assert info.value.reason == "checksum"
    assert str(info.value) == "checksum: expected 0x13, found 0x08"
    assert info.value.as_dict()["protocol"] == "cjt188"
    with pytest.raises(cjt188.CJT188Error):
        cjt188.describe(v.raw)


def test_cjt188_water_reply_layout_once_the_checksum_is_corrected() -> None:
    v = vector("PUBLISHED CS 08 IS WRONG")
    fixed = v.raw[:-2] + b"\x13" + v.raw[-1:]
    frame = cjt188.decode(fixed)
    reading = cjt188.parse_reading(frame)
    assert isinstance(reading, cjt188.WaterReading)
    for quantity in (reading.current_total, reading.settlement_total):
        assert str(quantity.value) == "556677.00"
        assert quantity.unit_name == "m³"
    assert reading.time == datetime(2015, 5, 11, 22, 1, 31)
    assert reading.status == b"\x21\x84"
    rebuilt = cjt188.read_reply(0x10, frame.address, reading, di_order="swapped", preamble=4)
    assert cjt188.encode(rebuilt) == fixed


def test_cjt188_heat_reply_of_the_jy_meter_in_unit_first_mode() -> None:
    v = vector("JY) puts the unit byte BEFORE")
    frame = cjt188.decode(v.raw)
    assert frame.di_order == "standard" and frame.ser == 1
    reading = cjt188.parse_reading(frame, unit_first=True)
    assert isinstance(reading, cjt188.HeatReading)
    assert (str(reading.settlement_heat.value), reading.settlement_heat.unit_name) == (
        "0.02",
        "MWh",
    )
    assert (str(reading.current_heat.value), reading.current_heat.unit_name) == ("0.02", "MWh")
    assert (str(reading.heat_power.value), reading.heat_power.unit_name) == ("0.00", "kW")
    assert (reading.flow.value, reading.flow.unit_name) == (Decimal(0), "m³/h")
    assert (str(reading.total_flow.value), reading.total_flow.unit_name) == ("10.34", "m³")
    assert (str(reading.supply_temp), str(reading.return_temp)) == ("25.35", "25.66")
    assert reading.working_hours == 0
    assert reading.time == datetime(2015, 7, 10, 12, 0, 53)
    assert reading.status == b"\x00\x00"
    rebuilt = cjt188.read_reply(0x20, frame.address, reading, ser=1, unit_first=True)
    assert cjt188.encode(rebuilt) == v.raw
    described = cjt188.describe(v.raw, unit_first=True)
    assert described["unit_first"] is True
    assert described["reading"]["total_flow"] == {
        "value": "10.34",
        "unit": "m³",
        "unit_code": "0x2C",
    }


def test_cjt188_jy_reply_read_in_the_standard_layout_reports_a_content_error() -> None:
    described = cjt188.describe(vector("JY) puts the unit byte BEFORE").raw)
    assert described["unit_first"] is False
    assert described["reading"] is None
    assert described["content_error"]["reason"] == "bcd"  # "2C" is not a BCD value byte


def test_cjt188_read_address_to_the_wildcard() -> None:
    v = vector("read address (C=03, DI 810A)")
    frame = cjt188.decode(v.raw)
    assert frame.meter_type == cjt188.WILDCARD_TYPE
    assert frame.address == cjt188.WILDCARD and frame.address.kind == "wildcard"
    assert (frame.di, frame.function_name) == (0x810A, "read address")
    assert cjt188.encode(cjt188.read_address_request(preamble=4)) == v.raw


def test_cjt188_requests_without_preamble_and_with_standard_order() -> None:
    v = vector("read 901F (90 1F order), addr 00000000000012")
    frame = cjt188.decode(v.raw)
    assert frame.preamble == 0 and frame.di_order == "standard"
    assert cjt188.encode(cjt188.read_request(0x10, frame.address, preamble=0)) == v.raw
    heat = cjt188.decode(vector("read 901F (sent as 90 1F) heat meter").raw)
    assert heat.meter_type_name == "heat meter (heat)" and heat.ser == 1

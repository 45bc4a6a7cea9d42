"""CJ/T 188 codec: framing, addresses, DI order, 901F readings, builders, stream decoding.

Written as the specification: each test names the rule it holds the codec to.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import cjt188
from protocols.cjt188 import Address, CJT188Error, Frame, HeatReading, Quantity, WaterReading
from protocols.errors import CodecError

WATER = Address("78330011223344")
WATER_READING = WaterReading(
    Quantity(Decimal("556677.00"), 0x2C),
    Quantity(Decimal("12.30"), 0x2C),
    datetime(2015, 5, 11, 22, 1, 31),
    b"\x21\x84",
)
HEAT_READING = HeatReading(
    settlement_heat=Quantity(Decimal("123.45"), 0x05),
    current_heat=Quantity(Decimal("130.00"), 0x05),
    heat_power=Quantity(Decimal("2.50"), 0x17),
    flow=Quantity(Decimal("1.2345"), 0x35),
    total_flow=Quantity(Decimal("10.34"), 0x2C),
    supply_temp=Decimal("55.20"),
    return_temp=Decimal("40.05"),
    working_hours=8760,
    time=datetime(2025, 11, 21, 8, 30, 0),
    status=b"\x00\x00",
)


def error_of(data: bytes) -> CJT188Error:
    with pytest.raises(CJT188Error) as info:
        cjt188.decode(data)
    assert isinstance(info.value, CodecError)
    return info.value


def wire_of(frame: Frame) -> bytes:
    return cjt188.encode(frame)


# Framing -------------------------------------------------------------------------------------
def test_frame_layout_and_checksum_without_0x33() -> None:
    frame = cjt188.read_request(0x10, Address("00000000000012"), preamble=0)
    assert wire_of(frame) == bytes.fromhex("68 10 12 00 00 00 00 00 00 01 03 90 1F 00 3D 16")


@pytest.mark.parametrize(
    ("mutate", "reason", "message"),
    [
        (lambda w: w[:-2] + b"\x00\x16", "checksum", "checksum: expected 0x3D, found 0x00"),
        (lambda w: w[:-1] + b"\x17", "end", "expected 0x16 at byte 15, found 0x17"),
        (lambda w: w[:-1], "truncated", "makes the frame 16 bytes, found 15"),
        (lambda w: w + b"\x16", "length", "1 trailing"),
        (lambda w: b"\x69" + w[1:], "start", "expected 0x68 at byte 0, found 0x69"),
        (lambda w: w[:5], "truncated", "at least 13 bytes"),
    ],
)
def test_framing_errors_say_what_was_expected_and_found(
    mutate: object, reason: str, message: str
) -> None:
    wire = wire_of(cjt188.read_request(0x10, Address("00000000000012"), preamble=0))
    assert callable(mutate)
    err = error_of(mutate(wire))
    assert err.reason == reason
    assert message in str(err)


def test_address_is_14_digits_low_byte_first_with_wildcards() -> None:
    assert WATER.wire == bytes.fromhex("44 33 22 11 00 33 78")
    assert Address.from_wire(WATER.wire) == WATER
    assert cjt188.WILDCARD.kind == "wildcard" and WATER.kind == "unicast"
    assert cjt188.WILDCARD.matches(WATER) and not WATER.matches(Address("78330011223345"))
    assert Address.parse("7833 0011 2233 44") == WATER
    body = bytes.fromhex("68 10 44 33 22 11 0B 33 78 01 03 90 1F 00")
    err = error_of(body + bytes((sum(body) & 0xFF, 0x16)))
    assert (err.reason, "bad BCD digit 0xB in byte 4 of address" in str(err)) == ("bcd", True)
    with pytest.raises(CJT188Error):
        Address("1234")


def test_meter_types_and_functions_are_named() -> None:
    names = {t: Frame(t, WATER, 0x01).meter_type_name for t in (0x10, 0x13, 0x20, 0x21, 0x30)}
    assert names == {
        0x10: "cold water meter",
        0x13: "reclaimed water meter",
        0x20: "heat meter (heat)",
        0x21: "heat meter (cooling)",
        0x30: "gas meter",
    }
    assert Frame(0x15, WATER, 0x01).meter_type_name == "water meter type 0x15"
    assert cjt188.meter_class(0x40) == "electricity"
    assert Frame(0x10, WATER, 0x83).function_name == "read address"
    assert Frame(0x10, WATER, 0x84).function_name == "write data"


# DI order ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("order", "wire"), [("standard", "90 1F"), ("swapped", "1F 90")])
def test_di_order_is_an_encoder_option_and_recorded_by_the_decoder(order: str, wire: str) -> None:
    frame = cjt188.read_request(0x10, WATER, di_order=order)  # type: ignore[arg-type]
    decoded = cjt188.decode(wire_of(frame))
    assert decoded.data[:2] == bytes.fromhex(wire)
    assert (decoded.di, decoded.di_order) == (0x901F, order)
    assert cjt188.describe(wire_of(frame))["di_order"] == order


def test_an_unknown_di_is_read_in_standard_order() -> None:
    frame = cjt188.decode(wire_of(cjt188.write_request(0x10, WATER, 0x1234, b"\x55")))
    assert (frame.di, frame.di_order, frame.payload) == (0x1234, "standard", b"\x55")


# Readings ------------------------------------------------------------------------------------
def test_water_reply_round_trips_and_keeps_decimals() -> None:
    frame = cjt188.read_reply(0x10, WATER, WATER_READING, ser=7)
    assert len(frame.data) == 0x16
    decoded = cjt188.decode(wire_of(frame))
    assert decoded.ser == 7
    reading = cjt188.parse_reading(decoded)
    assert reading == WATER_READING
    assert isinstance(reading, WaterReading)
    assert str(reading.settlement_total.value) == "12.30"


def test_heat_reply_round_trips_in_both_layouts() -> None:
    for unit_first in (False, True):
        frame = cjt188.read_reply(0x20, WATER, HEAT_READING, unit_first=unit_first)
        assert len(frame.data) == 0x2E
        decoded = cjt188.decode(wire_of(frame))
        assert cjt188.parse_reading(decoded, unit_first=unit_first) == HEAT_READING
    standard = cjt188.read_reply(0x20, WATER, HEAT_READING).payload
    assert standard[:5] == bytes.fromhex("45 23 01 00 05")  # value then unit
    swapped = cjt188.read_reply(0x20, WATER, HEAT_READING, unit_first=True).payload
    assert swapped[:5] == bytes.fromhex("05 45 23 01 00")  # unit then value


def test_flow_has_four_decimals_and_the_describe_output_names_everything() -> None:
    wire = wire_of(cjt188.read_reply(0x20, WATER, HEAT_READING))
    described = cjt188.describe(wire)
    assert json.loads(json.dumps(described)) == described
    assert list(described) == [
        "protocol",
        "preamble_len",
        "meter_type",
        "meter_type_name",
        "address",
        "address_kind",
        "control",
        "length",
        "data_hex",
        "di",
        "di_name",
        "di_order",
        "di_wire",
        "ser",
        "payload_hex",
        "unit_first",
        "reading",
        "error_status",
        "content_error",
        "checksum",
        "raw_hex",
    ]
    assert described["control"] == {
        "raw": "0x81",
        "direction": "reply",
        "error": False,
        "function": "0x01",
        "function_name": "read data",
    }
    reading = described["reading"]
    assert list(reading) == [
        "layout",
        "settlement_heat",
        "current_heat",
        "heat_power",
        "flow",
        "total_flow",
        "supply_temp",
        "return_temp",
        "working_hours",
        "time",
        "status",
    ]
    assert reading["flow"] == {"value": "1.2345", "unit": "m³/h", "unit_code": "0x35"}
    assert reading["supply_temp"] == {"value": "55.20", "unit": "°C"}
    assert reading["working_hours"] == {"value": "8760", "unit": "h"}
    assert reading["time"] == "2025-11-21T08:30:00"
    water = cjt188.describe(wire_of(cjt188.read_reply(0x30, WATER, WATER_READING)))["reading"]
    assert list(water) == ["layout", "current_total", "settlement_total", "time", "status"]


def test_units_table() -> None:
    assert {
        code: cjt188.unit_name(code)
        for code in (
            0x02,
            0x05,
            0x08,
            0x0A,
            0x0B,
            0x0E,
            0x11,
            0x13,
            0x14,
            0x17,
            0x1A,
            0x29,
            0x2C,
            0x32,
            0x35,
        )
    } == {
        0x02: "Wh",
        0x05: "kWh",
        0x08: "MWh",
        0x0A: "MWh×100",
        0x0B: "kJ",
        0x0E: "MJ",
        0x11: "GJ",
        0x13: "GJ×100",
        0x14: "W",
        0x17: "kW",
        0x1A: "MW",
        0x29: "L",
        0x2C: "m³",
        0x32: "L/h",
        0x35: "m³/h",
    }
    assert cjt188.unit_name(0x99) == "unknown unit 0x99"


def test_a_meter_without_a_clock_sends_zero_time() -> None:
    reading = WaterReading(WATER_READING.current_total, WATER_READING.settlement_total, None)
    frame = cjt188.read_reply(0x10, WATER, reading)
    assert frame.payload[10:17] == bytes(7)
    assert cjt188.parse_reading(cjt188.decode(wire_of(frame))) == reading


def test_payload_faults_are_content_errors() -> None:
    short = cjt188.read_reply(0x10, WATER, bytes(18))
    with pytest.raises(CJT188Error) as info:
        cjt188.parse_reading(short)
    assert info.value.reason == "length" and "is 19 bytes, found 18" in str(info.value)
    bad_time = cjt188.read_reply(
        0x10, WATER, bytes(10) + bytes.fromhex("00 00 00 32 13 25 20") + bytes(2)
    )
    with pytest.raises(CJT188Error) as info:
        cjt188.parse_reading(bad_time)
    assert info.value.reason == "time"
    described = cjt188.describe(wire_of(bad_time))
    assert described["reading"] is None and described["content_error"]["reason"] == "time"


def test_values_are_never_rounded() -> None:
    for reading, reason in [
        (
            WaterReading(Quantity(Decimal("1.234"), 0x2C), WATER_READING.settlement_total, None),
            "value",
        ),
        (
            WaterReading(Quantity(Decimal("1000000"), 0x2C), WATER_READING.settlement_total, None),
            "range",
        ),
        (WaterReading(WATER_READING.current_total, Quantity(Decimal(1), 0x100), None), "value"),
        (
            WaterReading(
                WATER_READING.current_total, WATER_READING.settlement_total, None, b"\x00"
            ),
            "value",
        ),
    ]:
        with pytest.raises(CJT188Error) as info:
            cjt188.read_reply(0x10, WATER, reading)
        assert info.value.reason == reason


def test_other_frames_have_no_reading() -> None:
    assert cjt188.parse_reading(cjt188.read_request(0x10, WATER)) is None
    assert cjt188.parse_reading(cjt188.read_reply(0x40, WATER, b"\x01\x02")) is None
    assert cjt188.layout_for(0x40, 19) == "water" and cjt188.layout_for(0x40, 43) == "heat"


# Other builders ------------------------------------------------------------------------------
def test_read_address_exchange() -> None:
    reply = cjt188.decode(wire_of(cjt188.read_address_reply(0x10, WATER, ser=3)))
    assert (reply.control, reply.di, reply.ser, reply.address) == (0x83, 0x810A, 3, WATER)
    with pytest.raises(CJT188Error):
        cjt188.read_address_reply(0x10, cjt188.WILDCARD)


def test_error_reply_carries_ser_and_status() -> None:
    frame = cjt188.decode(wire_of(cjt188.error_reply(0x10, WATER, b"\x04\x00", ser=9)))
    assert (frame.control, frame.is_error, frame.ser, frame.status) == (0xC1, True, 9, b"\x04\x00")
    assert (frame.di, frame.di_order, frame.payload) == (None, None, b"")
    assert cjt188.describe(wire_of(frame))["error_status"] == "04 00"
    with pytest.raises(CJT188Error):
        cjt188.error_reply(0x10, WATER, b"\x04")


def test_write_exchange_for_valve_control() -> None:
    request = cjt188.decode(wire_of(cjt188.write_request(0x10, WATER, 0xA017, b"\x99", ser=2)))
    assert (request.control, request.di, request.payload) == (0x04, 0xA017, b"\x99")
    assert cjt188.describe(wire_of(request))["di_name"] == "valve control"
    reply = cjt188.decode(wire_of(cjt188.write_reply(0x10, WATER, 0xA017, b"\x00\x00", ser=2)))
    assert (reply.control, reply.di, reply.ser, reply.payload) == (0x84, 0xA017, 2, b"\x00\x00")


def test_builder_arguments_are_checked() -> None:
    with pytest.raises(CJT188Error):
        cjt188.read_request(0x10, WATER, ser=256)
    with pytest.raises(CJT188Error):
        cjt188.read_request(0x10, WATER, di=0x10000)
    with pytest.raises(CJT188Error):
        cjt188.di_wire(0x901F, "backwards")  # type: ignore[arg-type]
    with pytest.raises(CJT188Error):
        Frame(0x100, WATER, 0x01)


# Stream decoder ------------------------------------------------------------------------------
def test_stream_skips_noise_and_reports_a_damaged_frame() -> None:
    good = wire_of(cjt188.read_reply(0x10, WATER, WATER_READING))
    damaged = good[:-2] + bytes(((good[-2] + 1) & 0xFF, 0x16))
    stream = cjt188.StreamDecoder()
    out = stream.feed(b"\x00\x16\xfe" + damaged + b"\x01" + good)
    assert [type(x) for x in out] == [CJT188Error, Frame]
    assert isinstance(out[0], CJT188Error) and out[0].reason == "checksum"
    assert out[1] == cjt188.decode(good)


def test_stream_idle_gives_up_on_a_noise_68_with_a_long_length() -> None:
    good = wire_of(cjt188.read_request(0x10, WATER))
    stream = cjt188.StreamDecoder()
    assert stream.feed(b"\x68\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff" + good) == []
    assert stream.idle() == [cjt188.decode(good)]
    assert stream.pending == 0


# Property tests ------------------------------------------------------------------------------
addresses = st.one_of(
    st.text("0123456789", min_size=14, max_size=14).map(Address),
    st.just(cjt188.WILDCARD),
    st.just(Address("AAAAAAAA123456")),
)
preambles = st.integers(0, 4)
ORDERS: tuple[cjt188.DIOrder, ...] = ("standard", "swapped")
di_orders = st.sampled_from(ORDERS)
times = st.one_of(
    st.none(),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(lambda t: t.replace(microsecond=0)),
)
unit_codes = st.sampled_from(sorted(cjt188.UNITS))


def decimals(digits: int, scale: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, 10**digits - 1).map(lambda n: Decimal(n).scaleb(-scale))


def quantities(scale: int = 2) -> st.SearchStrategy[Quantity]:
    return st.builds(Quantity, decimals(8, scale), st.one_of(unit_codes, st.integers(0, 255)))


water_readings = st.builds(
    WaterReading, quantities(), quantities(), times, st.binary(min_size=2, max_size=2)
)
heat_readings = st.builds(
    HeatReading,
    quantities(),
    quantities(),
    quantities(),
    quantities(4),
    quantities(),
    decimals(6, 2),
    decimals(6, 2),
    st.integers(0, 999999),
    times,
    st.binary(min_size=2, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.tuples(st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x30]), water_readings),
        st.tuples(st.sampled_from([0x20, 0x21]), heat_readings),
    ),
    addresses,
    st.tuples(st.integers(0, 255), di_orders, st.booleans(), preambles),
)
def test_reading_replies_round_trip(
    case: tuple[int, WaterReading | HeatReading],
    address: Address,
    options: tuple[int, cjt188.DIOrder, bool, int],
) -> None:
    meter_type, reading = case
    ser, order, unit_first, preamble = options
    frame = cjt188.read_reply(
        meter_type,
        address,
        reading,
        ser=ser,
        di_order=order,
        unit_first=unit_first,
        preamble=preamble,
    )
    wire = wire_of(frame)
    decoded = cjt188.decode(wire)
    assert decoded == frame and wire_of(decoded) == wire
    assert (decoded.di, decoded.di_order, decoded.ser) == (0x901F, order, ser)
    assert cjt188.parse_reading(decoded, unit_first=unit_first) == reading
    json.dumps(cjt188.describe(wire, unit_first=unit_first))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), addresses, st.integers(0, 255), st.binary(max_size=255), preambles)
def test_any_frame_round_trips_byte_for_byte(
    meter_type: int, address: Address, control: int, data: bytes, preamble: int
) -> None:
    frame = Frame(meter_type, address, control, data, preamble)
    assert cjt188.decode(wire_of(frame)) == frame


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(water_readings, addresses), min_size=1, max_size=5),
    st.binary(max_size=20),
    st.data(),
)
def test_stream_gives_the_same_frames_however_the_bytes_are_chunked(
    cases: list[tuple[WaterReading, Address]], noise: bytes, data: st.DataObject
) -> None:
    frames = [cjt188.read_reply(0x10, address, reading) for reading, address in cases]
    noise = noise.replace(b"\x68", b"").rstrip(b"\xfe")
    wire = noise + b"".join(wire_of(frame) for frame in frames)
    whole = cjt188.StreamDecoder().feed(wire)
    assert whole == frames
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    stream = cjt188.StreamDecoder()
    pieces: list[Frame | CJT188Error] = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        pieces.extend(stream.feed(wire[a:b]))
    assert pieces == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.data())
def test_stream_output_is_independent_of_chunking_even_for_garbage(
    wire: bytes, data: st.DataObject
) -> None:
    def run(cuts: list[int]) -> list[str]:
        stream = cjt188.StreamDecoder()
        out: list[Frame | CJT188Error] = []
        for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            out.extend(stream.feed(wire[a:b]))
        out.extend(stream.idle())
        return [repr(x) if isinstance(x, Frame) else f"error: {x}" for x in out]

    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    assert run(cuts) == run([])

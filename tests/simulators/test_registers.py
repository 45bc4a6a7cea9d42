"""Meter points as Modbus registers: every type, word order and scale, checked against pymodbus."""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from simulators.fleet.schema import Register
from simulators.meters.registers import (
    FLOAT32_MAX,
    INTEGER_RANGES,
    decode,
    encode,
    encoder,
    raw_value,
)

DATATYPE = AsyncModbusTcpClient.DATATYPE
INTEGER_TYPES = list(INTEGER_RANGES)
SCALES = [Decimal(1), Decimal("0.1"), Decimal("0.01"), Decimal("0.001"), Decimal(10)]
WordOrder = Literal["big", "little"]


def register(type_: str, *, word_order: str = "big", **more: Any) -> Register:
    return Register.model_validate(
        {"quantity": "grid.power_kw", "address": 0, "type": type_, "word_order": word_order} | more
    )


def pymodbus_registers(value: int | float, type_: str, word_order: WordOrder) -> list[int]:
    """The same value as pymodbus's own client lays it out: an independent reference."""
    return AsyncModbusTcpClient.convert_to_registers(value, DATATYPE[type_.upper()], word_order)


# ---- known layouts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "word_order", "value", "words"),
    [
        ("uint16", "big", "4660", [0x1234]),
        ("int16", "big", "-2", [0xFFFE]),
        ("uint32", "big", "305419896", [0x1234, 0x5678]),
        ("uint32", "little", "305419896", [0x5678, 0x1234]),
        ("int32", "little", "-2", [0xFFFE, 0xFFFF]),
        ("float32", "big", "1234.56", [0x449A, 0x51EC]),
        ("float32", "little", "1234.56", [0x51EC, 0x449A]),
        ("uint64", "big", "81985529216486895", [0x0123, 0x4567, 0x89AB, 0xCDEF]),
        ("uint64", "little", "81985529216486895", [0xCDEF, 0x89AB, 0x4567, 0x0123]),
        ("float64", "big", "1", [0x3FF0, 0, 0, 0]),
        ("float64", "little", "-2", [0, 0, 0, 0xC000]),
    ],
)
def test_known_layouts(type_: str, word_order: str, value: str, words: list[int]) -> None:
    reg = register(type_, word_order=word_order)
    assert encode(Decimal(value), reg) == words
    assert decode(words, reg) == Decimal(value)


def test_scale_keeps_the_meters_decimals() -> None:
    reg = register("uint32", scale="0.01", decimals=2)
    assert encode(Decimal("3317504.53"), reg) == pymodbus_registers(331750453, "uint32", "big")
    assert str(decode(encode(Decimal("3317504.53"), reg), reg)) == "3317504.53"


def test_a_float_register_may_carry_a_scale_too() -> None:
    reg = register("float32", scale="0.001")  # a register in W for a point in kW
    assert encode(Decimal("1.5"), reg) == pymodbus_registers(1500.0, "float32", "big")
    assert decode(encode(Decimal("1.5"), reg), reg) == Decimal("1.5")


@pytest.mark.parametrize(
    ("rounding", "value", "raw"),
    [
        ("floor", "2.99", 2),  # a counter shows the whole units passed
        ("half_even", "2.5", 2),
        ("half_even", "3.5", 4),
        ("half_even", "2.51", 3),
        ("floor", "-0.5", -1),
    ],
)
def test_a_coarser_register_rounds_as_the_point_does(rounding: str, value: str, raw: int) -> None:
    reg = register("int32", rounding=rounding)
    assert raw_value(encode(Decimal(value), reg), reg) == raw


# ---- saturation -----------------------------------------------------------------------------


@pytest.mark.parametrize("type_", INTEGER_TYPES)
def test_integers_saturate_at_the_ends_of_their_range(type_: str) -> None:
    low, high = INTEGER_RANGES[type_]
    reg = register(type_)
    assert raw_value(encode(Decimal(high) * 10, reg), reg) == high
    assert raw_value(encode(Decimal(high) + 1, reg), reg) == high
    assert raw_value(encode(Decimal(low) - 1, reg), reg) == low
    assert raw_value(encode(Decimal("-1e40"), reg), reg) == low
    assert raw_value(encode(Decimal("Infinity"), reg), reg) == high
    assert raw_value(encode(Decimal("-Infinity"), reg), reg) == low
    assert raw_value(encode(Decimal("NaN"), reg), reg) == 0


def test_a_spike_past_uint16_shows_its_top() -> None:
    reg = register("uint16", scale="0.1")
    assert encode(Decimal("6553.5"), reg) == [0xFFFF]
    assert encode(Decimal("65535"), reg) == [0xFFFF]  # 655350 does not fit: the top, not a wrap


def test_float32_saturates_and_float64_carries_specials() -> None:
    reg32 = register("float32")
    assert raw_value(encode(Decimal("1e39"), reg32), reg32) == FLOAT32_MAX
    assert raw_value(encode(Decimal("-1e300"), reg32), reg32) == -FLOAT32_MAX
    reg64 = register("float64")
    assert raw_value(encode(Decimal("1e300"), reg64), reg64) == 1e300
    assert math.isnan(float(raw_value(encode(Decimal("NaN"), reg64), reg64)))


def test_decode_wants_the_right_number_of_registers() -> None:
    with pytest.raises(ValueError, match="takes 2 registers"):
        decode([1, 2, 3], register("float32"))


# ---- round trips, with pymodbus as the reference ----------------------------------------------


@given(
    type_=st.sampled_from(INTEGER_TYPES),
    word_order=st.sampled_from(["big", "little"]),
    scale=st.sampled_from(SCALES),
    data=st.data(),
)
def test_integers_round_trip(
    type_: str, word_order: WordOrder, scale: Decimal, data: st.DataObject
) -> None:
    low, high = INTEGER_RANGES[type_]
    raw = data.draw(st.integers(low, high))
    reg = register(type_, word_order=word_order, scale=scale)
    value = Decimal(raw) * scale
    words = encode(value, reg)
    assert words == pymodbus_registers(raw, type_, word_order)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode(words, reg) == value
    assert encoder(reg)(value) == words


@given(number=st.floats(width=32, allow_nan=False), word_order=st.sampled_from(["big", "little"]))
def test_float32_round_trips(number: float, word_order: WordOrder) -> None:
    reg = register("float32", word_order=word_order)
    words = pymodbus_registers(number, "float32", word_order)
    value = decode(words, reg)  # the shortest decimal of this float32
    if math.isfinite(number):
        assert len(value.as_tuple().digits) <= 9
    assert encode(value, reg) == words
    assert struct.pack(">f", float(value)) == struct.pack(">f", number)


@given(number=st.floats(allow_nan=False), word_order=st.sampled_from(["big", "little"]))
def test_float64_round_trips(number: float, word_order: WordOrder) -> None:
    reg = register("float64", word_order=word_order)
    value = Decimal(repr(number))
    words = encode(value, reg)
    assert words == pymodbus_registers(number, "float64", word_order)
    assert decode(words, reg) == value


@given(
    type_=st.sampled_from([*INTEGER_TYPES, "float32", "float64"]),
    value=st.decimals(allow_nan=True, allow_infinity=True),
    scale=st.sampled_from(SCALES),
)
def test_any_value_encodes_without_raising(type_: str, value: Decimal, scale: Decimal) -> None:
    reg = register(type_, scale=scale)
    words = encode(value, reg)
    assert len(words) == reg.words
    assert all(0 <= w <= 0xFFFF for w in words)

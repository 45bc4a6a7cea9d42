"""A float32 register is shown as the shortest decimal that reads back as the same float32."""

from __future__ import annotations

import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reference_terminal.acquisition.float32 import (
    shortest_float32_reference,
    shortest_float32_text,
)


def float32(x: float) -> float:
    (value,) = struct.unpack(">f", struct.pack(">f", x))
    return float(value)


def test_a_meters_decimal_comes_back_as_it_was_shown() -> None:
    assert shortest_float32_text(float32(0.737)) == "0.737"
    assert shortest_float32_text(float32(1234.56)) == "1234.56"
    assert shortest_float32_text(float32(12345.678)) == "12345.678"
    assert shortest_float32_text(0.0) == "0"
    assert shortest_float32_text(-0.0) == "-0"


def test_fewer_digits_keep_the_exponent_form_g_gives_them() -> None:
    assert shortest_float32_text(1230.0) == "1.23e+03"
    assert shortest_float32_text(100000.0) == "1e+05"


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
@example(3.4028234663852886e38)  # the largest float32: rounding up overflows
@example(1.401298464324817e-45)  # the smallest subnormal
@settings(max_examples=2000)
def test_it_is_the_first_digit_count_that_reads_back(x: float) -> None:
    text = shortest_float32_text(x)
    assert text == shortest_float32_reference(x)
    assert float32(float(text)) == x

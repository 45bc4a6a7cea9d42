"""A float32 register's value as its meter shows it: the shortest decimal that reads back as
the same float32 (Modbus holding registers, OPC UA ``Float`` variables)."""

from __future__ import annotations

import struct
from typing import Final

_FLOAT32: Final = struct.Struct(">f")
#: Significant digits a decimal keeps through a float32 (C's FLT_DIG): a float32 made from a
#: decimal of at most this many digits gives it back rounded to this many.
_FLT_DIG: Final = 6
#: The smallest normal float32 (FLT_MIN): below it a float32 holds fewer digits.
_FLT_MIN: Final = 2.0**-126


def shortest_float32_text(x: float) -> str:
    """``f"{x:.{digits}g}"`` with the fewest ``digits`` that reads back as the float32 ``x``.

    Tried at FLT_DIG digits first: if that reads back, its own significant digits are the
    fewest (the shorter decimal, if any, is what rounding to FLT_DIG gives), else the
    answer has 7 to 9 (for a normal float32: a subnormal one is tried from 1). Trying 1, 2,
    3 … in turn cost a float read 3 µs, the terminal's most expensive line while reading a
    works fleet's meters."""
    if x and abs(x) < _FLT_MIN:
        return shortest_float32_reference(x)
    target = _FLOAT32.pack(x)
    text = f"{x:.{_FLT_DIG}g}"
    if _reads_back(text, target):
        digits = _significant_digits(text)
        return text if digits == _FLT_DIG else f"{x:.{digits}g}"
    for digits in range(_FLT_DIG + 1, 10):  # 9 significant digits always identify a float32
        text = f"{x:.{digits}g}"
        if _reads_back(text, target):
            return text
    return repr(x)  # not reached for a finite float32


def shortest_float32_reference(x: float) -> str:
    """The same, one digit count after another from 1: what a subnormal float32 needs, and
    what the tests hold the quicker way to."""
    target = _FLOAT32.pack(x)
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if _reads_back(text, target):
            return text
    return repr(x)


def _reads_back(text: str, target: bytes) -> bool:
    try:
        return _FLOAT32.pack(float(text)) == target
    except OverflowError:  # rounded up past the largest float32
        return False


def _significant_digits(text: str) -> int:
    """Significant digits of a finite ``%g`` text (at least 1: zero has one)."""
    mantissa = text.lstrip("-").partition("e")[0].replace(".", "")
    return max(1, len(mantissa.strip("0")))

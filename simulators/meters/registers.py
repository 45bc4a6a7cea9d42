"""A meter point as Modbus registers, and back: type, word order, scale, saturation.

A register (or a pair or quad of registers) holds one point. Integer types hold
``value / scale`` rounded to a whole number the way the point rounds (counters ``floor``,
instruments ``half_even``); float types hold ``value / scale`` as IEEE 754 (scale is normally 1
for floats, but a float register may count W for a point in kW). Bytes within a register are
always big-endian (the Modbus rule); ``word_order`` says which register comes first: ``big``
puts the most significant first (AB CD, the Modbus convention), ``little`` the least significant
first (CD AB, the "word-swapped" layout many meters use). 64-bit types take four registers.

Values the type cannot hold saturate, as meters do: a reading past the top of an integer
register shows the largest value the register holds, below the bottom the smallest (0 for
unsigned types), and a float beyond its range its largest value (±3.4028235e38 for float32).
Nothing here raises for a value out of range: a spike fault must reach the wire as a meter would
show it, not crash the server. (Counter wrap-around past full scale is another matter: a fault
the fleet plays on the value before it gets here.) Not-a-number shows 0 in an integer register
and NaN in a float one; infinity shows the end of an integer's range, and infinity in a float.
"""

from __future__ import annotations

import contextlib
import functools
import math
import struct
import sys
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Final

from simulators.fleet.schema import Register

#: Each integer type's (smallest, largest) value.
INTEGER_RANGES: Final[dict[str, tuple[int, int]]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
    "uint64": (0, 0xFFFF_FFFF_FFFF_FFFF),
    "int64": (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}
FLOAT32_MAX: Final = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]
_FLOAT_FORMATS: Final = {"float32": ">f", "float64": ">d"}
_ONE: Final = Decimal(1)

#: Turns the value a meter shows into the registers that hold it, in address order.
Encoder = Callable[[Decimal], list[int]]


def encoder(register: Register) -> Encoder:
    """An encoder for one register, with everything about its layout worked out once.

    The server builds these when it starts, so a request costs only the arithmetic; registers
    laid out alike share one (a fleet of a thousand meters has a handful of layouts).
    """
    return _encoder(register.type, register.word_order, register.scale, register.rounding)


@functools.cache
def _encoder(type_: str, word_order: str, scale: Decimal, rounding_name: str) -> Encoder:
    words = {"16": 1, "32": 2, "64": 4}[type_[-2:]]
    word_format = f">{words}H"
    little = word_order == "little"
    scaled = scale != _ONE

    if type_ in _FLOAT_FORMATS:
        number_format = _FLOAT_FORMATS[type_]
        largest = FLOAT32_MAX if type_ == "float32" else sys.float_info.max

        def encode_float(value: Decimal) -> list[int]:
            number = _float(value, scale if scaled else None, largest)
            out = list(struct.unpack(word_format, struct.pack(number_format, number)))
            return out[::-1] if little else out

        return encode_float

    low, high = INTEGER_RANGES[type_]
    signed = low < 0
    size = 2 * words
    rounding = ROUND_FLOOR if rounding_name == "floor" else ROUND_HALF_EVEN

    def encode_integer(value: Decimal) -> list[int]:
        raw = _integer(value, scale if scaled else None, rounding, low, high)
        out = list(struct.unpack(word_format, raw.to_bytes(size, "big", signed=signed)))
        return out[::-1] if little else out

    return encode_integer


def _integer(value: Decimal, scale: Decimal | None, rounding: str, low: int, high: int) -> int:
    if value.is_nan():
        return 0
    try:
        held = value / scale if scale is not None else value
    except ArithmeticError:  # past the Decimal exponent range: far past any register
        return high if value > 0 else low
    if held >= high:  # compared before rounding: no huge int is ever built
        return high
    if held <= low:
        return low
    return int(held.to_integral_value(rounding=rounding))


def _float(value: Decimal, scale: Decimal | None, largest: float) -> float:
    if not value.is_finite():  # a NaN or infinity the meter shows as IEEE does
        return math.nan if value.is_nan() else math.copysign(math.inf, value)
    try:
        number = float(value / scale if scale is not None else value)
    except ArithmeticError:
        number = math.copysign(math.inf, value)
    if abs(number) > largest:  # finite, but beyond the type: its largest value
        number = math.copysign(largest, number)
    return number


def encode(value: Decimal, register: Register) -> list[int]:
    """The registers (in address order) holding ``value`` as ``register`` lays it out."""
    return encoder(register)(value)


def raw_value(words: Sequence[int], register: Register) -> int | float:
    """The number the registers hold, before scale: an int, or a float for float types."""
    if len(words) != register.words:
        raise ValueError(f"{register.type} takes {register.words} registers, got {len(words)}")
    ordered = list(words)[::-1] if register.word_order == "little" else list(words)
    raw = struct.pack(f">{register.words}H", *ordered)
    if register.type in _FLOAT_FORMATS:
        number: float = struct.unpack(_FLOAT_FORMATS[register.type], raw)[0]
        return number
    return int.from_bytes(raw, "big", signed=INTEGER_RANGES[register.type][0] < 0)


def decode(words: Sequence[int], register: Register) -> Decimal:
    """The value the registers show: raw × scale, exactly for integers.

    A float decodes to the shortest decimal that reads back as the same float (for float32,
    the same float32), so a value the meter shows as 1234.56 decodes as 1234.56, not as the
    binary 1234.5600585… — what a terminal displays, and what a test can compare exactly.
    """
    raw = raw_value(words, register)
    if isinstance(raw, float):
        number = _shortest(raw, single=register.type == "float32")
    else:
        number = Decimal(raw)
    return number * register.scale if register.scale != _ONE else number


def _shortest(number: float, *, single: bool) -> Decimal:
    if not single or not math.isfinite(number):
        return Decimal(repr(number))
    target = struct.pack(">f", number)
    for digits in range(1, 10):  # 9 significant digits always identify a float32
        text = f"{number:.{digits}g}"
        with contextlib.suppress(OverflowError):  # rounded up past the largest float32
            if struct.pack(">f", float(text)) == target:
                return Decimal(text)
    return Decimal(repr(number))  # not reached: 9 digits suffice

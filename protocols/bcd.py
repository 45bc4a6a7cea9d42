"""Packed BCD as DL/T 645 and CJ/T 188 put it on the wire: low byte first, two digits a byte.

Every helper takes the codec's error class so a bad digit is reported by the protocol that
met it (``DLT645Error`` or ``CJT188Error``), with the field's name and the byte's position.
Values are :class:`decimal.Decimal` built from the digit string, so the meter's decimals
survive exactly: ``26 02 00 00`` with two decimals is ``Decimal("2.26")``, zeros are ``"0.00"``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from protocols.errors import CodecError

__all__ = [
    "check_digits",
    "datetime_from_digits",
    "decimal_from_bcd",
    "decimal_to_bcd",
    "digits_to_wire",
]


def _bad_nibble(field: bytes, wildcard: bool) -> tuple[int, int] | None:
    """(wire byte index, nibble) of the first nibble that is not a decimal digit."""
    for index, byte in enumerate(field):
        for nibble in (byte >> 4, byte & 0x0F):
            if nibble > 9 and not (wildcard and nibble == 0xA):
                return index, nibble
    return None


def check_digits(
    field: bytes, what: str, error: type[CodecError], *, wildcard: bool = False
) -> str:
    """The field's digits, most significant first; raises ``error`` on a non-BCD nibble.

    With ``wildcard`` an ``A`` nibble is accepted (addresses: ``AA`` bytes select any meter)
    and returned as ``"A"``. Byte positions in messages count from 0 in wire order.
    """
    digits = field[::-1].hex()
    if digits.isdigit():  # fast path: hex() output is ASCII, so isdigit() means 0-9 only
        return digits
    bad = _bad_nibble(field, wildcard)
    if bad is not None:
        index, nibble = bad
        raise error(
            f"bad BCD digit 0x{nibble:X} in byte {index} of {what} "
            f"(wire bytes {field.hex(' ').upper()})",
            reason="bcd",
        )
    return digits.upper()


def digits_to_wire(digits: str) -> bytes:
    """Inverse of :func:`check_digits`: ``"558890213594"`` → ``94 35 21 90 88 55``."""
    return bytes.fromhex(digits)[::-1]


def decimal_from_bcd(
    field: bytes, scale: int, what: str, error: type[CodecError], *, signed: bool = False
) -> Decimal:
    """BCD field → Decimal with exactly ``scale`` decimals (bit 7 of the top byte = minus)."""
    if not field:
        raise error(f"{what}: no bytes to read", reason="length")
    negative = False
    if signed and field[-1] & 0x80:
        negative = True
        field = field[:-1] + bytes((field[-1] & 0x7F,))
    digits = field[::-1].hex()
    if not digits.isdigit():
        check_digits(field, what, error)  # raises with the byte position
    if scale:
        digits = f"{digits[:-scale]}.{digits[-scale:]}"
    # Built from the string, not by arithmetic: no context rounding, trailing zeros kept.
    return Decimal(f"-{digits}" if negative else digits)


def decimal_to_bcd(
    value: Decimal | int | str,
    length: int,
    scale: int,
    what: str,
    error: type[CodecError],
    *,
    signed: bool = False,
    digits: int | None = None,
) -> bytes:
    """Decimal → ``length`` BCD bytes with ``scale`` decimals, low byte first.

    Refuses (never rounds) a value with more decimals than the format has, one too large for
    the field, and a negative one for an unsigned field. Floats are refused: they are not exact.
    ``digits`` limits the magnitude to fewer digits than the bytes hold (format ``XXX`` in 2 B).
    """
    if isinstance(value, float | bool):
        raise error(
            f"{what}: expected Decimal, int or str, found {type(value).__name__}", reason="value"
        )
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except ArithmeticError as exc:
        raise error(f"{what}: {value!r} is not a number", reason="value") from exc
    if not number.is_finite():
        raise error(f"{what}: {number} is not a finite number", reason="value")
    sign, digit_tuple, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite numbers have an int exponent
    width = 2 * length
    limit = 8 * 10 ** (width - 1) if signed else 10**width  # signed: bit 7 of the top byte
    if digits is not None:
        limit = min(limit, 10**digits)
    significant = "".join(map(str, digit_tuple)).rstrip("0")  # 2.2600 is exactly 2.26
    magnitude = 0
    if significant:
        shift = exponent + len(digit_tuple) - len(significant) + scale
        if shift < 0:  # the last significant digit lies below the format's last decimal
            raise error(
                f"{what}: {number} has more than {scale} decimals; the format keeps {scale}",
                reason="value",
            )
        if len(significant) + shift > width:  # checked before computing 10**shift
            raise error(f"{what}: {number} does not fit {width} digits", reason="range")
        magnitude = int(significant) * 10**shift
    negative = bool(sign)
    if negative and not signed and magnitude:
        raise error(f"{what}: {number} is negative but the field is unsigned", reason="range")
    if magnitude >= limit:
        raise error(
            f"{what}: {number} is out of range (largest magnitude "
            f"{Decimal(limit - 1).scaleb(-scale)})",
            reason="range",
        )
    wire = bytearray(bytes.fromhex(f"{magnitude:0{width}d}")[::-1])
    if negative and signed:
        wire[-1] |= 0x80
    return bytes(wire)


def datetime_from_digits(digits: str, what: str, error: type[CodecError]) -> datetime:
    """``YYMMDDhhmmss`` (years 2000–2099) or ``YYYYMMDDhhmmss`` digits → datetime."""
    if len(digits) == 12:
        digits = "20" + digits
    if len(digits) != 14:
        raise error(f"{what}: expected 12 or 14 time digits, found {len(digits)}", reason="time")
    year, month, day = int(digits[0:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise error(
            f"{what}: not a valid time: year {year} month {month} day {day} "
            f"{hour:02d}:{minute:02d}:{second:02d} ({exc})",
            reason="time",
        ) from exc

"""First check of every value (CSMT §8.1.1) and its conversion into a :class:`Reading`.

A reading keeps three things the standards ask for (ISC-2 §9.3, CSMT §9.2): the raw wire form
as the driver gave it, the exact ``Decimal`` value, and the meter's digits. The value is never
rounded, rescaled or normalised here: ``Decimal("0.00")`` stays ``0.00`` with 2 digits, because
ISC-2 §9.3 b) asks that "采集的数据有效位数与现场对应的计量终端的有效位数一致".

The range check marks a value outside the meter's [min, max] ``OUT_OF_RANGE`` ("凡小于最小值或者
大于最大值的采集读数属于无效数据", CSMT §8.1.1) but keeps it: an invalid value is still evidence.
"""

from __future__ import annotations

from decimal import Decimal

from reference_terminal.config import Point
from reference_terminal.construct import new_reading
from reference_terminal.model import Quality, RawValue, Reading


def digits_of(value: Decimal) -> int:
    """Decimal places of ``value`` as written: ``2.26`` → 2, ``0.00`` → 2, ``12`` → 0.

    A positive exponent (``1E+2``, what some float conversions give) shows no decimal places.
    """
    # Read off the plain text when there is one (~5× cheaper than as_tuple, once per value):
    # without an exponent ("E", or "e" in a context with capitals=0) it shows exactly the
    # value's decimal places.
    text = str(value)
    if "E" not in text and "e" not in text:
        point = text.find(".")
        return 0 if point < 0 else len(text) - point - 1
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': NaN or infinity, no digits to speak of
        return 0
    return -exponent if exponent < 0 else 0


def range_problem(value: Decimal, point: Point) -> str | None:
    """Why ``value`` fails the range check of ``point``, or None when it passes.

    Limits are inclusive: a meter's stated maximum is itself a valid reading.
    """
    low, high = point.min, point.max
    if low is not None and value < low:
        return f"{value} < min {low} (CSMT §8.1.1: 凡小于最小值…的采集读数属于无效数据)"
    if high is not None and value > high:
        return f"{value} > max {high} (CSMT §8.1.1: 凡…大于最大值的采集读数属于无效数据)"
    return None


def to_reading(raw: RawValue, point: Point, quality: Quality = Quality.GOOD) -> Reading:
    """The reading of ``raw`` for ``point``, range-checked; ``quality`` is what the value is
    worth if it passes (GOOD from the primary device, BACKUP, MANUAL).

    A value that never came (``raw.value`` None or ``raw.error`` set) is ``COMM_FAULT`` with the
    driver's reason as note and the configured digits. A non-finite value (NaN or infinity from
    a float register) is no value at all: ``OUT_OF_RANGE`` with the value dropped, the raw form
    kept.
    """
    value = raw.value
    if value is None or raw.error is not None:
        return new_reading(
            raw.point,
            raw.t,
            raw.raw,
            None,
            Quality.COMM_FAULT,
            point.decimals,
            raw.device,
            raw.error or "no value",
        )
    if not value.is_finite():
        return new_reading(
            raw.point,
            raw.t,
            raw.raw,
            None,
            Quality.OUT_OF_RANGE,
            point.decimals,
            raw.device,
            f"not a finite number: {value} (CSMT §8.1.1)",
        )
    digits = digits_of(value)
    low, high = point.min, point.max
    if (low is not None and value < low) or (high is not None and value > high):
        problem = range_problem(value, point)  # range_problem's test, inline: once per value
        assert problem is not None
        return new_reading(
            raw.point, raw.t, raw.raw, value, Quality.OUT_OF_RANGE, digits, raw.device, problem
        )
    return new_reading(raw.point, raw.t, raw.raw, value, quality, digits, raw.device)


#: How much a quality weakens a figure built from it: a sum or a window is only as trustworthy
#: as its weakest sample, so derived figures carry the highest rank of their inputs.
RANK: dict[Quality, int] = {
    Quality.GOOD: 0,
    Quality.BACKUP: 1,
    Quality.MANUAL: 2,
    Quality.INTERPOLATED: 3,
    Quality.SUSPECT: 4,
    Quality.OUT_OF_RANGE: 5,
    Quality.COMM_FAULT: 6,
}
#: ``Quality.usable`` as a set: a hashed lookup is ~20× cheaper than the property's tuple scan,
#: which matters at one check per value.
USABLE: frozenset[Quality] = frozenset(q for q in Quality if q.usable)
#: RANK inverted.
BY_RANK: tuple[Quality, ...] = tuple(sorted(RANK, key=RANK.__getitem__))


def worst(a: Quality, b: Quality) -> Quality:
    """The weaker of two qualities (see :data:`RANK`)."""
    return a if RANK[a] >= RANK[b] else b

"""Range check (CSMT §8.1.1) and conversion keeping the meter's digits (ISC-2 §9.3)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.model import Quality
from reference_terminal.processing.validation import digits_of, to_reading, worst
from tests.reference_terminal.processing.support import point, raw


def test_digits_are_the_meters_own() -> None:
    p = point(decimals=4)
    for text, digits in (("2.26", 2), ("0.00", 2), ("12", 0), ("556677.00", 2), ("1.2345", 4)):
        r = to_reading(raw("P", 1.0, text), p)
        assert r.digits == digits
        assert str(r.value) == text  # not normalised, not rounded: "0.00" stays "0.00"
        assert r.raw == text
        assert r.quality is Quality.GOOD


def test_digits_of_a_positive_exponent_is_zero() -> None:
    assert digits_of(Decimal("1E+2")) == 0
    assert digits_of(Decimal("NaN")) == 0


def test_range_check_is_inclusive_and_keeps_the_value() -> None:
    p = point(min=Decimal("0"), max=Decimal("100.0"))
    assert to_reading(raw("P", 1.0, "0"), p).quality is Quality.GOOD
    assert to_reading(raw("P", 1.0, "100.0"), p).quality is Quality.GOOD
    high = to_reading(raw("P", 1.0, "100.1"), p)
    assert high.quality is Quality.OUT_OF_RANGE
    assert high.value == Decimal("100.1")  # still evidence
    assert "CSMT §8.1.1" in high.note and "max 100.0" in high.note
    low = to_reading(raw("P", 1.0, "-0.01"), p)
    assert low.quality is Quality.OUT_OF_RANGE and "min 0" in low.note


def test_no_value_is_a_comm_fault_with_the_drivers_reason() -> None:
    p = point(decimals=3)
    r = to_reading(raw("P", 5.0, None, error="timeout"), p)
    assert (r.value, r.quality, r.note, r.digits) == (None, Quality.COMM_FAULT, "timeout", 3)


def test_a_non_finite_value_is_no_value() -> None:
    r = to_reading(raw("P", 5.0, "NaN"), point())
    assert r.value is None and r.quality is Quality.OUT_OF_RANGE and r.raw == "NaN"


def test_quality_given_for_a_passing_value_is_kept() -> None:
    assert to_reading(raw("P", 1.0, "3"), point(), Quality.BACKUP).quality is Quality.BACKUP


def test_worst_quality() -> None:
    assert worst(Quality.GOOD, Quality.INTERPOLATED) is Quality.INTERPOLATED
    assert worst(Quality.SUSPECT, Quality.MANUAL) is Quality.SUSPECT


@given(st.integers(-(10**12), 10**12), st.integers(0, 6))
def test_any_value_keeps_its_text_and_digits(units: int, digits: int) -> None:
    value = Decimal(units).scaleb(-digits)
    r = to_reading(raw("P", 1.0, str(value)), point())
    assert str(r.value) == str(value)
    assert r.digits == digits

"""Gap filling by linear and nearest interpolation, totals never lost (CSMT §12.4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.model import Quality
from reference_terminal.processing.increments import CounterState
from reference_terminal.processing.interpolation import InterpolationError, fill_gap
from tests.reference_terminal.processing.support import reading

D = Decimal


def test_linear_fill_of_a_gauge() -> None:
    fill = fill_gap(reading("G", 0, "10.0"), reading("G", 40, "14.0"), [10, 20, 30])
    assert [r.value for r in fill.readings] == [D("11.0"), D("12.0"), D("13.0")]
    for r in fill.readings:
        assert r.quality is Quality.INTERPOLATED and r.digits == 1 and r.raw == ""
        assert "linear" in r.note and "CSMT §12.4" in r.note
    assert fill.event.kind == "interpolated"
    assert (fill.event.start, fill.event.end) == (0, 40)
    assert fill.event.details["count"] == "3" and fill.event.details["method"] == "linear"


def test_linear_fill_rounds_to_the_meters_digits() -> None:
    fill = fill_gap(reading("G", 0, "1.00"), reading("G", 3, "2.0"), [1, 2])
    assert [str(r.value) for r in fill.readings] == ["1.33", "1.67"]


def test_nearest_fill_takes_the_closer_reading_and_the_earlier_on_a_tie() -> None:
    fill = fill_gap(reading("G", 0, "5"), reading("G", 60, "9"), [10, 30, 50], method="nearest")
    assert [r.value for r in fill.readings] == [D(5), D(5), D(9)]
    assert "最近邻" in fill.readings[0].note


def test_counter_fill_across_a_rollover_ends_at_the_measured_value() -> None:
    before, after = reading("E", 0, "999999.00"), reading("E", 40, "000001.00")
    fill = fill_gap(before, after, [10, 20, 30], span=D("2.00"), full_scale=D("1000000"))
    assert [str(r.value) for r in fill.readings] == ["999999.50", "0.00", "0.50"]
    state = CounterState("E", full_scale=D("1000000"))
    state.update(before)
    increments = [state.update(r).increment for r in [*fill.readings, after]]
    assert [i.value for i in increments if i is not None] == [D("0.50")] * 4
    assert fill.event.details["span"] == "2.00"


def test_nearest_counter_fill_across_a_rollover() -> None:
    fill = fill_gap(
        reading("E", 0, "9990"),
        reading("E", 60, "0010"),
        [20, 40],
        method="nearest",
        span=D(20),
        full_scale=D(10000),
    )
    assert [r.value for r in fill.readings] == [D(9990), D(10)]


@pytest.mark.parametrize(
    ("due", "message"),
    [([0], "strictly inside"), ([10, 5], "strictly inside"), ([60], "strictly inside")],
)
def test_fills_lie_strictly_inside_the_gap(due: list[float], message: str) -> None:
    with pytest.raises(InterpolationError, match=message):
        fill_gap(reading("G", 0, "1"), reading("G", 60, "2"), due)


def test_fills_need_two_good_readings() -> None:
    with pytest.raises(InterpolationError, match="two good readings"):
        fill_gap(reading("G", 0, "1", Quality.OUT_OF_RANGE), reading("G", 60, "2"), [30])
    with pytest.raises(InterpolationError, match="negative"):
        fill_gap(reading("E", 0, "1"), reading("E", 60, "2"), [30], span=D(-1))


@given(
    st.integers(0, 999_999),
    st.integers(0, 500_000),
    st.lists(st.floats(0.001, 0.999), min_size=1, max_size=30, unique=True),
    st.sampled_from(["linear", "nearest"]),
)
def test_counter_fills_are_monotonic_and_total_exactly(
    start: int, span_units: int, fractions: list[float], method: str
) -> None:
    """Filled counters never go down (unwrapped) and the increments through them add up to
    exactly the measured span, across a rollover too."""
    full = D("10000.00")
    b = D(start).scaleb(-2)
    span = D(span_units).scaleb(-2)
    a = (b + span) % full
    before, after = reading("E", 0.0, str(b)), reading("E", 1000.0, str(a))
    due = sorted(f * 1000 for f in fractions)
    fill = fill_gap(
        before,
        after,
        due,
        method="linear" if method == "linear" else "nearest",
        span=span,
        full_scale=full,
    )
    state = CounterState("E", full_scale=full, history_factor=None)
    state.update(before)
    total = D(0)
    unwrapped = b
    for r in [*fill.readings, after]:
        step = state.update(r)
        assert step.increment is not None and step.increment.value >= 0
        total += step.increment.value
        unwrapped += step.increment.value
        assert r.value is not None and r.value == unwrapped % full
    assert total == span

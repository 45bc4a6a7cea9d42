"""Increments, rollover (CSMT §8.2.2), replacement, and the second check on increments
(CSMT §8.1.2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.model import Quality
from reference_terminal.processing.increments import CONFIRM_READINGS, CounterState
from tests.reference_terminal.processing.support import reading

D = Decimal


def feed(state: CounterState, *values: str, t0: float = 0.0) -> list[Decimal | None]:
    out: list[Decimal | None] = []
    for i, v in enumerate(values):
        step = state.update(reading("E", t0 + 60 * i, v))
        out.append(None if step.increment is None else step.increment.value)
    return out


def test_increments_are_differences_of_consecutive_readings() -> None:
    state = CounterState("E")
    assert feed(state, "100.00", "100.25", "101.00", "101.00") == [
        None,
        D("0.25"),
        D("0.75"),
        D("0.00"),
    ]
    step = state.update(reading("E", 300, "102.5"))
    assert step.increment is not None
    assert (step.increment.start, step.increment.end) == (D("101.00"), D("102.5"))
    assert step.increment.digits == 2 and step.increment.t0 == 180 and step.increment.t == 300


def test_rollover_at_full_scale_adds_the_full_scale() -> None:
    state = CounterState("E", full_scale=D("1000000"))
    state.update(reading("E", 0, "999999.99"))
    step = state.update(reading("E", 60, "000000.04"))
    assert step.increment is not None and step.increment.value == D("0.05")
    assert step.reading.quality is Quality.GOOD
    (event,) = step.events
    assert event.kind == "rollover" and event.details["full_scale"] == "1000000"
    assert "CSMT §8.2.2" in step.increment.note


def test_the_standards_own_example_9999_to_0000() -> None:
    state = CounterState("E", full_scale=D("10000"))
    assert feed(state, "9998", "9999", "0000", "0002") == [None, D(1), D(1), D(2)]


def test_a_drop_to_near_zero_is_a_replaced_meter_counted_from_zero() -> None:
    state = CounterState("E", full_scale=D("1000000"))
    state.update(reading("E", 0, "123456.78"))
    step = state.update(reading("E", 60, "0.50"))
    assert step.increment is not None
    assert step.increment.value == D("0.50") and str(step.increment.start) == "0.00"
    (event,) = step.events
    assert event.kind == "meter_replaced" and event.details["new_start"] == "0"
    assert feed(state, "0.75", t0=120) == [D("0.25")]


def test_without_full_scale_a_drop_is_never_a_rollover() -> None:
    state = CounterState("E")
    state.update(reading("E", 0, "9999"))
    step = state.update(reading("E", 60, "0003"))
    assert step.events[0].kind == "meter_replaced"
    assert step.increment is not None and step.increment.value == 3


def test_a_small_step_back_is_held_not_counted() -> None:
    state = CounterState("E")
    state.update(reading("E", 0, "500.00"))
    back = state.update(reading("E", 60, "499.90"))
    assert back.increment is None
    assert back.reading.quality is Quality.SUSPECT and "went back" in back.reading.note
    assert [e.kind for e in back.events] == ["counter_backwards"]
    again = state.update(reading("E", 120, "499.95"))
    assert again.events == ()  # one event per excursion
    # Passing the old register again counts from it: nothing is counted twice.
    assert feed(state, "500.10", t0=180) == [D("0.10")]


def test_readings_that_stay_low_prove_a_replacement() -> None:
    state = CounterState("E")
    state.update(reading("E", 0, "500.00"))
    values = ["300.00", "300.50", "301.25"]
    assert len(values) == CONFIRM_READINGS
    steps = [state.update(reading("E", 60 * (i + 1), v)) for i, v in enumerate(values)]
    assert [s.increment for s in steps[:-1]] == [None, None]
    last = steps[-1]
    assert last.increment is not None and last.increment.value == D("1.25")
    assert last.increment.start == D("300.00")
    assert last.events[0].kind == "meter_replaced"
    assert last.reading.quality is Quality.GOOD


def test_increments_are_never_negative_whatever_the_register_does() -> None:
    state = CounterState("E", full_scale=D("1000"))
    for i, v in enumerate(["10", "5", "900", "3", "2", "1", "999", "0", "500", "499"]):
        step = state.update(reading("E", i, v))
        assert step.increment is None or step.increment.value >= 0


def test_second_check_flags_increments_above_twice_the_monthly_total() -> None:
    state = CounterState("E")
    state.seed(months={"2025-09": D("80"), "2025-10": D("100")})
    assert state.limit() == D("200")  # 2 × the largest valid monthly total
    # A register far above the monthly total is fine: the check is on increments.
    state.update(reading("E", 0, "1000000.0"))
    ok = state.update(reading("E", 60, "1000199.0"))
    assert ok.increment is not None and ok.increment.quality is Quality.GOOD
    bad = state.update(reading("E", 120, "1000400.0"))
    assert bad.increment is not None and bad.increment.quality is Quality.SUSPECT
    assert bad.reading.quality is Quality.SUSPECT and "CSMT §8.1.2" in bad.reading.note
    assert [e.kind for e in bad.events] == ["suspect_increment"]
    assert bad.events[0].details["limit"] == "200"


def test_a_spike_that_comes_back_leaves_the_totals_alone() -> None:
    state = CounterState("E")
    state.seed(months={"2025-10": D("100")})
    assert feed(state, "1000", "1001", "5000", "1002") == [None, D(1), D(3999), D(1)]
    assert state.baseline is not None and state.baseline.value == D("1002")


def test_a_jump_the_meter_keeps_becomes_the_new_baseline() -> None:
    state = CounterState("E")
    state.seed(months={"2025-10": D("100")})
    feed(state, "1000", "5000")
    step = state.update(reading("E", 120, "5002"))
    assert step.increment is not None and step.increment.value == D(2)
    assert step.events[0].kind == "suspect_level_kept"


def test_second_check_needs_history() -> None:
    state = CounterState("E")
    assert state.limit() is None
    state.add_month("2025-10", D(0))
    assert state.limit() is None  # idle months are no basis
    disabled = CounterState("E", history_factor=None)
    disabled.add_month("2025-10", D(10))
    assert disabled.limit() is None


def test_history_keeps_the_last_months() -> None:
    state = CounterState("E", history_months=2)
    state.add_month("2025-01", D(1000))
    state.add_month("2025-02", D(10))
    state.add_month("2025-03", D(20))
    assert state.history == {"2025-02": D(10), "2025-03": D(20)}
    assert state.limit() == D(40)


def test_a_change_of_device_restarts_without_an_increment() -> None:
    state = CounterState("E")
    state.update(reading("E", 0, "100"))
    step = state.update(reading("E", 60, "7000", Quality.BACKUP, device="m2"))
    assert step.increment is None and step.events[0].kind == "counter_source_changed"
    assert feed(state, "100", t0=120) == [None]  # back on m1: restart again


def test_only_usable_readings_make_increments() -> None:
    state = CounterState("E")
    with pytest.raises(ValueError, match=r"CSMT §8\.1"):
        state.update(reading("E", 0, "1", Quality.OUT_OF_RANGE))
    with pytest.raises(ValueError, match="full_scale"):
        CounterState("E", full_scale=D(0))


def test_span_is_plain_advance_or_rollover_only() -> None:
    state = CounterState("E", full_scale=D("10000"))
    assert state.span(reading("E", 0, "5")) is None  # no baseline yet
    state.update(reading("E", 0, "9990"))
    assert state.span(reading("E", 60, "9995")) == 5
    assert state.span(reading("E", 60, "0005")) == 15
    assert state.span(reading("E", 60, "6000")) is None  # more than half the scale: no rollover


@given(
    st.integers(0, 99_999),
    st.lists(st.integers(0, 49_999), min_size=1, max_size=60),
)
def test_sum_of_increments_is_last_minus_first_plus_rollovers(start: int, steps: list[int]) -> None:
    """Σ increments = last − first + k × full scale, k the number of rollovers."""
    full = 100_000
    state = CounterState("E", full_scale=Decimal(full).scaleb(-2), history_factor=None)
    true = start
    state.update(reading("E", 0, str(Decimal(start).scaleb(-2))))
    total = Decimal(0)
    for i, step in enumerate(steps, 1):
        true += step
        shown = Decimal(true % full).scaleb(-2)
        result = state.update(reading("E", i, str(shown)))
        assert result.increment is not None and result.increment.value >= 0
        total += result.increment.value
    rollovers = true // full - start // full
    first, last = Decimal(start % full).scaleb(-2), Decimal(true % full).scaleb(-2)
    assert total == last - first + rollovers * Decimal(full).scaleb(-2)
    assert total == Decimal(true - start).scaleb(-2)

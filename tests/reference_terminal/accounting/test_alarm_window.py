"""An anomaly rule's window (ISC-2 §7.2.6): kept sorted as figures come and go so that the
minute path takes its median by index, it gives exactly what :func:`statistics.median` of the
last ``window`` figures gives, evictions of repeated values included."""

from __future__ import annotations

import statistics
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.accounting.alarms import _Window

figures = st.lists(
    st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False), min_size=1
)


@given(figures, st.integers(min_value=1, max_value=12))
def test_the_median_is_that_of_the_last_window_figures(values: list[Decimal], size: int) -> None:
    window = _Window(size)
    for i, value in enumerate(values):
        window.append(value)
        last = values[max(0, i + 1 - size) : i + 1]
        assert list(window) == last
        assert window.median() == statistics.median(last)


def test_equal_values_written_differently_are_evicted_one_for_one() -> None:
    window = _Window(2)
    window.extend([Decimal("1.0"), Decimal("1.00"), Decimal("5")])
    assert list(window) == [Decimal("1.00"), Decimal("5")]
    assert window.median() == 3

"""The interpreter settings of the terminal's own process (``reference_terminal.runtime``)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from reference_terminal.runtime import (
    COLLECTOR_THRESHOLDS,
    GIL_SWITCH_S,
    settle_heap,
    tune_process,
)


@pytest.fixture
def interpreter() -> Iterator[None]:
    """Whatever a test changes in the interpreter is put back: pytest's process is shared."""
    switch, thresholds = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(switch)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_the_process_hands_the_gil_over_every_fifth_of_a_millisecond(interpreter: None) -> None:
    tune_process()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S) == pytest.approx(0.0002)


def test_the_collector_looks_at_young_objects_far_less_often(interpreter: None) -> None:
    tune_process()
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert COLLECTOR_THRESHOLDS[0] >= 50 * 700  # CPython's default is 700


def test_what_start_up_built_is_frozen_out_of_later_passes(interpreter: None) -> None:
    built_at_start_up = [[n] for n in range(1_000)]
    settle_heap()
    assert gc.get_freeze_count() >= len(built_at_start_up)
    first = built_at_start_up[0]
    assert not any(o is first for o in gc.get_objects(generation=2))  # no pass walks it again

"""A scenario runs the in-process reference terminal with its own process's interpreter settings
(reference_terminal.runtime), and gives the process back as it found it."""

from __future__ import annotations

import gc
import sys

import pytest

from bench.scenario.interpreter import terminal_interpreter
from reference_terminal.runtime import COLLECTOR_THRESHOLDS, GIL_SWITCH_S


def test_the_terminal_settings_hold_inside_and_the_old_ones_come_back_after() -> None:
    before = gc.get_threshold(), sys.getswitchinterval()
    with terminal_interpreter():
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)
    assert (gc.get_threshold(), sys.getswitchinterval()) == before


def test_they_come_back_after_a_failed_run_too() -> None:
    before = gc.get_threshold(), sys.getswitchinterval()
    with pytest.raises(RuntimeError), terminal_interpreter():
        raise RuntimeError("the scenario failed")
    assert (gc.get_threshold(), sys.getswitchinterval()) == before

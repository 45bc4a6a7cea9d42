"""Periodic tasks keep to the grid of POSIX time, whenever the terminal booted: windows close
on the minute after a power-up at :31.82 as before it, not at the phase of the boot."""

from __future__ import annotations

import asyncio

import pytest

from common.clock import sleep_to_grid
from tests.reference_terminal.clocks import SteppingClock

MINUTE_ON_GRID = 1_800_000_000.0  # a multiple of 60


@pytest.mark.parametrize(
    ("booted_at", "first_wake"),
    [
        (MINUTE_ON_GRID + 31.82, MINUTE_ON_GRID + 60),  # off the grid: the next minute
        (MINUTE_ON_GRID + 59.999, MINUTE_ON_GRID + 60),
        (MINUTE_ON_GRID, MINUTE_ON_GRID + 60),  # on it: a whole period
    ],
)
def test_a_periodic_task_wakes_on_the_grid(booted_at: float, first_wake: float) -> None:
    clock = SteppingClock(start=booted_at)
    wakes: list[float] = []

    async def task() -> None:
        for _ in range(3):
            await sleep_to_grid(clock, 60.0)
            wakes.append(clock.time())

    asyncio.run(task())
    assert wakes == pytest.approx([first_wake, first_wake + 60, first_wake + 120], abs=1e-6)

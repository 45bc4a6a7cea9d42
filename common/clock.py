"""The clock protocol: everything with a notion of time takes one (DESIGN.md), so the bench can
run a terminal or a simulator in virtual time; on a gateway, and for real-time runs, it is the
wall clock (:class:`RealClock`)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """POSIX seconds."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The wall clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def time_at(clock: Clock, monotonic: float) -> float:
    """The clock's POSIX time at its ``monotonic`` instant (past or planned)."""
    return clock.time() + (monotonic - clock.monotonic())


async def sleep_to_grid(clock: Clock, every_s: float) -> None:
    """Sleep until the next multiple of ``every_s`` in POSIX time (a whole period when on one).
    A periodic task kept on the grid does its work at the same instants whenever the terminal
    booted: on the minute, with the meters' reads, not at the phase of the last power-up."""
    await clock.sleep(every_s - clock.time() % every_s)

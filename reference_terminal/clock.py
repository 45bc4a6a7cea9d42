"""The terminal's clock. Everything with a notion of time takes one (DESIGN.md), so a bench can
run the terminal in virtual time; on a gateway it is the wall clock."""

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
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def sleep_to_grid(clock: Clock, every_s: float) -> None:
    """Sleep until the next multiple of ``every_s`` in POSIX time (a whole period when on one).
    A periodic task kept on the grid does its work at the same instants whenever the terminal
    booted: on the minute, with the meters' reads, not at the phase of the last power-up."""
    await clock.sleep(every_s - clock.time() % every_s)

"""The clock every simulator takes time from (DESIGN.md: nothing calls time.time() itself).

``RealClock`` is the wall clock. A virtual clock (the faults and scenarios issue) implements the
same protocol, so the simulators run unchanged in virtual time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
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


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

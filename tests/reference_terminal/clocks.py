"""A clock for tests whose sleeps advance time at once: schedules run instantly and exactly."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class SteppingClock:
    """Virtual time: ``sleep`` parks the caller until virtual time reaches its deadline, and
    time jumps to the earliest deadline whenever every task is parked (checked by yielding)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._runner: asyncio.Task[None] | None = None

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._advance())
        await future

    async def _advance(self) -> None:
        while self._sleepers:
            for _ in range(20):  # let every runnable task run until it parks again
                await asyncio.sleep(0)
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            if not future.done():
                future.set_result(None)

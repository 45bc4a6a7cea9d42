"""The clock every simulator takes time from (DESIGN.md: nothing calls time.time() itself).

``RealClock`` is the wall clock; ``VirtualClock`` is time owned by the bench, in which the
simulators and an in-process reference terminal run unchanged, hours in seconds, and which
leads processes of the bench's own (``simulators.clock_peer``). The clock protocol and what a
leader shares with its followers (quiescence, sleepers) are ``common``'s: the reference terminal
takes them from there too. ``Clock``, ``RealClock`` and ``time_at`` are named here as well, for
the simulators that take their clock from this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from common.clock_follower import Quiescence, Sleepers

__all__ = ["Peer", "VirtualClock", "utc"]

log = logging.getLogger(__name__)


class Peer(Protocol):
    """A process whose virtual time a :class:`VirtualClock` leads (``simulators.clock_peer``):
    time moves only while it, too, waits, and stops at its sleepers' deadlines as well."""

    def stirred(self) -> bool:
        """Whether it may have work it did not have when it last settled (bytes or a request
        sent to it since, a sleeper woken): time must not move before it settles again."""
        ...

    async def settle(self) -> float | None:
        """Wait until it waits; its earliest sleeper's deadline (monotonic), if any."""
        ...

    def advance(self, monotonic: float, *, due: bool) -> None:
        """Time is ``monotonic`` now: let it see so; ``due``: its earliest sleeper's deadline
        has come, so wake what is due."""
        ...


class VirtualClock(Quiescence):
    """Virtual time owned by the bench (DESIGN.md "Time").

    Time stands still while anything in the process has work to do (:class:`Quiescence`), or
    in a process it leads (:meth:`lead`), and then jumps to the earliest sleeper's deadline.

    ``time()`` is POSIX time; ``monotonic()`` counts from the clock's start.
    """

    def __init__(
        self,
        start: float,
        *,
        idle_turns: int = 3,
        stuck_after_s: float = 2.0,
        handover_s: float = 0.0001,
    ) -> None:
        super().__init__(idle_turns=idle_turns, stuck_after_s=stuck_after_s, handover_s=handover_s)
        self._mono = 0.0
        self._start = start
        self._sleepers = Sleepers()
        self._driver: asyncio.Task[None] | None = None
        #: the processes this clock leads, and each one's earliest deadline when it settled
        self._peers: dict[Peer, float | None] = {}
        self.steps = 0

    # ---- the Clock protocol -------------------------------------------------------------------
    def time(self) -> float:
        return self._start + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = self._sleepers.add(self._mono, seconds)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(
                self._drive(), name="virtual clock"
            )
        await future

    # ---- for the bench ----------------------------------------------------------------------
    def lead(self, peer: Peer) -> Callable[[], None]:
        """Lead ``peer``'s time too (a process of the bench's own). Returns what stops it.
        Time moves while something here sleeps: a peer's sleeper wakes on the way to it."""
        self._peers[peer] = None

        def stop() -> None:
            self._peers.pop(peer, None)

        return stop

    async def sleep_until(self, monotonic: float) -> None:
        await self.sleep(monotonic - self._mono)

    # ---- the driver ----------------------------------------------------------------------------
    async def _drive(self) -> None:
        try:
            await self._advance()
        except Exception:
            # A driver that dies leaves every sleeper asleep for ever: say so loudly.
            log.exception("virtual clock driver failed; time stands still")
            raise

    async def _advance(self) -> None:
        while self._sleepers:
            await self._wait_quiescent()
            if not await self._peers_settled():
                continue
            deadline = self._sleepers.earliest()
            if deadline is None:
                return
            deadline = min([deadline, *(d for d in self._peers.values() if d is not None)])
            self._mono = max(self._mono, deadline)
            self.steps += 1
            for peer, earliest in list(self._peers.items()):
                due = earliest is not None and earliest <= self._mono
                if due:
                    self._peers[peer] = None
                peer.advance(self._mono, due=due)
            self._sleepers.wake(self._mono)

    async def _peers_settled(self) -> bool:
        """Whether every peer waits and nothing was sent to one since it said so (settling
        takes a round trip, during which this process goes on: bytes it sends meanwhile make
        the peer's answer stale)."""
        for peer in list(self._peers):
            if not peer.stirred():
                continue
            self._peers[peer] = await peer.settle()
            await self._wait_quiescent()
            if peer.stirred():
                return False
        return True


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

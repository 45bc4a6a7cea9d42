"""The clock every simulator takes time from (DESIGN.md: nothing calls time.time() itself).

``RealClock`` is the wall clock; ``VirtualClock`` is time owned by the bench, in which the
simulators and an in-process reference terminal run unchanged, hours in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def time(self) -> float:
        """POSIX seconds."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


def time_at(clock: Clock, monotonic: float) -> float:
    """The clock's POSIX time at its ``monotonic`` instant (past or planned)."""
    return clock.time() + (monotonic - clock.monotonic())


class RealClock:
    """The wall clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """Virtual time owned by the bench (DESIGN.md "Time").

    Time stands still while anything in the process has work to do and jumps to the earliest
    sleeper's deadline once everything waits: the event loop has nothing ready (checked over a
    few loop turns, so bytes in flight between in-process sockets are delivered first) and no
    worker thread is running (a SQLite commit in a writer thread is work, not waiting). Sleepers
    with the same deadline wake in the order they went to sleep, so a run is reproducible.

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
        self._mono = 0.0
        self._start = start
        self.idle_turns = idle_turns
        self.stuck_after_s = stuck_after_s
        self.handover_s = handover_s
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._holds = 0
        self._free = asyncio.Event()  # set while nothing holds the clock
        self._free.set()
        self._watches: list[Callable[[], bool]] = []
        self.steps = 0
        #: times time moved although a thread still looked busy after ``stuck_after_s`` of
        #: real time (a thread blocked somewhere this clock does not know as waiting)
        self.forced_steps = 0

    # ---- the Clock protocol -------------------------------------------------------------------
    def time(self) -> float:
        return self._start + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # A delay too small to move a float clock still moves it: a caller looping until the
        # clock passes a deadline must not find it standing still.
        deadline = max(self._mono + seconds, math.nextafter(self._mono, math.inf))
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive(), name="virtual clock")
        await future

    # ---- for the bench ----------------------------------------------------------------------
    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep time still while the bench does something that takes no time in the scenario
        (starting the fleet or a terminal, a power cut's bookkeeping). Whatever takes real time
        meanwhile (a server filling its address space in a thread, a child process starting)
        then cannot move the clock by however long it happened to take: a run stays the same
        run, seed for seed. Nothing inside may wait for virtual time to pass."""
        self._holds += 1
        self._free.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._free.set()

    def watch(self, in_flight: Callable[[], bool]) -> Callable[[], None]:
        """Ask ``in_flight()`` before every step whether something is on its way that the
        event loop has not been told of yet (bytes a pty's kernel side hands over a moment
        later); while it says so, time stands still. Returns what stops the watch."""
        self._watches.append(in_flight)
        return lambda: self._watches.remove(in_flight)

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
            # Drop sleepers cancelled meanwhile (a timeout that did not fire) without moving time.
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            deadline = self._sleepers[0][0]
            self._mono = max(self._mono, deadline)
            self.steps += 1
            while self._sleepers and self._sleepers[0][0] <= self._mono:
                future = heapq.heappop(self._sleepers)[2]
                if not future.done():
                    future.set_result(None)

    async def _wait_quiescent(self) -> None:
        """Wait until everything waits, then give other threads a moment of wall time and look
        again. A writer thread that was just handed work (a store commit) still looks idle
        until it takes the GIL; moving time on meanwhile let a transaction "take" the seconds
        to the next sleeper (seen: uploads built 5 s after the minute carried QNs made 10 s
        after it)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's BaseEventLoop; else turns only
        while True:
            forced = self.forced_steps
            await self._wait_idle_turns(ready)
            if self.forced_steps != forced:
                # A thread stuck past ``stuck_after_s``: looking at threads again would not
                # help, but bytes on their way through a pty arrive in a moment.
                if not self._in_flight():
                    return
                continue
            time.sleep(self.handover_s)  # the GIL and a CPU for a thread just handed work
            if not (ready or self._holds or _threads_busy() or self._in_flight()):
                return

    def _in_flight(self) -> bool:
        # Every watch is asked (each may hand something over as it is asked), then the verdict.
        return sum(in_flight() for in_flight in self._watches) > 0

    async def _wait_idle_turns(self, ready: object) -> None:
        idle = 0
        busy_since: float | None = None
        while idle < self.idle_turns:
            await asyncio.sleep(0)
            if self._holds:
                await self._free.wait()
                idle = 0
                continue
            if ready:
                idle = 0
                continue
            if _threads_busy():
                now = time.monotonic()
                busy_since = busy_since or now
                if now - busy_since < self.stuck_after_s:
                    idle = 0
                    # Give the thread the GIL and a moment instead of spinning the loop.
                    await asyncio.sleep(0.0002)
                    continue
                self.forced_steps += 1
            idle += 1


#: Where a worker thread's innermost Python frame is when it waits for work rather than does it.
_WAITING = {
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),  # concurrent.futures' idle worker blocks in a C queue get
    ("selectors.py", "select"),
    ("unix_events.py", "_do_waitpid"),  # asyncio's watcher of a spawned child (mosquitto)
    ("gateway_base.py", "read"),  # pytest-xdist's channel to its controller, blocked in read
    # The reference terminal's store writer blocks in SimpleQueue.get, C code with no frame of
    # its own, so its waiting places are its own methods.
    ("store.py", "_next"),
    ("store.py", "_next_within"),
}


#: Verdicts by code object: the same few frames are asked about at every step.
_WAITING_CODE: dict[object, bool] = {}


def _threads_busy() -> bool:
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        code = frame.f_code
        waiting = _WAITING_CODE.get(code)
        if waiting is None:
            where = (os.path.basename(code.co_filename), code.co_name)
            waiting = _WAITING_CODE[code] = where in _WAITING
        if not waiting:
            return True
    return False


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

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


class Quiescence:
    """Whether everything in this process waits: the event loop has nothing ready (checked
    over a few loop turns, so bytes in flight between in-process sockets are delivered first)
    and no worker thread is running (a SQLite commit in a writer thread is work, not waiting).
    What a virtual clock, leading or following, waits for before time may move."""

    def __init__(
        self, *, idle_turns: int = 3, stuck_after_s: float = 2.0, handover_s: float = 0.0001
    ) -> None:
        self.idle_turns = idle_turns
        self.stuck_after_s = stuck_after_s
        self.handover_s = handover_s
        self._holds = 0
        self._free = asyncio.Event()  # set while nothing holds the clock
        self._free.set()
        self._watches: list[Callable[[], bool]] = []
        self._in_flight_since: float | None = None  # wall time a watch first said so
        self._bystanders: set[int] = set()
        #: times time moved although a thread still looked busy, or a watch still saw something
        #: in flight, after ``stuck_after_s`` of real time (a thread blocked somewhere this
        #: clock does not know as waiting; a watch on work that nothing will ever take up)
        self.forced_steps = 0

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
        later); while it says so, time stands still, for at most ``stuck_after_s`` of real
        time (as for a busy thread). Returns what stops the watch."""
        self._watches.append(in_flight)
        return lambda: self._watches.remove(in_flight)

    def bystander(self, thread: threading.Thread) -> None:
        """Move time on whatever ``thread`` is doing: its work is watching the simulated world
        (the platforms' record writer), not part of it, so nothing in that world waits for it.
        Whoever reads what it writes must wait for it themselves (``Record.flush``)."""
        if thread.ident is None:
            raise ValueError(f"thread {thread.name} has not started")
        self._bystanders.add(thread.ident)

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
            if not (ready or self._holds or _threads_busy(self._bystanders) or self._in_flight()):
                return

    def _in_flight(self) -> bool:
        # Every watch is asked (each may hand something over as it is asked), then the verdict.
        if not sum(in_flight() for in_flight in self._watches):
            self._in_flight_since = None
            return False
        now = time.monotonic()
        if self._in_flight_since is None:
            self._in_flight_since = now
        if now - self._in_flight_since < self.stuck_after_s:
            return True
        self._in_flight_since = None
        self.forced_steps += 1
        return False

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
            if _threads_busy(self._bystanders):
                now = time.monotonic()
                busy_since = busy_since or now
                if now - busy_since < self.stuck_after_s:
                    idle = 0
                    # Give the thread the GIL and a moment instead of spinning the loop.
                    await asyncio.sleep(0.0002)
                    continue
                self.forced_steps += 1
            idle += 1


class Sleepers:
    """Futures waiting for virtual deadlines; the same deadline wakes in the order of going
    to sleep, so a run is reproducible."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def add(self, now: float, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A delay too small to move a float clock still moves it: a caller looping until the
        # clock passes a deadline must not find it standing still.
        deadline = max(now + seconds, math.nextafter(now, math.inf))
        heapq.heappush(self._heap, (deadline, next(self._order), future))
        return future

    def earliest(self) -> float | None:
        """The earliest deadline of a sleeper still waiting (cancelled ones are dropped: a
        timeout that did not fire moves no time)."""
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def wake(self, now: float) -> None:
        """Wake every sleeper due by ``now``."""
        while self._heap and self._heap[0][0] <= now:
            future = heapq.heappop(self._heap)[2]
            if not future.done():
                future.set_result(None)


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


def _threads_busy(bystanders: set[int]) -> bool:
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me or ident in bystanders:
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

"""Virtual time across processes, the follower's side: a process whose time a leader's
virtual clock owns (the bench's ``simulators.clock.VirtualClock`` leads through
``simulators.clock_peer.ProcessPeer``).

- **Time** is one double in a small shared file (:class:`SharedTime`): the leader writes it at
  every step, the follower reads it, so a frame the follower receives is stamped with the
  instant it was sent.
- **Sleepers** of the follower stay in the follower (:class:`Sleepers`); it tells the leader the
  earliest deadline whenever it settles, and the leader stops there on its way and wakes them.
- **Quiescence** (:class:`Quiescence`, which the leader's clock is built on too): time moves
  only while everything waits. The leader asks the follower to settle (wait until its own loop
  and threads wait) whenever it may have been stirred since it last did.

The control line (:class:`ControlServer`) is a Unix socket with one JSON object a line:
``settle`` → ``{"deadline"}``, ``advance`` (no answer), and whatever the follower's own
``handle`` takes. :class:`FollowDirectory` is where a follower started by a leader finds it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import math
import mmap
import os
import selectors
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_DOUBLE = struct.Struct("d")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class FollowError(RuntimeError):
    """A follower cannot find or read what its leader left for it."""


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
    # its own, so its waiting places are its own methods (named, not imported: this base
    # imports nothing of the terminal).
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


class SharedTime:
    """Monotonic virtual seconds in a file both processes map."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if create:
            path.write_bytes(_DOUBLE.pack(0.0))
        with path.open("r+b") as f:
            self._map = mmap.mmap(f.fileno(), _DOUBLE.size)

    def read(self) -> float:
        return float(_DOUBLE.unpack_from(self._map)[0])

    def write(self, monotonic: float) -> None:
        _DOUBLE.pack_into(self._map, 0, monotonic)

    def close(self) -> None:
        self._map.close()


class FollowerClock(Quiescence):
    """The clock of a process whose time a leader's clock owns (the Clock protocol).

    ``start`` is its POSIX time at the shared monotonic 0: a follower whose battery-backed
    clock was set wrong is one given another ``start``."""

    def __init__(self, start: float, shared: SharedTime, *, stuck_after_s: float = 2.0) -> None:
        super().__init__(stuck_after_s=stuck_after_s)
        self._start = start
        self._shared = shared
        self._sleepers = Sleepers()

    def time(self) -> float:
        return self._start + self._shared.read()

    def monotonic(self) -> float:
        return self._shared.read()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._sleepers.add(self.monotonic(), seconds)

    async def settle(self) -> float | None:
        """Wait until everything here waits, and whatever it wrote has gone (a socket whose
        reader is the leader's, full, leaves the rest in this process until the leader reads:
        time moving on meanwhile would deliver it late); the earliest deadline of a sleeper."""
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
        while True:
            await self._wait_quiescent()
            if not _writing(selector):
                return self._sleepers.earliest()
            await asyncio.sleep(0.0002)  # wall time: the leader reads meanwhile

    def advance(self) -> None:
        """Wake the sleepers due by the time the leader has written."""
        self._sleepers.wake(self.monotonic())


def _writing(selector: object) -> bool:
    """Whether a transport of this loop waits to write (CPython's selector event loop)."""
    if not isinstance(selector, selectors.BaseSelector):
        return False
    return any(key.events & selectors.EVENT_WRITE for key in selector.get_map().values())


class ControlServer:
    """The follower's end of the control line: ``settle`` and ``advance`` for the clock, any
    other request to ``handle``. ``async with ControlServer(path, clock, handle):``.

    ``gone`` is called when a leader's line closes (the leader stopped, or died: a follower
    whose time nobody moves any more has nothing left to do)."""

    def __init__(
        self,
        path: Path,
        clock: FollowerClock,
        handle: Handler,
        *,
        gone: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.handle = handle
        self.gone = gone
        self._server: asyncio.Server | None = None
        self._lines: set[asyncio.StreamWriter] = set()
        self._closing = False

    async def __aenter__(self) -> ControlServer:
        self._server = await asyncio.start_unix_server(self._session, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Closing each line ends its session (a session cancelled at the loop's end would be
        # reported as an error by asyncio's stream server).
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._lines):
            writer.close()
        for _ in range(1000):  # each ends at its next read; a second at most
            if not self._lines:
                break
            await asyncio.sleep(0.001)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._lines.add(writer)
        try:
            while line := await reader.readline():
                request = json.loads(line)
                op = request.get("op")
                if op == "advance":
                    self.clock.advance()
                    continue
                try:
                    if op == "settle":
                        answer: dict[str, Any] = {"deadline": await self.clock.settle()}
                    else:
                        answer = await self.handle(request)
                except Exception as exc:  # said to the leader, which raises it
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:  # the leader went: nothing to answer
            pass
        finally:
            self._lines.discard(writer)
            writer.close()
            if self.gone is not None and not self._closing:
                self.gone()


@dataclass(frozen=True, slots=True)
class FollowSettings:
    """What a follower needs of its leader's clock besides the shared time."""

    #: POSIX time at the shared monotonic 0 (the leader's, plus however far the follower's
    #: own clock is set off it).
    epoch: float
    #: Wall seconds a thread that looks busy (or a watch) may hold the follower's time still
    #: (:class:`Quiescence`); the leader's own, so both sides bear a slow disk alike.
    stuck_after_s: float = 2.0


@dataclass(frozen=True, slots=True)
class FollowDirectory:
    """Where a follower the leader started finds it (``python -m reference_terminal
    --follow-clock DIR``): ``DIR/time`` (:class:`SharedTime`), ``DIR/clock.json``
    (:class:`FollowSettings`) and ``DIR/control.sock``, the control line the follower listens
    on. Keep ``DIR`` short: a Unix socket's path has at most 107 bytes."""

    path: Path

    @property
    def time_file(self) -> Path:
        return self.path / "time"

    @property
    def settings_file(self) -> Path:
        return self.path / "clock.json"

    @property
    def control(self) -> Path:
        return self.path / "control.sock"

    def write_settings(self, settings: FollowSettings) -> None:
        """The leader's side: written before the follower starts (it reads them once)."""
        self.settings_file.write_text(json.dumps(asdict(settings)), encoding="utf-8")

    def read_settings(self) -> FollowSettings:
        try:
            data = json.loads(self.settings_file.read_text(encoding="utf-8"))
            return FollowSettings(float(data["epoch"]), float(data["stuck_after_s"]))
        except OSError as exc:
            raise FollowError(f"{self.settings_file}: cannot read: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise FollowError(
                f"{self.settings_file}: not the clock settings of a leader "
                f"(epoch, stuck_after_s): {exc}"
            ) from None

    def follower_clock(self) -> FollowerClock:
        """The clock of the follower, on the leader's shared time."""
        settings = self.read_settings()
        if not self.time_file.is_file():
            raise FollowError(f"{self.time_file}: no shared time file (the leader makes it)")
        shared = SharedTime(self.time_file)
        return FollowerClock(settings.epoch, shared, stuck_after_s=settings.stuck_after_s)

"""Virtual time across processes: the bench's :class:`~simulators.clock.VirtualClock` leads, a
process of the bench's own (the platform centres, ``simulators.platform.process``) follows.

- **Time** is one double in a small shared file (:class:`SharedTime`): the leader writes it at
  every step, the follower reads it, so a frame the follower receives is stamped with the
  instant it was sent.
- **Sleepers** of the follower stay in the follower; it tells the leader the earliest deadline
  whenever it settles, and the leader stops there on its way and wakes them (``advance``).
- **Quiescence**: time moves only while both wait. The leader asks the follower to settle
  (wait until its own loop and threads wait, as :class:`~simulators.clock.Quiescence` says)
  whenever it was *stirred*: something was sent to it since it last settled. What is sent
  is the traffic function's to say (a fault proxy's byte and connection counts towards it) and
  every request on the control line. A byte the follower sends is in the leader's socket
  before the follower answers (loopback delivers within the send, Nagle off on both ends), so
  the leader's own quiescence check, made after the answer, sees it.

The control line is a Unix socket with one JSON object a line: ``settle`` → ``{"deadline"}``,
``advance`` (no answer), and whatever the follower's own ``handle`` takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mmap
import os
import selectors
import socket
import struct
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any

from simulators.clock import Quiescence, Sleepers

_DOUBLE = struct.Struct("d")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class PeerError(RuntimeError):
    """The follower answered a request with an error, or the control line broke."""


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
    """The clock of a process whose time the bench's clock leads (the Clock protocol)."""

    def __init__(self, start: float, shared: SharedTime) -> None:
        super().__init__()
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
    other request to ``handle``. ``async with ControlServer(path, clock, handle):``."""

    def __init__(self, path: Path, clock: FollowerClock, handle: Handler) -> None:
        self.path = path
        self.clock = clock
        self.handle = handle
        self._server: asyncio.Server | None = None
        self._lines: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> ControlServer:
        self._server = await asyncio.start_unix_server(self._session, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Closing each line ends its session (a session cancelled at the loop's end would be
        # reported as an error by asyncio's stream server).
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


class ProcessPeer:
    """The leader's end of a follower process (a :class:`~simulators.clock.Peer`)."""

    def __init__(self, control: Path, shared: SharedTime) -> None:
        self.control = control
        self.shared = shared
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._blocking: socket.socket | None = None
        self._sent = 0  # requests and wakes sent: each may give the follower work
        self._traffic: Callable[[], Hashable] = lambda: None
        self._settled_at: tuple[int, Hashable] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(self.control)

    def traffic(self, signature: Callable[[], Hashable]) -> None:
        """What the leader's process has sent the follower so far (any value that changes
        with every byte, connection and close sent to it)."""
        self._traffic = signature
        self._settled_at = None

    def mark(self) -> tuple[int, Hashable]:
        """What has been sent the follower so far: while it stays the same, the follower has
        nothing new to do (once it settled) and nothing new to show."""
        return self._sent, self._traffic()

    # ---- the Peer protocol -------------------------------------------------------------------
    def stirred(self) -> bool:
        return self._settled_at != self.mark()

    async def settle(self) -> float | None:
        mark = self.mark()
        deadline = (await self._ask({"op": "settle"}, counts=False))["deadline"]
        self._settled_at = mark
        return None if deadline is None else float(deadline)

    def advance(self, monotonic: float, *, due: bool) -> None:
        self.shared.write(monotonic)
        if due and self._writer is not None:
            self._sent += 1
            self._writer.write(b'{"op": "advance"}\n')

    # ---- requests ------------------------------------------------------------------------------
    async def request(self, **request: Any) -> dict[str, Any]:
        """A request the follower's handler answers (it may give the follower work)."""
        return await self._ask(request, counts=True)

    def request_blocking(self, *, counts: bool = True, **request: Any) -> dict[str, Any]:
        """The same from code that cannot await (a query of the record); the leader's loop
        stands still meanwhile, which the follower does not need to answer. ``counts=False``:
        a request that gives the follower no work in the simulated world (a record flush)."""
        if self._blocking is None:
            self._blocking = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._blocking.connect(os.fspath(self.control))
        self._sent += counts
        self._blocking.sendall(json.dumps(request).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            chunk = self._blocking.recv(65536)
            if not chunk:
                raise PeerError(f"{self.control}: the follower closed the control line")
            line += chunk
        return _answer(request, line)

    async def _ask(self, request: dict[str, Any], *, counts: bool) -> dict[str, Any]:
        if self._reader is None or self._writer is None:
            raise PeerError(f"{self.control}: not connected")
        async with self._lock:
            if counts:
                self._sent += 1
            self._writer.write(json.dumps(request).encode() + b"\n")
            line = await self._reader.readline()
        if not line:
            raise PeerError(f"{self.control}: the follower closed the control line")
        return _answer(request, line)

    async def close(self) -> None:
        if self._blocking is not None:
            self._blocking.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):  # the follower went first
                await self._writer.wait_closed()


def _answer(request: dict[str, Any], line: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(line)
    if "error" in answer:
        raise PeerError(f"{request.get('op')}: {answer['error']}")
    return answer

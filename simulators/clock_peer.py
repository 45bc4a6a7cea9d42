"""Virtual time across processes, the leader's side: the bench's
:class:`~simulators.clock.VirtualClock` leads a process of the bench's own (the platform
centres, ``simulators.platform.process``; the reference terminal as a process,
``bench.adapters.process``), which follows with ``common.clock_follower`` (shared time, its own
sleepers, a control line).

- **Time** is one double in a small shared file the leader writes at every step.
- **Sleepers** of the follower stay in the follower; it tells the leader the earliest deadline
  whenever it settles, and the leader stops there on its way and wakes them (``advance``).
- **Quiescence**: time moves only while both wait. The leader asks the follower to settle
  (wait until its own loop and threads wait) whenever it was *stirred*: something was sent to
  it since it last settled. What is sent is the traffic function's to say (a fault proxy's byte
  and connection counts towards it; for a follower the whole bench talks to, the leader loop's
  own I/O events, :class:`LoopTraffic`) and every request on the control line. A byte the
  follower sends is in the leader's socket before the follower answers (loopback delivers
  within the send, Nagle off on both ends), so the leader's own quiescence check, made after
  the answer, sees it.

The control line is a Unix socket with one JSON object a line: ``settle`` → ``{"deadline"}``,
``advance`` (no answer), and whatever the follower's own ``handle`` takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import socket
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from common.clock_follower import SharedTime


class PeerError(RuntimeError):
    """The follower answered a request with an error, or the control line broke."""


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

    @property
    def control_fd(self) -> int | None:
        """The descriptor of the leader's end of the control line, once connected."""
        if self._writer is None:
            return None
        sock = self._writer.get_extra_info("socket")
        return None if sock is None else int(sock.fileno())

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


class LoopTraffic:
    """What the leader's own event loop may have sent a follower: a count of the I/O events its
    selector handed the loop (a socket or pty readable or writable again, a wake from another
    thread), but those of descriptors it is told to ignore (the control lines themselves).

    For a follower the whole bench talks to (a terminal reading the bench's meters, uploading
    to its centres, answering its management requests) no one count of bytes covers every
    way in; but whatever the bench sends, it sends from code its loop runs because of such an
    event, or because a step of the clock woke it (a traffic function counts
    ``VirtualClock.steps`` too). Counting too much costs a settle; missing a send would let
    time move while bytes are on their way. Not seen: a send made from a wall-clock timer of
    the loop (``loop.call_later``), which no simulator makes.

    CPython's selector event loop only: the selector's ``select`` is wrapped, once per loop
    (:meth:`of`)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.events = 0
        self._ignored: set[int] = set()
        select = selector.select

        def counting(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            ready = select(timeout)
            self.events += sum(1 for key, _ in ready if key.fd not in self._ignored)
            return ready

        selector.select = counting  # type: ignore[method-assign]

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop | None = None) -> LoopTraffic:
        """The count of ``loop`` (default: the running one), made on first use."""
        loop = loop or asyncio.get_running_loop()
        found = _INSTALLED.get(loop)
        if found is None:
            selector = getattr(loop, "_selector", None)
            if not isinstance(selector, selectors.BaseSelector):
                raise PeerError(
                    f"{type(loop).__name__}: leading a process whose traffic is the whole "
                    "bench's needs CPython's selector event loop"
                )
            found = _INSTALLED[loop] = cls(selector)
        return found

    def ignore(self, fd: int) -> Callable[[], None]:
        """Leave events on ``fd`` uncounted (the leader's end of a control line: the
        follower's answer to settle is no news for it); returns what counts them again."""
        self._ignored.add(fd)
        return lambda: self._ignored.discard(fd)


#: Each loop's count, made once (two followers of one leader share it).
_INSTALLED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopTraffic] = (
    weakref.WeakKeyDictionary()
)

"""Loopback servers and clients for the fault proxy's tests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ParamSpec

P = ParamSpec("P")

#: No test of this directory may take longer (a hang fails instead of blocking the run).
TEST_TIMEOUT_S = 15.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


#: The clients a running test has opened with :func:`connect`, closed when it ends.
_clients: ContextVar[list[asyncio.StreamWriter]] = ContextVar("clients")


def aio(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test in a fresh event loop, bounded by ``TEST_TIMEOUT_S``; the clients it
    opened are closed after it."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        async def main() -> None:
            clients: list[asyncio.StreamWriter] = []
            _clients.set(clients)
            try:
                await asyncio.wait_for(test(*args, **kwargs), TEST_TIMEOUT_S)
            finally:
                for writer in clients:
                    writer.close()

        asyncio.run(main())

    return run


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[int]:
    """``handler`` serving on a free loopback port; yields the port."""

    writers: list[asyncio.StreamWriter] = []

    async def quietly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(OSError):  # resets are what several tests are about
            await handler(reader, writer)

    server = await asyncio.start_server(quietly, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back what arrives; close when the client does."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def sender(payload: bytes, *, then_close: bool = True) -> Handler:
    """Send ``payload`` at once on connect, then close (or hold the connection)."""

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await reader.read()  # until the client goes

    return send


@dataclass
class Recording:
    """What one side received: each read with its time, how it ended."""

    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    eof_at: float | None = None
    reset: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)


async def record(reader: asyncio.StreamReader, into: Recording) -> Recording:
    """Read until EOF or reset, noting each read."""
    try:
        while data := await reader.read(65536):
            into.chunks.append((time.monotonic(), data))
        into.eof_at = time.monotonic()
    except ConnectionResetError:
        into.reset = True
    into.done.set()
    return into


class Sink:
    """A server handler recording everything each connection sends, one :class:`Recording`
    per connection."""

    def __init__(self) -> None:
        self.recordings: list[Recording] = []
        self._arrived = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recording = Recording()
        self.recordings.append(recording)
        self._arrived.set()
        await record(reader, recording)
        writer.close()

    async def first(self) -> Recording:
        """The first connection's recording, once it has ended."""
        await self._arrived.wait()
        await self.recordings[0].done.wait()
        return self.recordings[0]


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection to a loopback port (closed at the end of the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    _clients.get([]).append(writer)
    return reader, writer


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> float:
    """Seconds from sending ``payload`` to having it all back (through an echo)."""
    start = time.monotonic()
    writer.write(payload)
    await writer.drain()
    await reader.readexactly(len(payload))
    return time.monotonic() - start


async def eventually(check: Callable[[], bool], *, within_s: float = 2.0) -> None:
    """Wait (real time: the test's, not the proxy's) until ``check()`` holds."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within_s} s")
        await asyncio.sleep(0.005)

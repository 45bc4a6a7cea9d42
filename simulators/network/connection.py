"""One client connection through a proxy: the upstream connection and the two links.

As Toxiproxy, the client is accepted first and the upstream dialled after; if the upstream
cannot be reached the client is closed at once. Unlike Toxiproxy, a FIN is passed on as a
half-close (the other direction goes on until it ends too), so the proxy without toxics is
transparent to protocols that half-close.

Endings: both directions closed → both sockets closed; a toxic's close (timeout, limit_data)
or the proxy going down → both closed (FIN after what was already written); a reset
(reset_peer, or either peer resetting) → both reset (RST: SO_LINGER 0, then close).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.clock import Clock
from simulators.network.config import Address
from simulators.network.link import Link, StreamCounters
from simulators.network.stages import Stage
from simulators.network.toxics import Stream

if TYPE_CHECKING:
    from simulators.network.proxy import FaultProxy

_LINGER_OFF_NOW = struct.pack("ii", 1, 0)


class Connection:
    def __init__(
        self,
        proxy: FaultProxy,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: asyncio.Task[Any] | None,
    ) -> None:
        self.proxy = proxy
        self.handler = handler  # the task serving it, which ends when it has closed
        self.number = number
        self.name = f"{proxy.name}#{number}"
        self.clock: Clock = proxy.clock
        self.client_reader = reader
        self.client_writer = writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.links: dict[Stream, Link] = {}
        self.closed = False
        self._done = asyncio.Event()

    async def run(
        self,
        upstream: Address,
        stages: Callable[[Stream], list[Stage]],
        counters: dict[Stream, StreamCounters],
    ) -> bool:
        """Dial the upstream, pass data until the connection ends; False when the upstream
        could not be reached."""
        dial = asyncio.ensure_future(asyncio.open_connection(upstream.host, upstream.port))
        closing = asyncio.ensure_future(self._done.wait())
        await asyncio.wait({dial, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not dial.done():  # the proxy went down while we dialled
            dial.cancel()
            return True
        try:
            up_reader, up_writer = dial.result()
        except OSError:
            self.close()
            return False
        self.upstream_writer = up_writer
        if self.closed:
            _close(up_writer, reset=False)
            return True
        # No await from here until the links are registered: a toxic added meanwhile is
        # either in ``stages`` or reaches the links through the proxy.
        self.links = {
            Stream.UPSTREAM: Link(
                self,
                Stream.UPSTREAM,
                self.client_reader,
                up_writer,
                stages(Stream.UPSTREAM),
                counters[Stream.UPSTREAM],
            ),
            Stream.DOWNSTREAM: Link(
                self,
                Stream.DOWNSTREAM,
                up_reader,
                self.client_writer,
                stages(Stream.DOWNSTREAM),
                counters[Stream.DOWNSTREAM],
            ),
        }
        for link in self.links.values():
            link.start()
        await self._done.wait()
        return True

    def link_finished(self) -> None:
        if self.links and all(link.finished for link in self.links.values()):
            self.close()

    def close(self, *, reset: bool = False, abort: bool = False) -> None:
        """End the connection: FIN after what was written, or at once (``abort``), or RST
        (``reset``)."""
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.stop()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                _close(writer, reset=reset, abort=abort)
        self._done.set()


def _close(writer: asyncio.StreamWriter, *, reset: bool, abort: bool = False) -> None:
    transport = writer.transport
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone: nothing left to reset
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_OFF_NOW)
        transport.abort()
    elif abort:
        transport.abort()
    else:
        transport.close()

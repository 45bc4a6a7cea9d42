"""A raw client of a terminal's SM management port, for judging the port itself: it keeps
every byte that crossed the wire, and can send what an attacker would (plain HTTP, a record
with a flipped bit, a record again, a forged Finished). ``protocols.smchannel`` does the
cryptography; this only drives it over a socket, with wall-time limits."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from protocols.smchannel import (
    ChannelError,
    ClientConnection,
    Closed,
    Data,
    Established,
    ServerTrust,
)
from protocols.smchannel.records import HEADER_SIZE

#: Wall seconds to wait for the terminal to answer, or to close after a bad record.
WAIT_S = 10.0


@dataclass
class Probe:
    """One TCP connection to the port, and what went over it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connection: ClientConnection | None = None
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    plain: bytearray = field(default_factory=bytearray)
    closed_in_order: bool = False
    error: ChannelError | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Probe:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def write(self, data: bytes) -> None:
        self.sent += data
        self.writer.write(data)

    async def read_raw(self, timeout: float = WAIT_S) -> bytes:
        """The next bytes (``b""`` at end of stream or when the terminal says nothing)."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (TimeoutError, ConnectionError):
            return b""
        self.received += data
        return data

    async def handshake(self, trust: ServerTrust, *, break_finished: bool = False) -> bool:
        """Run the handshake; ``break_finished`` flips a bit of the client Finished (a client
        without the keys). True when the client side completed it."""
        self.connection = ClientConnection(trust)
        self.connection.start()
        self.write(self.connection.data_to_send())
        while not self.connection.established:
            data = await self.read_raw()
            if not data:
                return False
            try:
                self.connection.receive_data(data)
            except ChannelError as exc:
                self.error = exc
                return False
        finished = bytearray(self.connection.data_to_send())
        if break_finished:
            finished[-1] ^= 0x01
        self.write(bytes(finished))
        return True

    def seal(self, data: bytes) -> bytes:
        assert self.connection is not None
        self.connection.send(data)
        return self.connection.data_to_send()

    async def collect(self, until: bytes | None = None, timeout: float = WAIT_S) -> bytes:
        """Decrypted bytes until ``until`` is among them, the terminal closes, or it says
        nothing for ``timeout`` seconds."""
        assert self.connection is not None
        while until is None or until not in self.plain:
            data = await self.read_raw(timeout)
            if not data:
                break
            try:
                events = self.connection.receive_data(data)
            except ChannelError as exc:
                self.error = exc
                break
            for event in events:
                if isinstance(event, Data):
                    self.plain += event.data
                elif isinstance(event, Closed):
                    self.closed_in_order = True
                elif isinstance(event, Established):  # pragma: no cover - not after open
                    pass
            if self.closed_in_order:
                break
        return bytes(self.plain)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def flip(record: bytes, offset: int = HEADER_SIZE + 12) -> bytes:
    """The record with one bit of its sealed body changed."""
    changed = bytearray(record)
    changed[min(offset, len(changed) - 1)] ^= 0x04
    return bytes(changed)


def http_get(path: str, token: str | None, *, close: bool) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: terminal"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(f"Connection: {'close' if close else 'keep-alive'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

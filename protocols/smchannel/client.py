"""The client end over asyncio: :func:`open_channel` gives a byte stream to the terminal's
management port, and :func:`channel_transport` an ``httpx`` transport that carries every
request of an ``httpx.AsyncClient`` over it (``base_url`` stays ``http://host:port``: HTTP/1.1
inside the channel)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from protocols.smchannel.connection import (
    ClientConnection,
    Closed,
    Data,
    Established,
    ServerTrust,
)
from protocols.smchannel.errors import ChannelError
from protocols.smcrypto import Sm2PrivateKey


class _Protocol(asyncio.Protocol):
    """Decrypts as bytes arrive, so that "is the peer gone?" is known without reading."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.plain = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.established: Established | None = None
        self._wakeup = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connection.start()
        transport.write(self.connection.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.receive_data(data)
        except ChannelError as exc:
            self._end(exc)
            return
        for event in events:
            if isinstance(event, Data):
                self.plain += event.data
            elif isinstance(event, Established):
                self.established = event
            elif isinstance(event, Closed):
                self.eof = True
        self._flush()
        self._wakeup.set()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wakeup.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wakeup.set()

    def _flush(self) -> None:
        out = self.connection.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _end(self, exc: BaseException) -> None:
        self.error, self.eof = exc, True
        self._flush()  # the alert saying why, if any
        if self.transport is not None:
            self.transport.close()
        self._wakeup.set()

    async def wait(self) -> None:
        await self._wakeup.wait()
        self._wakeup.clear()


class ChannelStream:
    """One open channel: ``read``, ``write``, ``aclose``; errors are :class:`ChannelError`
    (or ``OSError`` for the socket)."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    @property
    def established(self) -> Established:
        assert self._protocol.established is not None
        return self._protocol.established

    @property
    def at_eof(self) -> bool:
        return self._protocol.eof and not self._protocol.plain

    @property
    def has_data(self) -> bool:
        return bool(self._protocol.plain)

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` of plaintext; ``b""`` once the channel ended in order."""
        protocol = self._protocol
        while not protocol.plain:
            if protocol.error is not None:
                raise protocol.error
            if protocol.eof:
                return b""
            await protocol.wait()
        data = bytes(protocol.plain[:max_bytes])
        del protocol.plain[:max_bytes]
        return data

    async def write(self, data: bytes) -> None:
        protocol = self._protocol
        if protocol.error is not None:
            raise protocol.error
        protocol.connection.send(data)
        protocol._flush()

    async def aclose(self) -> None:
        protocol = self._protocol
        if not protocol.connection.closed:
            protocol.connection.close()
            protocol._flush()
        if protocol.transport is not None:
            protocol.transport.close()


async def open_channel(
    host: str,
    port: int,
    trust: ServerTrust,
    *,
    key: Sm2PrivateKey | None = None,
    local_address: str | None = None,
) -> ChannelStream:
    """Connect (from ``local_address`` if given) and finish the handshake; raises the
    :class:`ChannelError` that ended it (the terminal's alert as
    :class:`~protocols.smchannel.errors.PeerAlert`) or ``OSError``."""
    loop = asyncio.get_running_loop()
    connection = ClientConnection(trust, key=key)
    local = None if local_address is None else (local_address, 0)
    _, protocol = await loop.create_connection(
        lambda: _Protocol(connection), host, port, local_addr=local
    )
    while protocol.established is None:
        if protocol.error is not None:
            raise protocol.error
        if protocol.eof:
            raise ConnectionResetError(
                f"{host}:{port} closed the connection during the SM channel handshake"
            )
        await protocol.wait()
    return ChannelStream(protocol)


# ---- httpx ------------------------------------------------------------------------------------


class _NetworkStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: ChannelStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._stream.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except (ChannelError, OSError) as exc:
            raise httpcore.ReadError(f"SM channel: {exc}") from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            await self._stream.write(buffer)
        except (ChannelError, OSError) as exc:
            raise httpcore.WriteError(f"SM channel: {exc}") from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # idle and readable: the terminal ended the connection
            return self._stream.at_eof or self._stream.has_data
        if info == "sm_channel":
            return self._stream.established
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, trust: ServerTrust, key: Sm2PrivateKey | None) -> None:
        self._trust, self._key = trust, key

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                stream = await open_channel(
                    host, port, self._trust, key=self._key, local_address=local_address
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"SM channel handshake with {host}:{port}") from exc
        except (ChannelError, OSError) as exc:
            raise httpcore.ConnectError(f"SM channel to {host}:{port}: {exc}") from exc
        return _NetworkStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the SM channel runs over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


#: As many connections as the management API's benchmark opens at once.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class ChannelTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections are SM channels (HTTP/1.1 inside)."""

    def __init__(
        self,
        trust: ServerTrust,
        *,
        key: Sm2PrivateKey | None = None,
        limits: httpx.Limits = LIMITS,
        local_address: str | None = None,
    ) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            local_address=local_address,
            network_backend=_Backend(trust, key),
        )


def channel_transport(trust: ServerTrust, *, key: Sm2PrivateKey | None = None) -> ChannelTransport:
    return ChannelTransport(trust, key=key)

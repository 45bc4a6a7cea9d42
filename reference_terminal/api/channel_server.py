"""The management API on its dedicated SM port (ISC-2 §7.4.1.2): uvicorn's HTTP/1.1 protocol
running inside the SM channel (``protocols.smchannel``), the terminal authenticated by its
device key and certificate (``identity``).

:func:`channel_protocol` gives uvicorn an ``http=`` protocol class: each connection does the
channel handshake first and only then hands the decrypted bytes to uvicorn's own ``H11Protocol``
(the API sees the real peer address, so the administrators' source-address rule still holds).
Anything the channel refuses (a stranger speaking plain HTTP, a tampered or replayed record, a
failed handshake) ends that connection before the API sees a byte of it, and is a security
event in the audit log (ISC-2 §7.4.1.3: every security event, with its source and outcome)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from protocols.smchannel import ChannelError, Closed, Data, Established, ServerConnection
from protocols.smchannel.errors import MANAGEMENT_PORT
from protocols.smcrypto import Sm2PrivateKey, Sm2PublicKey, SmCryptoError
from protocols.smcrypto.certificate import Certificate
from reference_terminal.config import SmChannel, TerminalConfig
from reference_terminal.security.errors import SecurityError
from reference_terminal.security.identity import DeviceIdentity
from reference_terminal.security.secrets import SecretBox

#: Wall seconds a connection has to finish the handshake (a peer that opens and waits holds
#: nothing longer than this).
HANDSHAKE_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


class ChannelConfigError(SecurityError):
    """The management channel cannot be served: no device certificate, unreadable keys."""

    code = "channel_error"
    clause = MANAGEMENT_PORT


@dataclass(frozen=True, slots=True)
class ChannelCredentials:
    key: Sm2PrivateKey
    certificate: Certificate
    client_keys: frozenset[Sm2PublicKey] | None = None

    @classmethod
    def from_config(cls, config: TerminalConfig) -> ChannelCredentials:
        """The device identity (sealed key, certificate) and the clients' keys if listed."""
        identity = config.identity
        if identity.certificate_file is None:
            raise ChannelConfigError(
                "api.sm_channel needs the device certificate (identity.certificate_file) to "
                "authenticate the terminal to its management clients"
            )
        box = SecretBox.from_key_file(config.security.key_file)
        device = DeviceIdentity.load(identity.key_file, identity.certificate_file, box)
        channel = config.api.sm_channel if config.api is not None else None
        return cls(device.key, device.certificate, _client_keys(channel))


def _client_keys(channel: SmChannel | None) -> frozenset[Sm2PublicKey] | None:
    if channel is None or not channel.client_keys:
        return None
    keys = set()
    for path in channel.client_keys:
        try:
            keys.add(Sm2PublicKey.from_pem(Path(path).read_text(encoding="ascii")))
        except (OSError, UnicodeDecodeError, SmCryptoError) as exc:
            raise ChannelConfigError(f"api.sm_channel.client_keys: {path}: {exc}") from None
    return frozenset(keys)


class _InnerTransport(asyncio.Transport):
    """What uvicorn's protocol writes to: plaintext in, sealed records out."""

    def __init__(self, outer: ChannelHttpProtocol, transport: asyncio.Transport) -> None:
        super().__init__()
        self._outer, self._transport = outer, transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._outer.send_plain(bytes(data))

    def close(self) -> None:
        self._outer.close_channel()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing() or self._outer.connection.closed

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sslcontext":
            return None
        if name == "sm_channel":
            return self._outer.established
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("no protocol upgrades inside the management channel")

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._outer.inner


class ChannelHttpProtocol(asyncio.Protocol):
    """One connection to the management port: the channel, then uvicorn's HTTP/1.1 inside."""

    credentials: ClassVar[ChannelCredentials]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.inner = H11Protocol(config, server_state, app_state, _loop)
        # the terminal's SecurityService (``secured.install`` puts it on the app's state)
        self._security = getattr(getattr(config.app, "state", None), "security", None)
        credentials = self.credentials
        self.connection = ServerConnection(
            credentials.key, credentials.certificate, client_keys=credentials.client_keys
        )
        self.established: Established | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT_S, self._too_slow)

    def _too_slow(self) -> None:
        if self.established is None and self._transport is not None:
            log.info("management channel from %s: no handshake in time", self._peer())
            self._audit_refusal(f"no handshake within {HANDSHAKE_TIMEOUT_S:g} s")
            self._transport.abort()

    def _peer(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    def _audit_refusal(self, reason: str) -> None:
        security = self._security
        if security is None or not security.audit.ready():
            return  # a terminal without security (or still starting) keeps the log line only
        peer = self._peer()
        details = {"source": str(peer[0]) if peer else "", "reason": reason}
        task = asyncio.ensure_future(
            security.audit.append("-", "management_channel", "failure", details)
        )
        task.add_done_callback(_report_unaudited)

    def _flush(self) -> None:
        out = self.connection.data_to_send()
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(out)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.receive_data(data)
        except ChannelError as exc:
            log.warning("management channel from %s refused: %s", self._peer(), exc)
            self._audit_refusal(str(exc))
            self._flush()  # the alert, during the handshake
            if self._transport is not None:
                self._transport.close()
            return
        self._flush()
        for event in events:
            if isinstance(event, Established):
                self._established(event)
            elif isinstance(event, Data):
                self.inner.data_received(event.data)
            elif isinstance(event, Closed) and self._transport is not None:
                self._transport.close()

    def _established(self, event: Established) -> None:
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
        self.established = event
        self.inner.connection_made(_InnerTransport(self, self._transport))

    def send_plain(self, data: bytes) -> None:
        if self.connection.established:
            self.connection.send(data)
            self._flush()

    def close_channel(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self.connection.close()
        self._flush()
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.established is not None:
            self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; a cut channel is not an orderly end

    def pause_writing(self) -> None:
        if self.established is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.established is not None:
            self.inner.resume_writing()


def _report_unaudited(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a refused management connection was not audited: %s", task.exception())


def channel_protocol(credentials: ChannelCredentials) -> type[ChannelHttpProtocol]:
    """The ``http=`` class for a ``uvicorn.Config`` serving on the management port."""
    return type("BoundChannelHttpProtocol", (ChannelHttpProtocol,), {"credentials": credentials})

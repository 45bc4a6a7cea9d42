"""The two ends of the SM management channel as sans-I/O state machines.

Feed what the socket gave to :meth:`receive_data` (it returns events), write what
:meth:`data_to_send` returns. A :class:`~protocols.smchannel.errors.ChannelError` from
``receive_data`` ends the connection: during the handshake the side that found it has queued an
alert saying why, so write ``data_to_send()`` once more before closing the socket."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto

from protocols.smchannel.errors import (
    AuthenticationError,
    ChannelError,
    ChannelStateError,
    HandshakeError,
    PeerAlert,
)
from protocols.smchannel.handshake import (
    RANDOM_SIZE,
    Alert,
    ClientHello,
    ServerHello,
    finished_record,
    parse_finished,
    transcript_hash,
)
from protocols.smchannel.keys import Opener, Sealer, SessionKeys
from protocols.smchannel.records import MAX_PLAINTEXT, Record, RecordReader, RecordType
from protocols.smcrypto import Sm2KeyExchange, Sm2PrivateKey, Sm2PublicKey, SmCryptoError
from protocols.smcrypto.certificate import Certificate

#: The shared secret asked of the SM2 key exchange (HKDF expands it).
SHARED_SIZE = 32
DATA, CLOSE = 0, 1  # inner record types


@dataclass(frozen=True, slots=True)
class Established:
    """The handshake is over: the server is authenticated (and the client, if it was asked)."""

    server_certificate: Certificate
    client_key: Sm2PublicKey


@dataclass(frozen=True, slots=True)
class Data:
    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the channel in order (a sealed close, not a cut connection)."""


Event = Established | Data | Closed


@dataclass(frozen=True, slots=True)
class ServerTrust:
    """What the client accepts as the terminal: a certificate the ``ca`` issued (and, when
    given, with ``subject`` as its CN), or exactly ``public_key`` (pinned); both may be set."""

    ca: Certificate | None = None
    public_key: Sm2PublicKey | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if self.ca is None and self.public_key is None:
            raise ValueError("trust needs a CA certificate or a pinned public key")

    def check(self, certificate: Certificate, at: datetime) -> None:
        if self.public_key is not None and certificate.public_key != self.public_key:
            raise AuthenticationError(
                f"the server's certificate ({certificate.name()}) is for another key than the "
                "pinned one"
            )
        if self.ca is not None:
            try:
                certificate.check_issued_by(self.ca, at)
            except SmCryptoError as exc:
                raise AuthenticationError(f"the server's certificate: {exc}") from None
        if self.subject is not None and certificate.name() != self.subject:
            raise AuthenticationError(
                f"the server's certificate names {certificate.name()!r}, not {self.subject!r}"
            )


class _State(Enum):
    START = auto()
    HELLO = auto()  # client: waiting for ServerHello; server: for ClientHello
    FINISHED = auto()  # server: waiting for ClientFinished
    OPEN = auto()
    CLOSED = auto()
    FAILED = auto()


class _Connection:
    def __init__(self) -> None:
        self._reader = RecordReader()
        self._out = bytearray()
        self._state = _State.START
        self._sealer: Sealer | None = None
        self._opener: Opener | None = None
        self.failure: ChannelError | None = None

    @property
    def established(self) -> bool:
        return self._state is _State.OPEN

    @property
    def closed(self) -> bool:
        return self._state in (_State.CLOSED, _State.FAILED)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, data: bytes) -> None:
        if self._state is not _State.OPEN or self._sealer is None:
            raise ChannelStateError(f"cannot send while the channel is {self._state.name.lower()}")
        view = memoryview(data)
        for at in range(0, len(view), MAX_PLAINTEXT):
            self._out += self._sealer.seal(DATA, bytes(view[at : at + MAX_PLAINTEXT])).encode()

    def close(self) -> None:
        """Queue a sealed close (a cut connection is then told apart from an orderly end)."""
        if self._state is _State.OPEN and self._sealer is not None:
            self._out += self._sealer.seal(CLOSE, b"").encode()
        if self._state is not _State.FAILED:
            self._state = _State.CLOSED

    def receive_data(self, data: bytes) -> list[Event]:
        if self._state is _State.FAILED:
            raise ChannelStateError("the channel failed; open a new one")
        events: list[Event] = []
        try:
            for record in self._reader.feed(data):
                if self._state is _State.CLOSED:
                    break  # after the peer's close, or ours: nothing more is read
                events.extend(self._record(record))
        except ChannelError as exc:
            self._fail(exc)
            raise
        return events

    def _fail(self, exc: ChannelError) -> None:
        if self._state in (_State.START, _State.HELLO, _State.FINISHED) and not isinstance(
            exc, PeerAlert
        ):
            self._out += Alert(exc.reason, str(exc)).record().encode()
        self._state = _State.FAILED
        self.failure = exc

    def _record(self, record: Record) -> list[Event]:
        if record.type is RecordType.ALERT:
            # the client is open once it sent its Finished: the terminal's refusal of that
            # Finished comes after, and before any sealed record
            if self._opener is not None and self._opener.opened:
                raise HandshakeError("an alert in clear after the handshake (injected?)")
            alert = Alert.parse(record.body)
            raise PeerAlert(f"the peer refused the channel: {alert.message}", reason=alert.code)
        if record.type is RecordType.SEALED:
            if self._state is not _State.OPEN or self._opener is None:
                raise HandshakeError("a sealed record before the handshake finished")
            inner, data = self._opener.open(record)
            if inner == CLOSE:
                self._state = _State.CLOSED
                return [Closed()]
            if inner != DATA:
                raise HandshakeError(f"inner record type {inner} is unknown")
            return [Data(data)] if data else []
        return self._handshake(record)

    def _handshake(self, record: Record) -> list[Event]:
        raise NotImplementedError

    def _unexpected(self, record: Record) -> HandshakeError:
        return HandshakeError(
            f"{record.type.name} while the channel is in state {self._state.name.lower()}"
        )


class ClientConnection(_Connection):
    """The management client's end. ``key``: a static SM2 key the terminal may know the client
    by (default: a fresh one per connection, i.e. the client is anonymous at this layer and
    proves itself by logging in through the channel)."""

    def __init__(
        self,
        trust: ServerTrust,
        *,
        key: Sm2PrivateKey | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self._trust = trust
        self._key = key or Sm2PrivateKey.generate()
        self._now = now or _utc_now
        self._exchange: Sm2KeyExchange | None = None
        self._hello: ClientHello | None = None

    def start(self) -> None:
        """Queue the ClientHello."""
        if self._state is not _State.START:
            raise ChannelStateError("the handshake has already started")
        self._exchange = Sm2KeyExchange(self._key, initiator=True)
        self._hello = ClientHello(
            os.urandom(RANDOM_SIZE),
            self._key.public_key().to_bytes(),
            self._exchange.ephemeral_public,
        )
        self._out += self._hello.record().encode()
        self._state = _State.HELLO

    def _handshake(self, record: Record) -> list[Event]:
        if self._state is not _State.HELLO or record.type is not RecordType.SERVER_HELLO:
            raise self._unexpected(record)
        assert self._exchange is not None and self._hello is not None
        hello = ServerHello.parse(record.body)
        try:
            certificate = Certificate.from_der(hello.certificate)
        except SmCryptoError as exc:
            raise AuthenticationError(f"the server's certificate cannot be read: {exc}") from None
        self._trust.check(certificate, self._now())
        shared = self._exchange.derive(
            certificate.public_key, hello.ephemeral, key_length=SHARED_SIZE
        )
        th = transcript_hash(self._hello, hello)
        keys = SessionKeys.derive(shared, th)
        if not keys.check(keys.server_finished_key, b"server finished", th, hello.finished):
            raise AuthenticationError(
                f"the server holds no private key for its certificate ({certificate.name()}): "
                "its Finished does not verify (an impostor replaying a certificate?)"
            )
        self._out += finished_record(keys.client_finished(th)).encode()
        self._sealer = Sealer(keys.client_key, keys.client_iv)
        self._opener = Opener(keys.server_key, keys.server_iv)
        self._state = _State.OPEN
        return [Established(certificate, self._key.public_key())]


class ServerConnection(_Connection):
    """The terminal's end: authenticated by its device key and certificate. ``client_keys``:
    when given, only clients holding one of these SM2 keys get in."""

    def __init__(
        self,
        key: Sm2PrivateKey,
        certificate: Certificate,
        *,
        client_keys: frozenset[Sm2PublicKey] | None = None,
    ) -> None:
        super().__init__()
        if certificate.public_key != key.public_key():
            raise ValueError("the certificate does not certify the server's key")
        self._key, self._certificate = key, certificate
        self._client_keys = client_keys
        self._state = _State.HELLO
        self._client_key: Sm2PublicKey | None = None
        self._th = b""
        self._keys: SessionKeys | None = None

    def _handshake(self, record: Record) -> list[Event]:
        if self._state is _State.HELLO and record.type is RecordType.CLIENT_HELLO:
            self._hello(ClientHello.parse(record.body))
            return []
        if self._state is _State.FINISHED and record.type is RecordType.CLIENT_FINISHED:
            tag = parse_finished(record.body)
            keys = self._keys
            assert keys is not None and self._client_key is not None
            if not keys.check(keys.client_finished_key, b"client finished", self._th, tag):
                raise AuthenticationError(
                    "the client's Finished does not verify: it does not hold the key it named, "
                    "or the handshake was altered on the way"
                )
            self._sealer = Sealer(keys.server_key, keys.server_iv)
            self._opener = Opener(keys.client_key, keys.client_iv)
            self._state = _State.OPEN
            return [Established(self._certificate, self._client_key)]
        raise self._unexpected(record)

    def _hello(self, hello: ClientHello) -> None:
        client_key = Sm2PublicKey.from_bytes(hello.static_key)
        if self._client_keys is not None and client_key not in self._client_keys:
            raise AuthenticationError("the client's SM2 key is not one this terminal knows")
        exchange = Sm2KeyExchange(self._key, initiator=False)
        shared = exchange.derive(client_key, hello.ephemeral, key_length=SHARED_SIZE)
        server = ServerHello(
            os.urandom(RANDOM_SIZE), exchange.ephemeral_public, self._certificate.der, b""
        )
        self._th = transcript_hash(hello, server)
        keys = SessionKeys.derive(shared, self._th)
        finished = keys.server_finished(self._th)
        reply = ServerHello(server.random, server.ephemeral, server.certificate, finished)
        self._out += reply.record().encode()
        self._keys, self._client_key = keys, client_key
        self._state = _State.FINISHED


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

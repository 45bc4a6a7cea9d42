"""The three handshake messages and the alert, as bytes (fixed layouts, big-endian lengths).

==================  ==========================================================================
ClientHello         random(32) ‖ client static SM2 public key(65) ‖ client ephemeral(65)
ServerHello         random(32) ‖ server ephemeral(65) ‖ cert length(2) ‖ certificate (DER) ‖
                    server Finished(32)
ClientFinished      client Finished(32)
Alert               code length(1) ‖ code (ASCII) ‖ message (UTF-8)
==================  ==========================================================================

Points are uncompressed ``04 ‖ x ‖ y`` on the SM2 curve."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smchannel.errors import HandshakeError
from protocols.smchannel.records import MAX_HANDSHAKE_BODY, Record, RecordType
from protocols.smcrypto import Sm2PublicKey, SmCryptoError, sm3

RANDOM_SIZE = 32
POINT_SIZE = 65
FINISHED_SIZE = 32
MAX_ALERT_MESSAGE = 400


def _point(data: bytes, what: str) -> bytes:
    if len(data) != POINT_SIZE or data[0] != 0x04:
        raise HandshakeError(f"{what} is not an uncompressed SM2 point (04 ‖ x ‖ y)")
    try:
        Sm2PublicKey.from_bytes(data)
    except SmCryptoError:
        raise HandshakeError(f"{what} is not a point on the SM2 curve") from None
    return data


@dataclass(frozen=True, slots=True)
class ClientHello:
    random: bytes
    static_key: bytes
    ephemeral: bytes

    SIZE = RANDOM_SIZE + 2 * POINT_SIZE

    def record(self) -> Record:
        return Record(RecordType.CLIENT_HELLO, self.random + self.static_key + self.ephemeral)

    @classmethod
    def parse(cls, body: bytes) -> ClientHello:
        if len(body) != cls.SIZE:
            raise HandshakeError(f"ClientHello of {len(body)} bytes, {cls.SIZE} expected")
        static = _point(body[RANDOM_SIZE : RANDOM_SIZE + POINT_SIZE], "the client's key")
        ephemeral = _point(body[RANDOM_SIZE + POINT_SIZE :], "the client's ephemeral point")
        return cls(body[:RANDOM_SIZE], static, ephemeral)


@dataclass(frozen=True, slots=True)
class ServerHello:
    random: bytes
    ephemeral: bytes
    certificate: bytes  # DER
    finished: bytes

    def signed_part(self) -> bytes:
        """The body without Finished: what the transcript hash covers."""
        return (
            self.random
            + self.ephemeral
            + len(self.certificate).to_bytes(2, "big")
            + self.certificate
        )

    def record(self) -> Record:
        return Record(RecordType.SERVER_HELLO, self.signed_part() + self.finished)

    @classmethod
    def parse(cls, body: bytes) -> ServerHello:
        fixed = RANDOM_SIZE + POINT_SIZE + 2
        if len(body) < fixed + FINISHED_SIZE:
            raise HandshakeError(f"ServerHello of {len(body)} bytes is too short")
        ephemeral = _point(body[RANDOM_SIZE : RANDOM_SIZE + POINT_SIZE], "the server's ephemeral")
        length = int.from_bytes(body[fixed - 2 : fixed], "big")
        if len(body) != fixed + length + FINISHED_SIZE:
            raise HandshakeError(
                f"ServerHello of {len(body)} bytes does not hold its {length}-byte certificate "
                "and Finished"
            )
        return cls(
            body[:RANDOM_SIZE], ephemeral, body[fixed : fixed + length], body[fixed + length :]
        )


def transcript_hash(hello: ClientHello, server: ServerHello) -> bytes:
    return sm3(hello.record().body + server.signed_part())


def finished_record(tag: bytes) -> Record:
    return Record(RecordType.CLIENT_FINISHED, tag)


def parse_finished(body: bytes) -> bytes:
    if len(body) != FINISHED_SIZE:
        raise HandshakeError(f"ClientFinished of {len(body)} bytes, {FINISHED_SIZE} expected")
    return body


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    message: str

    def record(self) -> Record:
        code = self.code.encode("ascii", "replace")[:255]
        text = self.message.encode("utf-8")[: MAX_HANDSHAKE_BODY - 256]
        return Record(RecordType.ALERT, bytes((len(code),)) + code + text)

    @classmethod
    def parse(cls, body: bytes) -> Alert:
        if not body or len(body) < 1 + body[0]:
            raise HandshakeError("an alert too short to hold its code")
        code = body[1 : 1 + body[0]].decode("ascii", "replace")
        message = body[1 + body[0] :].decode("utf-8", "replace")[:MAX_ALERT_MESSAGE]
        return cls(code, message)

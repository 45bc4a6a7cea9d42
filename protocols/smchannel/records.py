"""Record framing of the SM management channel: ``type(1) ‖ version(1) ‖ length(2) ‖ body``.

The length is checked against the type's bound before any body byte is buffered, so a peer
cannot make the reader hold more than one maximal record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocols.smchannel.errors import FramingError

VERSION = 1
HEADER_SIZE = 4
#: Application bytes per sealed record (as TLS: 2^14).
MAX_PLAINTEXT = 16384
SEQ_SIZE = 8
TAG_SIZE = 16
#: A sealed body: sequence number, inner type byte, at most MAX_PLAINTEXT bytes, tag.
MAX_SEALED_BODY = SEQ_SIZE + 1 + MAX_PLAINTEXT + TAG_SIZE
#: Handshake bodies carry at most a certificate (a few hundred bytes for SM2).
MAX_HANDSHAKE_BODY = 8192


class RecordType(IntEnum):
    CLIENT_HELLO = 0x01
    SERVER_HELLO = 0x02
    CLIENT_FINISHED = 0x03
    ALERT = 0x15  # in clear, handshake only: why the sender gives up
    SEALED = 0x17  # SM4-GCM under the traffic keys


@dataclass(frozen=True, slots=True)
class Record:
    type: RecordType
    body: bytes

    @property
    def header(self) -> bytes:
        return header_of(self.type, len(self.body))

    def encode(self) -> bytes:
        return self.header + self.body


def header_of(kind: RecordType, length: int) -> bytes:
    return bytes((kind, VERSION)) + length.to_bytes(2, "big")


def _limit(kind: RecordType) -> int:
    return MAX_SEALED_BODY if kind is RecordType.SEALED else MAX_HANDSHAKE_BODY


class RecordReader:
    """Bytes in, whole records out; raises :class:`FramingError` on the first bad header."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Record]:
        self._buffer += data
        records: list[Record] = []
        while len(self._buffer) >= HEADER_SIZE:
            try:
                kind = RecordType(self._buffer[0])
            except ValueError:
                raise FramingError(
                    f"record type 0x{self._buffer[0]:02x} is not one of the channel's "
                    "(not an SM channel peer? plain HTTP or TLS on the management port?)"
                ) from None
            if self._buffer[1] != VERSION:
                raise FramingError(
                    f"record version {self._buffer[1]}, this side speaks version {VERSION}"
                )
            length = int.from_bytes(self._buffer[2:4], "big")
            if length > _limit(kind):
                raise FramingError(
                    f"{kind.name} record of {length} bytes, at most {_limit(kind)} allowed"
                )
            if len(self._buffer) < HEADER_SIZE + length:
                break
            body = bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + length])
            del self._buffer[: HEADER_SIZE + length]
            records.append(Record(kind, body))
        return records

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a record."""
        return len(self._buffer)

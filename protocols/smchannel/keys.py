"""Key schedule and record protection: HKDF (RFC 5869) over HMAC-SM3, SM4-GCM records.

The SM2 key exchange (GB/T 32918.3) gives a shared secret bound to both static keys and both
ephemeral points; HKDF binds it to the handshake transcript and splits it into one SM4 key and
IV per direction plus the two Finished keys. A record's nonce is its direction's IV XOR its
sequence number (as TLS 1.3), and the header and sequence number are authenticated data: a
record cannot be moved, replayed or cut without the tag failing."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smchannel.errors import ReplayError, TamperError
from protocols.smchannel.records import SEQ_SIZE, TAG_SIZE, Record, RecordType, header_of
from protocols.smcrypto import SmCryptoError, hmac_sm3, hmac_sm3_verify, sm4_gcm_decrypt
from protocols.smcrypto.sm4 import sm4_gcm_encrypt

KEY_SIZE = 16
IV_SIZE = 12
FINISHED_KEY_SIZE = 32
HASH_SIZE = 32
SALT = b"carbench-smc-1"


def hkdf_sm3(secret: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 extract-then-expand with HMAC-SM3 and the channel's fixed salt."""
    prk = hmac_sm3(SALT, secret)
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac_sm3(prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


@dataclass(frozen=True, slots=True)
class SessionKeys:
    client_key: bytes
    client_iv: bytes
    server_key: bytes
    server_iv: bytes
    client_finished_key: bytes
    server_finished_key: bytes

    @classmethod
    def derive(cls, shared: bytes, transcript_hash: bytes) -> SessionKeys:
        sizes = (KEY_SIZE, IV_SIZE, KEY_SIZE, IV_SIZE, FINISHED_KEY_SIZE, FINISHED_KEY_SIZE)
        material = hkdf_sm3(shared, b"keys" + transcript_hash, sum(sizes))
        parts, at = [], 0
        for size in sizes:
            parts.append(material[at : at + size])
            at += size
        return cls(*parts)

    def server_finished(self, transcript_hash: bytes) -> bytes:
        return hmac_sm3(self.server_finished_key, b"server finished" + transcript_hash)

    def client_finished(self, transcript_hash: bytes) -> bytes:
        return hmac_sm3(self.client_finished_key, b"client finished" + transcript_hash)

    @staticmethod
    def check(key: bytes, label: bytes, transcript_hash: bytes, tag: bytes) -> bool:
        return hmac_sm3_verify(key, label + transcript_hash, tag)


class Sealer:
    """One direction's outgoing records, numbered from 0."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._key, self._iv, self._seq = key, iv, 0

    def seal(self, inner_type: int, data: bytes) -> Record:
        seq = self._seq.to_bytes(SEQ_SIZE, "big")
        length = SEQ_SIZE + 1 + len(data) + TAG_SIZE
        aad = header_of(RecordType.SEALED, length) + seq
        sealed = sm4_gcm_encrypt(
            self._key, bytes((inner_type,)) + data, aad, nonce=_nonce(self._iv, self._seq)
        )
        self._seq += 1
        return Record(RecordType.SEALED, seq + sealed[IV_SIZE:])


class Opener:
    """One direction's incoming records: the next sequence number only, tag checked."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._key, self._iv, self._seq = key, iv, 0

    @property
    def opened(self) -> int:
        """Records opened so far."""
        return self._seq

    def open(self, record: Record) -> tuple[int, bytes]:
        body = record.body
        if len(body) < SEQ_SIZE + 1 + TAG_SIZE:
            raise TamperError(f"sealed record of {len(body)} bytes is shorter than its overhead")
        seq = int.from_bytes(body[:SEQ_SIZE], "big")
        if seq != self._seq:
            what = "replayed" if seq < self._seq else "arrived early: records were dropped"
            raise ReplayError(
                f"record number {seq} {what} (the next is {self._seq}); "
                "every record is accepted once and in order"
            )
        aad = record.header + body[:SEQ_SIZE]
        try:
            plain = sm4_gcm_decrypt(self._key, _nonce(self._iv, seq) + body[SEQ_SIZE:], aad)
        except SmCryptoError:
            raise TamperError(
                f"record number {seq} does not authenticate (SM4-GCM tag): altered on the way "
                "or sealed under another key"
            ) from None
        self._seq += 1
        return plain[0], plain[1:]


def _nonce(iv: bytes, seq: int) -> bytes:
    return bytes(a ^ b for a, b in zip(iv, seq.to_bytes(IV_SIZE, "big"), strict=True))

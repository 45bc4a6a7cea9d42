"""SM3 (GB/T 32905) hashing and HMAC-SM3 (RFC 2104 over SM3), both computed by ``cryptography``."""

from __future__ import annotations

import hmac as _stdlib_hmac

from cryptography.hazmat.primitives import hashes, hmac

SM3_DIGEST_SIZE = 32
SM3_BLOCK_SIZE = 64


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class Sm3:
    """Streaming SM3: ``update`` any number of times, then ``digest`` (which may be called again).

    >>> h = Sm3(b"a"); h.update(b"bc"); h.digest() == sm3(b"abc")
    True
    """

    __slots__ = ("_hash",)

    def __init__(self, data: bytes = b"") -> None:
        self._hash = hashes.Hash(hashes.SM3())
        if data:
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def copy(self) -> Sm3:
        clone = Sm3.__new__(Sm3)
        clone._hash = self._hash.copy()
        return clone

    def digest(self) -> bytes:
        """The digest of everything fed so far; the object stays usable."""
        return self._hash.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 of ``data`` under ``key`` (any length; keys over 64 bytes are hashed first)."""
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def hmac_sm3_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    """Whether ``tag`` is the HMAC-SM3 of ``data`` under ``key``, compared in constant time.

    A tag of the wrong length is simply a wrong tag (``False``), not an error.
    """
    return _stdlib_hmac.compare_digest(hmac_sm3(key, data), tag)

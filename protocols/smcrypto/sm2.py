"""SM2 (GB/T 32918 / GM/T 0003) signatures, encryption and key exchange, computed by ``gmalglib``.

Encodings (see the package docstring for the whole picture):

* public key: 65 bytes ``04 ‖ x ‖ y`` (``from_bytes`` also takes the 33-byte compressed form);
* private key: 32 bytes big-endian ``d`` with ``1 ≤ d ≤ n − 2``;
* signature: 64 bytes ``r ‖ s`` (``sign``/``verify``) or DER ``SEQUENCE { INTEGER r, INTEGER s }``
  as OpenSSL writes it (``sign_der``/``verify_der``); the message is hashed as
  ``e = SM3(Z ‖ M)`` with ``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)`` and ``ID`` the
  user ID (default ``1234567812345678``, GM/T 0009);
* ciphertext: ``C1 ‖ C3 ‖ C2`` with ``C1 = 04 ‖ x1 ‖ y1`` (65 bytes), ``C3`` the 32-byte SM3 check
  value and ``C2`` as long as the plaintext; :func:`ciphertext_to_asn1` and
  :func:`ciphertext_from_asn1` convert to and from OpenSSL's
  ``SEQUENCE { INTEGER x1, INTEGER y1, OCTET STRING C3, OCTET STRING C2 }``.

Every random scalar (keys, signature nonces, encryption ``k``, key-exchange ``r``) comes from
``os.urandom``, handed to gmalglib explicitly rather than left to its build's default.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gmalglib.core import SM2 as _Engine  # noqa: N811 — gmalglib's engine object

from protocols.smcrypto import der, keys
from protocols.smcrypto.errors import SmCryptoError

DEFAULT_UID = b"1234567812345678"
"""The GM/T 0009 default user ID. (OpenSSL 3's default is the *empty* ID: pass ``distid``.)"""
UID_MAX_LENGTH = 8191  # ENTL is the ID's length in bits, in 16 bits
SECRET_SIZE = 32
PUBLIC_KEY_SIZE = 65
SIGNATURE_SIZE = 64
C1_SIZE = 65
C3_SIZE = 32
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
"""The order of the SM2 base point."""

# Where every random scalar comes from. A module global so that the known-answer tests can
# substitute the standard's fixed k; nothing in the public API takes a nonce.
_random_source: Callable[[int], bytes] = os.urandom


def _rng(size: int) -> bytes:
    return _random_source(size)


def _check_uid(uid: bytes) -> None:
    if len(uid) > UID_MAX_LENGTH:
        raise SmCryptoError(
            f"SM2 user ID must be at most {UID_MAX_LENGTH} bytes, got {len(uid)}", reason="uid"
        )


def _length_error(what: str, expected: int, data: bytes) -> SmCryptoError:
    return SmCryptoError(f"{what} must be {expected} bytes, got {len(data)}", reason="length")


# --- signature and ciphertext encodings -------------------------------------------------------


def signature_to_der(signature: bytes) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` of a 64-byte ``r ‖ s`` signature."""
    if len(signature) != SIGNATURE_SIZE:
        raise _length_error("SM2 signature r‖s", SIGNATURE_SIZE, signature)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return der.encode_sequence(der.encode_integer(r), der.encode_integer(s))


def signature_from_der(data: bytes) -> bytes:
    """The 64-byte ``r ‖ s`` of a DER signature.

    Raises for anything that is not two non-negative INTEGERs of at most 32 bytes in strict DER;
    values that are merely out of range (0, ≥ n) pass and simply fail verification.
    """
    fields = der.decode_sequence(data, "SM2 signature")
    if len(fields) != 2:
        raise SmCryptoError(
            f"SM2 signature: expected 2 INTEGERs, found {len(fields)} fields", reason="der"
        )
    r = der.decode_unsigned(fields[0], "SM2 signature r", max_bytes=32)
    s = der.decode_unsigned(fields[1], "SM2 signature s", max_bytes=32)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ciphertext_to_asn1(ciphertext: bytes) -> bytes:
    """OpenSSL's DER form of a ``C1 ‖ C3 ‖ C2`` ciphertext (GM/T 0009 ``SM2Cipher``)."""
    _check_ciphertext(ciphertext)
    x = int.from_bytes(ciphertext[1:33], "big")
    y = int.from_bytes(ciphertext[33:65], "big")
    return der.encode_sequence(
        der.encode_integer(x),
        der.encode_integer(y),
        der.encode_octet_string(ciphertext[C1_SIZE : C1_SIZE + C3_SIZE]),
        der.encode_octet_string(ciphertext[C1_SIZE + C3_SIZE :]),
    )


def ciphertext_from_asn1(data: bytes) -> bytes:
    """``C1 ‖ C3 ‖ C2`` (``C1 = 04 ‖ x ‖ y``) from the DER ``SM2Cipher`` OpenSSL writes."""
    fields = der.decode_sequence(data, "SM2 ciphertext")
    if len(fields) != 4:
        raise SmCryptoError(
            f"SM2 ciphertext: expected 4 fields (x, y, C3, C2), found {len(fields)}",
            reason="der",
        )
    x = der.decode_unsigned(fields[0], "SM2 ciphertext C1.x", max_bytes=32)
    y = der.decode_unsigned(fields[1], "SM2 ciphertext C1.y", max_bytes=32)
    c3 = der.expect(fields[2], der.OCTET_STRING, "SM2 ciphertext C3")
    c2 = der.expect(fields[3], der.OCTET_STRING, "SM2 ciphertext C2")
    if len(c3) != C3_SIZE:
        raise _length_error("SM2 ciphertext C3", C3_SIZE, c3)
    if not c2:
        raise SmCryptoError("SM2 ciphertext C2 is empty", reason="length")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


def _check_ciphertext(ciphertext: bytes) -> None:
    if len(ciphertext) <= C1_SIZE + C3_SIZE:
        raise SmCryptoError(
            f"SM2 ciphertext C1‖C3‖C2 must be over {C1_SIZE + C3_SIZE} bytes "
            f"(65-byte C1, 32-byte C3, non-empty C2), got {len(ciphertext)}",
            reason="length",
        )
    if ciphertext[0] != 0x04:
        raise SmCryptoError(
            f"SM2 ciphertext C1 must be an uncompressed point 04‖x‖y, "
            f"found first byte 0x{ciphertext[0]:02x}",
            reason="decrypt",
        )


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sm2PublicKey:
    """An SM2 public key: ``point`` is the 65-byte uncompressed ``04 ‖ x ‖ y``, checked on-curve."""

    point: bytes
    _engine: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        point = self.point
        if len(point) != PUBLIC_KEY_SIZE or point[0] != 0x04:
            raise SmCryptoError(
                f"SM2 public key must be 65 bytes 04‖x‖y, got {len(point)} bytes"
                + (f" starting 0x{point[0]:02x}" if point else ""),
                reason="key",
            )
        point = bytes(point)
        if not _Engine.is_pk_valid(point):
            raise SmCryptoError("SM2 public key is not a point on the SM2 curve", reason="key")
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "_engine", _Engine(pk=self.point, rnd_fn=_rng))

    # encodings

    @classmethod
    def from_bytes(cls, data: bytes) -> Sm2PublicKey:
        """From ``04 ‖ x ‖ y`` (65 bytes) or the compressed ``02/03 ‖ x`` (33 bytes)."""
        if len(data) == 33 and data[0] in (0x02, 0x03):
            try:
                data = _Engine.convert_pk(bytes(data), 0)
            except ValueError:
                raise SmCryptoError(
                    "compressed SM2 public key is not a point on the curve", reason="key"
                ) from None
        return cls(data)

    def to_bytes(self) -> bytes:
        return self.point

    @classmethod
    def from_der(cls, data: bytes) -> Sm2PublicKey:
        """From SubjectPublicKeyInfo DER (id-ecPublicKey, curve sm2)."""
        return cls.from_bytes(keys.decode_public_der(data))

    def to_der(self) -> bytes:
        return keys.encode_public_der(self.point)

    @classmethod
    def from_pem(cls, text: str | bytes) -> Sm2PublicKey:
        """From a ``PUBLIC KEY`` PEM block, as ``openssl pkey -pubout`` writes it."""
        return cls.from_bytes(keys.decode_public_pem(text))

    def to_pem(self) -> str:
        return der.pem_encode(keys.PEM_PUBLIC, self.to_der())

    # operations

    def _engine_for(self, uid: bytes) -> Any:
        if uid == DEFAULT_UID:
            return self._engine
        _check_uid(uid)
        return _Engine(pk=self.point, uid=uid, rnd_fn=_rng)

    def z_value(self, uid: bytes = DEFAULT_UID) -> bytes:
        """``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ x ‖ y)``, the signer-identity hash."""
        z: bytes = self._engine_for(uid).get_entity_info()
        return z

    def verify(self, message: bytes, signature: bytes, *, uid: bytes = DEFAULT_UID) -> bool:
        """Whether the 64-byte ``r ‖ s`` is a valid signature of ``message`` by ``uid``.

        A wrong signature is ``False``; a signature that is not 64 bytes raises (``"length"``).
        """
        if len(signature) != SIGNATURE_SIZE:
            raise _length_error("SM2 signature r‖s", SIGNATURE_SIZE, signature)
        return bool(self._engine_for(uid).verify(message, signature))

    def verify_der(self, message: bytes, signature: bytes, *, uid: bytes = DEFAULT_UID) -> bool:
        """Like :meth:`verify` for a DER signature; malformed DER raises (``"der"``)."""
        return self.verify(message, signature_from_der(signature), uid=uid)

    def encrypt(self, plaintext: bytes) -> bytes:
        """``C1 ‖ C3 ‖ C2`` (97 + len(plaintext) bytes) under a fresh random ``k``."""
        if not plaintext:
            raise SmCryptoError("SM2 cannot encrypt an empty plaintext", reason="length")
        while True:
            ciphertext: bytes = self._engine.encrypt(plaintext)
            # When the KDF output t is all zeros the standard draws a new k; gmalglib 0.5.9
            # leaves its loop instead and returns C1 ‖ 0³² ‖ 0ⁿ, which nobody can decrypt
            # (1 in 256 one-byte plaintexts). A genuine all-zero C3 has probability 2⁻²⁵⁶.
            if any(ciphertext[C1_SIZE : C1_SIZE + C3_SIZE]):
                return ciphertext


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Sm2PrivateKey:
    """An SM2 private key: ``secret`` is ``d`` as 32 big-endian bytes, ``1 ≤ d ≤ n − 2``.

    Equality is constant-time on ``secret``; ``repr`` shows only the public key.
    """

    secret: bytes
    _public: Sm2PublicKey = field(init=False)
    _engine: Any = field(init=False)

    def __post_init__(self) -> None:
        secret = self.secret
        if len(secret) != SECRET_SIZE:
            raise SmCryptoError(
                f"SM2 private key must be 32 bytes, got {len(secret)}", reason="key"
            )
        secret = bytes(secret)
        if not _Engine.is_sk_valid(secret):
            raise SmCryptoError("SM2 private key must be in [1, n − 2]", reason="key")
        object.__setattr__(self, "secret", secret)
        object.__setattr__(self, "_engine", _Engine(secret, rnd_fn=_rng))
        object.__setattr__(self, "_public", Sm2PublicKey(_Engine.get_pk(secret)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sm2PrivateKey):
            return NotImplemented
        return hmac.compare_digest(self.secret, other.secret)

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        return f"Sm2PrivateKey(<secret>, public={self._public.point.hex()[:18]}…)"

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        """A new key from the operating system's CSPRNG."""
        secret, _ = _Engine(rnd_fn=_rng).generate_keypair()
        return cls(secret)

    def public_key(self) -> Sm2PublicKey:
        return self._public

    # encodings

    @classmethod
    def from_bytes(cls, secret: bytes) -> Sm2PrivateKey:
        return cls(secret)

    def to_bytes(self) -> bytes:
        return self.secret

    @classmethod
    def from_der(cls, data: bytes) -> Sm2PrivateKey:
        """From PKCS#8 or SEC1 DER; an embedded public key must match the secret."""
        return cls._checked(*keys.decode_private_der(data))

    def to_der(self) -> bytes:
        """PKCS#8 DER, byte for byte what OpenSSL 3 writes for the same key."""
        return keys.encode_private_der(self.secret, self._public.point)

    @classmethod
    def from_pem(cls, text: str | bytes) -> Sm2PrivateKey:
        """From a ``PRIVATE KEY`` (PKCS#8, ``openssl genpkey -algorithm SM2``) or a SEC1
        ``EC PRIVATE KEY`` block naming the sm2 curve. Encrypted keys are refused."""
        return cls._checked(*keys.decode_private_pem(text))

    def to_pem(self) -> str:
        return der.pem_encode(keys.PEM_PRIVATE, self.to_der())

    @classmethod
    def _checked(cls, secret: bytes, stored_point: bytes | None) -> Sm2PrivateKey:
        key = cls(secret)
        if stored_point is not None and Sm2PublicKey.from_bytes(stored_point) != key._public:
            raise SmCryptoError(
                "the public key stored with the private key does not belong to it", reason="key"
            )
        return key

    # operations

    def sign(self, message: bytes, *, uid: bytes = DEFAULT_UID) -> bytes:
        """The 64-byte ``r ‖ s`` signature of ``SM3(Z ‖ message)``, with a fresh random nonce."""
        if uid == DEFAULT_UID:
            engine = self._engine
        else:
            _check_uid(uid)
            engine = _Engine(self.secret, uid=uid, rnd_fn=_rng)
        while True:
            signature: bytes = engine.sign(message)
            # The same gmalglib loop bug: on r = 0 or r + k = n (probability ~2⁻²⁵⁶) it
            # returns s = 0 instead of drawing a new k. Cheap to guard, never seen.
            if any(signature[32:]):
                return signature

    def sign_der(self, message: bytes, *, uid: bytes = DEFAULT_UID) -> bytes:
        """:meth:`sign` as DER ``SEQUENCE { INTEGER r, INTEGER s }`` (what OpenSSL verifies)."""
        return signature_to_der(self.sign(message, uid=uid))

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext of ``C1 ‖ C3 ‖ C2``; raises ``reason="decrypt"`` if C1 or C3 is wrong."""
        _check_ciphertext(ciphertext)
        try:
            plaintext: bytes = self._engine.decrypt(ciphertext)
        except ValueError as exc:
            raise SmCryptoError(
                f"SM2 decryption failed ({exc}): wrong key or altered ciphertext",
                reason="decrypt",
            ) from None
        return plaintext


# --- key exchange -----------------------------------------------------------------------------


class Sm2KeyExchange:
    """One party's side of the SM2 key exchange (GB/T 32918.3), for a single exchange.

    Each party makes one with its own static key and role, sends :attr:`ephemeral_public`
    (65 bytes ``04 ‖ x ‖ y``) to the other with its static public key and user ID, then calls
    :meth:`derive` with the peer's. Both get the same key::

        alice = Sm2KeyExchange(alice_key, initiator=True)
        bob = Sm2KeyExchange(bob_key, initiator=False)
        k_a = alice.derive(bob_key.public_key(), bob.ephemeral_public)
        k_b = bob.derive(alice_key.public_key(), alice.ephemeral_public)
        assert k_a == k_b

    The optional key-confirmation hashes (S1/S2, SA/SB) are not available (gmalglib does not
    expose the shared point): confirm the key in the protocol above, e.g. with HMAC-SM3 over
    the transcript under a key derived from it.
    """

    __slots__ = ("_engine", "_t", "ephemeral_public", "initiator")

    def __init__(
        self, private_key: Sm2PrivateKey, *, initiator: bool, uid: bytes = DEFAULT_UID
    ) -> None:
        _check_uid(uid)
        self.initiator = initiator
        self._engine: Any = _Engine(private_key.secret, uid=uid, rnd_fn=_rng)
        t, ephemeral = self._engine.begin_key_exchange()
        self._t: bytes | None = t
        self.ephemeral_public: bytes = ephemeral

    def derive(
        self,
        peer_public_key: Sm2PublicKey,
        peer_ephemeral: bytes,
        *,
        peer_uid: bytes = DEFAULT_UID,
        key_length: int = 16,
    ) -> bytes:
        """The shared ``key_length``-byte key. Single use: a second call raises (``"state"``)."""
        if self._t is None:
            raise SmCryptoError(
                "this key exchange has already derived its key; start a new one", reason="state"
            )
        _check_uid(peer_uid)
        if len(peer_ephemeral) != PUBLIC_KEY_SIZE or peer_ephemeral[0] != 0x04:
            raise SmCryptoError(
                f"peer ephemeral point must be 65 bytes 04‖x‖y, got {len(peer_ephemeral)} bytes",
                reason="key",
            )
        if key_length < 1:
            raise SmCryptoError(f"key length must be at least 1, got {key_length}", reason="length")
        try:
            key: bytes = self._engine.end_key_exchange(
                self._t,
                bytes(peer_ephemeral),
                peer_public_key.point,
                not self.initiator,
                key_length,
                peer_uid,
            )
        except ValueError:
            raise SmCryptoError(
                "peer ephemeral point is not a point on the SM2 curve", reason="key"
            ) from None
        except OverflowError:
            raise SmCryptoError(f"key length {key_length} is too large", reason="length") from None
        self._t = None
        return key

"""国密 facade: SM3 and SM4 through ``cryptography``, SM2 through ``gmalglib``. No I/O.

SM3 (GB/T 32905)
    ``sm3(data) -> 32 bytes``; ``Sm3()`` streams (``update``/``digest``);
    ``hmac_sm3(key, data) -> 32 bytes`` is RFC 2104 HMAC over SM3 (not gmalglib's ``sm3_mac``);
    ``hmac_sm3_verify(key, data, tag) -> bool`` compares in constant time.

SM4 (GB/T 32907), 16-byte keys; each output is one self-contained byte string
    ``sm4_gcm_encrypt(key, plaintext, aad=b"") -> nonce(12) ‖ ciphertext ‖ tag(16)`` and
    ``sm4_gcm_decrypt(key, data, aad=b"")`` (tamper, wrong key or AAD → ``reason="tag"``);
    ``sm4_cbc_encrypt(key, plaintext) -> iv(16) ‖ ciphertext`` with PKCS#7 padding and
    ``sm4_cbc_decrypt(key, data)`` (bad padding → ``reason="padding"``). CBC is not
    authenticated: prefer GCM, or HMAC-SM3 the CBC output. Nonces/IVs are random unless a
    protocol forces ``nonce=``/``iv=`` (never reuse a GCM nonce under one key).

SM2 (GB/T 32918), frozen dataclasses with methods
    ``Sm2PrivateKey.generate()``; ``.public_key()``; ``.sign(msg, uid=...) -> r‖s (64)``;
    ``.sign_der(msg) -> DER SEQUENCE{r, s}``; ``.decrypt(C1‖C3‖C2)``;
    ``.to_pem()/.from_pem()`` (PKCS#8 ``PRIVATE KEY``; SEC1 ``EC PRIVATE KEY`` read too),
    ``.to_der()`` (PKCS#8) / ``.from_der()`` (PKCS#8 or SEC1, as ``openssl pkey -outform DER``),
    ``.to_bytes()/.from_bytes()`` (32-byte ``d``).
    ``Sm2PublicKey``: ``.verify(msg, r‖s, uid=...) -> bool``, ``.verify_der(...)``,
    ``.encrypt(plaintext) -> C1‖C3‖C2``, ``.z_value(uid)``, ``.to_pem()/.from_pem()``
    (SubjectPublicKeyInfo ``PUBLIC KEY``), ``.to_der()/.from_der()``, ``.to_bytes()`` (65 bytes
    ``04‖x‖y``) / ``.from_bytes()`` (also compressed 33 bytes).
    ``Sm2KeyExchange(private_key, initiator=...)``: ``.ephemeral_public`` to send,
    ``.derive(peer_public_key, peer_ephemeral, peer_uid=..., key_length=16)``.
    Signatures hash ``SM3(Z ‖ M)`` with ``Z`` from the user ID, default ``DEFAULT_UID`` =
    ``b"1234567812345678"`` (GM/T 0009). Ciphertexts are ``C1 ‖ C3 ‖ C2`` (the current
    standard order) with ``C1 = 04 ‖ x1 ‖ y1``; ``ciphertext_to_asn1``/``ciphertext_from_asn1``
    convert to/from OpenSSL's DER ``SEQUENCE{x, y, C3, C2}``; ``signature_to_der`` /
    ``signature_from_der`` convert signatures. Key files carry id-ecPublicKey with the named
    curve sm2 (1.2.156.10197.1.301), byte-identical to OpenSSL 3's.

Errors
    Everything caused by input raises :class:`SmCryptoError` (a ``CodecError``, protocol
    ``"smcrypto"``) with a ``reason`` code. ``verify``/``verify_der`` return ``False`` for a
    signature that does not verify (wrong key, message, ID, or out-of-range r/s) and raise only
    for a malformed one (not 64 bytes; not strict DER).
"""

from protocols.smcrypto.errors import SmCryptoError
from protocols.smcrypto.sm2 import (
    DEFAULT_UID,
    Sm2KeyExchange,
    Sm2PrivateKey,
    Sm2PublicKey,
    ciphertext_from_asn1,
    ciphertext_to_asn1,
    signature_from_der,
    signature_to_der,
)
from protocols.smcrypto.sm3 import Sm3, hmac_sm3, hmac_sm3_verify, sm3
from protocols.smcrypto.sm4 import (
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

__all__ = [
    "DEFAULT_UID",
    "Sm2KeyExchange",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "Sm3",
    "SmCryptoError",
    "ciphertext_from_asn1",
    "ciphertext_to_asn1",
    "hmac_sm3",
    "hmac_sm3_verify",
    "signature_from_der",
    "signature_to_der",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]

"""SM4 (GB/T 32907) in CBC with PKCS#7 padding and in GCM, computed by ``cryptography``.

Both modes return one self-contained byte string, IV or nonce first:

* CBC: ``iv (16) ‖ ciphertext (a multiple of 16, ≥ 16)`` — unauthenticated: an attacker who can
  submit ciphertexts and observe padding errors can decrypt them. Use it only where a peer
  protocol dictates it, and MAC the whole output (HMAC-SM3, encrypt-then-MAC); prefer GCM.
* GCM: ``nonce (12) ‖ ciphertext (len(plaintext)) ‖ tag (16)``; the associated data is
  authenticated but not included.

IVs and nonces are drawn from ``os.urandom`` unless the caller passes one. Pass one only when a
protocol dictates it (a counter, a test vector): a (key, nonce) pair reused under GCM reveals the
XOR of the plaintexts and lets an attacker forge tags.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.smcrypto.errors import SmCryptoError

SM4_KEY_SIZE = 16
SM4_BLOCK_SIZE = 16
SM4_GCM_NONCE_SIZE = 12
SM4_GCM_TAG_SIZE = 16


def _check_key(key: bytes) -> algorithms.SM4:
    if len(key) != SM4_KEY_SIZE:
        raise SmCryptoError(f"SM4 key must be 16 bytes, got {len(key)}", reason="key")
    return algorithms.SM4(key)


def sm4_cbc_encrypt(key: bytes, plaintext: bytes, *, iv: bytes | None = None) -> bytes:
    """``iv ‖ SM4-CBC(PKCS#7(plaintext))``; a random IV unless one is given (16 bytes)."""
    algorithm = _check_key(key)
    if iv is None:
        iv = os.urandom(SM4_BLOCK_SIZE)
    elif len(iv) != SM4_BLOCK_SIZE:
        raise SmCryptoError(f"SM4-CBC IV must be 16 bytes, got {len(iv)}", reason="length")
    padder = padding.PKCS7(SM4_BLOCK_SIZE * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def sm4_cbc_decrypt(key: bytes, data: bytes) -> bytes:
    """The plaintext of ``iv ‖ ciphertext`` as written by :func:`sm4_cbc_encrypt`."""
    algorithm = _check_key(key)
    body = len(data) - SM4_BLOCK_SIZE
    if body < SM4_BLOCK_SIZE or body % SM4_BLOCK_SIZE:
        raise SmCryptoError(
            "SM4-CBC data must be a 16-byte IV and a non-empty multiple of 16 bytes, "
            f"got {len(data)} bytes",
            reason="length",
        )
    decryptor = Cipher(algorithm, modes.CBC(data[:SM4_BLOCK_SIZE])).decryptor()
    padded = decryptor.update(data[SM4_BLOCK_SIZE:]) + decryptor.finalize()
    unpadder = padding.PKCS7(SM4_BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise SmCryptoError(
            "SM4-CBC padding is invalid (wrong key or corrupted ciphertext)", reason="padding"
        ) from None


def sm4_gcm_encrypt(
    key: bytes, plaintext: bytes, aad: bytes = b"", *, nonce: bytes | None = None
) -> bytes:
    """``nonce ‖ ciphertext ‖ tag`` (12 + len(plaintext) + 16 bytes); ``aad`` is authenticated."""
    algorithm = _check_key(key)
    if nonce is None:
        nonce = os.urandom(SM4_GCM_NONCE_SIZE)
    elif len(nonce) != SM4_GCM_NONCE_SIZE:
        raise SmCryptoError(f"SM4-GCM nonce must be 12 bytes, got {len(nonce)}", reason="length")
    encryptor = Cipher(algorithm, modes.GCM(nonce)).encryptor()
    if aad:
        encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return nonce + ciphertext + encryptor.tag


def sm4_gcm_decrypt(key: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of ``nonce ‖ ciphertext ‖ tag``; raises ``reason="tag"`` if it was altered."""
    algorithm = _check_key(key)
    if len(data) < SM4_GCM_NONCE_SIZE + SM4_GCM_TAG_SIZE:
        raise SmCryptoError(
            f"SM4-GCM data must be at least 28 bytes (nonce + tag), got {len(data)}",
            reason="length",
        )
    nonce = data[:SM4_GCM_NONCE_SIZE]
    tag = data[-SM4_GCM_TAG_SIZE:]
    decryptor = Cipher(
        algorithm, modes.GCM(nonce, tag, min_tag_length=SM4_GCM_TAG_SIZE)
    ).decryptor()
    if aad:
        decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(data[SM4_GCM_NONCE_SIZE:-SM4_GCM_TAG_SIZE])
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise SmCryptoError(
            "SM4-GCM tag mismatch (wrong key, wrong associated data, or altered data)",
            reason="tag",
        ) from None


def _sm4_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (ECB): for the GB/T 32907 known-answer test only, never for data."""
    algorithm = _check_key(key)
    if len(block) != SM4_BLOCK_SIZE:
        raise SmCryptoError(f"SM4 block must be 16 bytes, got {len(block)}", reason="length")
    encryptor = Cipher(algorithm, modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()

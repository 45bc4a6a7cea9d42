"""The one error the 国密 facade raises for bad input."""

from __future__ import annotations

from protocols.errors import CodecError


class SmCryptoError(CodecError):
    """A key, encoding, ciphertext or parameter that the SM2/SM3/SM4 facade cannot accept.

    ``reason`` codes:

    * ``"key"`` — a key of the wrong length, out of range, not on the curve, or not an SM2 key;
    * ``"pem"`` — text that is not the expected PEM block;
    * ``"der"`` — bytes that are not the expected strict DER structure;
    * ``"length"`` — a signature, nonce, IV, ciphertext or plaintext of an impossible length;
    * ``"tag"`` — an SM4-GCM authentication tag that does not match (tampered, wrong key/AAD);
    * ``"padding"`` — SM4-CBC plaintext whose PKCS#7 padding is invalid after decryption;
    * ``"decrypt"`` — an SM2 ciphertext that does not decrypt (bad C1 point, C3 mismatch);
    * ``"uid"`` — an SM2 user ID longer than the 8191 bytes its 16-bit bit-length allows;
    * ``"state"`` — a single-use key-exchange object used twice.
    """

    protocol = "smcrypto"

"""Throughput of the 国密 facade: ``python -m benchmarks.bench_smcrypto`` prints one JSON object.

SM2 figures are operations per second on a 32-byte message through the facade (signing
includes drawing the nonce from ``os.urandom``; verification includes the facade's checks).
Bulk figures are MB/s (10⁶ bytes per second) over a 1 MiB buffer.
"""

from __future__ import annotations

import os

from benchmarks.harness import Figure, rate, report
from protocols.smcrypto import (
    Sm2PrivateKey,
    hmac_sm3,
    sm3,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

MIB = 1 << 20


def main() -> None:
    key = Sm2PrivateKey.generate()
    public = key.public_key()
    message = os.urandom(32)
    signature = key.sign(message)
    signature_der = key.sign_der(message)
    ciphertext = public.encrypt(message)
    buffer = os.urandom(MIB)
    sm4_key = os.urandom(16)
    sealed = sm4_gcm_encrypt(sm4_key, buffer)

    def mb_per_s(calls_per_s: float) -> float:
        return round(calls_per_s * MIB / 1e6, 1)

    figures = [
        Figure("sm2_sign", round(rate(lambda: key.sign(message))), "ops/s"),
        Figure("sm2_sign_der", round(rate(lambda: key.sign_der(message))), "ops/s"),
        Figure("sm2_verify", round(rate(lambda: public.verify(message, signature))), "ops/s"),
        Figure(
            "sm2_verify_der",
            round(rate(lambda: public.verify_der(message, signature_der))),
            "ops/s",
        ),
        Figure("sm2_encrypt_32B", round(rate(lambda: public.encrypt(message))), "ops/s"),
        Figure("sm2_decrypt_32B", round(rate(lambda: key.decrypt(ciphertext))), "ops/s"),
        Figure("sm3_1MiB", mb_per_s(rate(lambda: sm3(buffer))), "MB/s"),
        Figure("hmac_sm3_1MiB", mb_per_s(rate(lambda: hmac_sm3(sm4_key, buffer))), "MB/s"),
        Figure(
            "sm4_gcm_encrypt_1MiB", mb_per_s(rate(lambda: sm4_gcm_encrypt(sm4_key, buffer))), "MB/s"
        ),
        Figure(
            "sm4_gcm_decrypt_1MiB", mb_per_s(rate(lambda: sm4_gcm_decrypt(sm4_key, sealed))), "MB/s"
        ),
        Figure(
            "sm4_cbc_encrypt_1MiB", mb_per_s(rate(lambda: sm4_cbc_encrypt(sm4_key, buffer))), "MB/s"
        ),
    ]
    report("smcrypto", figures, message_bytes=len(message), buffer_bytes=MIB)


if __name__ == "__main__":
    main()

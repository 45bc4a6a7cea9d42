"""CP encryption (the HJ 212-2025 profile): the wire carries CP encrypted, the CRC covers the
plaintext data segment (FACTS.md). The codec takes any :class:`CpCipher`; :class:`Sm4CpCipher`
is the provisional SM4 one, to be aligned with the published text when it is public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from protocols.hj212.errors import CpError
from protocols.smcrypto import SmCryptoError, sm4_cbc_decrypt, sm4_cbc_encrypt


class CpCipher(Protocol):
    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Sm4CpCipher:
    """SM4-CBC over the UTF-8 CP text, written as uppercase hex of ``IV ‖ ciphertext``.

    Provisional: the 2025 text is not public, so mode and text encoding are this bench's
    choice. ``iv`` fixes the IV (tests, replay); None draws a fresh one per packet.
    """

    key: bytes
    iv: bytes | None = None

    def encrypt(self, plaintext: str) -> str:
        return sm4_cbc_encrypt(self.key, plaintext.encode("utf-8"), iv=self.iv).hex().upper()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return sm4_cbc_decrypt(self.key, bytes.fromhex(ciphertext)).decode("utf-8")
        except (ValueError, SmCryptoError) as exc:
            raise CpError(f"encrypted CP could not be decrypted with SM4: {exc}") from None

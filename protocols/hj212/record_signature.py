"""SM2 signature fingerprints of uploaded records (CSMT §7.4, GB/T 37025; ISC-2 §7.4.2): made by
the terminal, checked by any platform holding the terminal's certificate. Sans-I/O.

A signed record carries one more CP item, ``SM2Sign=<128 hex digits>``: the SM2 signature
``r ‖ s`` (32 + 32 bytes, big-endian) of the record's *canonical form*. How a platform checks
one, exactly:

1. Take the whole record: after reassembling split packets (PNUM/PNO), and after decrypting CP
   under the HJ 212-2025 profile. QN, ST, PW, Flag and the packet header are not signed
   (QN is given when the record is sent, after it was signed; a resend is the same record).
2. Split CP into its ``Key=Value`` items at every ``;`` and ``,`` (the groups do not matter),
   trim spaces around each key, and drop the ``SM2Sign`` item. Values stay exactly as sent
   (``a21026-Avg=1.50`` is ``1.50``, not ``1.5``). A key that appears twice makes the record
   unverifiable.
3. Sort the items by key (Unicode code point order, which is the byte order of their UTF-8).
4. The canonical form is the UTF-8 of ``MN=<MN>;CN=<CN>;`` followed by the sorted items as
   ``Key=Value`` joined with ``;``. CN is written without leading zeros (``2051``). Example::

       MN=010000A8900016F000100000;CN=2051;DataTime=20270101000000;e10101-Cou=12.5;e10101-Flag=N

5. Verify the SM2 signature per GB/T 32918.2: ``e = SM3(Z ‖ canonical form)`` with
   ``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)``, ``ID`` the GM/T 0009 default user ID
   ``1234567812345678`` and ``(xA, yA)`` the public key of the terminal's device certificate.
   With OpenSSL 3: write the canonical form to a file and run ``openssl pkeyutl -verify
   -pubin -inkey device-pub.pem -rawin -digest sm3 -pkeyopt distid:1234567812345678 -in
   canonical -sigfile sig.der`` with the signature converted to DER ``SEQUENCE { r, s }``.

The MN is in the form so that a record signed for one platform (each knows the terminal by its
own MN) cannot be replayed as another MN's. Sorting makes the form independent of how a
platform or a splitter regroups items; keeping the values' text makes it independent of any
number formatting. The signature adds 137 characters to CP (``;SM2Sign=`` and 128 digits): a
record near HJ 212's 1024-byte data segment is split into packets as any long one is.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import StrEnum

from protocols.hj212.cp import Cp, render_groups
from protocols.hj212.errors import HJ212Error
from protocols.smcrypto import DEFAULT_UID, Sm2PrivateKey, Sm2PublicKey, SmCryptoError

SIGN_FIELD = "SM2Sign"
#: The SM2 user ID in Z (GM/T 0009's default; the device certificate names the signer).
SIGNER_UID = DEFAULT_UID
SIGNATURE_HEX_DIGITS = 128


class RecordSignatureError(HJ212Error):
    """A record that has no canonical form, so it can be neither signed nor verified."""

    reason = "signature"


class Verdict(StrEnum):
    VERIFIED = "verified"
    MISSING = "missing"  # no SM2Sign item: an unsigned record
    FAILED = "failed"  # an SM2Sign item that does not verify, or a record that cannot be


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What a platform concluded about one record's signature, and why."""

    verdict: Verdict
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.verdict is Verdict.VERIFIED


def canonical_form(mn: str, cn: int, cp: Cp) -> bytes:
    """The bytes a record's SM2 signature covers (see the module text, steps 2-4)."""
    items: dict[str, str] = {}
    for group in cp.groups:
        for key, value in group:
            if key == SIGN_FIELD:
                continue
            if key in items:
                raise RecordSignatureError(
                    f"CP item {key!r} appears twice: the record has no canonical form "
                    "(CSMT §7.4: a signature a platform can verify)"
                )
            items[key] = value
    body = ";".join(f"{key}={items[key]}" for key in sorted(items))
    try:
        return f"MN={mn};CN={cn};{body}".encode()
    except UnicodeEncodeError:  # lone surrogates: text no wire could have carried
        raise RecordSignatureError("the record is not encodable as UTF-8") from None


def sign_record(key: Sm2PrivateKey, mn: str, cn: int, cp: Cp) -> str:
    """The ``SM2Sign`` value (128 lowercase hex digits) of the record ``mn``/``cn``/``cp``."""
    return key.sign(canonical_form(mn, cn, cp), uid=SIGNER_UID).hex()


def with_signature(cp: Cp, signature_hex: str) -> Cp:
    """``cp`` with its ``SM2Sign`` item last (an item of its own group)."""
    groups = [g for g in cp.groups if all(k != SIGN_FIELD for k, _ in g)]
    return Cp.parse(render_groups((*groups, ((SIGN_FIELD, signature_hex),))))


def verify_record(public_key: Sm2PublicKey, mn: str, cn: int, cp: Cp) -> SignatureCheck:
    """Check the record's ``SM2Sign`` against ``public_key``. Never raises: whatever arrives,
    the answer is a verdict with its reason."""
    values = [v for g in cp.groups for k, v in g if k == SIGN_FIELD]
    if not values:
        return SignatureCheck(Verdict.MISSING, f"no {SIGN_FIELD} in the record (CSMT §7.4)")
    if len(values) > 1:
        return SignatureCheck(Verdict.FAILED, f"{SIGN_FIELD} appears {len(values)} times")
    text = values[0]
    if len(text) != SIGNATURE_HEX_DIGITS:
        return SignatureCheck(
            Verdict.FAILED,
            f"{SIGN_FIELD} has {len(text)} characters, expected {SIGNATURE_HEX_DIGITS} hex digits",
        )
    try:
        signature = binascii.unhexlify(text.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        return SignatureCheck(Verdict.FAILED, f"{SIGN_FIELD} is not hexadecimal")
    try:
        message = canonical_form(mn, cn, cp)
        good = public_key.verify(message, signature, uid=SIGNER_UID)
    except (RecordSignatureError, SmCryptoError) as exc:
        return SignatureCheck(Verdict.FAILED, str(exc))
    if not good:
        return SignatureCheck(
            Verdict.FAILED,
            "SM2 signature does not verify with the device certificate's key: the record was "
            "altered, or signed by another key (CSMT §12.3 tamper-proof data)",
        )
    return SignatureCheck(Verdict.VERIFIED)

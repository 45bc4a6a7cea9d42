"""A centre checking the SM2 signature of every record it receives (CSMT §7.4, GB/T 37025;
CSMT §12.3 tamper-proof data), against device certificates of a PKI (ISC-2 §7.4.1).

The centre trusts one CA certificate. A terminal's device certificate is given to it (in the
platform file, or at run time with :meth:`SignatureVerifier.trust`) under the MN the terminal
uses there, and is accepted only if that CA issued it and it is valid at the centre's time.
Each whole record (split packets reassembled) is then checked with
:func:`protocols.hj212.record_signature.verify_record`; the verdict goes into the record of
frames (``signature``, ``signature_error``): a bad or missing signature is recorded, never
silently accepted. The centre still acknowledges such a record (the link is fine; what to do
with unverified data is the platform operator's business, and the suites judge the record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from protocols.hj212.cp import Cp
from protocols.hj212.record_signature import SignatureCheck, Verdict, verify_record
from protocols.smcrypto import SmCryptoError
from protocols.smcrypto.certificate import Certificate


class TrustError(ValueError):
    """A device certificate the centre refuses to trust (ISC-2 §7.4.1: PKI certificates)."""


@dataclass
class SignatureVerifier:
    """One centre's trust anchor and the device certificates it accepted, by MN."""

    ca: Certificate
    devices: dict[str, Certificate] = field(default_factory=dict)

    @classmethod
    def from_files(cls, ca_file: Path) -> SignatureVerifier:
        try:
            ca = Certificate.from_pem(ca_file.read_bytes())
        except (OSError, SmCryptoError) as exc:
            raise TrustError(f"the CA certificate {ca_file} cannot be read: {exc}") from None
        if not ca.is_ca:
            raise TrustError(f"{ca_file} is not a CA certificate (basicConstraints cA false)")
        return cls(ca)

    def trust(self, mn: str, certificate: Certificate | str | bytes, at: datetime) -> Certificate:
        """Accept ``certificate`` (PEM or parsed) as the terminal ``mn``'s, if the CA issued it
        and it is valid at ``at`` (naive UTC); raises :class:`TrustError` otherwise."""
        try:
            if not isinstance(certificate, Certificate):
                certificate = Certificate.from_pem(certificate)
            certificate.check_issued_by(self.ca, at)
        except SmCryptoError as exc:
            raise TrustError(f"device certificate for MN {mn} refused: {exc}") from None
        self.devices[mn] = certificate
        return certificate

    def check(self, mn: str, cn: int, cp: Cp) -> SignatureCheck:
        certificate = self.devices.get(mn)
        if certificate is None:
            return SignatureCheck(
                Verdict.FAILED, f"no device certificate for MN {mn}: the signer is unknown"
            )
        return verify_record(certificate.public_key, mn, cn, cp)

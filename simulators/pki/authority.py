"""A test certificate authority: one self-signed SM2 root that issues device certificates.

It stands in for the platform operator's PKI (ISC-2 §7.4.1: terminals connect to national and
provincial platforms with PKI certificates). The certificates are X.509 v3 with SM2-with-SM3
(:mod:`protocols.smcrypto.certificate` says why X.509 and gives the exact form). The CA's key
is a bench key, kept in clear in the bench's work directory (mode 0600): it certifies test
devices only and is made afresh for every directory.

Files under the CA's directory: ``ca.key.pem`` (PKCS#8), ``ca.cert.pem`` and one
``devices/<subject>.cert.pem`` per certificate issued.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocols.smcrypto import Sm2PrivateKey, Sm2PublicKey, SmCryptoError
from protocols.smcrypto.certificate import Certificate, issue

ORGANIZATION = "carbench"
CA_NAME = "carbench test CA"
#: The test certificates' validity: a run's virtual time starts at a year's end and a full
#: profile runs for days, so they cover ten years back and forward from their making.
VALIDITY = timedelta(days=3653)
_SAFE = re.compile(r"[^0-9A-Za-z._-]")


class CaError(RuntimeError):
    """The test CA cannot be made or opened (ISC-2 §7.4.1: the bench's PKI)."""


@dataclass(frozen=True, slots=True)
class TestCa:
    """The bench's root CA: its key, its certificate and the directory it writes to."""

    __test__ = False  # not a pytest test class, whatever its name

    directory: Path
    key: Sm2PrivateKey
    certificate: Certificate

    @property
    def certificate_file(self) -> Path:
        return self.directory / "ca.cert.pem"

    @property
    def name(self) -> tuple[tuple[str, str], ...]:
        return self.certificate.subject

    @classmethod
    def create(cls, directory: Path, *, now: datetime | None = None) -> TestCa:
        """The CA in ``directory``: opened if it is there, else made."""
        key_file, cert_file = directory / "ca.key.pem", directory / "ca.cert.pem"
        if key_file.exists() and cert_file.exists():
            try:
                key = Sm2PrivateKey.from_pem(key_file.read_text(encoding="ascii"))
                certificate = Certificate.from_pem(cert_file.read_text(encoding="ascii"))
            except (OSError, UnicodeDecodeError, SmCryptoError) as exc:
                raise CaError(f"the test CA in {directory} cannot be opened: {exc}") from None
            if certificate.public_key != key.public_key():
                raise CaError(f"{cert_file} does not certify the key in {key_file}")
            return cls(directory, key, certificate)
        key = Sm2PrivateKey.generate()
        name = (("CN", CA_NAME), ("O", ORGANIZATION))
        start = _start(now)
        certificate = issue(
            issuer_key=key,
            issuer=name,
            subject=name,
            public_key=key.public_key(),
            not_before=start,
            not_after=start + 2 * VALIDITY,
            is_ca=True,
        )
        directory.mkdir(parents=True, exist_ok=True)
        _write(key_file, key.to_pem(), private=True)
        _write(cert_file, certificate.to_pem())
        return cls(directory, key, certificate)

    def issue_device(
        self, public_key: Sm2PublicKey, *, subject: str, now: datetime | None = None
    ) -> Certificate:
        """A device certificate (digital signature only) for ``public_key``, its subject
        ``CN=<subject>, O=carbench``; also written to ``devices/<subject>.cert.pem``."""
        start = _start(now)
        certificate = issue(
            issuer_key=self.key,
            issuer=self.name,
            subject=(("CN", subject), ("O", ORGANIZATION)),
            public_key=public_key,
            not_before=start,
            not_after=start + 2 * VALIDITY,
        )
        _write(
            self.directory / "devices" / f"{_SAFE.sub('_', subject)}.cert.pem", certificate.to_pem()
        )
        return certificate


def _start(now: datetime | None) -> datetime:
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0) - VALIDITY


def _write(path: Path, text: str, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(path, flags, 0o600 if private else 0o644), "w", encoding="ascii") as out:
        out.write(text)

"""The platforms' TLS client PKI (ISC-2 §7.4.1: terminals connect to national and provincial
platforms with PKI certificates): a CA that issues terminals the certificate they present to an
HTTPS centre (mutual TLS), and what a centre notes of the certificate a connection presented.

Why a CA of its own beside the SM2 one (:mod:`simulators.pki`): Python's ``ssl`` (OpenSSL 3.0
here) speaks neither TLS 1.3 with SM2 (RFC 8998) nor TLCP, so a TLS client certificate must be
a standard one. These are ECDSA P-256 with SHA-256, issued by an ECDSA P-256 root; the SM2 device
certificate still vouches for the SM2 record signatures (CSMT §7.4).

The CA issues from a certificate request (PKCS#10), as a platform operator's CA does: the
terminal's private key never leaves the terminal. Its own key is a bench key, kept in clear in
the run's directory (mode 0600), made afresh for every directory.

Files under the CA's directory: ``ca.key.pem``, ``ca.cert.pem`` and one
``clients/<subject>.cert.pem`` per certificate issued.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLAUSE = "ISC-2 §7.4.1: 连接国家及省级平台时使用 PKI 证书"
ORGANIZATION = "carbench"
CA_NAME = "carbench platform TLS client CA"
#: As the SM2 test CA: a run's virtual time starts at a year's end and the TLS library checks
#: the wall clock, so the certificates cover ten years back and twenty forward.
VALIDITY = timedelta(days=3653)
_SAFE = re.compile(r"[^0-9A-Za-z._-]")


class ClientCaError(RuntimeError):
    """The client CA cannot be made or opened, or a request cannot be certified."""


@dataclass(frozen=True, slots=True)
class ClientCa:
    """The root that certifies terminals' TLS client keys."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_file(self) -> Path:
        """What an HTTPS centre verifies client certificates with."""
        return self.directory / "ca.cert.pem"

    @classmethod
    def create(cls, directory: Path, *, now: datetime | None = None) -> ClientCa:
        """The CA in ``directory``: opened if it is there, else made."""
        key_file, cert_file = directory / "ca.key.pem", directory / "ca.cert.pem"
        if key_file.exists() and cert_file.exists():
            try:
                key = serialization.load_pem_private_key(key_file.read_bytes(), None)
                certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
            except (OSError, ValueError) as exc:
                raise ClientCaError(
                    f"the client CA in {directory} cannot be opened: {exc}"
                ) from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ClientCaError(f"{key_file} holds no EC key")
            return cls(directory, key, certificate)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(CA_NAME)
        start = _start(now)
        certificate = (
            _builder(name, name, key.public_key(), start)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write(key_file, private, private=True)
        _write(cert_file, certificate.public_bytes(serialization.Encoding.PEM))
        return cls(directory, key, certificate)

    def issue(self, request_pem: str, *, now: datetime | None = None) -> str:
        """A TLS client certificate (PEM) for the key and subject of a certificate request
        whose signature verifies; also written to ``clients/<CN>.cert.pem``."""
        try:
            request = x509.load_pem_x509_csr(request_pem.encode("ascii"))
        except (UnicodeEncodeError, ValueError) as exc:
            raise ClientCaError(f"not a certificate request (PKCS#10 PEM): {exc}") from None
        try:
            valid = request.is_signature_valid
        except InvalidSignature:
            valid = False
        if not valid:
            raise ClientCaError("the certificate request's signature does not verify")
        public = request.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ClientCaError("the request's key is not an EC key (TLS client: ECDSA P-256)")
        names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise ClientCaError("the certificate request names no subject CN")
        common_name = str(names[0].value)
        issuer = self.certificate.subject
        certificate = (
            _builder(_name(common_name), issuer, public, _start(now))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        _write(self.directory / "clients" / f"{_SAFE.sub('_', common_name)}.cert.pem", pem)
        return pem.decode("ascii")


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The certificate a client presented (and the TLS handshake verified)."""

    common_name: str
    subject: str  # RFC 4514: "CN=…,O=carbench"
    issuer: str
    sha256: str  # of the DER, hex

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        certificate = x509.load_der_x509_certificate(der)
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return cls(
            str(names[0].value) if names else "",
            certificate.subject.rfc4514_string(),
            certificate.issuer.rfc4514_string(),
            hashlib.sha256(der).hexdigest(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, start: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + 3 * VALIDITY)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _start(now: datetime | None) -> datetime:
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return moment.replace(microsecond=0) - VALIDITY


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(path, flags, 0o600 if private else 0o644), "wb") as out:
        out.write(data)

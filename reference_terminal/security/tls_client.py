"""The terminal's TLS client certificate (ISC-2 §7.4.1: PKI certificates to connect to national
and provincial platforms): what it presents to an HTTPS centre that asks for one (mutual TLS).

- The key is ECDSA P-256, not SM2: Python's ``ssl`` (OpenSSL 3.0 on the gateways we target)
  speaks neither TLS 1.3 with SM2 (RFC 8998) nor TLCP. The SM2 device key
  (:mod:`.identity`) still signs the uploaded records (CSMT §7.4).
- Like the SM2 key it never lies in clear on disk: a :class:`SealedFile` under the terminal's
  master key (SM4-CBC + HMAC-SM3, purpose ``tls-client-key``). OpenSSL loads a key only from a
  file, so at start it is handed over encrypted under a one-time password, in a private
  temporary directory removed at once.
- The certificate is a PEM file a platform's CA issued from the terminal's certificate request;
  at start the terminal refuses one that does not certify its key (every connection would be
  refused for it).

Enrolment, as a technician does it::

    python -m reference_terminal.security.tls_client data/keys/tls-client.sealed \\
        data/keys/terminal.key --subject "<terminal name>"

makes the key (if absent) and prints a certificate request (PKCS#10 PEM) for the platform's
CA; the certificate it issues is installed with ``--certificate ISSUED INSTALL_AT`` and named
in the centre's ``client_certificate`` (``uplink.centres[]``).
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reference_terminal.durable import write_file
from reference_terminal.security.errors import SecretsError, SecurityError
from reference_terminal.security.secrets import SealedFile, SecretBox

PURPOSE = "tls-client-key"
PLATFORM_PKI = "ISC-2 §7.4.1: 连接国家及省级平台时使用 PKI 证书"


class TlsIdentityError(SecurityError):
    """The TLS client key or certificate is missing, unreadable, or they do not belong
    together."""

    code = "tls_identity_error"
    clause = PLATFORM_PKI


def create_tls_key(path: str | Path, box: SecretBox) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key, sealed into ``path`` (mode 0600, fsynced); refuses to replace one."""
    sealed = SealedFile(path, box, PURPOSE)
    if sealed.path.exists():
        raise TlsIdentityError(f"{path} already holds a TLS client key")
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    sealed.write({"pkcs8": der.hex()})
    return key


def load_tls_key(path: str | Path, box: SecretBox) -> ec.EllipticCurvePrivateKey:
    try:
        document = SealedFile(path, box, PURPOSE).read()
    except SecretsError as exc:
        raise TlsIdentityError(
            f"the TLS client key {path} cannot be opened: {exc.message}"
        ) from None
    if document is None:
        raise TlsIdentityError(f"no TLS client key in {path} (make one: python -m {__name__})")
    try:
        key = serialization.load_der_private_key(bytes.fromhex(document["pkcs8"]), None)
    except (KeyError, TypeError, ValueError) as exc:
        raise TlsIdentityError(f"the TLS client key {path} holds no key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsIdentityError(f"the TLS client key {path} is not an EC key")
    return key


def certificate_request(key: ec.EllipticCurvePrivateKey, subject: str) -> str:
    """A PKCS#10 request (PEM) for ``CN=<subject>``, signed with the key: what the platform's
    CA certifies."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def install_tls_certificate(
    path: str | Path, pem: str, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """Check that ``pem`` certifies ``key`` and install it at ``path`` durably (a certificate
    lost on a power cut would leave the terminal unable to upload)."""
    certificate = _certifying(pem.encode("ascii", "replace"), key, "the certificate")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file(target, pem.encode("ascii"))
    return certificate


def client_context(
    *,
    certificate_file: str | Path,
    key_file: str | Path,
    box: SecretBox,
    ca_file: str | None,
    verify: bool = True,
) -> ssl.SSLContext:
    """A TLS client context presenting the certificate and its key, verifying the centre with
    ``ca_file`` (the system's CAs when None) unless ``verify`` is off."""
    key = load_tls_key(key_file, box)
    try:
        pem = Path(certificate_file).read_bytes()
    except OSError as exc:
        raise TlsIdentityError(
            f"cannot read the TLS client certificate {certificate_file}: {exc.strerror}"
        ) from None
    _certifying(pem, key, f"the TLS client certificate {certificate_file}")
    if verify:
        context = ssl.create_default_context(cafile=ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # OpenSSL reads a key only from a file: hand it over encrypted under a password that
    # exists only here, in a directory only this account can open, removed at once
    password = os.urandom(32).hex()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    with tempfile.TemporaryDirectory(prefix="terminal-tls-key-") as folder:  # mode 0700
        handover = Path(folder) / "key.pem"
        with os.fdopen(os.open(handover, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(encrypted)
        try:
            context.load_cert_chain(certificate_file, handover, password=password)
        except ssl.SSLError as exc:
            raise TlsIdentityError(
                f"the TLS client certificate {certificate_file} cannot be used: {exc}"
            ) from None
    return context


def _certifying(pem: bytes, key: ec.EllipticCurvePrivateKey, what: str) -> x509.Certificate:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise TlsIdentityError(f"{what} is not a PEM certificate: {exc}") from None
    if certificate.public_key() != key.public_key():
        raise TlsIdentityError(
            f"{what} certifies another key than the terminal's TLS client key: every "
            "connection to the platform would be refused"
        )
    return certificate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__name__}",
        description="Make the TLS client key (sealed) if absent; print a certificate request.",
    )
    parser.add_argument("key_file", help="the sealed TLS client key")
    parser.add_argument("master_key_file", help="the terminal's master key (security.key_file)")
    parser.add_argument("--subject", required=True, help="the CN the request asks for")
    parser.add_argument(
        "--certificate",
        nargs=2,
        metavar=("ISSUED", "INSTALL_AT"),
        help="install the certificate the CA issued (checked against the key) at INSTALL_AT",
    )
    args = parser.parse_args(argv)
    try:
        box = SecretBox.from_key_file(args.master_key_file)
        if Path(args.key_file).exists():
            key = load_tls_key(args.key_file, box)
        else:
            key = create_tls_key(args.key_file, box)
        if args.certificate:
            issued, install_at = args.certificate
            install_tls_certificate(install_at, Path(issued).read_text("ascii"), key)
    except OSError as exc:
        print(f"cannot install the certificate: {exc}", file=sys.stderr)
        return 1
    except SecurityError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(certificate_request(key, args.subject))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

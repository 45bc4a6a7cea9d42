"""The terminal's device identity (ISC-2 §7.4.1, §7.4.2): an SM2 key pair and the certificate a
PKI issued for its public half; the key signs every uploaded record (CSMT §7.4).

- The private key never lies in clear on disk: it is a :class:`SealedFile` under the terminal's
  master key (SM4-CBC + HMAC-SM3, purpose ``device-sm2-key``), like the stored credentials
  (ISC-2 §7.4.1.4). A copy of the file without the master key is useless; a changed bit is
  refused.
- The certificate is a PEM file (public); at start the terminal refuses one that does not
  certify its key, so it never signs records a platform would check against another key.

Enrolment, as a technician does it::

    python -m reference_terminal.security.identity data/keys/device-sm2.sealed \
        data/keys/terminal.key

makes the key (if absent) and prints its public key as PEM, for the CA to certify; the
certificate it issues is installed where ``identity.certificate_file`` says
(:func:`install_certificate`, or ``--certificate FILE`` to this tool).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from protocols.smcrypto import Sm2PrivateKey, SmCryptoError
from protocols.smcrypto.certificate import Certificate
from reference_terminal.durable import write_file
from reference_terminal.security.errors import SecretsError, SecurityError
from reference_terminal.security.secrets import SealedFile, SecretBox

PURPOSE = "device-sm2-key"
DEVICE_IDENTITY = (
    "ISC-2 §7.4.1: 碳排放监测端设备需采用经过国家信息中心认证的统一的 CA 数字认证证书; "
    "§7.4.2.1: 为设备、系统颁发唯一可信标识凭证"
)


class IdentityError(SecurityError):
    """The device key or certificate is missing, unreadable, or they do not belong together."""

    code = "identity_error"
    clause = DEVICE_IDENTITY


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """The key that signs and the certificate that vouches for it."""

    key: Sm2PrivateKey
    certificate: Certificate

    @classmethod
    def load(
        cls, key_file: str | Path, certificate_file: str | Path, box: SecretBox
    ) -> DeviceIdentity:
        key = load_device_key(key_file, box)
        try:
            certificate = Certificate.from_pem(Path(certificate_file).read_bytes())
        except OSError as exc:
            raise IdentityError(
                f"cannot read the device certificate {certificate_file}: {exc.strerror}"
            ) from None
        except SmCryptoError as exc:
            raise IdentityError(f"the device certificate {certificate_file}: {exc}") from None
        if certificate.public_key != key.public_key():
            raise IdentityError(
                f"the device certificate {certificate_file} certifies another key than the one "
                f"in {key_file}: platforms would reject every signed record"
            )
        return cls(key, certificate)


def create_device_key(path: str | Path, box: SecretBox) -> Sm2PrivateKey:
    """A new SM2 key, sealed into ``path`` (mode 0600, fsynced); refuses to replace one."""
    sealed = SealedFile(path, box, PURPOSE)
    if sealed.path.exists():
        raise IdentityError(f"{path} already holds a device key; a new one needs a new certificate")
    key = Sm2PrivateKey.generate()
    sealed.write({"pkcs8": key.to_der().hex()})
    return key


def install_certificate(path: str | Path, pem: str, key: Sm2PrivateKey) -> Certificate:
    """Check that ``pem`` certifies ``key`` and install it at ``path`` durably (written aside,
    fsynced, renamed, the directory fsynced): a certificate lost on a power cut would keep the
    terminal from booting, and one half written would be refused as not PEM."""
    try:
        certificate = Certificate.from_pem(pem.encode("ascii"))
    except (UnicodeEncodeError, SmCryptoError) as exc:
        raise IdentityError(f"not a device certificate: {exc}") from None
    if certificate.public_key != key.public_key():
        raise IdentityError("the certificate certifies another key than the device's")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file(target, pem.encode("ascii"))
    return certificate


def load_device_key(path: str | Path, box: SecretBox) -> Sm2PrivateKey:
    try:
        document = SealedFile(path, box, PURPOSE).read()
    except SecretsError as exc:
        raise IdentityError(f"the device key {path} cannot be opened: {exc.message}") from None
    if document is None:
        raise IdentityError(f"no device key in {path} (make one: python -m {__name__})")
    try:
        return Sm2PrivateKey.from_der(bytes.fromhex(document["pkcs8"]))
    except (KeyError, TypeError, ValueError) as exc:  # SmCryptoError is a ValueError
        raise IdentityError(f"the device key {path} holds no SM2 key: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__name__}",
        description="Make the terminal's SM2 device key (sealed) if absent; print its public key.",
    )
    parser.add_argument("key_file", help="the sealed device key (identity.key_file)")
    parser.add_argument("master_key_file", help="the terminal's master key (security.key_file)")
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
            key = load_device_key(args.key_file, box)
        else:
            key = create_device_key(args.key_file, box)
        if args.certificate:
            issued, install_at = args.certificate
            install_certificate(install_at, Path(issued).read_text("ascii"), key)
    except OSError as exc:
        print(f"cannot install the certificate: {exc}", file=sys.stderr)
        return 1
    except SecurityError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(key.public_key().to_pem())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

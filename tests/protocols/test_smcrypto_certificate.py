"""SM2 X.509 certificates and the bench's test CA (ISC-2 §7.4.1: terminals reach the platforms
with PKI certificates): what is issued, what a platform accepts and what it refuses."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.smcrypto import Sm2PrivateKey, SmCryptoError
from protocols.smcrypto.certificate import Certificate, CertificateError, issue
from simulators.pki import TestCa

NOW = datetime(2027, 1, 1, 0, 0, 0)
DEVICE = Sm2PrivateKey.generate()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("pki"), now=NOW)


@pytest.fixture(scope="module")
def device(ca: TestCa) -> Certificate:
    return ca.issue_device(DEVICE.public_key(), subject="terminal-1", now=NOW)


def test_the_device_certificate_names_the_device_and_certifies_its_key(
    ca: TestCa, device: Certificate
) -> None:
    assert device.name("CN") == "terminal-1" and device.name("O") == "carbench"
    assert device.issuer == ca.certificate.subject
    assert device.public_key == DEVICE.public_key()
    assert not device.is_ca and ca.certificate.is_ca
    device.check_issued_by(ca.certificate, NOW)


def test_a_certificate_reads_back_from_pem_unchanged(device: Certificate) -> None:
    assert Certificate.from_pem(device.to_pem()) == device


def test_the_ca_reopens_from_its_directory(ca: TestCa) -> None:
    again = TestCa.create(ca.directory)
    assert again.certificate == ca.certificate and again.key == ca.key
    assert (ca.directory / "ca.key.pem").stat().st_mode & 0o077 == 0


def test_a_certificate_from_another_ca_is_refused(device: Certificate, tmp_path: Path) -> None:
    stranger = TestCa.create(tmp_path, now=NOW)  # same name, another key: a forgery
    with pytest.raises(CertificateError, match="does not verify"):
        device.check_issued_by(stranger.certificate, NOW)


def test_an_altered_certificate_is_refused(ca: TestCa, device: Certificate) -> None:
    other = Sm2PrivateKey.generate().public_key()
    swapped = Certificate.from_der(device.der.replace(DEVICE.public_key().point, other.point))
    with pytest.raises(CertificateError, match="does not verify"):
        swapped.check_issued_by(ca.certificate, NOW)


def test_a_certificate_outside_its_validity_is_refused(ca: TestCa) -> None:
    short = issue(
        issuer_key=ca.key,
        issuer=ca.name,
        subject=(("CN", "expired"),),
        public_key=DEVICE.public_key(),
        not_before=NOW - timedelta(days=2),
        not_after=NOW - timedelta(days=1),
    )
    with pytest.raises(CertificateError, match="is valid"):
        short.check_issued_by(ca.certificate, NOW)


def test_a_device_certificate_cannot_issue_certificates(ca: TestCa, device: Certificate) -> None:
    fake = issue(
        issuer_key=DEVICE,
        issuer=device.subject,
        subject=(("CN", "sub-device"),),
        public_key=Sm2PrivateKey.generate().public_key(),
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=1),
    )
    with pytest.raises(CertificateError, match="not a CA"):
        fake.check_issued_by(device, NOW)


@given(data=st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_garbage_raises_only_the_facades_error(data: bytes) -> None:
    with pytest.raises(SmCryptoError):
        Certificate.from_der(data)


@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
@settings(max_examples=200, deadline=None)
def test_a_flipped_bit_is_either_unreadable_or_refused(
    ca: TestCa, device: Certificate, position: int, bit: int
) -> None:
    data = bytearray(device.der)
    data[position % len(data)] ^= 1 << bit
    try:
        flipped = Certificate.from_der(bytes(data))
    except SmCryptoError:
        return
    with pytest.raises(CertificateError):
        flipped.check_issued_by(ca.certificate, NOW)


# ---- OpenSSL reads and verifies them -----------------------------------------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl 3 command line")


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, check=False, timeout=30
    )


@needs_openssl
def test_openssl_reads_the_device_certificate(device: Certificate, tmp_path: Path) -> None:
    (tmp_path / "device.pem").write_text(device.to_pem())
    shown = openssl("x509", "-in", tmp_path / "device.pem", "-noout", "-text")
    assert shown.returncode == 0, shown.stderr
    assert "SM2-with-SM3" in shown.stdout and "CN = terminal-1" in shown.stdout
    assert "CA:FALSE" in shown.stdout and "Digital Signature" in shown.stdout


@needs_openssl
def test_openssl_verifies_the_chain_with_the_gmt_0015_id(
    ca: TestCa, device: Certificate, tmp_path: Path
) -> None:
    (tmp_path / "device.pem").write_text(device.to_pem())
    ok = openssl(
        "verify",
        "-vfyopt",
        "distid:1234567812345678",
        "-attime",
        str(int((NOW - datetime(1970, 1, 1)).total_seconds())),
        "-CAfile",
        ca.certificate_file,
        tmp_path / "device.pem",
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr

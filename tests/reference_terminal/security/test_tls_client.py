"""The terminal's TLS client certificate (ISC-2 §7.4.1): its key sealed under the master key,
enrolled by a certificate request, refused at start when key and certificate do not match."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography import x509

from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.tls_client import (
    TlsIdentityError,
    certificate_request,
    client_context,
    create_tls_key,
    install_tls_certificate,
    load_tls_key,
    main,
)
from simulators.platform.client_tls import ClientCa


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_key_file(tmp_path / "keys" / "terminal.key")


def test_the_key_is_sealed_and_never_in_clear_on_disk(tmp_path: Path, box: SecretBox) -> None:
    path = tmp_path / "keys" / "tls-client.sealed"
    key = create_tls_key(path, box)
    stored = path.read_bytes()
    assert b"PRIVATE KEY" not in stored and b"pkcs8" not in stored
    assert path.stat().st_mode & 0o077 == 0
    assert load_tls_key(path, box).private_numbers() == key.private_numbers()
    with pytest.raises(TlsIdentityError, match="already holds"):
        create_tls_key(path, box)
    other = SecretBox.from_key_file(tmp_path / "other.key")
    with pytest.raises(TlsIdentityError, match=r"cannot be opened.*ISC-2 §7\.4\.1"):
        load_tls_key(path, other)


def test_enrolment_gives_a_context_presenting_the_certificate(
    tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ca = ClientCa.create(tmp_path / "ca")
    key = create_tls_key(tmp_path / "tls.sealed", box)
    request = x509.load_pem_x509_csr(certificate_request(key, "kiln terminal").encode())
    assert request.is_signature_valid
    issued = ca.issue(certificate_request(key, "kiln terminal"))
    install_tls_certificate(tmp_path / "tls.cert.pem", issued, key)
    context = client_context(
        certificate_file=tmp_path / "tls.cert.pem",
        key_file=tmp_path / "tls.sealed",
        box=box,
        ca_file=str(ca.certificate_file),
    )
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert not list(scratch.iterdir())  # the key was handed over to OpenSSL, and is gone


def test_a_certificate_of_another_key_is_refused(tmp_path: Path, box: SecretBox) -> None:
    ca = ClientCa.create(tmp_path / "ca")
    key = create_tls_key(tmp_path / "tls.sealed", box)
    stranger = create_tls_key(tmp_path / "stranger.sealed", box)
    foreign = ca.issue(certificate_request(stranger, "someone else"))
    with pytest.raises(TlsIdentityError, match="another key"):
        install_tls_certificate(tmp_path / "tls.cert.pem", foreign, key)
    (tmp_path / "tls.cert.pem").write_text(foreign)
    with pytest.raises(TlsIdentityError, match=r"another key.*ISC-2 §7\.4\.1"):
        client_context(
            certificate_file=tmp_path / "tls.cert.pem",
            key_file=tmp_path / "tls.sealed",
            box=box,
            ca_file=None,
        )


def test_the_enrolment_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    master, sealed = tmp_path / "terminal.key", tmp_path / "tls.sealed"
    assert main([str(sealed), str(master), "--subject", "kiln terminal"]) == 0
    request = capsys.readouterr().out
    assert request.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    issued = tmp_path / "issued.pem"
    issued.write_text(ClientCa.create(tmp_path / "ca").issue(request))
    installed = tmp_path / "installed.pem"
    args = [str(sealed), str(master), "--subject", "kiln terminal"]
    assert main([*args, "--certificate", str(issued), str(installed)]) == 0
    assert installed.read_text() == issued.read_text()

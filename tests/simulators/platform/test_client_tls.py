"""An HTTPS centre that takes uploads over mutual TLS only (ISC-2 §7.4.1): a client certificate
of its CA gets in, no certificate gets a 403 with the reason recorded, a certificate of another
CA does not get past the handshake."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.clock import RealClock
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.client_tls import ClientCa, ClientCaError
from tests.simulators.platform.device import MN, PW
from tests.simulators.platform.test_https import body

pytestmark = pytest.mark.anyio


def request_for(subject: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def client_files(folder: Path, key: ec.EllipticCurvePrivateKey, pem: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@pytest.fixture
def ca(tmp_path: Path) -> ClientCa:
    return ClientCa.create(tmp_path / "client-ca")


@pytest.fixture
async def mutual(ca: ClientCa, record: Record) -> AsyncIterator[HttpsServer]:
    config = HttpsCentre.model_validate(
        {
            "name": "province",
            "passwords": {MN: PW},
            "client_certificates": {"ca_file": str(ca.certificate_file)},
        }
    )
    async with HttpsServer(config, record, RealClock()) as server:
        yield server


def client(server: HttpsServer, certificate: tuple[Path, Path] | None) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    if certificate is not None:
        context.load_cert_chain(*certificate)
    return httpx.AsyncClient(verify=context, timeout=5)


async def test_a_certificate_of_the_ca_is_let_in_and_noted(
    ca: ClientCa, mutual: HttpsServer, record: Record, tmp_path: Path
) -> None:
    key, csr = request_for("terminal 0001")
    pem = ca.issue(csr)
    issued = x509.load_pem_x509_certificate(pem.encode())
    assert issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    )
    async with client(mutual, client_files(tmp_path / "c", key, pem)) as http:
        answer = await http.post(mutual.url, json=body())
    assert answer.status_code == 200
    [upload] = record.frames(centre="province", direction="in")
    assert upload.note == "ack"
    seen = mutual.client_certificates[upload.conn]
    assert seen is not None and seen.common_name == "terminal 0001"
    assert "carbench platform TLS client CA" in seen.issuer
    assert "client certificates of" in mutual.describe()


async def test_no_certificate_is_refused_with_the_reason_recorded(
    mutual: HttpsServer, record: Record
) -> None:
    async with client(mutual, None) as http:
        answer = await http.post(mutual.url, json=body())
    assert answer.status_code == 403
    assert "no client certificate" in answer.json()["error"]
    assert "ISC-2 §7.4.1" in answer.json()["error"]
    [upload] = record.frames(centre="province", direction="in")
    assert upload.note is not None and upload.note.startswith("refused: no client certificate")
    assert mutual.client_certificates[upload.conn] is None
    assert record.readings() == []


async def test_a_certificate_of_another_ca_fails_the_handshake(
    mutual: HttpsServer, record: Record, tmp_path: Path
) -> None:
    stranger = ClientCa.create(tmp_path / "stranger-ca")
    key, csr = request_for("terminal 0001")
    files = client_files(tmp_path / "s", key, stranger.issue(csr))
    async with client(mutual, files) as http:
        with pytest.raises(httpx.HTTPError):
            await http.post(mutual.url, json=body())
    assert record.frames(centre="province") == []


async def test_without_client_certificates_a_centre_asks_for_none(
    https_plain: HttpsServer,
) -> None:
    async with client(https_plain, None) as http:
        assert (await http.post(https_plain.url, json=body())).status_code == 200
    assert https_plain.client_certificates == {}


@pytest.fixture
async def https_plain(record: Record) -> AsyncIterator[HttpsServer]:
    async with HttpsServer(HttpsCentre(name="web", passwords={MN: PW}), record, RealClock()) as s:
        yield s


def test_the_ca_certifies_only_a_request_that_verifies(ca: ClientCa) -> None:
    with pytest.raises(ClientCaError, match="not a certificate request"):
        ca.issue("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    _, csr = request_for("terminal 0001")
    der = bytearray(x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ClientCaError, match="does not verify"):
        ca.issue(forged.decode())


def test_the_ca_is_reopened_from_its_directory(ca: ClientCa) -> None:
    again = ClientCa.create(ca.directory)
    assert again.certificate == ca.certificate
    assert ca.directory.joinpath("ca.key.pem").stat().st_mode & 0o077 == 0

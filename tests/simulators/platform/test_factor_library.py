"""The HTTPS centre publishes a signed factor library (CSMT §11.4 online download): nothing
until it publishes, then the envelope whose digest and SM2 signature hold for exactly what was
published, and a tampered publication whose digest does not."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from common.clock import RealClock
from protocols.factor_envelope import signed_text
from protocols.smcrypto import Sm2PublicKey, sm3
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.factor_library import (
    FactorPublisher,
    PublicationError,
    public_key_file,
)

pytestmark = pytest.mark.anyio

LIBRARY = "vintage: v\nmethodology: m\nrevision: 4\nfactors: []\n"
AT = datetime(2027, 1, 1, 0, 10, tzinfo=UTC)


@pytest.fixture
async def https(record: Record) -> AsyncIterator[HttpsServer]:
    async with HttpsServer(HttpsCentre(name="web"), record, RealClock()) as server:
        yield server


async def download(server: HttpsServer) -> httpx.Response:
    verify = ssl.create_default_context(cafile=str(server.ca_file))
    async with httpx.AsyncClient(verify=verify, timeout=5.0) as http:
        return await http.get(server.factors_url)


async def test_nothing_is_served_before_a_library_is_published(https: HttpsServer) -> None:
    answer = await download(https)
    assert answer.status_code == 404 and "CSMT §11.4" in answer.json()["error"]
    assert [d.version for d in https.library_downloads] == [None]


async def test_the_published_library_comes_signed_over_its_version_and_digest(
    https: HttpsServer,
) -> None:
    https.publisher.publish(LIBRARY, "7", AT)
    answer = await download(https)
    assert answer.status_code == 200
    envelope = answer.json()
    assert envelope["format"] == "carbench-factor-library/1"
    assert (envelope["publisher"], envelope["version"], envelope["library"]) == (
        "web",
        "7",
        LIBRARY,
    )
    assert envelope["sm3"] == sm3(LIBRARY.encode()).hex()
    message = signed_text("web", "7", envelope["published_at"], envelope["sm3"])
    signature = base64.b64decode(envelope["signature"])
    assert https.publisher.public_key.verify_der(message, signature)
    # the version is signed: the same library announced as another version does not verify
    replayed = signed_text("web", "8", envelope["published_at"], envelope["sm3"])
    assert not https.publisher.public_key.verify_der(replayed, signature)
    assert [d.version for d in https.library_downloads] == ["7"]


async def test_a_tampered_publication_no_longer_matches_its_digest(https: HttpsServer) -> None:
    https.publisher.publish(LIBRARY, "8", AT, tamper=True)
    envelope = json.loads((await download(https)).content)
    assert envelope["library"] != LIBRARY
    assert sm3(envelope["library"].encode()).hex() != envelope["sm3"]


def test_the_publishing_key_is_kept_with_its_public_half(tmp_path: Path) -> None:
    key_file = tmp_path / "publisher.pem"
    first = FactorPublisher.create("web", key_file)
    again = FactorPublisher.create("web", key_file)
    assert first.key == again.key
    public = Sm2PublicKey.from_pem(public_key_file(key_file).read_bytes())
    assert public == first.public_key


@pytest.mark.parametrize(("library", "version"), [("  \n", "1"), (LIBRARY, ""), (LIBRARY, "1\n2")])
def test_an_empty_library_or_a_bad_version_is_not_published(library: str, version: str) -> None:
    with pytest.raises(PublicationError):
        FactorPublisher.create("web").publish(library, version, AT)


def test_the_factors_path_cannot_be_the_upload_path() -> None:
    with pytest.raises(ValueError, match="factors_path"):
        HttpsCentre(name="web", path="/x", factors_path="/x")

"""Downloading the factor library from the platform the configuration names (CSMT §11.4 online
methodology configuration): the version the platform published is the one the terminal then
uses, the download is logged with that version, digest and signature, and a publication that
was changed, signed by another key or not signed at all is refused with the library left as it
was (and the refusal logged)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from common.clock import RealClock
from reference_terminal.config import TerminalConfig
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.factor_library import FactorPublisher, public_key_file
from tests.reference_terminal.accounting.terminal_config import LIBRARY, VINTAGE
from tests.reference_terminal.api.harness import make_config, running_api
from tests.reference_terminal.api.test_accounting_routes import with_accounting

AT = datetime(2027, 1, 1, 0, 10, tzinfo=UTC)
Scenario = Callable[[HttpsServer, Any, Any], Awaitable[None]]


def published_library(revision: int) -> str:
    """The terminal's own built-in vintage, as the platform republishes it at ``revision``."""
    data = yaml.safe_load((LIBRARY / "gbt32150-2015.yaml").read_text(encoding="utf-8"))
    data["revision"] = revision
    return yaml.safe_dump({"vintages": [data]}, allow_unicode=True, sort_keys=False)


def run(tmp_path: Path, scenario: Scenario, *, trust: bool = True) -> None:
    async def main() -> None:
        with Record("sqlite://", flush_interval=0.01) as record:
            async with HttpsServer(HttpsCentre(name="province"), record, RealClock()) as centre:
                key_file = tmp_path / "publisher.pem"
                centre.publisher = FactorPublisher.create("province", key_file)
                data: dict[str, Any] = copy.deepcopy(with_accounting(tmp_path))
                data["accounting"]["factor_download"] = {
                    "url": centre.factors_url,
                    "ca_file": str(centre.ca_file),
                    "trusted_keys": [str(public_key_file(key_file))] if trust else [],
                }
                config: TerminalConfig = make_config(tmp_path, data)
                async with running_api(config) as (terminal, client):
                    await scenario(centre, terminal, client)

    asyncio.run(main())


async def revision(client: Any) -> int:
    factors = (await client.get("/accounting/factors", params={"vintage": VINTAGE})).json()
    (version,) = {f["version"] for f in factors}
    return int(version)


def test_the_published_version_is_the_one_the_terminal_then_uses(tmp_path: Path) -> None:
    async def scenario(centre: HttpsServer, terminal: Any, client: Any) -> None:
        assert await revision(client) == 1
        centre.publisher.publish(published_library(5), "2027.1", AT)
        answer = await client.post("/accounting/factors/download")
        assert answer.status_code == 200, answer.text
        assert answer.json()["publication"]["version"] == "2027.1"
        assert await revision(client) == 5
        assert [d.version for d in centre.library_downloads] == ["2027.1"]
        (logged,) = await terminal.store.events(kind="method_download")
        assert logged.details["version"] == "2027.1"
        assert logged.details["publisher"] == "province"
        assert logged.details["signature"] == "verified"
        assert logged.details["revisions"] == f"{VINTAGE}: 5"
        assert logged.details["origin"] == centre.factors_url

    run(tmp_path, scenario)


def refused(tamper: str, code: str) -> Scenario:
    async def scenario(centre: HttpsServer, terminal: Any, client: Any) -> None:
        if tamper == "changed":
            centre.publisher.publish(published_library(6), "6", AT, tamper=True)
        elif tamper == "other key":
            centre.publisher = FactorPublisher.create("province")
            centre.publisher.publish(published_library(6), "6", AT)
        answer = await client.post("/accounting/factors/download", json={})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == code
        assert await revision(client) == 1
        assert await terminal.store.events(kind="method_download") == []
        (logged,) = await terminal.store.events(kind="method_download_refused")
        assert logged.details["code"] == code.removeprefix("download_")

    return scenario


def test_a_library_changed_after_publishing_is_refused(tmp_path: Path) -> None:
    run(tmp_path, refused("changed", "download_digest"))


def test_a_library_signed_by_a_key_the_terminal_does_not_trust_is_refused(
    tmp_path: Path,
) -> None:
    run(tmp_path, refused("other key", "download_signature"))


def test_a_bare_library_is_refused_when_the_terminal_trusts_publishing_keys(
    tmp_path: Path,
) -> None:
    async def scenario(centre: HttpsServer, terminal: Any, client: Any) -> None:
        bare = centre.url.replace(centre.config.path, "/bare.yaml")

        @centre.app.get("/bare.yaml")
        async def bare_library() -> str:
            return published_library(6)

        answer = await client.post(
            "/accounting/factors/download", json={"url": bare, "ca_file": str(centre.ca_file)}
        )
        assert answer.status_code == 422 and answer.json()["error"] == "download_unsigned"
        assert await revision(client) == 1

    run(tmp_path, scenario)


def test_without_trusted_keys_the_digest_is_still_checked(tmp_path: Path) -> None:
    async def scenario(centre: HttpsServer, terminal: Any, client: Any) -> None:
        centre.publisher.publish(published_library(6), "6", AT, tamper=True)
        answer = await client.post("/accounting/factors/download")
        assert answer.status_code == 422 and answer.json()["error"] == "download_digest"
        centre.publisher.publish(published_library(6), "6", AT)
        answer = await client.post("/accounting/factors/download")
        assert answer.status_code == 200, answer.text
        assert answer.json()["publication"]["signature"] == "none"
        assert await revision(client) == 6

    run(tmp_path, scenario, trust=False)


def test_nothing_published_is_a_failed_download(tmp_path: Path) -> None:
    async def scenario(centre: HttpsServer, terminal: Any, client: Any) -> None:
        answer = await client.post("/accounting/factors/download")
        assert answer.status_code == 502 and "HTTP 404" in answer.json()["detail"]
        assert await revision(client) == 1

    run(tmp_path, scenario)

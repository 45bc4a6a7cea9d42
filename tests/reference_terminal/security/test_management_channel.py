"""The management API on its SM port (ISC-2 §7.4.1.2), over real sockets: the whole API
through the channel (login, roles, the administrator's source address seen as the real peer),
and nothing of it for a peer that does not speak the channel or breaks its records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bench.adapters.management_server import ManagementServer
from protocols.smchannel import ClientConnection, PeerAlert, ServerTrust
from protocols.smchannel.client import ChannelTransport, open_channel
from protocols.smchannel.records import HEADER_SIZE
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.api.channel_server import (
    ChannelConfigError,
    ChannelCredentials,
    channel_protocol,
)
from reference_terminal.security.audit import AuditFilter
from simulators.pki.authority import TestCa
from tests.reference_terminal.security.harness import (
    Secured,
    auth,
    password,
    secure_config,
    secured_terminal,
)


@asynccontextmanager
async def channel_port(
    tmp_path: Path, **credentials: object
) -> AsyncIterator[tuple[Secured, ManagementServer, ServerTrust]]:
    ca = TestCa.create(tmp_path / "ca")
    key = Sm2PrivateKey.generate()
    creds = ChannelCredentials(
        key,
        ca.issue_device(key.public_key(), subject="terminal"),
        **credentials,  # type: ignore[arg-type]
    )
    async with secured_terminal(tmp_path) as secured:
        server = ManagementServer(http=channel_protocol(creds))
        await server.start(secured.terminal, secured.app)
        try:
            yield secured, server, ServerTrust(ca=ca.certificate, subject="terminal")
        finally:
            await server.stop()


def test_the_api_answers_through_the_channel(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            channel_port(tmp_path) as (_, server, trust),
            httpx.AsyncClient(
                transport=ChannelTransport(trust), base_url=server.base_url
            ) as client,
        ):
            login = await client.post(
                "/auth/login", json={"user": "admin", "password": password("admin")}
            )
            assert login.status_code == 200, login.text  # the peer is 127.0.0.1
            token = login.json()["token"]
            config = await client.get("/config", headers=auth(token))
            assert config.status_code == 200
            answers = await asyncio.gather(
                *(client.get("/health", headers=auth(token)) for _ in range(20))
            )
            assert {a.status_code for a in answers} == {200}
            stranger = await client.get("/config")
            assert stranger.status_code == 401

    asyncio.run(main())


def test_plain_http_on_the_channel_port_gets_no_answer(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            channel_port(tmp_path) as (_, server, _trust),
            httpx.AsyncClient(base_url=server.base_url) as plain,
        ):
            with pytest.raises(httpx.RemoteProtocolError):
                await plain.get("/health")

    asyncio.run(main())


def test_a_tampered_or_replayed_request_is_dropped_unanswered(tmp_path: Path) -> None:
    async def main() -> None:
        async with channel_port(tmp_path) as (_, server, trust):
            for attack in ("tamper", "replay"):
                reader, writer = await asyncio.open_connection(server.host, server.port)
                connection = ClientConnection(trust)
                connection.start()
                writer.write(connection.data_to_send())
                while not connection.established:
                    connection.receive_data(await reader.read(65536))
                writer.write(connection.data_to_send())  # the Finished
                connection.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
                record = bytearray(connection.data_to_send())
                if attack == "tamper":
                    record[HEADER_SIZE + 12] ^= 0x04
                    writer.write(bytes(record))
                else:
                    writer.write(bytes(record))
                    answer = await reader.read(65536)
                    assert answer, "no answer to the genuine request"
                    writer.write(bytes(record))  # again
                await writer.drain()
                rest = await asyncio.wait_for(reader.read(), 10)
                assert rest == b"", f"{attack}: the terminal answered {len(rest)} bytes"
                writer.close()

    asyncio.run(main())


def test_a_refused_connection_is_a_security_event_in_the_audit_log(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            channel_port(tmp_path) as (secured, server, _trust),
            httpx.AsyncClient(base_url=server.base_url) as plain,
        ):
            with pytest.raises(httpx.RemoteProtocolError):
                await plain.get("/health")
            for _ in range(100):  # the entry is written beside the refusal, not before it
                entries, _ = await secured.service.audit.query(
                    AuditFilter(type="management_channel")
                )
                if entries:
                    break
                await asyncio.sleep(0.05)
            assert [(e.user, e.outcome, e.details["source"]) for e in entries] == [
                ("-", "failure", "127.0.0.1")
            ]
            assert entries[0].details["reason"]

    asyncio.run(main())


def test_the_wrong_terminal_key_is_refused_by_the_client(tmp_path: Path) -> None:
    async def main() -> None:
        async with channel_port(tmp_path) as (_, server, _trust):
            pinned = ServerTrust(public_key=Sm2PrivateKey.generate().public_key())
            with pytest.raises(Exception, match="pinned"):
                await open_channel(server.host, server.port, pinned)
            async with httpx.AsyncClient(
                transport=ChannelTransport(pinned), base_url=server.base_url
            ) as client:
                with pytest.raises(httpx.ConnectError, match=r"SM channel.*pinned"):
                    await client.get("/health")

    asyncio.run(main())


def test_listed_client_keys_only(tmp_path: Path) -> None:
    known = Sm2PrivateKey.generate()

    async def main() -> None:
        async with channel_port(tmp_path, client_keys=frozenset({known.public_key()})) as (
            _,
            server,
            trust,
        ):
            stream = await open_channel(server.host, server.port, trust, key=known)
            await stream.aclose()
            with pytest.raises(PeerAlert, match="not one this terminal knows"):
                await open_channel(server.host, server.port, trust)

    asyncio.run(main())


def test_the_channel_needs_a_device_certificate(tmp_path: Path) -> None:
    with pytest.raises(ChannelConfigError, match=r"identity\.certificate_file"):
        ChannelCredentials.from_config(secure_config(tmp_path))

"""The suites' management client over a real socket: a keep-alive connection the terminal
closes just as a request leaves on it costs a read a second connection, never a verdict, and
never makes an action happen twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from conformance.management import Management, ManagementUnavailable

pytestmark = pytest.mark.anyio

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"connection: keep-alive\r\n\r\n{}"
)


class ClosingServer:
    """Answers the first request on each connection and keeps it open; the next request on
    that connection finds it closed without an answer (the idle keep-alive timer of a server
    firing as the request arrives, made certain)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []  # each request line, answered or not

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = False
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests.append(head.split(b"\r\n", 1)[0])
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if answered:
                    break
                writer.write(ANSWER)
                await writer.drain()
                answered = True
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@asynccontextmanager
async def closing_server() -> AsyncIterator[tuple[ClosingServer, str]]:
    handler = ClosingServer()
    server = await asyncio.start_server(handler.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield handler, f"http://127.0.0.1:{port}"


async def test_a_read_is_sent_again_on_a_new_connection_when_the_open_one_was_closed() -> None:
    async with closing_server() as (server, url):
        management = Management(url)
        try:
            assert (await management.request("GET", "/health")).status_code == 200
            # the pooled connection is closed as this one leaves on it
            assert (await management.request("GET", "/points")).status_code == 200
        finally:
            await management.aclose()
    # the second read found the first connection closed, and went again on a new one
    assert server.requests == [b"GET /health HTTP/1.1", *[b"GET /points HTTP/1.1"] * 2]
    assert server.connections == 2


async def test_an_action_is_not_sent_again_and_the_clause_is_inconclusive() -> None:
    async with closing_server() as (server, url):
        management = Management(url)
        try:
            await management.request("GET", "/health")
            with pytest.raises(ManagementUnavailable, match=r"did not answer POST /manual"):
                await management.request("POST", "/manual", json={"point": "p", "value": "1"})
        finally:
            await management.aclose()
    assert server.requests.count(b"POST /manual HTTP/1.1") == 1
    assert server.connections == 1

"""Every request body has a limit: over it, 413 before any route reads it, whether the body
says its length or arrives in chunks; file routes have limits of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reference_terminal.api.body_limit import BodyLimit

LIMIT = 4096
SEEN: list[int] = []


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    SEEN.append(len(body))
    return JSONResponse({"bytes": len(body)})


def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/auth/login", echo, methods=["POST"]),
                            Route("/restore", echo, methods=["POST"])])  # fmt: skip
    app.add_middleware(BodyLimit, default=LIMIT, by_prefix={"/restore": 64 * LIMIT})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 1024):
        yield b"x" * 1024


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_refused_before_the_route_reads_it() -> None:
    SEEN.clear()
    async with client() as http:
        declared = await http.post("/auth/login", content=b"x" * (LIMIT + 1))
        chunked = await http.post("/auth/login", content=chunks(8 * LIMIT))
        fits = await http.post("/auth/login", content=b"x" * LIMIT)
    assert declared.status_code == 413 and declared.json()["error"] == "too_large"
    assert chunked.status_code == 413
    assert fits.status_code == 200 and SEEN == [LIMIT]  # only the one that fits was read


@pytest.mark.anyio
async def test_a_file_route_takes_what_its_own_limit_allows() -> None:
    async with client() as http:
        backup = await http.post("/restore", content=b"x" * (16 * LIMIT))
        too_big = await http.post("/restore", content=b"x" * (65 * LIMIT))
    assert backup.status_code == 200 and backup.json() == {"bytes": 16 * LIMIT}
    assert too_big.status_code == 413

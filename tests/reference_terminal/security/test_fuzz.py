"""Fuzzing what an unauthenticated caller controls — the login document, the Authorization
header, the X-Confirm header — on a running secured terminal: never a 5xx, always the JSON
error shape, and every request still audited once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reference_terminal.security.harness import Secured, secured_terminal

T = TypeVar("T")
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
#: Any text, lone surrogates and NUL included (valid in JSON).
any_text = st.text(st.characters(), max_size=200)
login_documents = (
    st.fixed_dictionaries({"user": any_text, "password": any_text})
    | st.fixed_dictionaries(
        {"user": st.sampled_from(["admin", "operator", "auditor"]), "password": any_text}
    )
    | json_values
)
#: What an HTTP header value can carry (Latin-1, no CR/LF).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)
authorizations = header_text | header_text.map(lambda t: "Bearer " + t) | st.just("Bearer ")


class LoopThread:
    """One event loop in a thread for the whole test: the terminal keeps running while
    hypothesis calls a synchronous test function many times."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[LoopThread, Secured]]:
    runner = LoopThread()
    stack = contextlib.AsyncExitStack()
    try:
        s = runner.run(stack.enter_async_context(secured_terminal(tmp_path)))
        yield runner, s
    finally:
        runner.run(stack.aclose())
        runner.close()


def well_formed(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["error"], str) and isinstance(body["detail"], str)


async def audited(s: Secured) -> int:
    return len(await s.audit_entries())


def test_login_documents_never_make_a_server_error(secured: tuple[LoopThread, Secured]) -> None:
    runner, s = secured
    sent = 0
    before = runner.run(audited(s))

    async def post(**kwargs: Any) -> httpx.Response:
        async with s.client() as client:
            return await client.post("/auth/login", **kwargs)

    @FUZZ
    @given(document=login_documents, raw=st.none() | st.binary(max_size=200))
    def attempt(document: Any, raw: bytes | None) -> None:
        nonlocal sent
        if raw is None:
            # JSON escapes a lone surrogate (\ud800); httpx's json= would encode it as UTF-8
            # and fail on this side of the wire
            body = json.dumps(document).encode("ascii")
            response = runner.run(post(content=body, headers={"Content-Type": "application/json"}))
        else:
            response = runner.run(post(content=raw, headers={"Content-Type": "application/json"}))
        sent += 1
        well_formed(response)
        assert response.status_code in (200, 400, 401, 403, 422)

    attempt()
    assert runner.run(audited(s)) == before + sent


def test_authorization_headers_never_make_a_server_error(
    secured: tuple[LoopThread, Secured],
) -> None:
    runner, s = secured
    sent = 0
    before = runner.run(audited(s))

    async def get(header: str) -> httpx.Response:
        async with s.client() as client:
            # bytes: httpx would encode a str as ASCII; the wire carries Latin-1
            return await client.get("/health", headers={b"Authorization": header.encode("latin-1")})

    @FUZZ
    @given(header=authorizations)
    def attempt(header: str) -> None:
        nonlocal sent
        response = runner.run(get(header))
        sent += 1
        well_formed(response)
        assert response.status_code == 401

    attempt()
    assert runner.run(audited(s)) == before + sent


def test_confirmation_headers_never_make_a_server_error(
    secured: tuple[LoopThread, Secured],
) -> None:
    runner, s = secured
    token = runner.run(s.login("operator"))

    async def operate(confirm: str) -> httpx.Response:
        async with s.client() as client:
            return await client.post(
                "/manual",
                json={"point": "coal_t", "value": "1", "operator": "fuzz"},
                headers={
                    b"Authorization": f"Bearer {token}".encode(),
                    b"X-Confirm": confirm.encode("latin-1"),
                },
            )

    @FUZZ
    @given(confirm=header_text)
    def attempt(confirm: str) -> None:
        response = runner.run(operate(confirm))
        well_formed(response)
        # a wrong password, then the lockout it leads to, then a session that lockout ended
        assert response.status_code in (401, 403)

    attempt()

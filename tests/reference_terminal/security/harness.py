"""A terminal with its management API secured, on a clock the test moves by hand.

The three roles' accounts come from the configuration as PBKDF2-HMAC-SM3 hashes (10 000
rounds, the least the configuration accepts: each check takes ~25 ms instead of ~250 ms).
Every client is an ``httpx`` client over ``ASGITransport`` from a chosen source address.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.security.audit import AuditEntry
from reference_terminal.security.passwords import hash_password
from reference_terminal.security.service import SecurityService
from reference_terminal.storage.store import sqlite_url
from tests.reference_terminal.api.harness import CONFIG

ITERATIONS = 10_000
#: The accounts every secured test terminal starts with: id → (role, password).
ACCOUNTS: dict[str, tuple[str, str]] = {
    "admin": ("administrator", "Adm1n!pass"),
    "operator": ("security_operator", "Op3rator!pass"),
    "auditor": ("auditor", "Aud1tor!pass"),
}
LOCAL = "127.0.0.1"
#: Outside the default administrator networks.
REMOTE = "10.20.30.40"


@cache
def account_hash(user: str) -> str:
    return hash_password(ACCOUNTS[user][1], ITERATIONS)


def password(user: str) -> str:
    return ACCOUNTS[user][1]


class ManualClock:
    """Time moves only when the test says: ``advance(s)`` wakes every sleeper it passes."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


def security_section(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "key_file": str(tmp_path / "keys" / "terminal.key"),
        "state_dir": str(tmp_path / "security"),
        "initial_users": [
            {"id": user, "role": role, "password_hash": account_hash(user)}
            for user, (role, _) in ACCOUNTS.items()
        ],
        "passwords": {"kdf_iterations": ITERATIONS},
    }
    section.update(overrides)
    return section


def secure_config(tmp_path: Path, **overrides: Any) -> TerminalConfig:
    data = copy.deepcopy(CONFIG)
    data["storage"] = {"url": sqlite_url(tmp_path / "terminal.db")}
    data["security"] = security_section(tmp_path, **overrides)
    return TerminalConfig.model_validate(data)


@dataclass
class Secured:
    """A running secured terminal: its app, clock, security service and clients."""

    terminal: Terminal
    app: FastAPI
    clock: ManualClock
    db: Path

    @property
    def service(self) -> SecurityService:
        service = self.app.state.security
        assert isinstance(service, SecurityService)
        return service

    def client(self, source: str = LOCAL) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(source, 50_000))
        return httpx.AsyncClient(transport=transport, base_url="http://terminal")

    async def login(self, user: str, source: str = LOCAL, secret: str | None = None) -> str:
        async with self.client(source) as client:
            response = await client.post(
                "/auth/login", json={"user": user, "password": secret or password(user)}
            )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token

    async def session(self, user: str, source: str = LOCAL) -> httpx.AsyncClient:
        """A client logged in as ``user`` whose control operations are confirmed."""
        token = await self.login(user, source)
        client = self.client(source)
        client.headers.update(auth(token, confirm=password(user)))
        return client

    async def audit_entries(self) -> list[AuditEntry]:
        entries, _ = await self.service.audit.query(limit=None)
        return entries


def auth(token: str, *, confirm: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if confirm is not None:
        headers["X-Confirm"] = confirm
    return headers


@contextlib.asynccontextmanager
async def secured_terminal(
    tmp_path: Path, *, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[Secured]:
    """Start a secured terminal on a manual clock and wait until its store is open."""
    config = secure_config(tmp_path, **overrides)
    clock = clock or ManualClock()
    terminal = Terminal(config, clock=clock)
    app = create_app(terminal)
    task = asyncio.create_task(terminal.run())
    ready = asyncio.create_task(terminal.ready.wait())
    try:
        await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert terminal.ready.is_set(), "the terminal did not start within 10 s"
        yield Secured(terminal, app, clock, tmp_path / "terminal.db")
    finally:
        ready.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def details(entry: AuditEntry) -> Mapping[str, str]:
    return entry.details

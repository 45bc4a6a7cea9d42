"""A real terminal (SQLite in a temporary directory) with its management API, for the tests."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.storage.store import sqlite_url

#: Two manual points (a counter and a ranged gauge) and one point an HTTPS collector pushes.
CONFIG: dict[str, Any] = {
    "name": "api test terminal",
    "devices": [
        {"id": "desk", "protocol": "manual"},
        {"id": "collector", "protocol": "https", "mode": "push"},
    ],
    "groups": [{"id": "monthly", "period_s": 10800}, {"id": "pushed", "period_s": 60}],
    "points": [
        {
            "id": "coal_t",
            "name": "coal received",
            "unit": "t",
            "kind": "counter",
            "group": "monthly",
            "decimals": 2,
            "source": {"device": "desk", "name": "coal.mass_t"},
        },
        {
            "id": "lime_t",
            "name": "lime stock",
            "unit": "t",
            "group": "monthly",
            "decimals": 1,
            "min": "0",
            "max": "1000",
            "source": {"device": "desk", "name": "lime.mass_t"},
        },
        {
            "id": "heat_gj",
            "unit": "GJ",
            "kind": "counter",
            "group": "pushed",
            "decimals": 2,
            "source": {"device": "collector", "name": "heat"},
        },
    ],
}


def make_config(tmp_path: Path, data: dict[str, Any] | None = None) -> TerminalConfig:
    data = copy.deepcopy(CONFIG if data is None else data)
    data["storage"] = {"url": sqlite_url(tmp_path / "terminal.db")}
    return TerminalConfig.model_validate(data)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://terminal")


@contextlib.asynccontextmanager
async def running_api(
    config: TerminalConfig,
    *,
    terminal_factory: Callable[[TerminalConfig], Terminal] = Terminal,
) -> AsyncIterator[tuple[Terminal, httpx.AsyncClient]]:
    """Start the terminal, wait until it is ready, and give a client of its API."""
    terminal = terminal_factory(config)
    task = asyncio.create_task(terminal.run())
    ready = asyncio.create_task(terminal.ready.wait())
    try:
        await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises why the terminal stopped
        assert terminal.ready.is_set(), "the terminal did not start within 10 s"
        async with client_for(create_app(terminal)) as client:
            yield terminal, client
    finally:
        ready.cancel()
        task.cancel()
        await stopped(task)


#: A cancelled terminal stops within this (its store's last commits included).
STOP_LIMIT_S = 30.0


async def stopped(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled terminal to stop; one that does not fails with every task's stack
    (a cancellation swallowed somewhere shows up as a task still waiting), not at the per-test
    timeout with only the threads' stacks."""
    await asyncio.wait({task}, timeout=STOP_LIMIT_S)
    if not task.done():
        stacks = io.StringIO()
        for other in asyncio.all_tasks():
            other.print_stack(file=stacks)
        raise AssertionError(
            f"the terminal did not stop within {STOP_LIMIT_S:g} s of being cancelled; "
            f"tasks:\n{stacks.getvalue()}"
        )
    with contextlib.suppress(asyncio.CancelledError):
        task.result()

"""A terminal for the console's tests: the accounting test terminal (meters on loopback that
nobody answers, so acquisition fails and leaves gaps; a weighbridge entered by hand; a heat
meter pushing to the HTTPS intake; accounting with units, sources, bases and an alarm rule),
secured with the three roles' accounts, with a day of history written to its store, served by
uvicorn on 127.0.0.1 (an ephemeral port) next to the running terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from reference_terminal.api import create_app
from reference_terminal.api.wire import iso
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, Reading
from reference_terminal.storage.schema import Derived
from tests.reference_terminal.accounting.terminal_config import config_data
from tests.reference_terminal.security.harness import password, security_section

#: The gauge and the counter whose history is written before the console is looked at.
GAUGE, COUNTER = "em.kw", "em.ep"
HAND = "ticket.clinker"
PUSHED = "heat_gj"


def console_config(tmp_path: Path, *, secured: bool = True) -> TerminalConfig:
    data: dict[str, Any] = copy.deepcopy(config_data(tmp_path))
    data["name"] = "Kiln 2 terminal"
    data["devices"].append({"id": "collector", "protocol": "https", "mode": "push"})
    data["points"].append(
        {
            "id": PUSHED,
            "name": "heat to the dryer",
            "unit": "GJ",
            "kind": "counter",
            "group": "g",
            "decimals": 2,
            "source": {"device": "collector", "name": "heat"},
        }
    )
    if secured:
        data["security"] = security_section(tmp_path)
    return TerminalConfig.model_validate(data)


def gauge_value(t: float) -> Decimal:
    """A day-shaped load: 420 kW ± 90 with a faster ripple."""
    day = math.sin(2 * math.pi * (t % 86400) / 86400)
    ripple = math.sin(2 * math.pi * (t % 3600) / 900)
    return Decimal(f"{420 + 90 * day + 12 * ripple:.1f}")


async def write_history(terminal: Terminal, *, days: int = 31) -> None:
    """A minute reading of the gauge and the counter for the last day, and hourly derived
    values (the gauge's mean, the counter's increment) for the last ``days``, straight into
    the store, as processing would have left them."""
    store = terminal.store
    assert store is not None
    now = terminal.clock.time()
    minute0 = int(now // 60) * 60 - 86400
    readings = []
    register = Decimal("125000.00")
    for k in range(1440):
        t = float(minute0 + 60 * k)
        value = gauge_value(t)
        readings.append(Reading(GAUGE, t, f"{value}", value, Quality.GOOD, 1, "em"))
        register += (value / 60).quantize(Decimal("0.01"))
        readings.append(Reading(COUNTER, t, f"{register}", register, Quality.GOOD, 2, "em"))
    await store.write(readings)
    derived = []
    hour0 = int(now // 3600) * 3600 - days * 86400
    for k in range(days * 24):
        start = float(hour0 + 3600 * k)
        mean = gauge_value(start + 1800)
        derived.append(Derived(GAUGE, "hour", start, start + 3600, mean, Quality.GOOD))
        derived.append(Derived(COUNTER, "hour", start, start + 3600, mean, Quality.GOOD))
    for k in range(1440):
        start = float(minute0 + 60 * k)
        derived.append(
            Derived(GAUGE, "minute", start, start + 60, gauge_value(start), Quality.GOOD)
        )
    await store.write_derived(derived)


@dataclass
class Served:
    terminal: Terminal
    app: FastAPI
    url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    async def login(self, user: str) -> str:
        async with self.client() as client:
            answer = await client.post(
                "/auth/login", json={"user": user, "password": password(user)}
            )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    async def enter_by_hand(self, values: list[tuple[float, str]]) -> None:
        """Weighbridge tickets entered by the security operator (accounted at once)."""
        token = await self.login("operator")
        headers = {"Authorization": f"Bearer {token}", "X-Confirm": password("operator")}
        async with self.client() as client:
            for t, value in values:
                answer = await client.post(
                    "/manual",
                    json={"point": HAND, "value": value, "time": t, "operator": "li.wei"},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text

    async def push(self, value: str) -> None:
        """The heat meter pushes a reading (now) to the intake."""
        now = self.terminal.clock.time()
        async with self.client() as client:
            answer = await client.post(
                "/intake/collector",
                json={
                    "collector": "collector",
                    "time": iso(now, 8 * 3600),
                    "values": {"heat": {"value": value, "unit": "GJ"}},
                },
            )
        assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def served_terminal(config: TerminalConfig) -> AsyncIterator[Served]:
    """The terminal running, its management API (and console) served by uvicorn on
    127.0.0.1 at an ephemeral port."""
    terminal = Terminal(config)
    app = create_app(terminal)
    task = asyncio.create_task(terminal.run())
    ready = asyncio.create_task(terminal.ready.wait())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    serving: asyncio.Task[None] | None = None
    try:
        await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert terminal.ready.is_set(), "the terminal did not start within 10 s"
        serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(terminal, app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        if serving is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        ready.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

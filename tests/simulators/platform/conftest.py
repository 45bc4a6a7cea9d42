"""Fixtures for the platform tests: a record, a centre on a free loopback port, a terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from common.clock import RealClock
from simulators.platform import Hj212Centre, Hj212Server, Record
from tests.simulators.platform.device import Device


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def record() -> Iterator[Record]:
    with Record("sqlite://", flush_interval=0.01) as rec:
        yield rec


CentreFactory = Callable[..., Awaitable[Hj212Server]]
DeviceFactory = Callable[..., Awaitable[Device]]


@pytest.fixture
async def centre_factory(record: Record) -> AsyncIterator[CentreFactory]:
    started: list[Hj212Server] = []

    async def make(**config: Any) -> Hj212Server:
        spec = Hj212Centre.model_validate(
            {"name": f"centre{len(started) + 1}", "over_time": 0.3, "re_count": 2} | config
        )
        server = Hj212Server(spec, record, RealClock())
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def centre(centre_factory: CentreFactory) -> Hj212Server:
    return await centre_factory()


@pytest.fixture
async def device_factory() -> AsyncIterator[DeviceFactory]:
    devices: list[Device] = []

    async def make(centre: Hj212Server, **options: Any) -> Device:
        device = Device(**options)
        devices.append(device)
        return await device.connect(*centre.address)

    yield make
    for device in devices:
        await device.close()

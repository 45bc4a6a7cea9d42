"""OPC UA meters, read with an independent asyncua client: values, timestamps, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asyncua import ua as _ua
from asyncua.client.client import Client

from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.schema import Fleet, NamedPoint, OpcUaServer
from simulators.meters.opcua import serve_opcua

ua: Any = _ua  # asyncua's own annotations want ua.Int32 & co.; see simulators/meters/opcua.py

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
HOUR = 3600.0
NAMESPACE = "urn:carbench:test"


class ShiftedClock:
    """Wall-clock pace from a plant time the test sets, so it can jump into fault windows."""

    def __init__(self, t: float) -> None:
        self.jump(t)

    def jump(self, t: float) -> None:
        self._base, self._at = t, time.monotonic()

    def time(self) -> float:
        return self._base + time.monotonic() - self._at

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def fleet_spec(meters: list[dict[str, Any]], faults: list[dict[str, Any]]) -> Fleet:
    return Fleet.model_validate(
        {
            "name": "opcua",
            "start": START.isoformat(),
            "plant": {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]},
            "meters": meters,
            "faults": faults,
        }
    )


DCS: dict[str, Any] = {
    "id": "dcs",
    "protocol": "opcua",
    "namespace": NAMESPACE,
    "update_s": 0.1,
    "tags": [
        {
            "name": "Energy",
            "quantity": "grid.energy_import_kwh",
            "decimals": 2,
            "rounding": "floor",
        },
        {"name": "Power", "quantity": "grid.power_kw", "decimals": 1},
        {"name": "VoltageA", "quantity": "grid.voltage_a", "decimals": 3},
    ],
}
# A second system gets a second server.
EMS: dict[str, Any] = {**DCS, "id": "ems", "tags": DCS["tags"][:1]}
FAULTS: list[dict[str, Any]] = [
    {
        "meter": "dcs",
        "kind": "no_answer",
        "start": "PT1H",
        "end": "PT2H",
        "quantities": ["grid.power_kw"],
    },
    {"meter": "dcs", "kind": "exception", "start": "PT2H", "end": "PT3H"},
    {
        "meter": "dcs",
        "kind": "garbled",
        "start": "PT3H",
        "end": "PT4H",
        "quantities": ["grid.voltage_a"],
    },
    {"meter": "dcs", "kind": "slow", "start": "PT4H", "end": "PT5H", "delay_ms": 300},
]


@dataclass
class Bench:
    fleet: FleetRuntime
    clock: ShiftedClock
    client: Client
    ns: int

    def node(self, tag: str) -> Any:
        return self.client.get_node(ua.NodeId(f"dcs.{tag}", self.ns))

    async def read(self, tag: str) -> Any:
        return await self.node(tag).read_data_value(raise_on_bad_status=False)

    def point(self, tag: str) -> NamedPoint:
        spec = self.fleet.spec.meter("dcs")
        assert isinstance(spec, OpcUaServer)
        return next(p for p in spec.tags if p.name == tag)

    async def jump(self, offset_h: float) -> float:
        """Move plant time into a window and wait until the server has refreshed there."""
        t = START.timestamp() + offset_h * HOUR
        self.clock.jump(t)
        await until(lambda: self.fleet.now() > t + 0.35)  # three refreshes at least
        return t


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    # A bound on waiting, not a speed requirement: a server filling its address space on a
    # loaded 2-core machine took over 10 s (the whole suite beside two long scenarios).
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serving(fleet: FleetRuntime) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(serve_opcua(fleet))
    try:
        await until(lambda: len(fleet.endpoints) == len(fleet.meters) or task.done())
        if task.done():
            task.result()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# Every test holds for both ways of refreshing: a client cannot tell them apart.
@pytest.fixture(scope="module", params=["periodic", "on_read"])
async def bench(anyio_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Bench]:
    clock = ShiftedClock(START.timestamp() + 0.5 * HOUR)
    fleet = FleetRuntime(fleet_spec([DCS, EMS], FAULTS), clock, opcua_refresh=request.param)
    async with serving(fleet) as task:
        url = next(e.address for e in fleet.endpoints if e.meter == "dcs")
        async with Client(url) as client:
            ns = await client.get_namespace_index(NAMESPACE)
            yield Bench(fleet, clock, client, ns)
    # Cancelling stops every server: its port no longer accepts connections.
    assert task.cancelled()
    for endpoint in fleet.endpoints:
        host, port = endpoint.address.removeprefix("opc.tcp://").split("/")[0].split(":")
        with pytest.raises(OSError):
            await asyncio.open_connection(host, int(port))


def source_time(value: Any) -> float:
    stamp: datetime = value.SourceTimestamp
    return stamp.replace(tzinfo=UTC).timestamp() if stamp.tzinfo is None else stamp.timestamp()


def status(value: Any) -> int:
    code: int = value.StatusCode.value
    return code


def observed(fleet: FleetRuntime, quantity: str, t: float) -> Decimal:
    """What the meter recorded reading at ``t`` (the DataValue's timestamp is µs-exact)."""
    found = [o for o in fleet.observations if o.quantity == quantity and abs(o.t - t) < 2e-6]
    assert len(found) == 1, (quantity, t, found)
    return found[0].value


async def test_the_endpoint_and_address_space(bench: Bench) -> None:
    endpoint = next(e for e in bench.fleet.endpoints if e.meter == "dcs")
    assert endpoint.meter == "dcs"
    assert endpoint.protocol == "opcua"
    assert endpoint.address.startswith("opc.tcp://127.0.0.1:")
    assert endpoint.address.endswith("/carbench/dcs")
    assert not endpoint.address.startswith("opc.tcp://127.0.0.1:0/")
    folder = await bench.client.nodes.objects.get_child([f"{bench.ns}:dcs"])
    names = [(await node.read_browse_name()).Name for node in await folder.get_children()]
    assert names == ["Energy", "Power", "VoltageA"]
    assert await bench.node("Energy").read_data_type_as_variant_type() == ua.VariantType.Double
    description = await bench.node("Energy").read_description()
    assert description.Text == "grid.energy_import_kwh [kWh], 2 decimals (floor)"


async def test_tags_show_the_plant_at_their_resolution_when_read(bench: Bench) -> None:
    await bench.jump(0.5)
    for tag in ("Energy", "Power", "VoltageA"):
        value = await bench.read(tag)
        assert status(value) == ua.StatusCodes.Good
        assert value.Value.VariantType == ua.VariantType.Double
        t = source_time(value)
        assert value.ServerTimestamp == value.SourceTimestamp
        assert bench.fleet.now() - 1.0 < t <= bench.fleet.now()
        point = bench.point(tag)
        truth = quantize(bench.fleet.plant.value(point.quantity, t), point)
        assert Decimal(repr(value.Value.Value)) == truth == observed(bench.fleet, point.quantity, t)
    first = source_time(await bench.read("Energy"))
    await asyncio.sleep(0.3)
    assert source_time(await bench.read("Energy")) >= first + 0.2  # refreshed every 0.1 s


async def test_server_time_follows_the_fleet_clock(bench: Bench) -> None:
    t = await bench.jump(0.6)
    node = bench.client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime))
    shown: datetime = await node.read_value()
    assert abs(shown.replace(tzinfo=UTC).timestamp() - bench.fleet.now()) < 1.0
    assert shown.replace(tzinfo=UTC).timestamp() > t


async def test_no_answer_makes_the_tag_bad_and_stops_reading_it(bench: Bench) -> None:
    t = await bench.jump(1.0 + 1 / 60)
    power = await bench.read("Power")
    assert status(power) == ua.StatusCodes.BadCommunicationError
    assert power.Value.Value is None  # Part 4: a Bad value is null
    assert source_time(power) > t  # stamped when the failure was seen
    assert not [o for o in bench.fleet.observations if o.quantity == "grid.power_kw" and o.t >= t]
    energy = await bench.read("Energy")  # the fault names only grid.power_kw
    assert status(energy) == ua.StatusCodes.Good
    assert source_time(energy) > t


async def test_exception_is_a_sensor_failure_on_every_tag(bench: Bench) -> None:
    await bench.jump(2.0 + 1 / 60)
    for tag in ("Energy", "Power", "VoltageA"):
        assert status(await bench.read(tag)) == ua.StatusCodes.BadSensorFailure


async def test_a_garbled_answer_leaves_the_last_value_uncertain(bench: Bench) -> None:
    await bench.jump(3.5 - 1 / 60)
    await bench.jump(3.5)  # inside the window; the last good reading was just before it
    voltage = await bench.read("VoltageA")
    assert status(voltage) == ua.StatusCodes.UncertainLastUsableValue
    last = [o for o in bench.fleet.observations if o.quantity == "grid.voltage_a"][-1]
    assert last.t < START.timestamp() + 3.5 * HOUR
    assert Decimal(repr(voltage.Value.Value)) == last.value
    assert status(await bench.read("Energy")) == ua.StatusCodes.Good


async def test_a_slow_source_delivers_its_values_late(bench: Bench) -> None:
    await bench.jump(4.0 + 1 / 60)
    await asyncio.sleep(0.35)  # past the first delayed write
    for _ in range(5):
        value = await bench.read("Energy")
        assert status(value) == ua.StatusCodes.Good
        assert bench.fleet.now() - source_time(value) >= 0.28  # written 300 ms after reading
        await asyncio.sleep(0.13)


async def test_values_recover_after_the_faults(bench: Bench) -> None:
    t = await bench.jump(5.5)
    await asyncio.sleep(0.35)  # a write delayed by the slow window may still land
    for tag in ("Energy", "Power", "VoltageA"):
        value = await bench.read(tag)
        assert status(value) == ua.StatusCodes.Good
        assert source_time(value) > t


async def test_each_meter_has_its_own_server(bench: Bench) -> None:
    addresses = {e.meter: e.address for e in bench.fleet.endpoints}
    assert set(addresses) == {"dcs", "ems"}
    assert addresses["ems"].endswith("/carbench/ems")
    assert addresses["dcs"].rsplit(":", 1)[1] != addresses["ems"].rsplit(":", 1)[1]
    async with Client(addresses["ems"]) as client:
        ns = await client.get_namespace_index(NAMESPACE)
        folder = await client.nodes.objects.get_child([f"{ns}:ems"])
        assert len(await folder.get_children()) == 1
        value: Any = await client.get_node(ua.NodeId("ems.Energy", ns)).read_data_value()
        assert status(value) == ua.StatusCodes.Good
        truth = quantize(
            bench.fleet.plant.value("grid.energy_import_kwh", source_time(value)),
            bench.point("Energy"),
        )
        assert Decimal(repr(value.Value.Value)) == truth


def test_on_read_refreshes_cost_the_virtual_clock_no_step() -> None:
    """Under virtual time an idle hour is one clock step, not one a refresh; a read then shows
    the refresh of its instant, as the periodic loop would."""

    async def main() -> None:
        clock = VirtualClock(START.timestamp() + 0.5 * HOUR)
        fleet = FleetRuntime(fleet_spec([DCS], []), clock, opcua_refresh="on_read")
        with clock.hold():  # the address space takes real time, no plant time
            task = asyncio.create_task(serve_opcua(fleet))
            await until(lambda: bool(fleet.endpoints) or task.done())
        try:
            async with Client(fleet.endpoints[0].address) as client:
                ns = await client.get_namespace_index(NAMESPACE)
                steps = clock.steps
                await clock.sleep(HOUR + 0.25)
                assert clock.steps == steps + 1
                node = client.get_node(ua.NodeId("dcs.Energy", ns))
                value: Any = await node.read_data_value()
                last_refresh = clock.time() - 0.05  # every 0.1 s since the start: 3600.2 s
                assert source_time(value) == pytest.approx(last_refresh, abs=1e-5)
                spec = fleet.spec.meter("dcs")
                assert isinstance(spec, OpcUaServer)
                truth = quantize(
                    fleet.plant.value("grid.energy_import_kwh", source_time(value)), spec.tags[0]
                )
                assert Decimal(repr(value.Value.Value)) == truth
                assert len(fleet.observations) == 2 * 3  # set-up and one refresh, not 36 001
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())

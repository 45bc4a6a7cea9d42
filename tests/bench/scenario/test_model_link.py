"""The model link (``meters: model``): the terminal reads each meter's model through its drivers'
interface. A read through it is the read the wire gives at the same instant, every point of the
small fleet included, and a meter's communication fault still fails the read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bench.scenario.model_link import ModelLink
from bench.terminal_for_fleet import terminal_config
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.drivers import WIRE, make_buses, requests_for
from reference_terminal.config import (
    Cjt188Device,
    Dlt645Device,
    ModbusRtuDevice,
    SqlDevice,
    TerminalConfig,
)
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet

SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"
#: Devices read on a serial bus (the wire takes bus time) or from a historian's last recording:
#: their wire reads do not fall on the model read's instant.
NOT_INSTANT = (Dlt645Device, Cjt188Device, ModbusRtuDevice, SqlDevice)


@asynccontextmanager
async def small_fleet(
    faults: list[dict[str, str]] | None = None, *, serve: bool = True
) -> AsyncIterator[tuple[FleetRuntime, TerminalConfig, VirtualClock]]:
    spec = load_fleet(SMALL)
    if faults:
        spec = spec.model_validate({**spec.model_dump(mode="json"), "faults": faults})
    clock = VirtualClock(spec.start.timestamp() + 3600)
    async with running_fleet(
        spec, clock=clock, serial_pacing="frame", opcua_refresh="on_read", serve=serve
    ) as fleet:
        yield fleet, terminal_config(fleet, storage_url="sqlite://"), clock


def test_every_polled_point_reads_through_the_model_as_on_the_wire() -> None:
    async def main() -> None:
        async with small_fleet() as (fleet, config, clock):
            link = ModelLink(fleet)
            buses = make_buses(config.buses, clock)
            polled = [d for d in config.devices if link.polled(d)]
            # a collector that pushes on the wire is read at its period through the model
            assert {d.protocol for d in polled} >= {"mqtt", "https", "opcua", "modbus-tcp"}
            assert all(d.protocol != "manual" for d in polled)
            for device in polled:
                requests = requests_for(config, device.id)
                model = await link.driver(device, buses=buses, clock=clock).read(requests)
                assert [r.point for r in model] == [p.id for p, _ in requests], device.id
                assert all(r.error is None and r.value is not None for r in model), model
                shown = {(o.meter, o.quantity): o.value for o in fleet.observations}
                if isinstance(device, NOT_INSTANT) or not WIRE.polled(device):
                    # exactly what the meter showed (its record of the answer)
                    for (point, _), raw in zip(requests, model, strict=True):
                        assert raw.value == shown[device.id, point.name], (point.id, raw)
                    continue
                wire_driver = WIRE.driver(device, buses=buses, clock=clock)
                try:
                    with clock.hold():  # the same instant: no time passes during the read
                        wire = await wire_driver.read(requests)
                finally:
                    await wire_driver.close()
                assert [(r.point, r.value, r.t) for r in model] == [
                    (r.point, r.value, r.t) for r in wire
                ], device.id
                if device.protocol == "modbus-tcp":  # the same register words
                    assert [r.raw for r in model] == [r.raw for r in wire]
            for arbiter in buses.values():
                arbiter.close()

    asyncio.run(main())


def test_an_unserved_fleet_configures_the_same_terminal_read_through_the_model() -> None:
    """A model-read scenario starts no meter's server: each names the host ``model``, and the
    terminal made from that has the served fleet's devices, buses and points, only placed
    elsewhere; every polled point reads through the model."""

    def without_places(config: TerminalConfig) -> list[object]:
        places = {"host", "port", "endpoint", "url", "ca_file"}
        devices = [d.model_dump(exclude=places) for d in config.devices]
        buses = [b.model_dump(exclude={"port"}) for b in config.buses]
        return [devices, buses, [p.model_dump() for p in config.points]]

    async def main() -> None:
        async with small_fleet() as (_, served, _):
            pass
        async with small_fleet(serve=False) as (fleet, config, clock):
            assert without_places(config) == without_places(served)
            assert all("model" in e.address for e in fleet.endpoints)
            link = ModelLink(fleet)
            for device in (d for d in config.devices if link.polled(d)):
                raws = await link.driver(device, buses={}, clock=clock).read(
                    requests_for(config, device.id)
                )
                assert raws and all(r.value is not None for r in raws), device.id

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kind", "failure"),
    [("no_answer", "timeout"), ("bad_checksum", "checksum"), ("garbled", "garbled")],
)
def test_a_meter_that_does_not_answer_usably_fails_the_read(kind: str, failure: str) -> None:
    async def main() -> None:
        faults = [{"meter": m, "kind": kind} for m in ("em-grid", "pm-mill")]
        async with small_fleet(faults) as (fleet, config, clock):
            link = ModelLink(fleet)
            for device_id in ("em-grid", "pm-mill"):  # a DL/T 645 and a Modbus RTU meter
                device = config.device(device_id)
                driver = link.driver(device, buses={}, clock=clock)
                with pytest.raises(DriverError) as caught:
                    await driver.read(requests_for(config, device_id))
                assert caught.value.kind == failure and caught.value.device == device_id

    asyncio.run(main())


def test_an_exception_reply_fails_each_point_not_the_device() -> None:
    async def main() -> None:
        faults = [{"meter": m, "kind": "exception"} for m in ("em-grid", "pm-mill")]
        async with small_fleet(faults) as (fleet, config, clock):
            link = ModelLink(fleet)
            for device_id in ("em-grid", "pm-mill"):
                device = config.device(device_id)
                raws = await link.driver(device, buses={}, clock=clock).read(
                    requests_for(config, device_id)
                )
                assert raws and all(r.value is None and r.error for r in raws), raws

    asyncio.run(main())


def test_a_device_the_fleet_does_not_have_is_refused() -> None:
    async def main() -> None:
        async with small_fleet() as (fleet, config, clock):
            stranger = config.devices[0].model_copy(update={"id": "elsewhere"})
            with pytest.raises(ValueError, match="no such meter"):
                ModelLink(fleet).driver(stranger, buses={}, clock=clock)

    asyncio.run(main())

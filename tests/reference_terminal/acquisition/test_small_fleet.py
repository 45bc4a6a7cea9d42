"""Acceptance: the terminal's configuration for fixtures/fleets/small.yaml, its drivers made by
the factory, reads every meter of the fleet and gets exactly what each meter sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reference_terminal.acquisition.drivers import (
    is_polled,
    make_buses,
    make_driver,
    requests_for,
)
from reference_terminal.acquisition.manual import import_csv
from reference_terminal.acquisition.mqtt import MqttIntake
from reference_terminal.config import MqttDevice, TerminalConfig
from reference_terminal.model import RawValue
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet
from simulators.meters.https import https_endpoint

from .fleets import CLOCK, good, sent_at, was_sent

SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"

#: point id → (device, source fields, the meter's quantity)
POINTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "grid_kwh": ("em-grid", {"di": "00010000"}, "grid.energy_import_kwh"),
    "grid_vb": ("em-grid", {"di": "0201FF00", "index": 1}, "grid.voltage_b"),
    "grid_ic": ("em-grid", {"di": "0202FF00", "index": 2}, "grid.current_c"),
    "pv_kwh": ("em-pv", {"di": "00020000"}, "pv.energy_export_kwh"),
    "mill_kwh_645": ("em-old", {"di": "9010"}, "mill.energy_import_kwh"),
    "water_m3": ("wm-process", {"field": "current_total"}, "process_water.volume_m3"),
    "gas_nm3": ("gm-boiler", {"field": "current_total"}, "boiler_gas.volume_nm3"),
    "heat_kwh": ("hm-heat", {"field": "current_heat"}, "hot_water.heat_kwh"),
    "heat_flow": ("hm-heat", {"field": "flow"}, "hot_water.flow_m3_h"),
    "heat_return": ("hm-heat", {"field": "return_temp"}, "hot_water.return_temp_c"),
    "mill_kw": ("pm-mill", {"register": {"address": 0, "type": "float32"}}, "mill.power_kw"),
    "mill_kwh": (
        "pm-mill",
        {"register": {"address": 2, "type": "uint32", "word_order": "little", "scale": "0.01"}},
        "mill.energy_import_kwh",
    ),
    "mill_va": (
        "pm-mill",
        {"register": {"address": 10, "table": "input", "type": "int16", "scale": "0.1"}},
        "mill.voltage_a",
    ),
    "co2_pct": ("plc-cems", {"register": {"address": 0, "type": "float32"}}, "stack.co2_pct"),
    "co2_t": (
        "plc-cems",
        {"register": {"address": 10, "type": "uint64", "scale": "0.001"}},
        "stack.co2_t",
    ),
    "cement_t": ("dcs", {"node": "s=dcs.CementOutput_t"}, "cement_out.mass_t"),
    "grid_kwh_ems": ("collector-https", {"name": "grid_energy"}, "grid.energy_import_kwh"),
    "gas_mqtt": ("collector-mqtt", {"name": "gas_total"}, "boiler_gas.volume_nm3"),
    "clinker": ("manual-clinker", {"name": "clinker_received"}, "clinker_in.mass_t"),
}


def terminal_config(fl: FleetRuntime) -> TerminalConfig:
    where = {e.meter: e.address for e in fl.endpoints}
    buses = [
        {
            "id": b.id,
            "port": where[b.id],
            "protocol": b.protocol,
            "baud": b.baud,
            "framing": b.framing,
        }
        for b in fl.spec.buses
    ]
    host, _, rest = where["plc-cems"].partition(":")
    mqtt_host, _, mqtt_port = (
        where["collector-mqtt"].removeprefix("mqtt://").split("/")[0].partition(":")
    )
    url, ca = https_endpoint(fl, "collector-https")
    devices = [
        {"id": "em-grid", "protocol": "dlt645-2007", "bus": "rs485_645", "address": "000000000001"},
        {"id": "em-pv", "protocol": "dlt645-2007", "bus": "rs485_645", "address": "000000000002"},
        {"id": "em-old", "protocol": "dlt645-1997", "bus": "rs485_645", "address": "000000000003"},
        {
            "id": "wm-process",
            "protocol": "cjt188",
            "bus": "rs485_188",
            "meter_type": "water",
            "address": "00000000000011",
        },
        {
            "id": "gm-boiler",
            "protocol": "cjt188",
            "bus": "rs485_188",
            "meter_type": "gas",
            "address": "00000000000012",
            "di_order": "swapped",
        },
        {
            "id": "hm-heat",
            "protocol": "cjt188",
            "bus": "rs485_188",
            "meter_type": "heat",
            "address": "00000000000013",
        },
        {"id": "pm-mill", "protocol": "modbus-rtu", "bus": "rs485_rtu", "unit_id": 5},
        {"id": "plc-cems", "protocol": "modbus-tcp", "host": host, "port": int(rest.split()[0])},
        {"id": "dcs", "protocol": "opcua", "endpoint": where["dcs"]},
        {
            "id": "collector-https",
            "protocol": "https",
            "url": f"{url}/readings",
            "ca_file": str(ca),
        },
        {
            "id": "collector-mqtt",
            "protocol": "mqtt",
            "host": mqtt_host,
            "port": int(mqtt_port),
            "topic": "plant/small/collector-1",
        },
        {"id": "manual-clinker", "protocol": "manual"},
    ]
    points = [
        {"id": pid, "group": "g", "source": {"device": device, **source}}
        for pid, (device, source, _) in POINTS.items()
    ]
    return TerminalConfig.model_validate(
        {
            "buses": buses,
            "devices": devices,
            "groups": [{"id": "g", "period_s": 60}],
            "points": points,
        }
    )


def test_the_small_fleet_read_through_the_factory(tmp_path: Path) -> None:
    spec = load_fleet(SMALL)
    # The MQTT collector publishes every 2 s; every 0.2 s keeps the test short.
    meters = [
        m.model_copy(update={"interval_s": 0.2}) if m.id == "collector-mqtt" else m
        for m in spec.meters
    ]
    spec = spec.model_copy(update={"meters": meters})

    async def main() -> TerminalConfig:
        async with running_fleet(spec, manual_dir=tmp_path) as fl:
            config = terminal_config(fl)
            buses = make_buses(config.buses, CLOCK)
            drivers = {
                d.id: make_driver(d, buses=buses, clock=CLOCK)
                for d in config.devices
                if is_polled(d)
            }
            ids = list(drivers)
            batches = await asyncio.gather(*(drivers[i].read(requests_for(config, i)) for i in ids))
            got: dict[str, RawValue] = {r.point: r for batch in batches for r in batch}
            for pid, (device, _, quantity) in POINTS.items():
                if device in drivers and device != "collector-https":
                    assert was_sent(fl, device, quantity, good(got[pid])), pid
            ems = got["grid_kwh_ems"]
            assert good(ems) == sent_at(
                fl, "collector-https", POINTS["grid_kwh_ems"][2], ems.t, 0.002
            )
            assert all(b.max_in_flight == 1 for b in buses.values())

            mqtt = config.device("collector-mqtt")
            assert isinstance(mqtt, MqttDevice)
            pushed: list[Sequence[RawValue]] = []

            async def deliver(raws: Sequence[RawValue]) -> None:
                pushed.append(raws)

            intake = MqttIntake(mqtt, requests_for(config, mqtt.id), deliver, CLOCK)
            task = asyncio.create_task(intake.run())
            while not pushed:
                await asyncio.sleep(0.02)
            task.cancel()
            (gas,) = pushed[0]
            assert good(gas) == sent_at(fl, "collector-mqtt", "boiler_gas.volume_nm3", gas.t, 0.002)
            for driver in drivers.values():
                await driver.close()
            for bus in buses.values():
                bus.close()
            return config

    config = asyncio.run(main())
    result = import_csv(
        tmp_path / "manual-clinker.csv", config.points, clock=CLOCK, device="manual-clinker"
    )
    assert result.values and not result.rejected
    assert {v.reading.point for v in result.values} == {"clinker"}

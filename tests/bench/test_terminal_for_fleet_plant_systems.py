"""The terminal's configuration for a fleet's analog module and SQL historian: what the bench
wires, and the reference terminal's drivers reading what those meters showed — a scaled 4–20 mA
input to its resolution, an out-of-range current flagged, a historian's latest rows."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.terminal_for_fleet import terminal_config
from common.clock import RealClock
from reference_terminal.acquisition.drivers import make_driver, requests_for
from reference_terminal.config import Analog, ModbusTcpDevice, SqlDevice, TerminalConfig
from reference_terminal.model import Quality, RawValue
from reference_terminal.processing.validation import to_reading
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import Fleet

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"
KINDS = ("analog", "sql")


def plant_systems(faults: list[dict[str, Any]]) -> Fleet:
    """The small fleet's analog module and historian alone (no accounting, no buses)."""
    data = load_fleet(SMALL).model_dump(mode="json")
    data["meters"] = [m for m in data["meters"] if m["protocol"] in KINDS]
    data |= {"buses": [], "accounting": None, "faults": faults}
    return Fleet.model_validate(data)


def read_all(
    spec: Fleet, work_dir: Path
) -> tuple[TerminalConfig, FleetRuntime, dict[str, RawValue]]:
    async def main() -> tuple[TerminalConfig, FleetRuntime, dict[str, RawValue]]:
        async with running_fleet(spec, work_dir=work_dir) as fleet:
            config = terminal_config(fleet, storage_url=f"sqlite:///{work_dir / 't.db'}")
            got: dict[str, RawValue] = {}
            for device in config.devices:
                driver = make_driver(device, buses={}, clock=RealClock())
                for raw in await driver.read(requests_for(config, device.id)):
                    got[raw.point] = raw
                await driver.close()
            return config, fleet, got

    return asyncio.run(main())


def shown_at(fleet: FleetRuntime, meter: str, quantity: str, before: float) -> Decimal:
    """What ``meter`` last showed of ``quantity`` up to ``before``."""
    answers = [o for o in fleet.observations if o.meter == meter and o.quantity == quantity]
    return [o for o in answers if o.t <= before][-1].value


def test_the_terminal_reads_the_analog_module_and_the_historian(tmp_path: Path) -> None:
    config, fleet, got = read_all(plant_systems([]), tmp_path)
    points = {p.id: p for p in config.points}
    analog = config.device("ai-utilities")
    assert isinstance(analog, ModbusTcpDevice)
    channel = points["ai-utilities.ch0"]
    assert channel.source.register is not None and channel.source.analog is not None
    assert (channel.source.register.table, channel.source.register.address) == ("input", 0)
    assert channel.source.register.type == "uint16"
    assert channel.source.analog == Analog(
        raw_min=Decimal(4000), raw_max=Decimal(20000), low=Decimal(0), high=Decimal(320)
    )
    assert (channel.min, channel.max, channel.decimals) == (Decimal(0), Decimal(320), 2)
    historian = config.device("mes-historian")
    assert isinstance(historian, SqlDevice)
    assert historian.url == f"sqlite:///{(tmp_path / 'mes-historian.sqlite').resolve()}"
    assert "plant_live" in historian.query

    for point_id, raw in got.items():
        point = points[point_id]
        assert raw.error is None, raw
        assert raw.value == shown_at(fleet, raw.device, point.name, raw.t), point_id
        assert to_reading(raw, point).quality is Quality.GOOD
    # the scaled value has the chain's digits: one count of 0–16 m³/h is 0.001
    flow = got["ai-utilities.ch1"].value
    assert flow is not None and flow.as_tuple().exponent == -3
    total = got["mes-historian.CM1.OUTPUT.TOTAL"].value
    assert total is not None and total.as_tuple().exponent == -2


def test_an_out_of_range_current_is_flagged(tmp_path: Path) -> None:
    spike = {
        "meter": "ai-utilities",
        "kind": "spike",
        "factor": 10,
        "quantities": ["stack.temperature_c"],
    }
    config, fleet, got = read_all(plant_systems([spike]), tmp_path)
    raw = got["ai-utilities.ch0"]
    assert raw.raw == f"{20500:04X}"  # 20.5 mA: the transmitter saturated above its range
    shown = shown_at(fleet, "ai-utilities", "stack.temperature_c", raw.t)
    assert raw.value == Decimal("330.00") == shown
    points = {p.id: p for p in config.points}
    reading = to_reading(raw, points["ai-utilities.ch0"])
    assert reading.quality is Quality.OUT_OF_RANGE
    assert "max 320" in reading.note
    assert to_reading(got["ai-utilities.ch1"], points["ai-utilities.ch1"]).quality is Quality.GOOD

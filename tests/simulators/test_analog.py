"""4–20 mA analog inputs: the loop, the module's counts, the scaled value it stands for, the
module served over Modbus TCP, and the fleet file's checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import FleetFileError, parse_fleet
from simulators.fleet.schema import AnalogChannel, Fleet
from simulators.meters.analog import (
    COUNTS_4MA,
    COUNTS_20MA,
    counts,
    loop_current,
    scaled,
)
from simulators.meters.modbus_tcp import parse_endpoint, serve_modbus_tcp

START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
TEMPERATURE = AnalogChannel(
    channel=0, quantity="stack.temperature_c", low=Decimal(0), high=Decimal(320), decimals=2
)
OFFSET = AnalogChannel(  # a range that does not start at zero
    channel=1, quantity="stack.pressure_kpa", low=Decimal(80), high=Decimal(120), decimals=4
)


def chain(value: str, channel: AnalogChannel) -> tuple[Decimal, int, Decimal]:
    current = loop_current(Decimal(value), channel)
    raw = counts(current)
    return current, raw, scaled(raw, channel)


# ---- the chain ------------------------------------------------------------------------------


def test_range_ends_and_middle_are_exact() -> None:
    assert chain("0", TEMPERATURE) == (Decimal(4), COUNTS_4MA, Decimal("0.00"))
    assert chain("320", TEMPERATURE) == (Decimal(20), COUNTS_20MA, Decimal("320.00"))
    assert chain("160", TEMPERATURE) == (Decimal(12), 12000, Decimal("160.00"))
    assert chain("80", OFFSET) == (Decimal(4), 4000, Decimal("80.0000"))
    assert chain("100", OFFSET) == (Decimal(12), 12000, Decimal("100.0000"))
    assert chain("120", OFFSET) == (Decimal(20), 20000, Decimal("120.0000"))


def test_one_count_is_the_resolution_of_the_chain() -> None:
    # 320 °C over 16000 counts: 0.02 °C a count; the value is read to the nearest count
    assert chain("118.36", TEMPERATURE)[1:] == (9918, Decimal("118.36"))
    assert chain("118.369", TEMPERATURE)[1:] == (9918, Decimal("118.36"))
    assert chain("118.371", TEMPERATURE)[1:] == (9919, Decimal("118.38"))
    # 40 kPa over 16000 counts: 0.0025 kPa a count, shown at 4 decimals (half-even)
    assert scaled(4001, OFFSET) == Decimal("80.0025")
    assert scaled(4002, OFFSET) == Decimal("80.0050")


def test_values_beyond_the_range_saturate_outside_it() -> None:
    # NAMUR NE 43: 20.5 mA above the range, 3.8 mA below; the scaled value is then outside
    # low..high, which is how a terminal can tell the value was not measured
    current, raw, value = chain("1000", TEMPERATURE)
    assert (current, raw, value) == (Decimal("20.5"), 20500, Decimal("330.00"))
    current, raw, value = chain("-50", TEMPERATURE)
    assert (current, raw, value) == (Decimal("3.8"), 3800, Decimal("-4.00"))
    assert counts(Decimal(30)) == 24000 and counts(Decimal(-1)) == 0  # the input's own ends


def test_counts_round_half_even_to_the_microampere() -> None:
    assert counts(Decimal("12.0005")) == 12000
    assert counts(Decimal("12.0015")) == 12002
    assert counts(Decimal("12.00051")) == 12001


# ---- the fleet file -------------------------------------------------------------------------

FLEET = """\
name: t
start: 2026-01-01T00:00:00+08:00
plant:
  sources:
    - {id: stack, kind: cems, rated_nm3_h: 20000, co2_pct: 8}
meters:
  - id: ai
    protocol: analog
    channels:
      - {channel: 0, quantity: stack.temperature_c, low: "0", high: "320", decimals: 2}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('high: "320"', 'high: "-5"'),
        ("stack.temperature_c, low", "stack.co2_t, low"),
        ("decimals: 2}", "decimals: 2}\n      - {channel: 0, quantity: stack.o2_pct, "
         'low: "0", high: "25"}'),
        ("decimals: 2}", 'decimals: 2, rounding: floor}'),
    ],
)  # fmt: skip
def test_the_fleet_refuses_impossible_channels(change: str, message: str) -> None:
    with pytest.raises(FleetFileError):
        parse_fleet(FLEET.replace(change, message), "t.yaml")


def test_a_counter_on_a_loop_is_named_in_the_error() -> None:
    with pytest.raises(FleetFileError, match=r"stack\.co2_t.*rate or a state"):
        parse_fleet(FLEET.replace("stack.temperature_c, low", "stack.co2_t, low"), "t.yaml")


# ---- the module on Modbus TCP ---------------------------------------------------------------


def fleet_spec(faults: list[dict[str, Any]]) -> Fleet:
    spec = parse_fleet(FLEET, "t.yaml")
    module = spec.meters[0].model_copy(
        update={"channels": [TEMPERATURE, OFFSET.model_copy(update={"quantity": "stack.o2_pct"})]}
    )
    data = spec.model_dump(mode="json") | {"meters": [module.model_dump(mode="json")]}
    return Fleet.model_validate(data | {"faults": faults})


@contextlib.asynccontextmanager
async def served(fleet: FleetRuntime) -> AsyncIterator[AsyncModbusTcpClient]:
    server = asyncio.create_task(serve_modbus_tcp(fleet))
    while not fleet.endpoints:
        await asyncio.sleep(0.01)
    host, port, _ = parse_endpoint(fleet.endpoints[0].address)
    client = AsyncModbusTcpClient(host, port=port)
    await client.connect()
    try:
        yield client
    finally:
        client.close()
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


def test_channels_are_input_registers_of_counts_and_the_scaled_value_is_recorded() -> None:
    async def main() -> None:
        fleet = FleetRuntime(fleet_spec([]), VirtualClock(START.timestamp() + 3600))
        assert fleet.endpoints == []
        async with served(fleet) as client:
            assert fleet.endpoints[0].protocol == "analog"
            answer = await client.read_input_registers(0, count=2, device_id=1)
            assert not answer.isError()
            temperature, oxygen = answer.registers
            by_quantity = {o.quantity: o for o in fleet.observations}
            shown = by_quantity["stack.temperature_c"]
            assert shown.value == scaled(temperature, TEMPERATURE)
            truth = Decimal(repr(shown.truth))
            assert abs(shown.value - truth) <= Decimal("0.01")  # half a count: 0.02 / 2
            assert temperature == counts(loop_current(truth, TEMPERATURE))
            assert by_quantity["stack.o2_pct"].value == scaled(oxygen, OFFSET)
            # the measurements are read-only, and there is no holding register map
            refused = await client.read_holding_registers(0, count=1, device_id=1)
            assert refused.isError()

    asyncio.run(main())


def test_a_spike_reaches_the_loop_saturated() -> None:
    spike = {"meter": "ai", "kind": "spike", "factor": 10, "quantities": ["stack.temperature_c"]}

    async def main() -> None:
        fleet = FleetRuntime(fleet_spec([spike]), VirtualClock(START.timestamp() + 3600))
        async with served(fleet) as client:
            answer = await client.read_input_registers(0, count=1, device_id=1)
            assert answer.registers == [20500]
            (shown,) = fleet.observations
            assert shown.value == Decimal("330.00") and shown.faults == ("spike",)

    asyncio.run(main())

"""The CJ/T 188 driver against simulated water, gas and heat meters: exact fields in both DI
orders and both unit layouts, faults, sequence numbers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reference_terminal.acquisition.cjt188 import Cjt188Driver
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.config import Cjt188Device
from simulators.meters.serial_buses import running_serial_buses

from .fleets import CLOCK, arbiter, fault_count, fleet, good, request, runtime, sent

BUS = {"id": "b188", "protocol": "cjt188", "baud": 115200, "response_delay_ms": [5, 10]}
HEAT_FIELDS: dict[str, dict[str, Any]] = {
    "current_heat": {"quantity": "heat.heat_kwh", "rounding": "floor"},
    "heat_power": {"quantity": "heat.heat_power_kw"},
    "flow": {"quantity": "heat.flow_m3_h", "decimals": 4},
    "total_flow": {"quantity": "heat.volume_m3", "rounding": "floor"},
    "supply_temp": {"quantity": "heat.supply_temp_c"},
    "return_temp": {"quantity": "heat.return_temp_c"},
}
QUANTITIES = {name: spec["quantity"] for name, spec in HEAT_FIELDS.items()}
WATER = {"current_total": {"quantity": "water.volume_m3", "rounding": "floor"}}
GAS = {"current_total": {"quantity": "gas.volume_nm3", "rounding": "floor"}}
FAULTS = ("no_answer", "bad_checksum", "garbled", "truncated", "exception")


def meter(meter_id: str, address: int, meter_type: str, fields: Any, **extra: Any) -> Any:
    return {
        "id": meter_id,
        "protocol": "cjt188",
        "bus": "b188",
        "meter_type": meter_type,
        "address": f"{address:014d}",
        "fields": fields,
        **extra,
    }


def device(meter_id: str, address: int, meter_type: Any, **extra: Any) -> Cjt188Device:
    return Cjt188Device(
        id=meter_id,
        protocol="cjt188",
        bus="b188",
        meter_type=meter_type,
        address=f"{address:014d}",
        **extra,
    )


def test_reads_every_field_exactly() -> None:
    meters = [
        meter("wm", 11, "water", WATER),
        meter("gm", 12, "gas", GAS, di_order="swapped"),
        meter("hm", 13, "heat", HEAT_FIELDS),
        meter("hj", 14, "heat", HEAT_FIELDS, unit_first=True, di_order="swapped"),
    ]
    fl = runtime(fleet(meters, buses=[BUS]))

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            bus = arbiter(lines["b188"])
            wm = Cjt188Driver(device("wm", 11, "water"), bus, CLOCK)
            raws = await wm.read(
                [
                    request("wm", field="current_total"),
                    request("wm", field="settlement_total"),
                    request("wm", field="current_heat"),
                ]
            )
            assert good(raws[0]) == sent(fl, "wm", "water.volume_m3")
            assert raws[0].raw.endswith(" m³")
            assert good(raws[1]) == 0  # the simulated meter keeps no settlement day
            assert raws[2].value is None and "no field 'current_heat'" in (raws[2].error or "")
            assert wm.attempts == 1

            gm = Cjt188Driver(device("gm", 12, "gas", di_order="swapped"), bus, CLOCK)
            (gas,) = await gm.read([request("gm", field="current_total")])
            assert good(gas) == sent(fl, "gm", "gas.volume_nm3")

            for meter_id, address, extra in (
                ("hm", 13, {}),
                ("hj", 14, {"unit_first": True, "di_order": "swapped"}),
            ):
                heat = Cjt188Driver(device(meter_id, address, "heat", **extra), bus, CLOCK)
                names = [*HEAT_FIELDS, "working_hours"]
                raws = await heat.read([request(meter_id, field=name) for name in names])
                assert heat.attempts == 1  # one 901F read for every field
                for name, raw in zip(names, raws, strict=True):
                    if name == "working_hours":
                        assert good(raw) == 1  # the plant started an hour ago
                    else:
                        assert good(raw) == sent(fl, meter_id, QUANTITIES[name]), name
                flow = raws[2]
                assert flow.value is not None and flow.value.as_tuple().exponent == -4
                assert flow.raw == f"{int(flow.value * 10000):08d} m³/h"

    asyncio.run(main())


def test_faults_are_retried_then_reported() -> None:
    meters = [meter(f"f_{kind}", 21 + i, "water", WATER) for i, kind in enumerate(FAULTS)]
    fl = runtime(
        fleet(meters, buses=[BUS], faults=[{"meter": f"f_{k}", "kind": k} for k in FAULTS])
    )

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            bus = arbiter(lines["b188"])
            for i, kind in enumerate(FAULTS):
                driver = Cjt188Driver(
                    device(f"f_{kind}", 21 + i, "water", timeout_s=0.15, retries=1), bus, CLOCK
                )
                if kind == "exception":
                    (raw,) = await driver.read([request(f"f_{kind}", field="current_total")])
                    assert raw.value is None and (raw.error or "").startswith("meter error")
                    assert driver.attempts == 1
                else:
                    with pytest.raises(DriverError) as caught:
                        await driver.read([request(f"f_{kind}", field="current_total")])
                    expected = {"no_answer": "timeout", "bad_checksum": "checksum"}
                    if kind != "garbled":
                        assert caught.value.kind == expected.get(kind, kind), caught.value
                    assert driver.attempts == 2
                assert fault_count(fl, f"f_{kind}", kind) == driver.attempts

    asyncio.run(main())


def test_a_late_answer_to_an_earlier_attempt_is_refused() -> None:
    """Each attempt's SER differs: the answer to attempt 1, arriving during attempt 2, is not
    attempt 2's answer."""
    fl = runtime(
        fleet(
            [meter("late", 11, "water", WATER)],
            buses=[BUS],
            faults=[{"meter": "late", "kind": "slow", "delay_ms": 200}],
        )
    )

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            arb = arbiter(lines["b188"])
            driver = Cjt188Driver(
                device("late", 11, "water", timeout_s=0.15, retries=2), arb, CLOCK
            )
            with pytest.raises(DriverError) as caught:
                await driver.read([request("late", field="current_total")])
            assert caught.value.kind == "timeout"
            port = arb.port
            assert port is not None and port.bytes_in >= 2 * 36  # two answers came, too late

    asyncio.run(main())

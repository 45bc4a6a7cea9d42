"""The OPC UA driver against the simulated DCS: node ids in every form, exact doubles, Bad
statuses as errors, an unreachable server as a DriverError."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.opcua import OpcUaDriver, opcua_value
from reference_terminal.config import OpcUaDevice
from simulators.fleet.runner import running_fleet
from simulators.meters.broker import free_port

from .fleets import CLOCK, fault_count, fleet, good, request, sent

TAGS = [
    {"name": "Heat_kWh", "quantity": "heat.heat_kwh", "decimals": 2, "rounding": "floor"},
    {"name": "Flow_m3h", "quantity": "heat.flow_m3_h", "decimals": 4},
    {"name": "CO2_t", "quantity": "stack.co2_t", "decimals": 3, "rounding": "floor"},
    {"name": "Supply_C", "quantity": "heat.supply_temp_c", "decimals": 2},
]


def test_reads_tags_exactly_and_reports_bad_status() -> None:
    spec = fleet(
        [{"id": "dcs", "protocol": "opcua", "update_s": 30, "tags": TAGS}],
        # The flow transmitter's link is down: its tag is BadCommunicationError.
        faults=[{"meter": "dcs", "kind": "no_answer", "quantities": ["heat.flow_m3_h"]}],
    )

    async def main() -> None:
        async with running_fleet(spec) as fl:
            endpoint = next(e.address for e in fl.endpoints if e.meter == "dcs")
            device = OpcUaDevice(id="dcs", protocol="opcua", endpoint=endpoint)
            driver = OpcUaDriver(device, CLOCK)
            reqs = [
                request("dcs", node="nsu=urn:carbench:plant;s=dcs.Heat_kWh"),
                request("dcs", node="s=dcs.Flow_m3h", decimals=4),
                request("dcs", node="ns=2;s=dcs.CO2_t", decimals=3),
                request("dcs", node="dcs.Supply_C"),
                request("dcs", node="s=dcs.NoSuchTag"),
                request("dcs", node="nsu=urn:other;s=x"),
            ]
            raws = await driver.read(reqs)
            assert good(raws[0]) == sent(fl, "dcs", "heat.heat_kwh")
            assert raws[1].value is None and raws[1].error == "status BadCommunicationError"
            assert good(raws[2]) == sent(fl, "dcs", "stack.co2_t")
            assert good(raws[3]) == sent(fl, "dcs", "heat.supply_temp_c")
            assert raws[4].error == "status BadNodeIdUnknown"
            assert "no namespace 'urn:other'" in (raws[5].error or "")
            assert fault_count(fl, "dcs", "no_answer") >= 1
            # The session stays open between reads.
            again = await driver.read(reqs[:1])
            assert good(again[0]) == sent(fl, "dcs", "heat.heat_kwh")
            assert driver.sessions == 1
            await driver.close()

    asyncio.run(main())


def test_an_unreachable_server_is_a_driver_error_after_retries() -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/nothing"
    device = OpcUaDevice(id="dcs", protocol="opcua", endpoint=endpoint, timeout_s=0.5, retries=1)
    driver = OpcUaDriver(device, CLOCK)
    with pytest.raises(DriverError, match="2 attempt"):
        asyncio.run(driver.read([request("dcs", node="s=x")]))


def test_variants_to_decimal() -> None:
    from asyncua import ua

    assert opcua_value(ua.Variant(1234.56, ua.VariantType.Double)) == (
        Decimal("1234.56"),
        "1234.56",
    )
    assert opcua_value(ua.Variant(0.1, ua.VariantType.Float))[0] == Decimal("0.1")
    assert opcua_value(ua.Variant(-7, ua.VariantType.Int32))[0] == -7
    assert opcua_value(ua.Variant("10.10", ua.VariantType.String))[0] == Decimal("10.10")
    for bad in (ua.Variant(True, ua.VariantType.Boolean), ua.Variant(float("nan"))):
        with pytest.raises(ValueError, match="not a number"):
            opcua_value(bad)

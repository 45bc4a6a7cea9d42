"""The Modbus drivers: read planning, exact decoding (checked against the simulators' own
encoder), analog scaling, and TCP and RTU meters of the simulated fleet with their faults."""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest

from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.modbus import (
    Block,
    ModbusRtuDriver,
    ModbusTcpDriver,
    analog_value,
    plan_reads,
    register_value,
)
from reference_terminal.config import Analog, ModbusRtuDevice, ModbusTcpDevice, Register
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import Register as MeterRegister
from simulators.meters.broker import free_port
from simulators.meters.registers import encode
from simulators.meters.serial_buses import running_serial_buses

from .fleets import CLOCK, arbiter, fault_count, fleet, good, request, runtime, sent

# ---- planning and decoding --------------------------------------------------------------


def reg(address: int, type_: str = "uint16", table: str = "holding", **extra: Any) -> Register:
    return Register.model_validate({"address": address, "type": type_, "table": table, **extra})


def test_plan_groups_contiguous_registers_per_table() -> None:
    registers: list[Register | None] = [
        reg(10, "float32"),
        reg(0, "uint16"),
        reg(1, "uint32"),
        None,
        reg(3, "float64"),
        reg(12),  # contiguous with 10..11
        reg(14),  # a gap of one word: a new read
        reg(0, table="input"),
        reg(2, "int16", table="input"),
        reg(11),  # overlaps 10..11
    ]
    assert plan_reads(registers) == [
        Block("holding", 0, 7, (1, 2, 4)),
        Block("holding", 10, 3, (0, 9, 5)),
        Block("holding", 14, 1, (6,)),
        Block("input", 0, 1, (7,)),
        Block("input", 2, 1, (8,)),
    ]


def test_plan_keeps_each_read_within_125_words() -> None:
    registers: list[Register | None] = [reg(a, "float64") for a in range(0, 400, 4)]
    blocks = plan_reads(registers)
    assert [b.count for b in blocks] == [124, 124, 124, 28]
    assert sorted(i for b in blocks for i in b.members) == list(range(100))
    assert all(b.count <= 125 for b in blocks)


@pytest.mark.parametrize(
    ("type_", "order", "scale", "value"),
    [
        ("uint16", "big", "1", "65535"),
        ("int16", "big", "0.1", "-3276.8"),
        ("uint32", "little", "0.01", "42949672.95"),
        ("int32", "big", "0.001", "-2147483.648"),
        ("uint64", "big", "0.001", "18446744073709551.615"),
        ("int64", "little", "1", "-9223372036854775808"),
        ("float32", "big", "1", "1234.56"),
        ("float32", "little", "1", "0.1"),
        ("float32", "big", "1", "-3.4028235E+38"),
        ("float64", "little", "1", "123456789.123456"),
        ("float64", "big", "1000", "1.5"),
    ],
)
def test_decoding_gives_back_exactly_what_the_meter_encoded(
    type_: str, order: str, scale: str, value: str
) -> None:
    meter = MeterRegister.model_validate(
        {
            "address": 0,
            "type": type_,
            "word_order": order,
            "scale": scale,
            "quantity": "x.y",
            "decimals": 6,
        }
    )
    mine = reg(0, type_, word_order=order, scale=scale)
    shown = Decimal(value)
    assert register_value(encode(shown, meter), mine) == shown


def test_nan_is_not_a_value() -> None:
    words = list(struct.unpack(">2H", struct.pack(">f", float("nan"))))
    with pytest.raises(ValueError, match="not a number"):
        register_value(words, reg(0, "float32"))


def test_analog_scaling() -> None:
    ma = Analog(raw_min=Decimal(4000), raw_max=Decimal(20000), low=Decimal(0), high=Decimal(100))
    assert analog_value(Decimal(12000), ma) == 50
    assert analog_value(Decimal(4000), ma) == 0
    assert analog_value(Decimal(20000), ma) == 100
    assert analog_value(Decimal("4001.6"), ma) == Decimal("0.01")
    offset = Analog(raw_min=Decimal(4), raw_max=Decimal(20), low=Decimal(-50), high=Decimal(150))
    assert analog_value(Decimal("13.5"), offset) == Decimal("68.75")
    third = analog_value(Decimal(1), Analog(raw_min=0, raw_max=3, low=0, high=1))
    assert third == Decimal(1) / Decimal(3)  # 28 significant digits when inexact


# ---- the simulated meters ---------------------------------------------------------------------

REGISTERS: list[dict[str, Any]] = [
    {"address": 0, "type": "float32", "quantity": "stack.co2_pct", "decimals": 2},
    {"address": 2, "type": "float32", "word_order": "little", "quantity": "stack.o2_pct"},
    {"address": 4, "type": "float64", "quantity": "stack.flow_nm3_h", "decimals": 1},
    {
        "address": 8,
        "type": "uint64",
        "scale": "0.001",
        "quantity": "stack.co2_t",
        "decimals": 3,
        "rounding": "floor",
    },
    {
        "address": 12,
        "type": "int32",
        "word_order": "little",
        "scale": "0.01",
        "quantity": "grid.power_kw",
    },
    {"address": 14, "type": "uint16", "scale": "0.1", "quantity": "grid.voltage_a", "decimals": 1},
    {"address": 15, "type": "int16", "scale": "0.1", "quantity": "grid.current_a", "decimals": 1},
    {
        "address": 0,
        "table": "input",
        "type": "uint32",
        "scale": "0.01",
        "quantity": "grid.energy_import_kwh",
        "rounding": "floor",
    },
    {"address": 200, "type": "uint16", "scale": "0.1", "quantity": "grid.voltage_b", "decimals": 1},
]
ANALOG = Analog(raw_min=Decimal(0), raw_max=Decimal(4000), low=Decimal(0), high=Decimal(400))


def terminal_requests(device: str) -> list[Any]:
    out = []
    for r in REGISTERS:
        fields: dict[str, Any] = {
            k: r[k] for k in ("address", "table", "word_order", "scale") if k in r
        }
        analog = None
        if r["address"] == 200:  # read as 4–20 mA style counts, scaled by the terminal
            fields["scale"] = "1"
            analog = ANALOG
        out.append(request(device, register=reg(type_=r["type"], **fields), analog=analog))
    out.append(request(device, register=reg(100)))  # not in the map: exception 02
    return out


def check_values(fl: Any, meter_id: str, raws: list[Any]) -> None:
    for spec, raw in zip(REGISTERS, raws, strict=False):
        shown = sent(fl, meter_id, spec["quantity"])
        if spec["address"] == 200:
            counts = shown / Decimal("0.1")
            assert good(raw) == counts * 400 / 4000, raw
        else:
            assert good(raw) == shown, (spec, raw)
    assert raws[-1].value is None and raws[-1].error == "exception 02 (illegal address)"


def tcp_meter(meter_id: str, port: int = 0, registers: list[dict[str, Any]] = REGISTERS) -> Any:
    return {"id": meter_id, "protocol": "modbus-tcp", "port": port, "registers": registers}


def tcp_endpoint(fl: Any, meter_id: str) -> tuple[str, int]:
    address = next(e.address for e in fl.endpoints if e.meter == meter_id)
    host, _, rest = address.partition(":")
    return host, int(rest.split()[0])


def tcp_device(fl: Any, meter_id: str, **extra: Any) -> ModbusTcpDevice:
    host, port = tcp_endpoint(fl, meter_id)
    return ModbusTcpDevice(id=meter_id, protocol="modbus-tcp", host=host, port=port, **extra)


TCP_FAULTS = ("exception", "no_answer", "truncated", "bad_checksum", "slow")


def test_tcp_reads_exact_values_in_few_requests_and_survives_faults() -> None:
    one = [REGISTERS[0]]
    spec = fleet(
        [tcp_meter("plc"), *(tcp_meter(f"f_{k}", registers=one) for k in TCP_FAULTS)],
        faults=[{"meter": f"f_{k}", "kind": k, "delay_ms": 400} for k in TCP_FAULTS],
    )

    async def main() -> None:
        async with running_fleet(spec) as fl:
            driver = ModbusTcpDriver(tcp_device(fl, "plc"), CLOCK)
            reqs = terminal_requests("plc")
            with mock.patch.object(driver, "_fetch", wraps=driver._fetch) as fetch:
                raws = await driver.read(reqs)
            assert fetch.call_count == 4  # holding 0–15, 100, 200; input 0
            check_values(fl, "plc", raws)
            assert raws[3].raw.count(" ") == 3  # four words for a uint64
            await driver.close()

            for kind in TCP_FAULTS:
                device = tcp_device(fl, f"f_{kind}", timeout_s=0.1, retries=1)
                faulty = ModbusTcpDriver(device, CLOCK)
                read = [request(f"f_{kind}", register=reg(0, "float32"))]
                if kind == "exception":
                    (raw,) = await faulty.read(read)
                    assert raw.error == "exception 04 (device failure)"
                    assert fault_count(fl, f"f_{kind}") == 1
                else:
                    with pytest.raises(DriverError) as caught:
                        await faulty.read(read)
                    if kind != "bad_checksum":  # a short frame: pymodbus cannot decode it
                        assert caught.value.kind == "timeout", caught.value
                    assert fault_count(fl, f"f_{kind}") == 2  # retried once
                await faulty.close()
            # A slow meter is read with a timeout that waits for it.
            patient = ModbusTcpDriver(tcp_device(fl, "f_slow", timeout_s=1.0), CLOCK)
            (raw,) = await patient.read([request("f_slow", register=reg(0, "float32"))])
            assert good(raw) == sent(fl, "f_slow", "stack.co2_pct")
            await patient.close()

    asyncio.run(main())


def test_tcp_reconnects_after_the_connection_drops() -> None:
    port = free_port()
    spec = fleet([tcp_meter("plc", port, [REGISTERS[0]])])
    device = ModbusTcpDevice(
        id="plc", protocol="modbus-tcp", host="127.0.0.1", port=port, timeout_s=0.3, retries=0
    )
    read = [request("plc", register=reg(0, "float32"))]

    async def main() -> None:
        driver = ModbusTcpDriver(device, CLOCK)
        async with running_fleet(spec) as fl:
            assert good((await driver.read(read))[0]) == sent(fl, "plc", "stack.co2_pct")
        with pytest.raises(DriverError) as caught:  # the meter is gone
            await driver.read(read)
        assert caught.value.kind in ("refused", "timeout")
        async with running_fleet(spec) as fl:
            assert good((await driver.read(read))[0]) == sent(fl, "plc", "stack.co2_pct")
        assert driver.connects == 2
        await driver.close()

    asyncio.run(main())


RTU_BUS = {
    "id": "rtu",
    "protocol": "modbus-rtu",
    "baud": 115200,
    "framing": "8N1",
    "response_delay_ms": [2, 4],
}
RTU_FAULTS = ("no_answer", "bad_checksum", "garbled", "truncated", "exception")


def test_rtu_reads_exact_values_and_retries_faults() -> None:
    one = [REGISTERS[0]]
    meters = [
        {"id": "pm", "protocol": "modbus-rtu", "bus": "rtu", "unit_id": 5, "registers": REGISTERS},
        *(
            {
                "id": f"f_{k}",
                "protocol": "modbus-rtu",
                "bus": "rtu",
                "unit_id": 10 + i,
                "registers": one,
            }
            for i, k in enumerate(RTU_FAULTS)
        ),
    ]
    faults = [{"meter": f"f_{k}", "kind": k} for k in RTU_FAULTS]
    fl = runtime(fleet(meters, buses=[RTU_BUS], faults=faults))

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            bus = arbiter(lines["rtu"])
            device = ModbusRtuDevice(id="pm", protocol="modbus-rtu", bus="rtu", unit_id=5)
            driver = ModbusRtuDriver(device, bus, CLOCK)
            raws = await driver.read(terminal_requests("pm"))
            check_values(fl, "pm", raws)
            assert len(bus.turns) == 4  # one exchange per planned read
            for i, kind in enumerate(RTU_FAULTS):
                device = ModbusRtuDevice(
                    id=f"f_{kind}",
                    protocol="modbus-rtu",
                    bus="rtu",
                    unit_id=10 + i,
                    timeout_s=0.1,
                    retries=2,
                )
                faulty = ModbusRtuDriver(device, bus, CLOCK)
                read = [request(f"f_{kind}", register=reg(0, "float32"))]
                if kind == "exception":
                    (raw,) = await faulty.read(read)
                    assert raw.error == "exception 04 (device failure)"
                    assert fault_count(fl, f"f_{kind}") == 1
                    continue
                with pytest.raises(DriverError) as caught:
                    await faulty.read(read)
                expected = {"no_answer": "timeout", "bad_checksum": "checksum"}
                if kind != "garbled":
                    assert caught.value.kind == expected.get(kind, kind), caught.value
                assert fault_count(fl, f"f_{kind}") == 3
            assert bus.max_in_flight == 1

    asyncio.run(main())

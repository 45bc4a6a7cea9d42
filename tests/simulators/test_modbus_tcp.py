"""Modbus TCP meters read by an independent client: plant values, addressing, units, faults."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU

from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.schema import Fleet, ModbusTcpMeter, Register
from simulators.meters.modbus_tcp import damage, parse_endpoint, serve_modbus_tcp

START = datetime.fromisoformat("2026-01-01T00:00:00+08:00")
#: A Tuesday afternoon, two days in: the plant runs and its counters have counted.
NOW = (START + timedelta(days=2, hours=13, minutes=37, seconds=21.5)).timestamp()
PLANT = {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]}
DATATYPE = AsyncModbusTcpClient.DATATYPE

#: One register of every type, both word orders, scales, a gap (18–19) and an input table.
EVERY_TYPE: list[dict[str, Any]] = [
    {"address": 0, "type": "uint16", "quantity": "grid.voltage_a", "decimals": 1, "scale": "0.1"},
    {"address": 1, "type": "int16", "quantity": "grid.current_a", "decimals": 1, "scale": "0.1"},
    {
        "address": 2,
        "type": "uint32",
        "quantity": "grid.energy_import_kwh",
        "scale": "0.01",
        "rounding": "floor",
    },
    {
        "address": 4,
        "type": "int32",
        "quantity": "grid.power_kw",
        "scale": "0.01",
        "word_order": "little",
    },
    {
        "address": 6,
        "type": "uint64",
        "quantity": "grid.energy_import_kwh",
        "decimals": 3,
        "scale": "0.001",
        "rounding": "floor",
        "word_order": "little",
    },
    {
        "address": 10,
        "type": "int64",
        "quantity": "grid.energy_import_kwh",
        "decimals": 3,
        "scale": "0.001",
        "rounding": "floor",
    },
    {"address": 14, "type": "float32", "quantity": "grid.power_factor", "decimals": 3},
    {
        "address": 16,
        "type": "float32",
        "quantity": "grid.voltage_b",
        "decimals": 1,
        "word_order": "little",
    },
    {"address": 20, "type": "float64", "quantity": "grid.energy_import_kwh", "decimals": 3},
    {"address": 24, "type": "float64", "quantity": "grid.power_kw", "word_order": "little"},
    {"address": 0, "table": "input", "type": "float32", "quantity": "grid.current_b"},
    {"address": 2, "table": "input", "type": "uint16", "quantity": "grid.voltage_c", "decimals": 0},
]
ENERGY = [{"address": 0, "type": "uint32", "quantity": "grid.energy_import_kwh", "scale": "0.01"}]


class StillClock:
    """Time stands where the test puts it, so every value is known; sleeps are real."""

    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def fleet_of(
    meters: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None, *, t: float = NOW
) -> FleetRuntime:
    spec = Fleet.model_validate(
        {"name": "t", "start": START, "plant": PLANT, "meters": meters, "faults": faults or []}
    )
    return FleetRuntime(spec, clock=StillClock(t))


def meter(
    id_: str, registers: list[dict[str, Any]], *, port: int = 0, unit: int = 1
) -> dict[str, Any]:
    return {
        "id": id_,
        "protocol": "modbus-tcp",
        "port": port,
        "unit_id": unit,
        "registers": registers,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(fleet: FleetRuntime) -> AsyncIterator[dict[str, tuple[str, int, int]]]:
    """The fleet's Modbus TCP meters served, as meter id → (host, port, unit id)."""
    wanted = len(fleet.meters_of("modbus-tcp"))
    async with asyncio.TaskGroup() as group:
        server = group.create_task(serve_modbus_tcp(fleet))
        while len(fleet.endpoints) < wanted and not server.done():
            await asyncio.sleep(0.002)
        try:
            yield {e.meter: parse_endpoint(e.address) for e in fleet.endpoints}
        finally:
            server.cancel()


@contextlib.asynccontextmanager
async def client(
    host: str, port: int, *, timeout: float = 1.0
) -> AsyncIterator[AsyncModbusTcpClient]:
    c = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0)
    assert await c.connect()
    try:
        yield c
    finally:
        c.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def expected(fleet: FleetRuntime, register: Register, t: float = NOW) -> Decimal:
    return quantize(fleet.plant.value(register.quantity, t), register)


def assert_shows(words: Sequence[int], register: Register, value: Decimal) -> None:
    """Decode with pymodbus's own converter (not ours) and compare with the meter's value."""
    datatype = DATATYPE[register.type.upper()]
    raw = AsyncModbusTcpClient.convert_from_registers(words, datatype, register.word_order)
    if register.type == "float32":
        assert raw == struct.unpack(">f", struct.pack(">f", float(value)))[0], register
    elif register.type == "float64":
        assert raw == float(value), register
    else:
        assert isinstance(raw, int)
        assert Decimal(raw) * register.scale == value, register


def registers_of(fleet: FleetRuntime, meter_id: str) -> list[Register]:
    spec = fleet.spec.meter(meter_id)
    assert isinstance(spec, ModbusTcpMeter)
    return spec.registers


async def read_map(c: AsyncModbusTcpClient, unit: int) -> dict[tuple[str, int], list[int]]:
    """The whole EVERY_TYPE map in three reads: (table, address) → words."""
    out: dict[tuple[str, int], list[int]] = {}
    for table, start, count in (("holding", 0, 18), ("holding", 20, 8), ("input", 0, 3)):
        reader = c.read_holding_registers if table == "holding" else c.read_input_registers
        response = await reader(start, count=count, device_id=unit)
        assert not response.isError(), response
        for offset, word in enumerate(response.registers):
            out[(table, start + offset)] = [word]
    return out


def words_at(words: dict[tuple[str, int], list[int]], register: Register) -> list[int]:
    return [words[(register.table, register.address + i)][0] for i in range(register.words)]


# ---- values -------------------------------------------------------------------------------


def test_every_register_type_shows_the_plant_at_the_meters_resolution() -> None:
    fleet = fleet_of([meter("m", EVERY_TYPE)])

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2]) as c:
            unit = endpoints["m"][2]
            words = await read_map(c, unit)
            for register in registers_of(fleet, "m"):
                assert_shows(words_at(words, register), register, expected(fleet, register))
            # the record of what was said: the values sent, at the request's time, with truth
            said = {(o.quantity, o.value) for o in fleet.observations if o.meter == "m"}
            for register in registers_of(fleet, "m"):
                assert (register.quantity, expected(fleet, register)) in said
            assert {o.t for o in fleet.observations} == {NOW}
            for o in fleet.observations:
                assert o.truth == fleet.plant.value(o.quantity, NOW)

            # values are computed when asked: 90 s later the counters have moved on
            clock = cast(StillClock, fleet.clock)
            clock.t = NOW + 90
            later = await read_map(c, unit)
            for register in registers_of(fleet, "m"):
                assert_shows(
                    words_at(later, register), register, expected(fleet, register, NOW + 90)
                )
            energy = registers_of(fleet, "m")[2]
            assert expected(fleet, energy, NOW + 90) > expected(fleet, energy)

    run(scenario)


def test_a_read_may_start_inside_a_pair_and_cover_several_points() -> None:
    fleet = fleet_of([meter("m", EVERY_TYPE)])

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2]) as c:
            whole = await c.read_holding_registers(2, count=4, device_id=1)
            part = await c.read_holding_registers(3, count=2, device_id=1)
            assert part.registers == whole.registers[1:3]

    run(scenario)


def test_a_spike_beyond_the_register_saturates_on_the_wire() -> None:
    voltage = {"address": 0, "type": "uint16", "quantity": "grid.voltage_a", "scale": "0.1"}
    fleet = fleet_of([meter("m", [voltage])], [{"meter": "m", "kind": "spike", "factor": 1000}])

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2]) as c:
            response = await c.read_holding_registers(0, count=1, device_id=1)
            assert response.registers == [0xFFFF]  # 230 V × 1000 / 0.1 does not fit: the top

    run(scenario)


def test_before_the_plant_starts_the_meter_reports_a_device_failure() -> None:
    fleet = fleet_of([meter("m", ENERGY)], t=START.timestamp() - 60)

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2]) as c:
            response = await c.read_holding_registers(0, count=2, device_id=1)
            assert response.isError()
            assert response.exception_code == 0x04

    run(scenario)


# ---- addressing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "address", "count", "code"),
    [
        ("holding", 18, 2, 0x02),  # the gap between float32 at 16 and float64 at 20
        ("holding", 16, 4, 0x02),  # runs into the gap
        ("holding", 24, 5, 0x02),  # past the end
        ("holding", 100, 1, 0x02),
        ("input", 3, 1, 0x02),
        ("coils", 0, 1, 0x01),  # a meter has no coils
        ("write", 0, 1, 0x02),  # measurements are read-only
        ("unit", 0, 1, 0x0B),  # nobody answers to unit 9
    ],
)
def test_what_the_meter_refuses(function: str, address: int, count: int, code: int) -> None:
    fleet = fleet_of([meter("m", EVERY_TYPE)])

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2]) as c:
            response: ModbusPDU
            if function == "holding":
                response = await c.read_holding_registers(address, count=count, device_id=1)
            elif function == "input":
                response = await c.read_input_registers(address, count=count, device_id=1)
            elif function == "coils":
                response = await c.read_coils(address, count=count, device_id=1)
            elif function == "write":
                response = await c.write_register(address, 1, device_id=1)
            else:
                response = await c.read_holding_registers(address, count=count, device_id=9)
            assert response.isError(), response
            assert response.exception_code == code

    run(scenario)


def test_meters_on_one_port_answer_as_distinct_unit_ids() -> None:
    port = free_port()
    tenths = {"address": 0, "type": "uint16", "decimals": 1, "scale": "0.1"}
    voltage = [tenths | {"quantity": "grid.voltage_a"}]
    current = [tenths | {"quantity": "grid.current_a"}]
    meters = [
        meter("a", voltage, port=port, unit=1),
        meter("b", current, port=port, unit=2),
        meter("c", ENERGY, port=port, unit=247),
        meter("alone", ENERGY),
    ]
    fleet = fleet_of(meters)

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            assert {endpoints[m][1] for m in "abc"} == {port}
            assert [endpoints[m][2] for m in "abc"] == [1, 2, 247]
            assert endpoints["alone"][1] != port
            async with client("127.0.0.1", port) as c:
                for m in "abc":
                    register = registers_of(fleet, m)[0]
                    response = await c.read_holding_registers(
                        0, count=register.words, device_id=endpoints[m][2]
                    )
                    assert_shows(response.registers, register, expected(fleet, register))

    run(scenario)


def test_port_zero_gives_each_meter_a_free_port_of_its_own() -> None:
    fleet = fleet_of([meter("a", ENERGY), meter("b", ENERGY)])  # both unit 1

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            assert [e.address.split(" unit ")[1] for e in fleet.endpoints] == ["1", "1"]
            assert {e.protocol for e in fleet.endpoints} == {"modbus-tcp"}
            ports = {endpoints["a"][1], endpoints["b"][1]}
            assert len(ports) == 2
            assert 0 not in ports
            for m in "ab":
                async with client(*endpoints[m][:2]) as c:
                    response = await c.read_holding_registers(0, count=2, device_id=1)
                    assert not response.isError()

    run(scenario)


def test_two_meters_cannot_share_a_unit_id_on_one_port() -> None:
    port = free_port()
    fleet = fleet_of([meter("a", ENERGY, port=port), meter("b", ENERGY, port=port)])
    with pytest.raises(ValueError, match="both answer as unit 1"):
        run(lambda: serve_modbus_tcp(fleet))


def test_overlapping_registers_are_refused() -> None:
    overlap = [*ENERGY, {"address": 1, "type": "uint16", "quantity": "grid.voltage_a"}]
    fleet = fleet_of([meter("m", overlap)])
    with pytest.raises(ValueError, match="overlap"):
        run(lambda: serve_modbus_tcp(fleet))


def test_cancelling_closes_listeners_and_connections() -> None:
    fleet = fleet_of([meter("m", ENERGY)])

    async def scenario() -> None:
        server = asyncio.create_task(serve_modbus_tcp(fleet))
        while not fleet.endpoints:
            await asyncio.sleep(0.002)
        host, port, _ = parse_endpoint(fleet.endpoints[0].address)
        reader, writer = await asyncio.open_connection(host, port)
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        assert await asyncio.wait_for(reader.read(), 1) == b""  # the connection was closed
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(host, port)

    run(scenario)


def test_cancelling_does_not_wait_for_slow_answers() -> None:
    fleet = fleet_of([meter("m", ENERGY)], [{"meter": "m", "kind": "slow", "delay_ms": 30_000}])

    async def scenario() -> None:
        server = asyncio.create_task(serve_modbus_tcp(fleet))
        while not fleet.endpoints:
            await asyncio.sleep(0.002)
        host, port, _ = parse_endpoint(fleet.endpoints[0].address)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(read_request(1, 1))
        await asyncio.sleep(0.05)  # the answer is now waiting out its delay
        started = time.monotonic()
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        assert time.monotonic() - started < 1
        assert await asyncio.wait_for(reader.read(), 1) == b""  # closed, never answered
        writer.close()

    run(scenario)


# ---- communication faults -------------------------------------------------------------------


def read_request(tid: int, unit: int, address: int = 0, count: int = 2) -> bytes:
    return struct.pack(">HHHBBHH", tid, 0, 6, unit, 3, address, count)


async def exchange(host: str, port: int, request: bytes, *, wait: float = 0.3) -> bytes:
    """Send one raw ADU and collect what comes back until it is complete or ``wait`` passes."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    data = b""
    with contextlib.suppress(TimeoutError):
        while len(data) < 6 or len(data) < 6 + int.from_bytes(data[4:6], "big"):
            chunk = await asyncio.wait_for(reader.read(512), wait)
            if not chunk:
                break
            data += chunk
    writer.close()
    await writer.wait_closed()
    return data


def faulty_pair(kind: str, **fault: Any) -> FleetRuntime:
    """A healthy meter (unit 1) and a faulty twin (unit 2) on one port, same registers."""
    port = free_port()
    return fleet_of(
        [meter("good", EVERY_TYPE, port=port, unit=1), meter("bad", EVERY_TYPE, port=port, unit=2)],
        [{"meter": "bad", "kind": kind, **fault}],
    )


def as_unit(adu: bytes, unit: int) -> bytes:
    return adu[:6] + bytes([unit]) + adu[7:]


def test_no_answer_leaves_the_client_to_time_out() -> None:
    fleet = faulty_pair("no_answer")

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["bad"][:2], timeout=0.2) as c:
            with pytest.raises(ModbusIOException):
                await c.read_holding_registers(0, count=2, device_id=2)
            good = await c.read_holding_registers(0, count=2, device_id=1)  # the port is fine
            assert not good.isError()
        assert not [o for o in fleet.observations if o.meter == "bad"]  # nothing was said

    run(scenario)


def test_slow_answers_come_late_with_the_right_values() -> None:
    fleet = faulty_pair("slow", delay_ms=250)

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["bad"][:2]) as c:
            started = time.monotonic()
            response = await c.read_holding_registers(2, count=2, device_id=2)
            assert time.monotonic() - started >= 0.25
            register = registers_of(fleet, "bad")[2]
            assert_shows(response.registers, register, expected(fleet, register))

    run(scenario)


def test_exception_fault_answers_server_device_failure() -> None:
    fleet = faulty_pair("exception")

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            host, port, _ = endpoints["bad"]
            answer = await exchange(host, port, read_request(7, 2))
            assert answer == bytes.fromhex("0007 0000 0003 02 83 04")

    run(scenario)


def test_garbled_answers_are_well_formed_and_wrong() -> None:
    fleet = faulty_pair("garbled")

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            host, port, _ = endpoints["bad"]
            for tid in range(1, 20):
                good = await exchange(host, port, read_request(tid, 1, 0, 18))
                bad = await exchange(host, port, read_request(tid, 2, 0, 18))
                assert len(bad) == len(good) == 9 + 36
                assert bad[:9] == as_unit(good, 2)[:9]  # header, function code, byte count
                assert 1 <= sum(x != y for x, y in zip(bad[9:], good[9:], strict=True)) <= 3
            async with client(host, port) as c:  # and the client takes it as an answer
                response = await c.read_holding_registers(0, count=18, device_id=2)
                assert not response.isError()

    run(scenario)


def test_truncated_answers_stop_short_of_their_length() -> None:
    fleet = faulty_pair("truncated")

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            host, port, _ = endpoints["bad"]
            good = await exchange(host, port, read_request(3, 1, 0, 18))
            bad = await exchange(host, port, read_request(3, 2, 0, 18), wait=0.2)
            assert 8 <= len(bad) < len(good)
            assert bad == as_unit(good, 2)[: len(bad)]  # a prefix, length field still whole
            async with client(host, port, timeout=0.2) as c:
                with pytest.raises(ModbusIOException):
                    await c.read_holding_registers(0, count=18, device_id=2)

    run(scenario)


def test_bad_checksum_on_tcp_is_a_wrong_length_field() -> None:
    fleet = faulty_pair("bad_checksum")

    async def scenario() -> None:
        async with serving(fleet) as endpoints:
            host, port, _ = endpoints["bad"]
            good = await exchange(host, port, read_request(5, 1))
            bad = await exchange(host, port, read_request(5, 2))
            length = int.from_bytes(good[4:6], "big")
            assert bad == as_unit(good[:4] + (length - 1).to_bytes(2, "big") + good[6:], 2)

    run(scenario)


def test_fault_windows_and_probability() -> None:
    faults: list[dict[str, Any]] = [
        {"meter": "m", "kind": "exception", "start": "PT1H", "end": "PT2H"},
        {"meter": "m", "kind": "no_answer", "start": "PT3H", "probability": 0.5},
    ]
    fleet = fleet_of([meter("m", ENERGY)], faults)
    clock = cast(StillClock, fleet.clock)

    async def outcome(c: AsyncModbusTcpClient) -> str:
        try:
            response = await c.read_holding_registers(0, count=2, device_id=1)
        except ModbusIOException:
            return "silent"
        return f"exception {response.exception_code}" if response.isError() else "answer"

    async def scenario() -> None:
        async with serving(fleet) as endpoints, client(*endpoints["m"][:2], timeout=0.1) as c:
            clock.t = START.timestamp() + 1800
            assert await outcome(c) == "answer"
            clock.t = START.timestamp() + 5400
            assert await outcome(c) == "exception 4"
            clock.t = START.timestamp() + 9000
            assert await outcome(c) == "answer"
            clock.t = START.timestamp() + 11000
            seen = [await outcome(c) for _ in range(12)]
            assert {"answer", "silent"} == set(seen)

    run(scenario)


def test_damage_keeps_short_answers_sane() -> None:
    from random import Random

    exception = bytes.fromhex("0001 0000 0003 01 83 02")
    garbled = damage(exception, "garbled", Random(1))
    assert garbled[:8] == exception[:8]
    assert garbled[8] != exception[8]
    assert damage(exception, "truncated", Random(1)) == exception[:8]
    with pytest.raises(ValueError, match="not a byte fault"):
        damage(exception, "slow", Random(1))

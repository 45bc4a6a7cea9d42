"""CJ/T 188 water, gas and heat meters on a simulated bus, read by an independent client:
pyserial on the pty and our sans-I/O codec. Values are checked against the plant."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import serial

from protocols import cjt188
from simulators.fleet import FleetRuntime, Observation, quantize
from simulators.fleet.schema import Cjt188Meter, Fleet
from simulators.meters.serial_buses import running_serial_buses
from simulators.meters.serial_line import SerialLine

BAUD = 115200
CHAR = 11 / BAUD  # 8E1
DELAY_MS = (10.0, 20.0)
FAULTS = ("no_answer", "bad_checksum", "garbled", "truncated", "slow", "exception")
SLOW_MS = 100.0
WATER, HEAT, GAS = 0x10, 0x20, 0x30
M3, KWH, KW, M3_H = 0x2C, 0x05, 0x17, 0x35


def fault_address(kind: str) -> str:
    return f"{FAULTS.index(kind) + 21:014d}"


def make_fleet() -> FleetRuntime:
    start = datetime.now(UTC) - timedelta(hours=1, minutes=5)
    water = {"current_total": {"quantity": "w.volume_m3", "rounding": "floor"}}
    meters: list[dict[str, Any]] = [
        {
            "id": "wm",
            "protocol": "cjt188",
            "bus": "b188",
            "meter_type": "water",
            "address": "00000000000011",
            "fields": water,
        },
        {
            "id": "gm",
            "protocol": "cjt188",
            "bus": "b188",
            "meter_type": "gas",
            "address": "00000000000012",
            "di_order": "swapped",
            "fields": {"current_total": {"quantity": "g.volume_nm3", "rounding": "floor"}},
        },
        {
            "id": "hm",
            "protocol": "cjt188",
            "bus": "b188",
            "meter_type": "heat",
            "address": "00000000000013",
            "unit_first": True,
            "fields": {
                "current_heat": {"quantity": "h.heat_kwh", "rounding": "floor"},
                "heat_power": {"quantity": "h.heat_power_kw"},
                "flow": {"quantity": "h.flow_m3_h", "decimals": 4},
                "total_flow": {"quantity": "h.volume_m3", "rounding": "floor"},
                "supply_temp": {"quantity": "h.supply_temp_c"},
                "return_temp": {"quantity": "h.return_temp_c"},
            },
        },
        {
            "id": "solo",
            "protocol": "cjt188",
            "bus": "solo",
            "meter_type": "water",
            "address": "12345678901234",
            "fields": water,
        },
        *(
            {
                "id": f"f_{kind}",
                "protocol": "cjt188",
                "bus": "b188",
                "meter_type": "water",
                "address": fault_address(kind),
                "fields": water,
            }
            for kind in FAULTS
        ),
    ]
    spec = Fleet.model_validate(
        {
            "name": "cjt188",
            "seed": 5,
            "start": start.isoformat(),
            "plant": {
                "sources": [
                    {"id": "w", "kind": "water", "rated_m3_h": 8},
                    {"id": "g", "kind": "gas", "rated_nm3_h": 120},
                    {"id": "h", "kind": "heat", "rated_kw": 300},
                ]
            },
            "buses": [
                {"id": b, "protocol": "cjt188", "baud": BAUD, "response_delay_ms": DELAY_MS}
                for b in ("b188", "solo")
            ],
            "meters": meters,
            "faults": [
                {"meter": f"f_{kind}", "kind": kind, "delay_ms": SLOW_MS} for kind in FAULTS
            ],
        }
    )
    return FleetRuntime(spec)


@dataclass(frozen=True)
class Exchange:
    data: bytes
    sent: float  # monotonic, when the request was written
    sent_wall: float
    last: float | None  # monotonic, when the last byte was received
    last_wall: float | None

    def frames(self) -> list[cjt188.Frame | cjt188.CJT188Error]:
        decoder = cjt188.StreamDecoder()
        return [*decoder.feed(self.data), *decoder.idle()]

    def frame(self) -> cjt188.Frame:
        frames = self.frames()
        assert len(frames) == 1 and isinstance(frames[0], cjt188.Frame), frames
        return frames[0]


class Client:
    """The terminal's side: a real serial port on the pty, 8E1."""

    def __init__(self, path: str) -> None:
        self.port: Any = serial.Serial(path, BAUD, parity="E", timeout=0.01)

    def exchange(self, request: bytes, listen: float = 0.12, quiet: float = 0.02) -> Exchange:
        self.port.reset_input_buffer()
        sent_wall, sent = time.time(), time.monotonic()
        self.port.write(request)
        data = b""
        last: float | None = None
        last_wall: float | None = None
        while True:
            chunk = self.port.read(max(1, self.port.in_waiting))
            now = time.monotonic()
            if chunk:
                data += chunk
                last, last_wall = now, time.time()
            elif (last is not None and now - last >= quiet) or (
                last is None and now - sent >= listen
            ):
                return Exchange(data, sent, sent_wall, last, last_wall)


@dataclass
class Bench:
    fleet: FleetRuntime
    lines: dict[str, SerialLine]
    client: Client
    solo: Client

    async def read(self, meter_type: int, address: str, **kw: Any) -> Exchange:
        frame = cjt188.read_request(meter_type, cjt188.Address(address), **kw)
        return await asyncio.to_thread(self.client.exchange, cjt188.encode(frame))

    def observation(self, meter: str, quantity: str) -> Observation:
        for obs in reversed(self.fleet.observations):
            if obs.meter == meter and obs.quantity == quantity:
                return obs
        raise AssertionError(f"no observation of {meter} {quantity}")

    def meter(self, meter_id: str) -> Cjt188Meter:
        spec = self.fleet.spec.meter(meter_id)
        assert isinstance(spec, Cjt188Meter)
        return spec

    def check(self, meter: str, field: str, shown: object, exchange: Exchange) -> None:
        """``shown`` is what the meter read from the plant when it answered, at its resolution."""
        point = self.meter(meter).fields[field]
        obs = self.observation(meter, point.quantity)
        assert shown == obs.value
        assert exchange.last_wall is not None
        assert exchange.sent_wall <= obs.t <= exchange.last_wall
        assert obs.value == quantize(self.fleet.plant.value(obs.quantity, obs.t), point)


def on_bench(test: Callable[[Bench], Awaitable[None]]) -> None:
    async def main() -> None:
        fleet = make_fleet()
        async with running_serial_buses(fleet) as lines:
            client = await asyncio.to_thread(Client, lines["b188"].address)
            solo = await asyncio.to_thread(Client, lines["solo"].address)
            try:
                await test(Bench(fleet, dict(lines), client, solo))
            finally:
                client.port.close()
                solo.port.close()

    asyncio.run(main())


# ---- readings ---------------------------------------------------------------------------------
def test_a_water_meter_reads_the_plant() -> None:
    async def test(bench: Bench) -> None:
        exchange = await bench.read(WATER, "00000000000011", ser=0x5A)
        frame = exchange.frame()
        assert frame.control == 0x81 and frame.ser == 0x5A and frame.di_order == "standard"
        reading = cjt188.parse_reading(frame)
        assert isinstance(reading, cjt188.WaterReading)
        assert reading.current_total.unit == M3 and reading.current_total.value > 0
        bench.check("wm", "current_total", reading.current_total.value, exchange)
        assert reading.settlement_total.value == 0  # not configured
        assert reading.time is not None
        now = bench.fleet.plant.local_time(time.time())
        assert abs((reading.time - now).total_seconds()) < 2

    on_bench(test)


@pytest.mark.parametrize("request_order", ["standard", "swapped"])
def test_a_vendor_that_swaps_the_di_understands_both_orders(request_order: str) -> None:
    async def test(bench: Bench) -> None:
        exchange = await bench.read(GAS, "00000000000012", di_order=request_order)
        frame = exchange.frame()
        assert frame.data[:2] == b"\x1f\x90" and frame.di == 0x901F  # it answers its own way
        reading = cjt188.parse_reading(frame)
        assert isinstance(reading, cjt188.WaterReading)
        bench.check("gm", "current_total", reading.current_total.value, exchange)

    on_bench(test)


def test_a_heat_meter_with_units_first() -> None:
    async def test(bench: Bench) -> None:
        exchange = await bench.read(HEAT, "00000000000013")
        frame = exchange.frame()
        assert len(frame.data) == 0x2E
        reading = cjt188.parse_reading(frame, unit_first=True)
        assert isinstance(reading, cjt188.HeatReading)
        assert (reading.current_heat.unit, reading.heat_power.unit) == (KWH, KW)
        assert (reading.flow.unit, reading.total_flow.unit) == (M3_H, M3)
        assert reading.settlement_heat == cjt188.Quantity(reading.settlement_heat.value, KWH)
        bench.check("hm", "current_heat", reading.current_heat.value, exchange)
        bench.check("hm", "heat_power", reading.heat_power.value, exchange)
        bench.check("hm", "flow", reading.flow.value, exchange)
        bench.check("hm", "total_flow", reading.total_flow.value, exchange)
        bench.check("hm", "supply_temp", reading.supply_temp, exchange)
        bench.check("hm", "return_temp", reading.return_temp, exchange)
        assert reading.working_hours == 1  # the plant started 1 h 5 min ago
        # Read with the standard layout it is garbage: the option is the vendor's, not guessed.
        with pytest.raises(cjt188.CJT188Error):
            cjt188.parse_reading(frame)

    on_bench(test)


def test_other_dis_and_functions_get_an_error_answer() -> None:
    async def test(bench: Bench) -> None:
        frame = (await bench.read(WATER, "00000000000011", di=0x8102, ser=9)).frame()
        assert frame.control == 0xC1 and frame.ser == 9 and frame.status is not None
        write = cjt188.write_request(WATER, cjt188.Address("00000000000011"), 0xA017, b"\x55")
        exchange = await asyncio.to_thread(bench.client.exchange, cjt188.encode(write))
        assert exchange.frame().control == 0xC4

    on_bench(test)


# ---- addressing -------------------------------------------------------------------------------
def test_other_addresses_and_meter_types_get_silence() -> None:
    async def test(bench: Bench) -> None:
        assert (await bench.read(WATER, "00000000000099")).data == b""
        assert (await bench.read(HEAT, "00000000000011")).data == b""  # the water meter's address
        assert bench.lines["b188"].tx_bytes == 0
        exchange = await bench.read(cjt188.WILDCARD_TYPE, "00000000000011")  # any type: answers
        assert exchange.frame().meter_type == WATER

    on_bench(test)


def test_the_one_meter_on_a_bus_answers_the_wildcard_read_address() -> None:
    async def test(bench: Bench) -> None:
        request = cjt188.encode(cjt188.read_address_request(ser=3))
        frame = (await asyncio.to_thread(bench.solo.exchange, request)).frame()
        assert frame.control == 0x83 and frame.di == cjt188.READ_ADDRESS_DI and frame.ser == 3
        assert (frame.meter_type, frame.address.digits) == (WATER, "12345678901234")
        # On the shared bus every meter answers at once: nothing readable comes back.
        exchange = await asyncio.to_thread(bench.client.exchange, request)
        assert exchange.data
        assert not any(isinstance(f, cjt188.Frame) for f in exchange.frames())

    on_bench(test)


# ---- timing -----------------------------------------------------------------------------------
def test_answers_come_within_the_response_delay_window() -> None:
    async def test(bench: Bench) -> None:
        request = cjt188.encode(cjt188.read_request(WATER, cjt188.Address("00000000000011")))
        delays = []
        for _ in range(6):
            exchange = await asyncio.to_thread(bench.client.exchange, request)
            assert exchange.last is not None
            wire = (len(request) + len(exchange.data)) * CHAR
            delays.append((exchange.last - exchange.sent - wire) * 1000)
        low, high = DELAY_MS
        # never before the window; a loaded machine makes the odd answer late, never early, so
        # the window's upper edge is judged on the median
        assert min(delays) >= low - 1.0, delays
        assert statistics.median(delays) <= high + 6.0, delays

    on_bench(test)


# ---- communication faults ---------------------------------------------------------------------
def clean_reply(bench: Bench, kind: str, frame_time: datetime | None) -> bytes:
    """What the meter would have sent without the fault, from the value it read."""
    obs = bench.observation(f"f_{kind}", "w.volume_m3")
    reading = cjt188.WaterReading(
        cjt188.Quantity(obs.value, M3), cjt188.Quantity(obs.value * 0, M3), frame_time
    )
    return cjt188.encode(cjt188.read_reply(WATER, cjt188.Address(fault_address(kind)), reading))


def meter_time(bench: Bench, kind: str) -> datetime:
    obs = bench.observation(f"f_{kind}", "w.volume_m3")
    return bench.fleet.meters[f"f_{kind}"].clock(obs.t).replace(microsecond=0)


@pytest.mark.parametrize("kind", FAULTS)
def test_each_communication_fault_shows_on_the_wire(kind: str) -> None:
    async def test(bench: Bench) -> None:
        request = cjt188.read_request(WATER, cjt188.Address(fault_address(kind)))
        exchange = await asyncio.to_thread(
            bench.client.exchange, cjt188.encode(request), SLOW_MS / 1000 + 0.06
        )
        data = exchange.data
        if kind == "no_answer":
            assert data == b""
            return
        if kind == "exception":
            assert exchange.frame().control == 0xC1
            return
        clean = clean_reply(bench, kind, meter_time(bench, kind))
        if kind == "slow":
            assert data == clean and exchange.last is not None
            assert exchange.last - exchange.sent >= SLOW_MS / 1000
        elif kind == "bad_checksum":
            errors = exchange.frames()
            assert len(errors) == 1 and isinstance(errors[0], cjt188.CJT188Error)
            assert errors[0].reason == "checksum"
            assert data[:-2] == clean[:-2] and data[-2] != clean[-2]
        elif kind == "garbled":
            assert len(data) == len(clean)
            assert 1 <= sum(a != b for a, b in zip(data, clean, strict=True)) <= 3
            assert cjt188.decode(clean) not in exchange.frames()
        elif kind == "truncated":
            assert 4 < len(data) < len(clean) and clean.startswith(data)
            assert not any(isinstance(f, cjt188.Frame) for f in exchange.frames())

    on_bench(test)

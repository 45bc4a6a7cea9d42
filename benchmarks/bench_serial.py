"""Serial timing fidelity: reads per second through the paced pty against what the wire allows.

Run: ``.venv/bin/python -m benchmarks.bench_serial [--seconds 15]`` (prints JSON). Two figures,
each with the target 0.95 (measured / theoretical):

- Modbus RTU at 9600 baud 8N1, FC03 × 10 registers, no meter delay besides the 3.5-character
  silence; read by pymodbus's serial client;
- DL/T 645-2007 at 9600 baud 8E1, energy read with 4 × FE each way, 20 ms meter delay; read by
  pyserial and our codec.

The theoretical rates follow FACTS.md "Bus-time limits", computed here from the frames' own
lengths. FACTS.md's Modbus figure counts a 3.5-character silence after the answer too; a
master that sends its next request at once (pymodbus's async client) can beat it, so the
report adds the ratio to the bound without that silence.

Each client runs in a thread with its own event loop (or blocking I/O), so the client and the
simulated meters do not share one loop, as they would not on a real bus.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import serial
from pymodbus.client import AsyncModbusSerialClient

from benchmarks.harness import Figure, report
from protocols import dlt645
from simulators.fleet import FleetRuntime
from simulators.fleet.schema import Fleet
from simulators.meters.serial_buses import running_serial_buses

BAUD = 9600
TARGET = 0.95
REGISTERS = 10
DLT645_DELAY_S = 0.020
METER = dlt645.Address("000000000001")
ENERGY = 0x00010000


# ---- what the wire allows ---------------------------------------------------------------------
def modbus_theoretical(
    baud: int = BAUD, bits: int = 10, registers: int = REGISTERS, gaps: float = 2
) -> float:
    """Reads/s of FC03: request 8 bytes, answer 5 + 2n, each followed by 3.5 silent chars.

    ``gaps=1``: the bound for a master that sends its next request as soon as the answer is
    in (pymodbus's async client does), skipping the 3.5 characters after the answer.
    """
    chars = 8 + (5 + 2 * registers) + gaps * 3.5
    return baud / (bits * chars)


def dlt645_theoretical(baud: int = BAUD, bits: int = 11, delay_s: float = DLT645_DELAY_S) -> float:
    """Reads/s of one energy DI: request and answer with 4 × FE each, plus the meter's delay."""
    request = dlt645.encode(dlt645.read_request(METER, ENERGY))
    answer = dlt645.encode(dlt645.read_reply(METER, ENERGY, Decimal("123456.78")))
    return 1.0 / ((len(request) + len(answer)) * bits / baud + delay_s)


# ---- fleets -----------------------------------------------------------------------------------
def _fleet(bus: dict[str, Any], meter: dict[str, Any]) -> FleetRuntime:
    start = datetime.now(UTC) - timedelta(hours=1)
    return FleetRuntime(
        Fleet.model_validate(
            {
                "name": "bench-serial",
                "start": start.isoformat(),
                "plant": {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]},
                "buses": [{"id": "bus", "baud": BAUD, **bus}],
                "meters": [{"id": "meter", "bus": "bus", **meter}],
            }
        )
    )


def modbus_fleet() -> FleetRuntime:
    quantities = ["voltage_a", "voltage_b", "voltage_c", "current_a", "current_b"]
    return _fleet(
        {"protocol": "modbus-rtu", "framing": "8N1", "response_delay_ms": (0, 0)},
        {
            "protocol": "modbus-rtu",
            "unit_id": 1,
            "registers": [
                {"address": 2 * i, "type": "uint32", "scale": "0.01", "quantity": f"grid.{q}"}
                for i, q in enumerate(quantities)
            ],
        },
    )


def dlt645_fleet() -> FleetRuntime:
    delay_ms = DLT645_DELAY_S * 1000
    return _fleet(
        {"protocol": "dlt645", "framing": "8E1", "response_delay_ms": (delay_ms, delay_ms)},
        {
            "protocol": "dlt645-2007",
            "address": METER.digits,
            "points": [{"di": "00010000", "quantity": "grid.energy_import_kwh"}],
        },
    )


# ---- clients ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    reads: int
    failures: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.reads / self.seconds


async def _modbus_client(path: str, seconds: float) -> Run:
    client = AsyncModbusSerialClient(path, baudrate=BAUD, parity="N", timeout=1.0, retries=0)
    if not await client.connect():
        raise RuntimeError(f"pymodbus could not open {path}")
    try:
        await client.read_holding_registers(0, count=REGISTERS, device_id=1)  # warm up
        reads = failures = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            response = await client.read_holding_registers(0, count=REGISTERS, device_id=1)
            if response.isError() or len(response.registers) != REGISTERS:
                failures += 1
            else:
                reads += 1
        return Run(reads, failures, elapsed)
    finally:
        client.close()


def _dlt645_client(path: str, seconds: float) -> Run:
    port: Any = serial.Serial(path, BAUD, parity="E", timeout=0.5)
    request = dlt645.encode(dlt645.read_request(METER, ENERGY))
    try:
        reads = failures = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            port.write(request)
            decoder = dlt645.StreamDecoder()
            frames: list[dlt645.Frame | dlt645.DLT645Error] = []
            while not frames:
                chunk = port.read(max(1, port.in_waiting))
                if not chunk:
                    break  # timed out
                frames = decoder.feed(chunk)
            ok = len(frames) == 1 and isinstance(frames[0], dlt645.Frame)
            if ok and isinstance(frames[0], dlt645.Frame) and dlt645.read_values(frames[0]):
                reads += 1
            else:
                failures += 1
        return Run(reads, failures, elapsed)
    finally:
        port.close()


async def measure_modbus(seconds: float) -> Run:
    async with running_serial_buses(modbus_fleet()) as lines:
        path = lines["bus"].address
        return await asyncio.to_thread(lambda: asyncio.run(_modbus_client(path, seconds)))


async def measure_dlt645(seconds: float) -> Run:
    async with running_serial_buses(dlt645_fleet()) as lines:
        return await asyncio.to_thread(_dlt645_client, lines["bus"].address, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per figure (default 15)")
    args = parser.parse_args()
    modbus = asyncio.run(measure_modbus(args.seconds))
    dlt = asyncio.run(measure_dlt645(args.seconds))
    modbus_limit, dlt_limit = modbus_theoretical(), dlt645_theoretical()
    report(
        "serial",
        [
            Figure(
                "modbus-rtu 9600 8N1 FC03×10, measured / theoretical",
                modbus.rate / modbus_limit,
                "ratio",
                TARGET,
            ),
            Figure(
                "dlt645 9600 8E1 energy read +20 ms, measured / theoretical",
                dlt.rate / dlt_limit,
                "ratio",
                TARGET,
            ),
            Figure(
                "modbus-rtu 9600 8N1 FC03×10, measured / bound without the silence after the "
                "answer (the client does not wait it)",
                modbus.rate / modbus_theoretical(gaps=1),
                "ratio",
            ),
            Figure("modbus-rtu 9600 8N1 FC03×10 measured", modbus.rate, "reads/s"),
            Figure("dlt645 9600 8E1 energy read +20 ms measured", dlt.rate, "reads/s"),
        ],
        theoretical={
            "modbus_rtu_reads_s": modbus_limit,
            "modbus_rtu_reads_s_without_trailing_silence": modbus_theoretical(gaps=1),
            "dlt645_reads_s": dlt_limit,
        },
        runs={
            "modbus_rtu": {"reads": modbus.reads, "failures": modbus.failures, "s": modbus.seconds},
            "dlt645": {"reads": dlt.reads, "failures": dlt.failures, "s": dlt.seconds},
        },
    )


if __name__ == "__main__":
    main()

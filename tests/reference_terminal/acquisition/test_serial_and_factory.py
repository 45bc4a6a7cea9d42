"""The serial port and bus arbiter on their own, and the driver factory."""

from __future__ import annotations

import asyncio
import os
import termios
from typing import Any

import pytest

from reference_terminal.acquisition.cjt188 import Cjt188Driver
from reference_terminal.acquisition.dlt645 import Dlt645Driver
from reference_terminal.acquisition.drivers import is_polled, make_buses, make_driver, requests_for
from reference_terminal.acquisition.https import HttpsPullDriver
from reference_terminal.acquisition.modbus import ModbusRtuDriver, ModbusTcpDriver
from reference_terminal.acquisition.opcua import OpcUaDriver
from reference_terminal.acquisition.serial_port import BusArbiter, SerialPort, within
from reference_terminal.acquisition.sql import SqlDriver
from reference_terminal.config import SerialBus, TerminalConfig

from .fleets import CLOCK


def test_within_times_out_on_the_clock() -> None:
    async def main() -> None:
        assert await within(CLOCK, 1.0, asyncio.sleep(0, "done")) == "done"
        with pytest.raises(TimeoutError):
            await within(CLOCK, 0.01, asyncio.sleep(5))
        with pytest.raises(KeyError):
            await within(CLOCK, 1.0, _raise())

    asyncio.run(main())


async def _raise() -> None:
    raise KeyError("x")


def test_port_settings_and_bytes_both_ways() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)

    async def main() -> None:
        port = SerialPort(path, baud=2400, framing="8E1")
        port.open()
        try:
            assert port.char_s == pytest.approx(11 / 2400)
            attrs = termios.tcgetattr(port._fd)
            assert attrs[4] == termios.B2400  # the speed reached the device
            await port.send(b"\x68ping\x16")
            assert os.read(master, 100) == b"\x68ping\x16"
            os.write(master, b"pong")
            assert await port.read(CLOCK, CLOCK.monotonic() + 1) == b"pong"
            assert await port.read(CLOCK, CLOCK.monotonic() + 0.02) == b""  # the deadline
            os.write(master, b"stale")
            await asyncio.sleep(0.02)
            assert port.discard_input() == 5
        finally:
            port.close()
        assert not port.is_open

    try:
        asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)


def test_arbiter_passes_the_bus_on_when_a_waiter_is_cancelled() -> None:
    bus = SerialBus(id="b", port="/unused", protocol="modbus-rtu", baud=1200, framing="8N1")

    class Dummy(SerialPort):
        def open(self) -> None:
            self._serial = object()

    arb = BusArbiter(bus, CLOCK, port_factory=lambda b: Dummy(b.port, baud=b.baud))
    assert arb.turnaround_s == pytest.approx(3.5 * 10 / 1200)  # t3.5 beats the 5 ms default
    order: list[str] = []

    async def use(name: str, hold: float) -> None:
        async with arb.exchange(name):
            order.append(name)
            await asyncio.sleep(hold)

    async def main() -> None:
        first = asyncio.create_task(use("a", 0.05))
        await asyncio.sleep(0)
        doomed = asyncio.create_task(use("b", 0))
        third = asyncio.create_task(use("c", 0))
        await asyncio.sleep(0.01)
        assert arb.waiting == 2
        doomed.cancel()
        await asyncio.gather(first, third, return_exceptions=True)
        assert order == ["a", "c"] and arb.max_in_flight == 1 and arb.in_flight == 0

    asyncio.run(main())


def config(**extra: Any) -> TerminalConfig:
    devices = [
        {"id": "tcp", "protocol": "modbus-tcp", "host": "127.0.0.1"},
        {"id": "rtu", "protocol": "modbus-rtu", "bus": "b_rtu", "unit_id": 1},
        {"id": "em", "protocol": "dlt645-2007", "bus": "b645", "address": "000000000001"},
        {
            "id": "wm",
            "protocol": "cjt188",
            "bus": "b188",
            "meter_type": "water",
            "address": "00000000000001",
        },
        {"id": "dcs", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840"},
        {"id": "db", "protocol": "sql", "url": "sqlite://", "query": "SELECT 1, 2"},
        {"id": "ems", "protocol": "https", "url": "https://127.0.0.1/readings"},
        {"id": "push", "protocol": "https", "mode": "push"},
        {"id": "mq", "protocol": "mqtt", "host": "127.0.0.1", "topic": "t"},
        {"id": "hand", "protocol": "manual"},
    ]
    buses = [
        {"id": "b_rtu", "port": "/dev/ttyS1", "protocol": "modbus-rtu"},
        {"id": "b645", "port": "/dev/ttyS2", "protocol": "dlt645"},
        {"id": "b188", "port": "/dev/ttyS3", "protocol": "cjt188"},
    ]
    points = [
        {"id": "a", "group": "g", "source": {"device": "mq", "name": "x"}},
        {
            "id": "b",
            "group": "g",
            "source": {"device": "em", "di": "00010000"},
            "backup": {"device": "mq", "name": "y"},
        },
        {"id": "c", "group": "g", "source": {"device": "em", "di": "00020000"}},
    ]
    return TerminalConfig.model_validate(
        {
            "buses": buses,
            "devices": devices,
            "groups": [{"id": "g", "period_s": 60}],
            "points": points,
            **extra,
        }
    )


def test_factory_makes_the_driver_of_each_polled_device() -> None:
    cfg = config()
    buses = make_buses(cfg.buses, CLOCK)
    expected = {
        "tcp": ModbusTcpDriver,
        "rtu": ModbusRtuDriver,
        "em": Dlt645Driver,
        "wm": Cjt188Driver,
        "dcs": OpcUaDriver,
        "db": SqlDriver,
        "ems": HttpsPullDriver,
    }
    for device in cfg.devices:
        if device.id in expected:
            assert is_polled(device)
            driver = make_driver(device, buses=buses, clock=CLOCK)
            assert isinstance(driver, expected[device.id]) and driver.device_id == device.id
        else:
            assert not is_polled(device)
            with pytest.raises(ValueError, match="not polled"):
                make_driver(device, buses=buses, clock=CLOCK)
    with pytest.raises(ValueError, match="no bus 'b645'"):
        make_driver(cfg.device("em"), buses={}, clock=CLOCK)
    wrong = {"b645": buses["b188"]}
    with pytest.raises(ValueError, match="not a dlt645 bus"):
        make_driver(cfg.device("em"), buses=wrong, clock=CLOCK)
    assert [(p.id, s.name) for p, s in requests_for(cfg, "mq")] == [("a", "x"), ("b", "y")]

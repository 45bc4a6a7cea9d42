"""Acceptance: every meter of fixtures/fleets/small.yaml, read with an independent client,
shows the plant's exact value at the meter's resolution.

Clients: pyserial + our codecs (DL/T 645, CJ/T 188), pymodbus (TCP and RTU), asyncua, aiomqtt,
httpx (TLS verified against the fleet's CA), csv. The fleet runs in this process's event loop;
blocking serial clients run in threads.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import ssl
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import httpx
import serial
from asyncua import Client as OpcUaClient  # type: ignore[attr-defined]
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from protocols import cjt188, dlt645
from simulators.fleet import FleetRuntime, Observation, quantize
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import (
    AnalogModule,
    Cjt188Meter,
    Dlt645Meter,
    Fault,
    HttpsCollector,
    Meter,
    ModbusRtuMeter,
    ModbusTcpMeter,
    MqttCollector,
    OpcUaServer,
    Point,
    SqlHistorian,
)
from simulators.meters.analog import counts, loop_current, scaled
from simulators.meters.modbus_tcp import parse_endpoint

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"
DAY_S = 86400.0
M = TypeVar("M", bound=Meter)


def meter(fleet: FleetRuntime, meter_id: str, kind: type[M]) -> M:
    spec = fleet.spec.meter(meter_id)
    assert isinstance(spec, kind)
    return spec


def endpoint(fleet: FleetRuntime, meter_id: str) -> str:
    return next(e.address for e in fleet.endpoints if e.meter == meter_id)


def told_the_truth(fleet: FleetRuntime, meter_id: str, point: Point, shown: Decimal) -> None:
    """``shown`` is what the meter sent (per its record of answers) and what the plant held at
    that instant, at the meter's resolution."""
    obs: Observation | None = next(
        (
            o
            for o in reversed(fleet.observations)
            if o.meter == meter_id and o.quantity == point.quantity and o.value == shown
        ),
        None,
    )
    assert obs is not None, f"{meter_id} never sent {shown} for {point.quantity}"
    assert obs.value == quantize(fleet.plant.value(obs.quantity, obs.t), point)
    assert not obs.faults


def serial_exchange(path: str, request: bytes, decoder: Any) -> object:
    """Write one request with pyserial; return the first frame the decoder completes."""
    port = serial.Serial(path, baudrate=9600, parity=serial.PARITY_EVEN, timeout=0.1)
    try:
        stream = decoder()
        port.write(request)
        for _ in range(40):
            for item in stream.feed(port.read(256)):
                return item
        raise AssertionError(f"no answer on {path}")
    finally:
        port.close()


async def check_dlt645(fleet: FleetRuntime) -> None:
    for meter_id in ("em-grid", "em-pv", "em-old"):
        spec = meter(fleet, meter_id, Dlt645Meter)
        path = endpoint(fleet, meter_id).split()[0]
        edition: dlt645.Edition = "1997" if spec.protocol.endswith("1997") else "2007"
        for point in (p for p in spec.points if p.quantity):
            request = dlt645.read_request(
                dlt645.Address(spec.address), int(point.di, 16), edition=edition
            )
            reply = await asyncio.to_thread(
                serial_exchange, path, dlt645.encode(request), dlt645.StreamDecoder
            )
            assert isinstance(reply, dlt645.Frame), reply
            (value,) = dlt645.read_values(reply)
            assert isinstance(value.value, Decimal)
            told_the_truth(fleet, meter_id, point, value.value)


async def check_cjt188(fleet: FleetRuntime) -> None:
    for meter_id, field in (
        ("wm-process", "current_total"),
        ("gm-boiler", "current_total"),
        ("hm-heat", "current_heat"),
    ):
        spec = meter(fleet, meter_id, Cjt188Meter)
        path = endpoint(fleet, meter_id).split()[0]
        meter_type = {"water": 0x10, "gas": 0x30, "heat": 0x20}[spec.meter_type]
        request = cjt188.read_request(
            meter_type, cjt188.Address(spec.address), di_order=spec.di_order
        )
        reply = await asyncio.to_thread(
            serial_exchange, path, cjt188.encode(request), cjt188.StreamDecoder
        )
        assert isinstance(reply, cjt188.Frame), reply
        reading = cjt188.parse_reading(reply, unit_first=spec.unit_first)
        shown = getattr(reading, field).value
        told_the_truth(fleet, meter_id, spec.fields[field], shown)


async def check_modbus(fleet: FleetRuntime) -> None:
    rtu = meter(fleet, "pm-mill", ModbusRtuMeter)
    client = AsyncModbusSerialClient(
        endpoint(fleet, "pm-mill").split()[0], baudrate=19200, parity="N", timeout=2
    )
    await client.connect()
    try:
        words = await client.read_holding_registers(2, count=2, device_id=5)
        raw = client.convert_from_registers(
            words.registers, client.DATATYPE.UINT32, word_order="little"
        )
        assert isinstance(raw, int)
        told_the_truth(fleet, "pm-mill", rtu.registers[1], Decimal(raw) * rtu.registers[1].scale)
    finally:
        client.close()
    tcp_meter = meter(fleet, "plc-cems", ModbusTcpMeter)
    host, _, rest = endpoint(fleet, "plc-cems").partition(":")
    tcp = AsyncModbusTcpClient(host, port=int(rest.split()[0]))
    await tcp.connect()
    try:
        words = await tcp.read_holding_registers(10, count=4, device_id=1)
        raw = tcp.convert_from_registers(words.registers, tcp.DATATYPE.UINT64)
        assert isinstance(raw, int)
        counter = tcp_meter.registers[5]
        told_the_truth(fleet, "plc-cems", counter, Decimal(raw) * counter.scale)
    finally:
        tcp.close()


async def check_opcua(fleet: FleetRuntime) -> None:
    tag = meter(fleet, "dcs", OpcUaServer).tags[0]
    async with OpcUaClient(endpoint(fleet, "dcs")) as opc:
        node = await opc.nodes.objects.get_child(["2:dcs", f"2:{tag.name}"])
        value = await node.read_value()
    told_the_truth(fleet, "dcs", tag, Decimal(repr(value)))


async def check_mqtt(fleet: FleetRuntime) -> None:
    point = meter(fleet, "collector-mqtt", MqttCollector).points[0]
    broker, _, topic = endpoint(fleet, "collector-mqtt").removeprefix("mqtt://").partition("/")
    host, _, port = broker.partition(":")
    async with aiomqtt.Client(host, int(port)) as mqtt:
        await mqtt.subscribe(topic)
        message = await anext(aiter(mqtt.messages))
    assert isinstance(message.payload, bytes)
    body = json.loads(message.payload)
    told_the_truth(fleet, "collector-mqtt", point, Decimal(body["values"][point.name]["value"]))


async def check_https(fleet: FleetRuntime) -> None:
    point = meter(fleet, "collector-https", HttpsCollector).points[0]
    url, _, ca = endpoint(fleet, "collector-https").partition(" (ca: ")
    context = ssl.create_default_context(cafile=ca.rstrip(")"))
    async with httpx.AsyncClient(verify=context) as https:
        body = (await https.get(f"{url}/readings")).json()
    told_the_truth(fleet, "collector-https", point, Decimal(body["values"][point.name]["value"]))


async def check_analog(fleet: FleetRuntime) -> None:
    module = meter(fleet, "ai-utilities", AnalogModule)
    host, port, unit = parse_endpoint(endpoint(fleet, "ai-utilities"))
    tcp = AsyncModbusTcpClient(host, port=port)
    await tcp.connect()
    try:
        for channel in module.channels:
            answer = await tcp.read_input_registers(channel.channel, count=1, device_id=unit)
            (raw,) = answer.registers
            obs = next(o for o in reversed(fleet.observations) if o.quantity == channel.quantity)
            # the module showed the value its counts stand for: the plant's, to one count
            assert obs.value == scaled(raw, channel)
            assert raw == counts(loop_current(Decimal(repr(obs.truth)), channel))
            assert abs(obs.value - Decimal(repr(obs.truth))) <= (channel.high - channel.low) / 32000
    finally:
        tcp.close()


async def check_sql(fleet: FleetRuntime) -> None:
    historian = meter(fleet, "mes-historian", SqlHistorian)
    path = endpoint(fleet, "mes-historian").removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        live = dict(db.execute("SELECT tag, value FROM plant_live WHERE quality = 192"))
    for tag in historian.tags:
        told_the_truth(fleet, "mes-historian", tag, Decimal(repr(live[tag.name])))


def test_every_meter_of_the_small_fleet_tells_the_truth(tmp_path: Path) -> None:
    checks = (
        check_dlt645,
        check_cjt188,
        check_modbus,
        check_opcua,
        check_https,
        check_analog,
        check_sql,
    )

    async def main() -> None:
        async with running_fleet(SMALL, manual_dir=tmp_path, work_dir=tmp_path) as fleet:
            for check in checks:
                await asyncio.wait_for(check(fleet), 30)
            await asyncio.wait_for(check_mqtt(fleet), 30)

    asyncio.run(main())
    with (tmp_path / "manual-clinker.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(Decimal(row["value"]) > 0 for row in rows)


def test_value_faults_reach_the_wire_and_are_recorded() -> None:
    """Faults opened 300 days after the start (so in force now): what the terminal is sent."""
    spec = load_fleet(SMALL)
    window = {"start": "P300D"}
    faulty = spec.model_copy(
        update={
            "faults": [
                Fault.model_validate(
                    {"meter": "em-grid", "kind": "rollover", "headroom": "5", **window}
                ),
                Fault.model_validate(
                    {"meter": "em-grid", "kind": "clock_drift", "drift_s_per_day": 60, **window}
                ),
                Fault.model_validate({"meter": "wm-process", "kind": "replaced", **window}),
                Fault.model_validate(
                    {
                        "meter": "plc-cems",
                        "kind": "frozen",
                        "quantities": ["stack.co2_pct"],
                        **window,
                    }
                ),
            ]
        }
    )

    async def main() -> None:
        async with running_fleet(faulty) as fleet:
            opened = fleet.at(timedelta(days=300))
            # Rollover: the counter stood 5 kWh below full scale when the window opened.
            em = meter(fleet, "em-grid", Dlt645Meter)
            path = endpoint(fleet, "em-grid").split()[0]
            request = dlt645.read_request(dlt645.Address(em.address), 0x00010000)
            reply = await asyncio.to_thread(
                serial_exchange, path, dlt645.encode(request), dlt645.StreamDecoder
            )
            assert isinstance(reply, dlt645.Frame)
            (value,) = dlt645.read_values(reply)
            obs = next(o for o in reversed(fleet.observations) if o.meter == "em-grid")
            assert obs.faults == ("rollover",) and value.value == obs.value
            since = Decimal(repr(obs.truth)) - Decimal(
                repr(fleet.plant.value("grid.energy_import_kwh", opened))
            )
            assert value.value == quantize((since - 5) % 1000000, em.points[0])
            # Clock drift: 60 s a day since the window opened.
            request = dlt645.read_request(dlt645.Address(em.address), 0x04000102)
            reply = await asyncio.to_thread(
                serial_exchange, path, dlt645.encode(request), dlt645.StreamDecoder
            )
            assert isinstance(reply, dlt645.Frame)
            (shown,) = dlt645.read_values(reply)
            now = fleet.now()
            drift = 60 * (now - opened) / DAY_S
            local = fleet.plant.local_time(now)
            ahead = (datetime.combine(local.date(), shown.value) - local).total_seconds()  # type: ignore[arg-type]
            # the meter shows a time of day only: ahead past midnight, it shows tomorrow's
            ahead = (ahead + DAY_S / 2) % DAY_S - DAY_S / 2
            assert abs(ahead - drift) < 3
            # Replaced: the new water meter counts from zero at the window's start.
            wm = meter(fleet, "wm-process", Cjt188Meter)
            request188 = cjt188.read_request(0x10, cjt188.Address(wm.address))
            reply188 = await asyncio.to_thread(
                serial_exchange,
                endpoint(fleet, "wm-process").split()[0],
                cjt188.encode(request188),
                cjt188.StreamDecoder,
            )
            assert isinstance(reply188, cjt188.Frame)
            reading = cjt188.parse_reading(reply188)
            assert isinstance(reading, cjt188.WaterReading)
            total = reading.current_total.value
            volume = fleet.plant.value("process_water.volume_m3", fleet.now())
            before = fleet.plant.value("process_water.volume_m3", opened)
            assert abs(total - Decimal(repr(volume - before))) < Decimal("0.1")
            # Frozen: the CEMS logger repeats the CO2 concentration of the window's start.
            host, _, rest = endpoint(fleet, "plc-cems").partition(":")
            tcp = AsyncModbusTcpClient(host, port=int(rest.split()[0]))
            await tcp.connect()
            try:
                words = await tcp.read_holding_registers(0, count=2, device_id=1)
                co2 = tcp.convert_from_registers(words.registers, tcp.DATATYPE.FLOAT32)
            finally:
                tcp.close()
            stuck = fleet.plant.value("stack.co2_pct", opened)
            assert isinstance(co2, float) and abs(co2 - stuck) < 0.006

    asyncio.run(main())

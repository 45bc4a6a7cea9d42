"""MQTT collectors, read by an independent aiomqtt subscriber on the private broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.schema import Fleet, MqttCollector, NamedPoint
from simulators.meters import broker as broker_module
from simulators.meters.broker import BrokerError, private_broker
from simulators.meters.mqtt import serve_mqtt

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
HOUR = 3600.0
INTERVAL = 0.1


class ShiftedClock:
    """Wall-clock pace from a plant time the test sets, so it can jump into fault windows."""

    def __init__(self, t: float) -> None:
        self.jump(t)

    def jump(self, t: float) -> None:
        self._base, self._at = t, time.monotonic()

    def time(self) -> float:
        return self._base + time.monotonic() - self._at

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def point(name: str, quantity: str, decimals: int, rounding: str = "half_even") -> dict[str, Any]:
    return {"name": name, "quantity": quantity, "decimals": decimals, "rounding": rounding}


SPEC = Fleet.model_validate(
    {
        "name": "mqtt",
        "start": START.isoformat(),
        "plant": {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]},
        "meters": [
            {
                "id": "mq",
                "protocol": "mqtt",
                "topic": "plant/t/mq",
                "interval_s": INTERVAL,
                "qos": 1,
                "points": [
                    point("energy", "grid.energy_import_kwh", 2, "floor"),
                    point("power", "grid.power_kw", 1),
                ],
            },
            {
                "id": "mq2",
                "protocol": "mqtt",
                "topic": "plant/t/mq2",
                "interval_s": INTERVAL,
                "qos": 2,
                "points": [point("volts", "grid.voltage_b", 3)],
            },
        ],
        "faults": [
            {"meter": "mq", "kind": "no_answer", "start": "PT1H", "end": "PT2H"},
            {"meter": "mq", "kind": "garbled", "start": "PT2H", "end": "PT3H"},
            {"meter": "mq", "kind": "truncated", "start": "PT3H", "end": "PT4H"},
            {"meter": "mq", "kind": "slow", "start": "PT4H", "end": "PT5H", "delay_ms": 300},
            {"meter": "mq", "kind": "exception", "start": "PT5H", "end": "PT6H"},
        ],
    }
)


@dataclass(frozen=True)
class Received:
    at: float  # fleet time on arrival
    topic: str
    qos: int
    payload: bytes

    def document(self) -> dict[str, Any] | None:
        try:
            parsed: dict[str, Any] = json.loads(self.payload)
        except ValueError:
            return None
        return parsed


@dataclass
class Bench:
    fleet: FleetRuntime
    clock: ShiftedClock
    broker: tuple[str, int]
    received: list[Received] = field(default_factory=list)

    def on(self, topic: str, since: int = 0) -> list[Received]:
        return [r for r in self.received[since:] if r.topic == topic]

    async def jump(self, offset_h: float, messages: int = 4) -> tuple[float, list[Received]]:
        """Move plant time into a window; the next ``messages`` on plant/t/mq after it."""
        t = START.timestamp() + offset_h * HOUR
        mark = len(self.received)
        self.clock.jump(t)
        await until(lambda: len(self.on("plant/t/mq", mark)) >= messages)
        return t, self.on("plant/t/mq", mark)

    def point(self, meter: str, name: str) -> NamedPoint:
        spec = self.fleet.spec.meter(meter)
        assert isinstance(spec, MqttCollector)
        return next(p for p in spec.points if p.name == name)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def bench(anyio_backend: str) -> AsyncIterator[Bench]:
    async with private_broker() as broker:
        clock = ShiftedClock(START.timestamp() + 0.5 * HOUR)
        bench = Bench(FleetRuntime(SPEC, clock), clock, broker)
        async with aiomqtt.Client(*broker, identifier="carbench-test-subscriber") as subscriber:
            await subscriber.subscribe("plant/t/#", qos=2)

            async def listen() -> None:
                async for message in subscriber.messages:
                    payload = message.payload
                    assert isinstance(payload, bytes)
                    bench.received.append(
                        Received(clock.time(), str(message.topic), message.qos, payload)
                    )

            listening = asyncio.create_task(listen())
            serving = asyncio.create_task(serve_mqtt(bench.fleet, broker))
            try:
                await until(lambda: len(bench.on("plant/t/mq")) >= 2)
                yield bench
            finally:
                for task in (serving, listening):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


def reading_instant(text: str) -> float:
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(hours=8)  # the plant's local offset
    return stamp.timestamp()


def check_document(bench: Bench, meter: str, document: dict[str, Any]) -> float:
    """The values are what the meter read at the document's time, digit for digit."""
    assert document["collector"] == meter
    t = reading_instant(document["time"])
    spec = bench.fleet.spec.meter(meter)
    assert isinstance(spec, MqttCollector)
    assert list(document["values"]) == [p.name for p in spec.points]
    for name, shown in document["values"].items():
        p = bench.point(meter, name)
        seen = [
            o
            for o in bench.fleet.observations
            if o.quantity == p.quantity and t - 1e-6 <= o.t < t + 0.001
        ][-1]
        exact = quantize(bench.fleet.plant.value(p.quantity, seen.t), p)
        assert shown["value"] == format(exact, "f") == format(seen.value, "f")
        assert Decimal(shown["value"]).as_tuple().exponent == -p.decimals
        assert shown["quantity"] == p.quantity
        assert shown["unit"] == bench.fleet.plant.quantity(p.quantity).unit
    return t


async def test_each_collector_announces_its_topic(bench: Bench) -> None:
    host, port = bench.broker
    assert port != 1883  # never the machine's own broker
    assert {(e.meter, e.protocol, e.address) for e in bench.fleet.endpoints} == {
        ("mq", "mqtt", f"mqtt://{host}:{port}/plant/t/mq"),
        ("mq2", "mqtt", f"mqtt://{host}:{port}/plant/t/mq2"),
    }


async def test_readings_arrive_every_interval_at_their_resolution(bench: Bench) -> None:
    _, messages = await bench.jump(0.5)
    times = []
    for message in messages:
        assert message.qos == 1
        document = message.document()
        assert document is not None
        times.append(check_document(bench, "mq", document))
        assert bench.fleet.now() - times[-1] < 0.5  # published when read
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(INTERVAL * 0.5 < gap < INTERVAL * 3 for gap in gaps), gaps
    (other, *_) = bench.on("plant/t/mq2")
    assert other.qos == 2
    document = other.document()
    assert document is not None
    check_document(bench, "mq2", document)


async def test_no_answer_publishes_nothing(bench: Bench) -> None:
    window = START.timestamp() + 1.5 * HOUR
    mark = len(bench.received)
    bench.clock.jump(window)
    await until(lambda: len(bench.on("plant/t/mq2", mark)) >= 5)  # the other one goes on
    late = [r.document() for r in bench.on("plant/t/mq", mark)]
    assert len(late) <= 1  # one may have been on its way before the jump
    assert all(d is not None and reading_instant(d["time"]) < window for d in late)


@pytest.mark.parametrize(("offset_h", "kind"), [(2.5, "garbled"), (3.5, "truncated")])
async def test_damaged_messages_never_parse(bench: Bench, offset_h: float, kind: str) -> None:
    _, normal = await bench.jump(0.5, messages=1)
    size = len(normal[-1].payload)
    window, messages = await bench.jump(offset_h, messages=4)
    damaged = [m for m in messages if m.document() is None]
    assert len(damaged) >= 3  # all but perhaps one sent before the jump
    for message in damaged:
        if kind == "truncated":
            assert 0 < len(message.payload) < size
        else:
            assert abs(len(message.payload) - size) <= 3
            assert message.payload[0] >= 0x80  # the first byte is always hit
    for message in messages:
        document = message.document()
        assert document is None or reading_instant(document["time"]) < window


async def test_slow_publishes_late_with_the_reading_time(bench: Bench) -> None:
    window, messages = await bench.jump(4.5, messages=4)
    late = []
    for message in messages:
        document = message.document()
        assert document is not None
        t = reading_instant(document["time"])
        if t >= window:
            late.append(message.at - t)
    assert len(late) >= 2
    assert all(0.29 <= delay < 1.0 for delay in late), late


async def test_exception_publishes_an_error(bench: Bench) -> None:
    window, messages = await bench.jump(5.5, messages=3)
    errors = [d for m in messages if (d := m.document()) is not None and "error" in d]
    assert len(errors) >= 2
    for error in errors:
        assert error["collector"] == "mq"
        assert reading_instant(error["time"]) >= window
        assert "values" not in error


async def test_the_broker_stops_with_its_context() -> None:
    async with private_broker() as (host, port):
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)


_HOLD_A_BROKER = """
import asyncio, sys
from simulators.meters.broker import private_broker

async def main():
    async with private_broker() as (host, port):
        print(port, flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_killed_bench_leaves_no_broker_behind() -> None:
    bench = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_A_BROKER, stdout=asyncio.subprocess.PIPE
    )
    assert bench.stdout is not None
    port = int(await asyncio.wait_for(bench.stdout.readline(), 30))
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    bench.kill()  # SIGKILL: no context manager gets to stop the broker
    await bench.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        await asyncio.sleep(0.1)
    pytest.fail(f"the broker on port {port} outlived its bench")


async def test_a_missing_broker_binary_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(broker_module, "FALLBACK_PATHS", ())
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        async with private_broker():
            pass


async def test_a_broker_that_will_not_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="did not start: exit code 1"):
        async with private_broker(Path("/bin/false")):
            pass


async def test_a_fleet_not_pushing_publishes_once_then_waits() -> None:
    """``FleetRuntime.push`` off (a bench reading the meters through their models): each
    collector announces its topic with its first reading and publishes nothing more, until
    pushing is switched on again."""
    async with private_broker() as broker:
        clock = ShiftedClock(START.timestamp() + 0.5 * HOUR)
        fleet = FleetRuntime(SPEC, clock, push=False)
        received: list[str] = []
        async with aiomqtt.Client(*broker, identifier="carbench-test-quiet") as subscriber:
            await subscriber.subscribe("plant/t/#", qos=2)

            async def listen() -> None:
                async for message in subscriber.messages:
                    received.append(str(message.topic))

            listening = asyncio.create_task(listen())
            serving = asyncio.create_task(serve_mqtt(fleet, broker))
            try:
                await until(lambda: sorted(received) == ["plant/t/mq", "plant/t/mq2"])
                assert {e.meter for e in fleet.endpoints} == {"mq", "mq2"}
                await asyncio.sleep(5 * INTERVAL)  # pushing, mq would publish ~5 more times
                assert sorted(received) == ["plant/t/mq", "plant/t/mq2"]
                fleet.set_push(True)
                await until(lambda: received.count("plant/t/mq") >= 3)
            finally:
                for task in (serving, listening):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

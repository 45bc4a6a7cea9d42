"""The MQTT intake against simulated collectors on a private broker: readings delivered as
published with their exact text, malformed and error documents counted, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest

from reference_terminal.acquisition.mqtt import MalformedDocument, MqttIntake, parse_document
from reference_terminal.config import MqttDevice
from reference_terminal.model import RawValue
from simulators.fleet.runner import running_fleet
from simulators.meters.broker import free_port

from .fleets import CLOCK, fleet, good, request, requests, sent_at

POINTS = [
    {"name": "gas_total", "quantity": "gas.volume_nm3", "decimals": 2, "rounding": "floor"},
    {"name": "gas_flow", "quantity": "gas.flow_nm3_h", "decimals": 2},
]


def collector(meter_id: str) -> dict[str, object]:
    return {
        "id": meter_id,
        "protocol": "mqtt",
        "topic": f"plant/{meter_id}",
        "interval_s": 0.2,
        "points": POINTS,
    }


class Inbox:
    def __init__(self) -> None:
        self.batches: list[Sequence[RawValue]] = []

    async def __call__(self, raws: Sequence[RawValue]) -> None:
        self.batches.append(raws)


async def until(condition: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def test_collectors_push_readings_and_bad_messages_are_only_counted() -> None:
    spec = fleet(
        [collector("c_ok"), collector("c_garbled"), collector("c_error")],
        faults=[
            {"meter": "c_garbled", "kind": "garbled"},
            {"meter": "c_error", "kind": "exception"},
        ],
    )

    async def main() -> None:
        async with running_fleet(spec) as fl:
            address = next(e.address for e in fl.endpoints if e.meter == "c_ok")
            host, _, port = address.removeprefix("mqtt://").partition("/")[0].partition(":")
            intakes: dict[str, tuple[MqttIntake, Inbox]] = {}
            for meter_id in ("c_ok", "c_garbled", "c_error"):
                device = MqttDevice(
                    id=meter_id,
                    protocol="mqtt",
                    host=host,
                    port=int(port),
                    topic=f"plant/{meter_id}",
                )
                reqs = requests(
                    meter_id, [{"name": "gas_total"}, {"name": "gas_flow"}, {"name": "missing"}]
                )
                inbox = Inbox()
                intakes[meter_id] = (MqttIntake(device, reqs, inbox, CLOCK), inbox)
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(i.run()) for i, _ in intakes.values()]
                ok, ok_inbox = intakes["c_ok"]
                garbled, garbled_inbox = intakes["c_garbled"]
                error, error_inbox = intakes["c_error"]
                await until(
                    lambda: (
                        len(ok_inbox.batches) >= 3
                        and garbled.stats.malformed >= 3
                        and len(error_inbox.batches) >= 2
                    )
                )
                for task in tasks:
                    task.cancel()
            for batch in ok_inbox.batches:
                total, flow, missing = batch
                assert good(total) == sent_at(fl, "c_ok", "gas.volume_nm3", total.t, 0.002)
                assert good(flow) == sent_at(fl, "c_ok", "gas.flow_nm3_h", flow.t, 0.002)
                assert total.raw == format(total.value, "f")  # the text as published
                assert missing.value is None and "no value named 'missing'" in (missing.error or "")
            assert ok.stats.malformed == 0 and ok.stats.connects == 1
            assert not garbled_inbox.batches  # nothing delivered from damaged messages
            assert garbled.stats.messages == garbled.stats.malformed
            assert "not JSON" in garbled.stats.last_problem
            assert error.stats.collector_errors == len(error_inbox.batches)
            for batch in error_inbox.batches:
                assert all(
                    r.value is None and (r.error or "").startswith("collector error") for r in batch
                )

    asyncio.run(main())


def test_a_stop_lost_by_the_client_library_still_stops_the_intake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.11's ``wait_for``, which aiomqtt's subscribe waits with, loses a cancellation
    that lands just as the broker's answer does; the intake then listened for ever (a terminal
    stopping for a restart hung on it)."""
    spec = fleet([collector("c_ok")])
    subscribe = aiomqtt.Client.subscribe

    async def subscribe_losing_a_stop(client: aiomqtt.Client, *args: Any, **kwargs: Any) -> Any:
        answer = await subscribe(client, *args, **kwargs)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # the stop lands now, and is lost as 3.11's wait_for loses it
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)
        return answer

    monkeypatch.setattr(aiomqtt.Client, "subscribe", subscribe_losing_a_stop)

    async def main() -> None:
        async with running_fleet(spec) as fl:
            address = next(e.address for e in fl.endpoints if e.meter == "c_ok")
            host, _, port = address.removeprefix("mqtt://").partition("/")[0].partition(":")
            device = MqttDevice(
                id="c_ok", protocol="mqtt", host=host, port=int(port), topic="plant/c_ok"
            )
            intake = MqttIntake(device, requests("c_ok", [{"name": "gas_total"}]), Inbox(), CLOCK)
            task = asyncio.create_task(intake.run())
            await asyncio.wait([task], timeout=10)
            assert task.done(), "the intake went on after its stop"
            assert task.cancelled()
            assert intake.stats.connects == 0 and not intake.subscribed.is_set()

    asyncio.run(main())


def test_no_broker_is_retried_without_crashing() -> None:
    device = MqttDevice(
        id="c", protocol="mqtt", host="127.0.0.1", port=free_port(), topic="t", timeout_s=0.5
    )
    intake = MqttIntake(device, [], Inbox(), CLOCK, reconnect_s=0.05)

    async def main() -> None:
        task = asyncio.create_task(intake.run())
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert intake.stats.connects == 0 and "broker 127.0.0.1" in intake.stats.last_problem


def test_documents() -> None:
    reqs = [request("c", name="a"), request("c", name="b"), request("c", name="c")]
    doc = (
        b'{"collector":"c","time":"2026-01-01T08:00:05.250+08:00","values":'
        b'{"a":{"value":"10.10","unit":"kWh"},"b":{"value":12.50},"c":{"value":"NaN"}}}'
    )
    raws, failed = parse_document(doc, "c", reqs)
    assert not failed
    assert raws[0].value == Decimal("10.10") and str(raws[0].value) == "10.10"
    assert str(raws[1].value) == "12.50"  # a JSON number, never through a float
    assert raws[2].value is None
    assert raws[0].t == 1767225605.25
    for bad, why in (
        (b"\xff{", "not JSON"),
        (b"[1]", "not an object"),
        (b'{"time":"2026-01-01T08:00:05","values":{}}', "no UTC offset"),
        (b'{"time":"2026-01-01T08:00:05Z"}', "no 'values'"),
        (b'{"values":{}}', "no 'time'"),
    ):
        with pytest.raises(MalformedDocument, match=why):
            parse_document(bad, "c", reqs)

"""MQTT collectors: data concentrators that publish their readings to a broker every interval.

Each :class:`~simulators.fleet.schema.MqttCollector` connects to the broker (the bench's private
one, :mod:`simulators.meters.broker`) and publishes to its ``topic`` every ``interval_s``, with
its QoS, one *reading document* (UTF-8 JSON; the HTTPS collectors send the same document)::

    {"collector": "mq1",
     "time": "2026-01-01T08:00:05.000+08:00",        # the reading time, plant-local offset
     "values": {"import": {"value": "123.45",         # exact decimal text at the resolution
                           "unit": "kWh",
                           "quantity": "grid.energy_import_kwh"}}}

Values are strings, not JSON numbers, so the resolution survives every JSON parser (a float
would turn ``"10.10"`` into ``10.1`` and large counters into binary approximations).

Communication faults (drawn once per publish; a fault's ``quantities`` list is ignored, since
one message carries every point):

* ``no_answer``: nothing is published for that interval;
* ``garbled`` and ``bad_checksum`` (JSON has no checksum; the nearest is a damaged body):
  random bytes of the document are replaced, the first always, so it never parses;
* ``truncated``: the document is cut short at a random byte (never valid JSON);
* ``slow``: the document is published ``delay_ms`` late (its ``time`` stays the reading time);
* ``exception``: the collector publishes ``{"collector", "time", "error"}`` instead of values.

A collector that loses the broker logs it and reconnects on its next interval.
"""

from __future__ import annotations

import asyncio  # TaskGroup only: time comes from fleet.clock
import contextlib
import json
import logging
import random
from datetime import datetime, timedelta, timezone
from typing import Final

import aiomqtt

from common.clock import Clock
from simulators.clock import VirtualClock
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import HttpsCollector, MqttCollector, NamedPoint

log = logging.getLogger(__name__)

#: Faults that damage the document's bytes.
DAMAGING: Final = frozenset({"garbled", "bad_checksum", "truncated"})
EXCEPTION_TEXT: Final = "collector fault: the data source reported an internal error"
#: One byte in this many is replaced by a garbled document (and always the first one).
GARBLE_ONE_IN: Final = 16


# ---- the reading document (shared with simulators.meters.https) ------------------------------


def reading_time(fleet: FleetRuntime, t: float) -> str:
    """ISO 8601 with the plant's UTC offset and milliseconds, e.g. ``…T08:00:05.250+08:00``."""
    zone = timezone(timedelta(hours=fleet.spec.plant.utc_offset_hours))
    return datetime.fromtimestamp(t, zone).isoformat(timespec="milliseconds")


def named_points(meter: MeterRuntime) -> list[NamedPoint]:
    spec = meter.spec
    if not isinstance(spec, MqttCollector | HttpsCollector):
        raise TypeError(f"meter {meter.id} ({spec.protocol}) is not an MQTT or HTTPS collector")
    return list(spec.points)


def reading_document(
    meter: MeterRuntime, t: float, points: list[NamedPoint] | None = None
) -> dict[str, object]:
    """The collector's values at ``t`` (every point, or only ``points``), as sent on the wire."""
    plant = meter.fleet.plant
    values = {
        point.name: {
            # format "f": never exponent notation, whatever the magnitude.
            "value": format(meter.read(point, t), "f"),
            "unit": plant.quantity(point.quantity).unit,
            "quantity": point.quantity,
        }
        for point in (named_points(meter) if points is None else points)
    }
    return {"collector": meter.id, "time": reading_time(meter.fleet, t), "values": values}


def error_document(meter: MeterRuntime, t: float) -> dict[str, object]:
    return {"collector": meter.id, "time": reading_time(meter.fleet, t), "error": EXCEPTION_TEXT}


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def damage(payload: bytes, kind: str, rng: random.Random) -> bytes:
    """A garbled or truncated copy of ``payload`` that no JSON parser accepts."""
    if len(payload) < 2:
        return b"\xff"
    if kind == "truncated":
        # Any proper prefix of a JSON object lacks its closing brace.
        return payload[: rng.randrange(1, len(payload))]
    damaged = bytearray(payload)
    positions = {0, *rng.sample(range(len(payload)), max(1, len(payload) // GARBLE_ONE_IN))}
    for position in positions:
        # A byte >= 0x80 where "{" stood is neither JSON nor the start of a valid document.
        damaged[position] = rng.randrange(0x80, 0x100)
    return bytes(damaged)


# ---- the collectors ---------------------------------------------------------------------------


def mqtt_collectors(fleet: FleetRuntime) -> list[tuple[MeterRuntime, MqttCollector]]:
    return [(m, m.spec) for m in fleet.meters.values() if isinstance(m.spec, MqttCollector)]


async def serve_mqtt(fleet: FleetRuntime, broker: tuple[str, int]) -> None:
    """Publish every MQTT collector's readings to ``broker`` until cancelled.

    Returns at once if the fleet has no MQTT collector. Start the broker first
    (:func:`simulators.meters.broker.private_broker`).
    """
    collectors = mqtt_collectors(fleet)
    host, port = broker
    async with asyncio.TaskGroup() as group:
        for meter, spec in collectors:
            group.create_task(_run_collector(fleet, meter, spec, host, port))


async def _run_collector(
    fleet: FleetRuntime, meter: MeterRuntime, spec: MqttCollector, host: str, port: int
) -> None:
    announced = False
    while True:
        try:
            async with aiomqtt.Client(host, port, identifier=f"carbench-{meter.id}") as client:
                if not announced:
                    # Once connected: whoever waits for the fleet to listen (under a held
                    # virtual clock) then finds every collector publishing from the start,
                    # however long the broker took to accept it.
                    fleet.listening(meter.id, "mqtt", f"mqtt://{host}:{port}/{spec.topic}")
                    announced = True
                await _publish_every(fleet, meter, spec, client)
        except aiomqtt.MqttError as error:
            # Leaving the client while being cancelled can raise MqttError in place of the
            # CancelledError (a disconnect cut short): stop, don't reconnect.
            _stop_if_cancelled()
            # A real collector buffers nothing and tries again later; so do we.
            log.warning("MQTT collector %s: broker %s:%d: %s", meter.id, host, port, error)
            await fleet.clock.sleep(spec.interval_s)


async def _publish_every(
    fleet: FleetRuntime, meter: MeterRuntime, spec: MqttCollector, client: aiomqtt.Client
) -> None:
    clock = fleet.clock
    due = clock.monotonic()
    while True:
        await _publish_once(fleet, meter, spec, client)
        await fleet.pushing()  # FleetRuntime.push
        _stop_if_cancelled()
        due += spec.interval_s
        now = clock.monotonic()
        due = max(due, now)  # a slow answer overran the interval: carry on from now, no burst
        await clock.sleep(due - now)


def _stop_if_cancelled() -> None:
    """Raise the cancellation a library swallowed.

    Python 3.11's ``asyncio.wait_for``, which aiomqtt awaits every QoS 1/2 publish with, returns
    normally when the cancellation arrives just as the publish completes (fixed in 3.12); the
    task is left "cancelling" and would publish forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _publish_once(
    fleet: FleetRuntime, meter: MeterRuntime, spec: MqttCollector, client: aiomqtt.Client
) -> None:
    t = fleet.now()
    fault = meter.communication_fault(t)
    kind = fault.kind if fault is not None else None
    if kind == "no_answer":
        return
    if kind == "exception":
        payload = encode(error_document(meter, t))
    else:
        payload = encode(reading_document(meter, t))
        if kind in DAMAGING:
            payload = damage(payload, kind, meter.random())
    if fault is not None and kind == "slow":
        await fleet.clock.sleep(fault.delay_ms / 1000.0)
    # Under virtual time the broker (another process) answers in no time: the clock would
    # otherwise move on while an acknowledgement is on its way, by however long it took.
    with _held(fleet.clock):
        await client.publish(spec.topic, payload, qos=spec.qos)


def _held(clock: Clock) -> contextlib.AbstractContextManager[None]:
    return clock.hold() if isinstance(clock, VirtualClock) else contextlib.nullcontext()

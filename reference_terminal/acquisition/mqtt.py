"""MQTT collectors: the terminal subscribes to a collector's topic and takes readings as they are
published (push: nothing is polled).

A message is a *reading document*, UTF-8 JSON (HTTPS collectors send the same, see
:mod:`reference_terminal.acquisition.https`)::

    {"collector": "mq1", "time": "2026-01-01T08:00:05.000+08:00",
     "values": {"import": {"value": "123.45", "unit": "kWh", "quantity": "…"}}}

Each configured point takes the value named by its ``Source.name``; the value's text is kept
exactly (``"10.10"`` stays ``Decimal("10.10")``; a JSON number is read as the decimal it spells,
never through a float). ``RawValue.t`` is the document's ``time``: when the collector read the
value, which a late message does not change. A point missing from a message gets a RawValue
with ``error`` set; a collector's error document (``{"collector", "time", "error"}``) sets
``error`` on every point.

A malformed message (not JSON, not a document, no usable time) is counted in
:class:`IntakeStats` and logged, and delivers nothing; it never stops the intake. A lost broker
connection is retried every ``reconnect_s`` on the terminal's clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

import aiomqtt

from common.clock import Clock
from reference_terminal.config import MqttDevice, Point, Source
from reference_terminal.model import RawValue
from reference_terminal.tasks import raise_if_cancelling

__all__ = [
    "Deliver",
    "IntakeStats",
    "MalformedDocument",
    "MqttIntake",
    "parse_document",
]

log = logging.getLogger(__name__)

#: Where push-type drivers hand their readings: the scheduler's sink has the same shape.
Deliver = Callable[[Sequence[RawValue]], Awaitable[None]]
RECONNECT_S: Final = 5.0
MAX_DOCUMENT_BYTES: Final = 1 << 20
#: Log the first malformed messages in full, then one in this many (a babbling collector
#: must not flood the log).
LOG_EVERY: Final = 100


class MalformedDocument(ValueError):
    """A message that is not a reading document; the message says what is wrong."""


@dataclass
class IntakeStats:
    """What a push intake has seen, for the operator and for reports."""

    messages: int = 0
    delivered: int = 0  # RawValues handed on (errors included)
    malformed: int = 0
    collector_errors: int = 0  # error documents
    connects: int = 0
    last_problem: str = ""

    def malformed_seen(self, device: str, problem: str) -> None:
        self.malformed += 1
        self.last_problem = problem
        if self.malformed <= 3 or self.malformed % LOG_EVERY == 0:
            log.warning("%s: malformed message #%d: %s", device, self.malformed, problem)


def _time(document: Mapping[str, object]) -> float:
    text = document.get("time")
    if not isinstance(text, str):
        raise MalformedDocument("no 'time' text")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedDocument(f"time {text!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise MalformedDocument(f"time {text!r} has no UTC offset")
    return when.timestamp()


def parse_document(
    payload: bytes | str, device: str, requests: Sequence[tuple[Point, Source]]
) -> tuple[list[RawValue], bool]:
    """The RawValues of ``requests`` in a reading document, and whether it was an error
    document. Raises :class:`MalformedDocument`."""
    if len(payload) > MAX_DOCUMENT_BYTES:
        raise MalformedDocument(f"{len(payload)} bytes, more than {MAX_DOCUMENT_BYTES}")
    try:
        document = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedDocument(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedDocument(f"a JSON {type(document).__name__}, not an object")
    t = _time(document)
    error = document.get("error")
    if "values" not in document and error is not None:
        message = f"collector error: {error}"
        return [RawValue(p.id, None, "", t, device, message) for p, _ in requests], True
    values = document.get("values")
    if not isinstance(values, dict):
        raise MalformedDocument("no 'values' object")
    return [_one(point, source, values, t, device) for point, source in requests], False


def _one(
    point: Point, source: Source, values: Mapping[str, object], t: float, device: str
) -> RawValue:
    name = source.name or ""
    entry = values.get(name)
    if entry is None:
        return RawValue(point.id, None, "", t, device, f"no value named {name!r} in the message")
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, Decimal):  # a JSON number, read as the decimal it spells
        raw = str(value)
        number = value
    elif isinstance(value, str):
        raw = value
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = Decimal("NaN")
    else:
        return RawValue(point.id, None, "", t, device, f"{name!r} carries no 'value'")
    if not number.is_finite():
        return RawValue(point.id, None, raw, t, device, f"{name!r}: {raw!r} is not a number")
    return RawValue(point.id, number, raw, t, device)


class MqttIntake:
    """Subscribe to one collector's topic and deliver its readings until cancelled."""

    def __init__(
        self,
        device: MqttDevice,
        requests: Sequence[tuple[Point, Source]],
        deliver: Deliver,
        clock: Clock,
        *,
        reconnect_s: float = RECONNECT_S,
        qos: int = 1,
    ) -> None:
        self.device = device
        self.device_id = device.id
        self.requests = list(requests)
        self.deliver = deliver
        self.clock = clock
        self.reconnect_s = reconnect_s
        self.qos = qos
        self.stats = IntakeStats()
        #: Set while subscribed (tests and the console wait on it).
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Receive until cancelled; a lost broker is retried every ``reconnect_s``."""
        while True:
            try:
                async with aiomqtt.Client(
                    self.device.host,
                    self.device.port,
                    identifier=f"carbench-terminal-{self.device.id}",
                    timeout=self.device.timeout_s,
                ) as client:
                    await client.subscribe(self.device.topic, qos=self.qos)
                    raise_if_cancelling()  # else a stop meant now waits for a message
                    self.stats.connects += 1
                    self.subscribed.set()
                    async for message in client.messages:
                        await self.take(message.payload)
            except aiomqtt.MqttError as exc:
                raise_if_cancelling()  # a disconnect cut short: stop, don't reconnect
                self.subscribed.clear()
                self.stats.last_problem = f"broker {self.device.host}:{self.device.port}: {exc}"
                log.warning(
                    "%s: %s; again in %g s",
                    self.device_id,
                    self.stats.last_problem,
                    self.reconnect_s,
                )
                await self.clock.sleep(self.reconnect_s)
            finally:
                self.subscribed.clear()

    async def take(self, payload: object) -> None:
        """One message's payload: deliver its readings, or count it as malformed."""
        self.stats.messages += 1
        if not isinstance(payload, bytes | bytearray | str):
            self.stats.malformed_seen(self.device_id, f"payload of type {type(payload).__name__}")
            return
        try:
            raws, failed = parse_document(
                bytes(payload) if isinstance(payload, bytearray) else payload,
                self.device_id,
                self.requests,
            )
        except MalformedDocument as exc:
            self.stats.malformed_seen(self.device_id, str(exc))
            return
        if failed:
            self.stats.collector_errors += 1
        if raws:
            self.stats.delivered += len(raws)
            await self.deliver(raws)

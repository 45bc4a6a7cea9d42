"""DL/T 645-2007 and -1997 electricity meters on a shared serial bus, and broadcast time sync.

A read asks once per data identifier (DI): points on the same block DI (``0201FF00`` voltages,
``0202FF00`` currents …) share one exchange and ``Source.index`` picks their element. Each
exchange holds the bus through the :class:`BusArbiter`, waits ``timeout_s`` for the meter's
answer (counted from the end of the request on the wire), and is retried ``retries`` times when
the answer does not come or comes damaged (checksum, garbled, truncated). An error answer (C =
0xD1, 1997 0xC1) is the meter's word: not retried, its points get the error.

Values are the meter's BCD digits exactly, with the format's decimals (``XXXXXX.XX`` →
``Decimal("123456.78")``); ``RawValue.raw`` holds those digits as sent, most significant first.

:func:`broadcast_time` sets every meter's clock on a bus (C=0x08 to 99…99, no answer), timed
so the frame ends on the whole second it carries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Final

from common.clock import Clock
from protocols.dlt645 import (
    DEFAULT_REGISTRY,
    Address,
    DLT645Error,
    Edition,
    Frame,
    Registry,
    StreamDecoder,
    broadcast_time_request,
    encode,
    error_flags,
    read_request,
    read_values,
)
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.serial_port import (
    BusArbiter,
    ExchangeError,
    SerialPortError,
    transact,
)
from reference_terminal.config import Dlt645Device, Point, Source
from reference_terminal.model import RawValue

__all__ = ["IDLE_S", "Dlt645Driver", "broadcast_time", "parse_di"]

#: DL/T 645 allows at most 500 ms between the bytes of one frame.
IDLE_S: Final = 0.5
GONE: Final = frozenset({"timeout", "port"})


class MeterRefused(Exception):
    """The meter answered with an error frame."""


def parse_di(text: str | None, edition: Edition) -> int:
    """A DI from its hex text (``"00010000"``, 1997 ``"9010"``); ValueError naming the problem."""
    width = 8 if edition == "2007" else 4
    if text is None:
        raise ValueError("configuration: the source names no DL/T 645 DI")
    cleaned = text.strip()
    if len(cleaned) != width or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        raise ValueError(
            f"configuration: DI {text!r} is not a {edition} DI ({width} hexadecimal digits)"
        )
    return int(cleaned, 16)


class Dlt645Driver:
    """One DL/T 645 meter on a bus."""

    def __init__(
        self,
        device: Dlt645Device,
        arbiter: BusArbiter,
        clock: Clock,
        *,
        registry: Registry = DEFAULT_REGISTRY,
    ) -> None:
        if arbiter.bus.protocol != "dlt645":
            raise ValueError(f"device {device.id}: bus {arbiter.bus.id} is not a dlt645 bus")
        self.device_id = device.id
        self.device = device
        self.address = Address(device.address)
        self.edition: Edition = "1997" if device.protocol == "dlt645-1997" else "2007"
        self.arbiter = arbiter
        self.clock = clock
        self.registry = registry
        self.attempts = 0  # requests sent, retries included

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        results: list[RawValue | None] = [None] * len(requests)
        by_di: dict[int, list[int]] = {}
        for i, (point, source) in enumerate(requests):
            try:
                by_di.setdefault(parse_di(source.di, self.edition), []).append(i)
            except ValueError as exc:
                results[i] = self._error(point, str(exc))
        answered = False
        failure: ExchangeError | None = None
        for di, members in by_di.items():
            if failure is not None and failure.kind in GONE:
                for i in members:
                    results[i] = self._error(requests[i][0], f"not read: {failure}")
                continue
            try:
                frame = await self._read_di(di)
            except MeterRefused as exc:
                answered = True
                for i in members:
                    results[i] = self._error(requests[i][0], str(exc))
                continue
            except ExchangeError as exc:
                failure = exc
                for i in members:
                    results[i] = self._error(requests[i][0], str(exc))
                continue
            answered = True
            t = self.clock.time()
            for i in members:
                results[i] = self._value(requests[i][0], requests[i][1], di, frame, t)
        if failure is not None and not answered:
            raise DriverError(self.device_id, str(failure), kind=failure.kind)
        return [r for r in results if r is not None]

    async def _read_di(self, di: int) -> Frame:
        """The meter's answer to a read of ``di``, retried; MeterRefused for an error answer."""
        request = encode(read_request(self.address, di, edition=self.edition))
        last: ExchangeError | None = None
        tried = 0
        for _ in range(self.device.retries + 1):
            tried += 1
            try:
                frame = await self._exchange(request, di)
                if frame.is_error:
                    code = frame.error_code or 0
                    flags = ", ".join(error_flags(code, self.edition)) or "no flag set"
                    raise MeterRefused(f"meter error 0x{code:02X} ({flags})")
                read_values(frame, self.registry)  # BCD damage the checksum let through
                return frame
            except DLT645Error as exc:
                last = ExchangeError("garbled", str(exc))
            except ExchangeError as exc:
                last = exc
                if exc.kind == "port":
                    break
        assert last is not None
        raise ExchangeError(
            last.kind,
            f"{last.detail} (DI {di:0{8 if self.edition == '2007' else 4}X}, {tried} attempt(s))",
        )

    async def _exchange(self, request: bytes, di: int) -> Frame:
        function = 0x11 if self.edition == "2007" else 0x01

        def mine(frame: Frame) -> bool:
            return (
                frame.is_reply
                and frame.address == self.address
                and frame.function == function
                and (frame.is_error or frame.di == di)
            )

        self.attempts += 1
        try:
            async with self.arbiter.exchange(self.device_id) as port:
                return await transact(
                    port,
                    self.clock,
                    request,
                    StreamDecoder(edition=self.edition),
                    mine,
                    timeout_s=self.device.timeout_s,
                    idle_s=IDLE_S,
                )
        except SerialPortError as exc:
            raise ExchangeError("port", str(exc)) from exc

    def _value(self, point: Point, source: Source, di: int, frame: Frame, t: float) -> RawValue:
        values = read_values(frame, self.registry)  # checked in _read_di: cannot raise here
        if source.index >= len(values):
            return RawValue(
                point.id,
                None,
                frame.payload.hex().upper(),
                t,
                self.device_id,
                f"configuration: DI {frame.di_hex} has {len(values)} element(s), "
                f"no index {source.index}",
            )
        value = values[source.index]
        raw = value.raw[::-1].hex().upper()  # BCD digits, most significant first
        if not isinstance(value.value, Decimal):
            what = "unknown to the registry" if value.name.startswith("unknown DI") else value.name
            return RawValue(
                point.id,
                None,
                raw,
                t,
                self.device_id,
                f"DI {frame.di_hex} ({what}) is not a number: {value.value!r}",
            )
        return RawValue(point.id, value.value, raw, t, self.device_id)

    def _error(self, point: Point, message: str) -> RawValue:
        return RawValue(point.id, None, "", self.clock.time(), self.device_id, message)

    async def close(self) -> None:
        """The port belongs to the bus's arbiter, which closes it."""


async def broadcast_time(
    arbiter: BusArbiter, clock: Clock, zone: tzinfo, *, edition: Edition = "2007"
) -> datetime:
    """Set the clocks of every meter on ``arbiter``'s bus to the terminal's time in ``zone``
    (meters keep local time); returns the time sent.

    The frame carries whole seconds; it is sent so that its last byte, when meters act on it,
    falls on the second it names. Holds the bus until the frame has left the wire.
    """
    if arbiter.bus.protocol != "dlt645":
        raise ValueError(f"bus {arbiter.bus.id} is not a dlt645 bus")
    probe = encode(broadcast_time_request(datetime(2000, 1, 1), edition=edition))
    async with arbiter.exchange("broadcast time") as port:
        wire_s = len(probe) * port.char_s
        now = clock.time()
        second = math.ceil(now + wire_s)
        await clock.sleep(max(0.0, second - wire_s - now))
        when = datetime.fromtimestamp(second, zone).replace(tzinfo=None)
        await port.send(encode(broadcast_time_request(when, edition=edition)))
        await clock.sleep(wire_s)
    return when

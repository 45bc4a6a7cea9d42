"""CJ/T 188 water, gas and heat meters on a shared serial bus: the 901F read.

One exchange per read, whatever fields are asked: the 901F answer carries them all.
``Source.field`` names the field: water and gas meters ``current_total``, ``settlement_total``;
heat and cooling meters ``settlement_heat``, ``current_heat``, ``heat_power``, ``flow``,
``total_flow``, ``supply_temp``, ``return_temp``, ``working_hours``. The device's ``di_order``
(``90 1F`` or the vendor's ``1F 90``) and ``unit_first`` (the vendor layout with the unit byte
before each value) are followed. Each request carries a sequence number (SER) the meter echoes,
so a late answer to an earlier attempt is never taken for this one.

Values are the meter's BCD digits exactly, in the unit the meter sent (which ``RawValue.raw``
names: ``"00012345 m³"``, digits most significant first); no unit conversion happens here.
Timeouts, retries and failures as for DL/T 645 (:mod:`reference_terminal.acquisition.dlt645`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from common.clock import Clock
from protocols.cjt188 import (
    READ,
    READ_DATA_DI,
    Address,
    CJT188Error,
    Frame,
    Quantity,
    Reading,
    StreamDecoder,
    encode,
    parse_reading,
    read_request,
)
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.serial_port import (
    BusArbiter,
    ExchangeError,
    SerialPortError,
    transact,
)
from reference_terminal.config import Cjt188Device, Point, Source
from reference_terminal.model import RawValue

__all__ = ["HEAT_FIELDS", "METER_TYPE_CODES", "WATER_FIELDS", "Cjt188Driver"]

#: Inter-byte silence that ends a frame (the DL/T 645 figure; CJ/T 188 masters keep to it).
IDLE_S: Final = 0.5
METER_TYPE_CODES: Final = {
    "water": 0x10,
    "hot_water": 0x11,
    "heat": 0x20,
    "cooling": 0x21,
    "gas": 0x30,
}
#: Field → (start, end) of its bytes in the 901F payload after DI and SER.
WATER_FIELDS: Final = {"current_total": (0, 5), "settlement_total": (5, 10)}
HEAT_FIELDS: Final = {
    "settlement_heat": (0, 5),
    "current_heat": (5, 10),
    "heat_power": (10, 15),
    "flow": (15, 20),
    "total_flow": (20, 25),
    "supply_temp": (25, 28),
    "return_temp": (28, 31),
    "working_hours": (31, 34),
}


class MeterRefused(Exception):
    """The meter answered with an error frame."""


class Cjt188Driver:
    """One CJ/T 188 meter on a bus."""

    def __init__(self, device: Cjt188Device, arbiter: BusArbiter, clock: Clock) -> None:
        if arbiter.bus.protocol != "cjt188":
            raise ValueError(f"device {device.id}: bus {arbiter.bus.id} is not a cjt188 bus")
        self.device_id = device.id
        self.device = device
        self.address = Address(device.address)
        self.meter_type = METER_TYPE_CODES[device.meter_type]
        self.heat = device.meter_type in ("heat", "cooling")
        self.fields = HEAT_FIELDS if self.heat else WATER_FIELDS
        self.arbiter = arbiter
        self.clock = clock
        self.attempts = 0  # requests sent, retries included
        self._ser = 0

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        results: list[RawValue | None] = [None] * len(requests)
        wanted: list[int] = []
        for i, (point, source) in enumerate(requests):
            if source.field not in self.fields:
                known = ", ".join(self.fields)
                results[i] = self._error(
                    point,
                    f"configuration: a {self.device.meter_type} meter has no field "
                    f"{source.field!r} (it has {known})",
                )
            else:
                wanted.append(i)
        if wanted:
            try:
                frame, reading = await self._read()
            except MeterRefused as exc:
                for i in wanted:
                    results[i] = self._error(requests[i][0], str(exc))
            except ExchangeError as exc:
                raise DriverError(self.device_id, str(exc), kind=exc.kind) from exc
            else:
                t = self.clock.time()
                for i in wanted:
                    point, source = requests[i]
                    assert source.field is not None
                    results[i] = self._value(point, source.field, frame, reading, t)
        return [r for r in results if r is not None]

    async def _read(self) -> tuple[Frame, Reading]:
        last: ExchangeError | None = None
        tried = 0
        for _ in range(self.device.retries + 1):
            tried += 1
            try:
                frame = await self._exchange()
                if frame.is_error:
                    status = (frame.status or b"").hex().upper() or "none"
                    raise MeterRefused(f"meter error (C=0x{frame.control:02X}, ST {status})")
                reading = parse_reading(frame, unit_first=self.device.unit_first)
                if reading is None:
                    raise CJT188Error(
                        f"layout: no 901F reading for meter type 0x{frame.meter_type:02X}",
                        reason="layout",
                    )
                return frame, reading
            except CJT188Error as exc:  # BCD damage the checksum let through
                last = ExchangeError("garbled", str(exc))
            except ExchangeError as exc:
                last = exc
                if exc.kind == "port":
                    break
        assert last is not None
        raise ExchangeError(last.kind, f"{last.detail} ({tried} attempt(s))")

    async def _exchange(self) -> Frame:
        self._ser = (self._ser + 1) & 0xFF
        ser = self._ser
        request = encode(
            read_request(self.meter_type, self.address, ser=ser, di_order=self.device.di_order)
        )

        def mine(frame: Frame) -> bool:
            return (
                frame.is_reply
                and frame.address == self.address
                and frame.meter_type == self.meter_type
                and frame.function == READ
                and frame.ser == ser
                and (frame.is_error or frame.di == READ_DATA_DI)
            )

        self.attempts += 1
        try:
            async with self.arbiter.exchange(self.device_id) as port:
                return await transact(
                    port,
                    self.clock,
                    request,
                    StreamDecoder(),
                    mine,
                    timeout_s=self.device.timeout_s,
                    idle_s=IDLE_S,
                )
        except SerialPortError as exc:
            raise ExchangeError("port", str(exc)) from exc

    def _value(
        self, point: Point, field: str, frame: Frame, reading: Reading, t: float
    ) -> RawValue:
        start, end = self.fields[field]
        chunk = frame.payload[start:end]
        found: Quantity | Decimal | int = _field(reading, field)
        if isinstance(found, Quantity):
            digits = (chunk[1:] if self.device.unit_first else chunk[:4])[::-1].hex().upper()
            raw = f"{digits} {found.unit_name}"
            value = found.value
        else:
            raw = chunk[::-1].hex().upper()
            value = Decimal(found)
        return RawValue(point.id, value, raw, t, self.device_id)

    def _error(self, point: Point, message: str) -> RawValue:
        return RawValue(point.id, None, "", self.clock.time(), self.device_id, message)

    async def close(self) -> None:
        """The port belongs to the bus's arbiter, which closes it."""


def _field(reading: Reading, field: str) -> Quantity | Decimal | int:
    found: object = getattr(reading, field)
    assert isinstance(found, Quantity | Decimal | int)
    return found

"""The 901F reply payloads (after DI and SER) as typed readings, and back.

Water/gas (L=0x16, payload 19 B): current total, settlement-day total (4 B BCD XXXXXX.XX + unit
byte each), real time (7 B), status ST (2 B).
Heat/cooling (L=0x2E, payload 43 B): settlement-day heat, current heat, heat power (XXXXXX.XX),
flow (XXXX.XXXX), total flow (XXXXXX.XX), each 4 B + unit; supply and return temperature
(3 B XXXX.XX °C); working hours (3 B XXXXXX); real time; ST.
Real time is ``ss mm hh DD MM YYlow YYhigh`` (``31 01 22 11 05 15 20`` = 2015-05-11 22:01:31).

``unit_first=True`` reads the vendor layout (JY heat meters) that puts each unit byte *before*
its 4-byte value. It is an explicit option, never guessed: the two layouts have the same length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from protocols import bcd
from protocols.cjt188.frame import READ, READ_DATA_DI, CJT188Error, Frame, meter_class, unit_name

__all__ = [
    "HEAT_PAYLOAD_LEN",
    "WATER_PAYLOAD_LEN",
    "HeatReading",
    "Quantity",
    "WaterReading",
    "decode_heat",
    "decode_water",
    "encode_reading",
    "layout_for",
    "parse_reading",
]

WATER_PAYLOAD_LEN: Final = 19
HEAT_PAYLOAD_LEN: Final = 43
_NO_TIME: Final = bytes(7)  # meters without a clock send zeros: time is None, not an error


@dataclass(frozen=True, slots=True)
class Quantity:
    """A value with the unit byte the meter sent (``unit`` is the code, e.g. 0x2C = m³)."""

    value: Decimal
    unit: int

    @property
    def unit_name(self) -> str:
        return unit_name(self.unit)


@dataclass(frozen=True, slots=True)
class WaterReading:
    """901F reply of a water or gas meter."""

    current_total: Quantity
    settlement_total: Quantity
    time: datetime | None
    status: bytes = b"\x00\x00"


@dataclass(frozen=True, slots=True)
class HeatReading:
    """901F reply of a heat (or cooling) meter; temperatures in °C, working time in hours."""

    settlement_heat: Quantity
    current_heat: Quantity
    heat_power: Quantity
    flow: Quantity
    total_flow: Quantity
    supply_temp: Decimal
    return_temp: Decimal
    working_hours: int
    time: datetime | None
    status: bytes = b"\x00\x00"


Reading = WaterReading | HeatReading


def layout_for(meter_type: int, payload_len: int) -> Literal["water", "heat"] | None:
    """Which 901F layout a meter type uses (water and gas share one); by length otherwise."""
    family = meter_class(meter_type)
    if family in ("water", "gas"):
        return "water"
    if family == "heat":
        return "heat"
    if payload_len == WATER_PAYLOAD_LEN:
        return "water"
    if payload_len == HEAT_PAYLOAD_LEN:
        return "heat"
    return None


class _Reader:
    """Walks a payload field by field so messages can name the field and its offset."""

    __slots__ = ("data", "pos", "unit_first")

    def __init__(self, data: bytes, unit_first: bool) -> None:
        self.data = data
        self.pos = 0
        self.unit_first = unit_first

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, n: int, scale: int, what: str) -> Decimal:
        return bcd.decimal_from_bcd(self.take(n), scale, what, CJT188Error)

    def quantity(self, scale: int, what: str) -> Quantity:
        if self.unit_first:
            unit = self.take(1)[0]
            return Quantity(self.number(4, scale, what), unit)
        value = self.number(4, scale, what)
        return Quantity(value, self.take(1)[0])

    def time(self) -> datetime | None:
        chunk = self.take(7)
        if chunk == _NO_TIME:
            return None
        digits = bcd.check_digits(chunk, "real time", CJT188Error)
        return bcd.datetime_from_digits(digits, "real time", CJT188Error)


def _check_length(payload: bytes, expected: int, layout: str) -> None:
    if len(payload) != expected:
        raise CJT188Error(
            f"length: the {layout} 901F payload (after DI and SER) is {expected} bytes, "
            f"found {len(payload)}",
            reason="length",
        )


def decode_water(payload: bytes, *, unit_first: bool = False) -> WaterReading:
    _check_length(payload, WATER_PAYLOAD_LEN, "water/gas")
    r = _Reader(payload, unit_first)
    return WaterReading(
        r.quantity(2, "current total"),
        r.quantity(2, "settlement-day total"),
        r.time(),
        r.take(2),
    )


def decode_heat(payload: bytes, *, unit_first: bool = False) -> HeatReading:
    _check_length(payload, HEAT_PAYLOAD_LEN, "heat")
    r = _Reader(payload, unit_first)
    return HeatReading(
        r.quantity(2, "settlement-day heat"),
        r.quantity(2, "current heat"),
        r.quantity(2, "heat power"),
        r.quantity(4, "flow"),
        r.quantity(2, "total flow"),
        r.number(3, 2, "supply temperature"),
        r.number(3, 2, "return temperature"),
        int(r.number(3, 0, "working hours")),
        r.time(),
        r.take(2),
    )


def parse_reading(frame: Frame, *, unit_first: bool = False) -> Reading | None:
    """The reading in a 901F read reply; None for other frames or an unknown meter family.

    Raises :class:`CJT188Error` when a 901F reply's payload is malformed.
    """
    if frame.control != 0x80 | READ or frame.di != READ_DATA_DI:
        return None
    payload = frame.payload
    layout = layout_for(frame.meter_type, len(payload))
    if layout == "water":
        return decode_water(payload, unit_first=unit_first)
    if layout == "heat":
        return decode_heat(payload, unit_first=unit_first)
    return None


# Encoding ----------------------------------------------------------------------------------
def _number(value: Decimal | int, length: int, scale: int, what: str) -> bytes:
    return bcd.decimal_to_bcd(value, length, scale, what, CJT188Error)


def _quantity(q: Quantity, scale: int, what: str, unit_first: bool) -> bytes:
    if not 0 <= q.unit <= 0xFF:
        raise CJT188Error(f"{what}: unit code must be 0x00-0xFF, found {q.unit}", reason="value")
    value = _number(q.value, 4, scale, what)
    unit = bytes((q.unit,))
    return unit + value if unit_first else value + unit


def _time(when: datetime | None) -> bytes:
    if when is None:
        return _NO_TIME
    return bcd.digits_to_wire(
        f"{when.year:04d}{when.month:02d}{when.day:02d}"
        f"{when.hour:02d}{when.minute:02d}{when.second:02d}"
    )


def _status(status: bytes) -> bytes:
    if len(status) != 2:
        raise CJT188Error(f"status: ST is 2 bytes, found {len(status)}", reason="value")
    return bytes(status)


def encode_reading(reading: Reading, *, unit_first: bool = False) -> bytes:
    """A reading → the 901F payload that follows DI and SER."""
    if isinstance(reading, WaterReading):
        return (
            _quantity(reading.current_total, 2, "current total", unit_first)
            + _quantity(reading.settlement_total, 2, "settlement-day total", unit_first)
            + _time(reading.time)
            + _status(reading.status)
        )
    return (
        _quantity(reading.settlement_heat, 2, "settlement-day heat", unit_first)
        + _quantity(reading.current_heat, 2, "current heat", unit_first)
        + _quantity(reading.heat_power, 2, "heat power", unit_first)
        + _quantity(reading.flow, 4, "flow", unit_first)
        + _quantity(reading.total_flow, 2, "total flow", unit_first)
        + _number(reading.supply_temp, 3, 2, "supply temperature")
        + _number(reading.return_temp, 3, 2, "return temperature")
        + _number(reading.working_hours, 3, 0, "working hours")
        + _time(reading.time)
        + _status(reading.status)
    )

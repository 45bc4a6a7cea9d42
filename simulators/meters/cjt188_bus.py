"""CJ/T 188 water, gas and heat meters sharing a serial line.

Each meter answers the frames addressed to it (its address or a matching wildcard, its meter
type or the wildcard type AA) and stays silent for the rest:

- read data (C=0x01, DI 901F in either byte order) → the 901F reading: water and gas meters
  their current and settlement-day totals, heat and cooling meters heat, power, flow, total
  flow and temperatures; real time from the meter's own clock; status 00 00. The reply's DI
  order and unit position follow the meter's ``di_order`` and ``unit_first`` (vendor layouts);
- read address (C=0x03, DI 810A) → 0x83 from the one meter on the bus (several meters answer
  together and collide, as on a real bus);
- anything else → error answer (C = 0xC0 | function, ``SER ST``), which is also what the
  ``exception`` fault sends.

Fields a meter does not list show zero (settlement-day values, temperatures, power); working
hours are the whole hours since the plant started. Units follow the plant quantity's unit
(kWh → 05, GJ → 11, m³ → 2C …).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from protocols.cjt188 import (
    READ,
    READ_ADDRESS,
    READ_ADDRESS_DI,
    READ_DATA_DI,
    WILDCARD_TYPE,
    Address,
    CJT188Error,
    Frame,
    HeatReading,
    Quantity,
    Reading,
    StreamDecoder,
    WaterReading,
    encode,
    error_reply,
    read_address_reply,
    read_reply,
)
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Bus, Cjt188Meter, Point
from simulators.meters.serial_line import Answer, Layout, SerialLine, answer, stream_frames
from simulators.plant import PlantTimeError

__all__ = ["ERROR_STATUS", "METER_TYPE_CODES", "UNIT_CODES", "Cjt188Bus"]

log = logging.getLogger(__name__)

METER_TYPE_CODES: Final = {
    "water": 0x10,
    "hot_water": 0x11,
    "heat": 0x20,
    "cooling": 0x21,
    "gas": 0x30,
}
#: Plant units → CJ/T 188 unit bytes.
UNIT_CODES: Final = {
    "Wh": 0x02,
    "kWh": 0x05,
    "MWh": 0x08,
    "kJ": 0x0B,
    "MJ": 0x0E,
    "GJ": 0x11,
    "W": 0x14,
    "kW": 0x17,
    "MW": 0x1A,
    "L": 0x29,
    "m³": 0x2C,
    "Nm³": 0x2C,
    "L/h": 0x32,
    "m³/h": 0x35,
    "Nm³/h": 0x35,
}
#: ST of an error answer. No public text says what its bits mean in an error answer; the error
#: bit of C is what tells the master the request failed.
ERROR_STATUS: Final = b"\x00\x00"
NORMAL_STATUS: Final = b"\x00\x00"
#: Answers are 4 × FE and the frame; CS is the byte before the closing 0x16.
LAYOUT: Final = Layout(preamble=4, checksum=slice(-2, -1))

WATER_FIELDS: Final = {"current_total": 2, "settlement_total": 2}  # field → decimals on the wire
HEAT_FIELDS: Final = {
    "settlement_heat": 2,
    "current_heat": 2,
    "heat_power": 2,
    "flow": 4,
    "total_flow": 2,
    "supply_temp": 2,
    "return_temp": 2,
}
#: Units of the fields a heat meter does not list.
DEFAULT_UNITS: Final = {
    "current_total": 0x2C,
    "settlement_total": 0x2C,
    "current_heat": 0x05,
    "heat_power": 0x17,
    "flow": 0x35,
    "total_flow": 0x2C,
}
WORKING_HOURS_MAX: Final = 999_999  # 3 BCD bytes


@dataclass(frozen=True, slots=True)
class _Meter:
    runtime: MeterRuntime
    spec: Cjt188Meter
    address: Address
    type_code: int
    heat: bool  # the heat layout (heat, cooling) or the water one (water, gas)
    units: Mapping[str, int]  # field → unit byte


def _meter(fleet: FleetRuntime, spec: Cjt188Meter) -> _Meter:
    """Check a meter's fields once, so answering cannot fail on them later."""
    heat = spec.meter_type in ("heat", "cooling")
    allowed = HEAT_FIELDS if heat else WATER_FIELDS
    units = dict(DEFAULT_UNITS)
    for name, point in spec.fields.items():
        where = f"cjt188 meter {spec.id} field {name!r}"
        if name not in allowed:
            raise ValueError(
                f"{where}: a {spec.meter_type} meter has the fields {', '.join(allowed)}"
            )
        if point.decimals > allowed[name]:
            raise ValueError(f"{where}: {point.decimals} decimals, the wire keeps {allowed[name]}")
        if name in ("supply_temp", "return_temp"):
            continue  # °C, no unit byte
        unit = fleet.plant.quantity(point.quantity).unit
        if unit not in UNIT_CODES:
            raise ValueError(f"{where}: no CJ/T 188 unit code for {unit!r} ({point.quantity})")
        units[name] = UNIT_CODES[unit]
    units.setdefault("settlement_heat", units["current_heat"])  # same unit as current heat
    return _Meter(
        fleet.meters[spec.id],
        spec,
        Address(spec.address),
        METER_TYPE_CODES[spec.meter_type],
        heat,
        units,
    )


class Cjt188Bus:
    """The CJ/T 188 meters of one bus."""

    protocol: Final = "cjt188"

    def __init__(self, fleet: FleetRuntime, bus: Bus) -> None:
        if bus.protocol != "cjt188":
            raise ValueError(f"bus {bus.id} is a {bus.protocol} bus, not cjt188")
        self.fleet = fleet
        self.bus = bus
        self._meters: list[_Meter] = []
        for spec in fleet.spec.meters:
            if isinstance(spec, Cjt188Meter) and spec.bus == bus.id:
                meter = _meter(fleet, spec)
                if any(m.address == meter.address for m in self._meters):
                    raise ValueError(f"bus {bus.id}: two meters have address {spec.address}")
                self._meters.append(meter)

    @property
    def meters(self) -> list[tuple[MeterRuntime, str]]:
        """Each meter with where it is on the bus."""
        return [(m.runtime, f"type {m.type_code:02X} address {m.address}") for m in self._meters]

    async def serve(self, line: SerialLine) -> None:
        async with aclosing(stream_frames(line, StreamDecoder())) as frames:
            async for frame, ready_at in frames:
                if isinstance(frame, CJT188Error):
                    continue  # a damaged request: meters discard it
                answers = self.answers(frame)
                if answers:
                    await answer(line, self.fleet, answers, ready_at)

    def answers(self, frame: Frame) -> list[Answer]:
        """Who answers ``frame``, and with what (empty: silence)."""
        if frame.is_reply:
            return []  # another meter talking
        return [
            self._answer(m, frame)
            for m in self._meters
            if frame.meter_type in (m.type_code, WILDCARD_TYPE) and frame.address.matches(m.address)
        ]

    def _answer(self, meter: _Meter, frame: Frame) -> Answer:
        ser = frame.ser or 0

        def failure() -> bytes:
            return encode(
                error_reply(
                    meter.type_code, meter.address, ERROR_STATUS, function=frame.function, ser=ser
                )
            )

        async def build(t: float) -> bytes:
            if frame.function == READ and frame.di == READ_DATA_DI:
                try:
                    reading = self._reading(meter, t)
                    return encode(
                        read_reply(
                            meter.type_code,
                            meter.address,
                            reading,
                            ser=ser,
                            di_order=meter.spec.di_order,
                            unit_first=meter.spec.unit_first,
                        )
                    )
                except (CJT188Error, PlantTimeError) as exc:  # a value the wire cannot hold
                    log.warning("meter %s: %s", meter.spec.id, exc)
                    return failure()
            if frame.function == READ_ADDRESS and frame.di == READ_ADDRESS_DI:
                return encode(read_address_reply(meter.type_code, meter.address, ser=ser))
            return failure()

        async def error() -> bytes:
            return failure()

        return Answer(meter.runtime, build, error, LAYOUT)

    def _reading(self, meter: _Meter, t: float) -> Reading:
        fields = meter.spec.fields

        def value(name: str) -> Decimal:
            point: Point | None = fields.get(name)
            return Decimal(0) if point is None else meter.runtime.read(point, t)

        def quantity(name: str) -> Quantity:
            return Quantity(value(name), meter.units[name])

        when = meter.runtime.clock(t).replace(microsecond=0)
        if not meter.heat:
            return WaterReading(
                quantity("current_total"), quantity("settlement_total"), when, NORMAL_STATUS
            )
        hours = int((t - self.fleet.plant.start) // 3600)
        return HeatReading(
            quantity("settlement_heat"),
            quantity("current_heat"),
            quantity("heat_power"),
            quantity("flow"),
            quantity("total_flow"),
            value("supply_temp"),
            value("return_temp"),
            min(max(hours, 0), WORKING_HOURS_MAX),
            when,
            NORMAL_STATUS,
        )

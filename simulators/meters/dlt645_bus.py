"""DL/T 645-2007 and -1997 electricity meters sharing a serial line.

Each meter answers the frames addressed to it (its own address, or a wildcard that matches it)
and stays silent for the rest. What it answers:

- read (2007 C=0x11, 1997 C=0x01) of a DI in its points, block DIs included (one plant quantity
  per element), encoded by the DI's format in :data:`protocols.dlt645.DEFAULT_REGISTRY`;
- date 04000101, time 04000102 (1997: C010, C011) from the meter's own clock, and meter number
  04000402 (1997: C032) = its address, on every meter;
- an unknown DI → error answer with the "no data requested" bit (0x02);
- read address (C=0x13, 2007 meters) → 0x93 with the address; sent to AA…AA, the one meter on
  the bus answers (several meters answer together and collide, as on a real bus);
- broadcast time (C=0x08 to 99…99, or to the meter) → no answer; the meter's clock is set;
- other functions → error answer "other error" (0x01), which is also what the ``exception``
  fault sends.

A meter answers frames of its own edition only (a 2007 meter does not know 1997's C=0x01).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from common.clock import time_at
from protocols.dlt645 import (
    BROADCAST_TIME,
    DEFAULT_REGISTRY,
    READ,
    READ_1997,
    READ_ADDRESS,
    Address,
    DataItem,
    DLT645Error,
    Edition,
    Frame,
    StreamDecoder,
    ValueType,
    encode,
    error_reply,
    parse_broadcast_time,
    read_address_reply,
    read_reply,
)
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Bus, Dlt645Meter, Dlt645Point
from simulators.meters.serial_line import Answer, Layout, SerialLine, answer, stream_frames
from simulators.plant import PlantTimeError

__all__ = ["ERROR_NO_DATA", "ERROR_OTHER", "Dlt645Bus"]

log = logging.getLogger(__name__)

ERROR_OTHER: Final = 0x01  # bit 0: other error (also 1997's "illegal data")
ERROR_NO_DATA: Final = 0x02  # bit 1: no data requested (1997: data identifier error)
#: The DIs every meter answers from its clock and address, by edition.
DATE_DI: Final[dict[Edition, int]] = {"2007": 0x04000101, "1997": 0xC010}
TIME_DI: Final[dict[Edition, int]] = {"2007": 0x04000102, "1997": 0xC011}
NUMBER_DI: Final[dict[Edition, int]] = {"2007": 0x04000402, "1997": 0xC032}
READ_FUNCTION: Final[dict[Edition, int]] = {"2007": READ, "1997": READ_1997}
#: Answers are 4 × FE and the frame; CS is the byte before the closing 0x16.
LAYOUT: Final = Layout(preamble=4, checksum=slice(-2, -1))


@dataclass(frozen=True, slots=True)
class _Meter:
    runtime: MeterRuntime
    spec: Dlt645Meter
    address: Address
    edition: Edition
    points: dict[int, tuple[Dlt645Point, DataItem]]


def _meter(fleet: FleetRuntime, spec: Dlt645Meter) -> _Meter:
    """Check a meter's points against the DI registry once, so answering cannot fail later."""
    edition: Edition = "1997" if spec.protocol == "dlt645-1997" else "2007"
    points: dict[int, tuple[Dlt645Point, DataItem]] = {}
    for point in spec.points:
        di = int(point.di, 16)
        where = f"dlt645 meter {spec.id} DI {point.di}"
        if len(point.di) != (8 if edition == "2007" else 4):
            raise ValueError(f"{where}: edition {edition} DIs have {len(point.di)} hex digits")
        item = DEFAULT_REGISTRY.get(di, edition)
        if item is None:
            raise ValueError(
                f"{where}: not in the DL/T 645 registry (protocols.dlt645.register it first)"
            )
        if item.kind != "number":
            raise ValueError(f"{where}: {item.name} is not a number ({item.format})")
        count = len(point.quantities) or 1
        if count != item.count:
            raise ValueError(
                f"{where}: {item.name} has {item.count} element(s), the point lists {count}"
            )
        if point.decimals > item.scale:
            raise ValueError(
                f"{where}: {point.decimals} decimals, but {item.format} keeps {item.scale}"
            )
        if di in points:
            raise ValueError(f"{where}: listed twice")
        points[di] = (point, item)
    return _Meter(fleet.meters[spec.id], spec, Address(spec.address), edition, points)


class Dlt645Bus:
    """The DL/T 645 meters of one bus."""

    protocol: Final = "dlt645"

    def __init__(self, fleet: FleetRuntime, bus: Bus) -> None:
        if bus.protocol != "dlt645":
            raise ValueError(f"bus {bus.id} is a {bus.protocol} bus, not dlt645")
        self.fleet = fleet
        self.bus = bus
        self._meters: list[_Meter] = []
        for spec in fleet.spec.meters:
            if isinstance(spec, Dlt645Meter) and spec.bus == bus.id:
                meter = _meter(fleet, spec)
                if any(m.address == meter.address for m in self._meters):
                    raise ValueError(f"bus {bus.id}: two meters have address {spec.address}")
                self._meters.append(meter)

    @property
    def meters(self) -> list[tuple[MeterRuntime, str]]:
        """Each meter with where it is on the bus."""
        return [(m.runtime, f"address {m.address}") for m in self._meters]

    async def serve(self, line: SerialLine) -> None:
        async with aclosing(stream_frames(line, StreamDecoder())) as frames:
            async for frame, ready_at in frames:
                if isinstance(frame, DLT645Error):
                    continue  # a damaged request: meters discard it
                answers = self.answers(frame, time_at(self.fleet.clock, ready_at))
                if answers:
                    await answer(line, self.fleet, answers, ready_at)

    def answers(self, frame: Frame, t: float | None = None) -> list[Answer]:
        """Who answers ``frame``, and with what (empty: silence). A time sync acts here, for
        the instant ``t`` the frame ended (default: now)."""
        if frame.is_reply:
            return []  # another meter talking
        targets = [m for m in self._meters if frame.address.matches(m.address)]
        if frame.function == BROADCAST_TIME:
            self._set_clocks(frame, targets, self.fleet.now() if t is None else t)
            return []
        if frame.address.is_broadcast:
            return []  # nobody answers a broadcast
        return [self._answer(m, frame) for m in targets if m.edition == frame.edition]

    def _set_clocks(self, frame: Frame, targets: Sequence[_Meter], t: float) -> None:
        try:
            shown = parse_broadcast_time(frame)
        except DLT645Error as exc:
            log.info("bus %s: broadcast time ignored: %s", self.bus.id, exc)
            return
        for meter in targets:
            meter.runtime.set_clock(t, shown)

    def _answer(self, meter: _Meter, frame: Frame) -> Answer:
        function = frame.function

        def failure(code: int) -> bytes:
            return encode(
                error_reply(meter.address, code, function=function, edition=meter.edition)
            )

        async def build(t: float) -> bytes:
            if function == READ_FUNCTION[meter.edition]:
                return self._read(meter, frame, t)
            if function == READ_ADDRESS and meter.edition == "2007":
                return encode(read_address_reply(meter.address))
            return failure(ERROR_OTHER)

        async def error() -> bytes:
            return failure(ERROR_OTHER)

        return Answer(meter.runtime, build, error, LAYOUT)

    def _read(self, meter: _Meter, frame: Frame, t: float) -> bytes:
        di = frame.di
        edition = meter.edition
        values: ValueType | list[ValueType]
        if di is None:  # a read without a whole DI
            return encode(error_reply(meter.address, ERROR_NO_DATA, edition=edition))
        if di in meter.points:
            point, _ = meter.points[di]
            try:
                if point.quantities:
                    values = [meter.runtime.read(point, t, q) for q in point.quantities]
                else:
                    values = meter.runtime.read(point, t)
            except PlantTimeError:  # before the plant's start there is nothing to measure
                return encode(error_reply(meter.address, ERROR_OTHER, edition=edition))
        elif di == DATE_DI[edition]:
            values = meter.runtime.clock(t).date()
        elif di == TIME_DI[edition]:
            values = _whole_seconds(meter.runtime.clock(t)).time()
        elif di == NUMBER_DI[edition]:
            values = meter.address.digits
        else:
            return encode(error_reply(meter.address, ERROR_NO_DATA, edition=edition))
        try:
            return encode(read_reply(meter.address, di, values, edition=edition))
        except DLT645Error as exc:  # a value the format cannot hold (out of range)
            log.warning("meter %s DI %X: %s", meter.spec.id, di, exc)
            return encode(error_reply(meter.address, ERROR_OTHER, edition=edition))


def _whole_seconds(when: datetime) -> datetime:
    return when.replace(microsecond=0)

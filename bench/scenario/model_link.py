"""The model link: a scenario's terminal reads the fleet's meters through its drivers' interface,
each value straight from the meter's model, with no wire in between.

A scenario about days of storage, power cuts and backlogs (``meters: model``) has no use for
the bytes of a hundred meters on ptys and sockets every minute, and they cost most of its wall
time. Through this link every read the terminal makes still happens at its own instant and
returns what the meter shows then: the plant's truth, the meter's value faults and resolution,
recorded in the fleet's observations as on the wire. Communication faults still fail reads.
What is left out is each protocol's framing and timing, which the acquisition suites and
``meters: wire`` scenarios exercise.

Register meters (Modbus, 4–20 mA modules) go as far as the terminal's own decoding: the link
hands the Modbus driver the words the meter's registers hold, so scaling, word order and float
display are the terminal's. A value the wire carries as a double (OPC UA, a SQL historian) is
shown at the point's decimals, as those drivers do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from common.clock import Clock
from reference_terminal.acquisition.driver import Driver, DriverError
from reference_terminal.acquisition.modbus import Block, ExceptionReply, ModbusDriver
from reference_terminal.acquisition.serial_port import BusArbiter, ExchangeError
from reference_terminal.config import (
    Device,
    ManualDevice,
    ModbusRtuDevice,
    ModbusTcpDevice,
    OpcUaDevice,
    Point,
    Source,
    SqlDevice,
)
from reference_terminal.construct import new_raw_value
from reference_terminal.model import RawValue
from simulators.fleet import FleetRuntime
from simulators.fleet.runtime import MeterRuntime
from simulators.fleet.schema import AnalogModule, Dlt645Point, Fault, Register, points_of
from simulators.fleet.schema import Point as MeterPoint
from simulators.meters.analog import AnalogInputs
from simulators.meters.registers import Encoder, encoder

__all__ = ["ModelLink"]

#: What a meter shows at t, through a reading worked out once (``MeterRuntime.reading``).
Shown = Callable[[float], Decimal]

#: How a communication fault shows to a driver: the kind of its DriverError.
_FAILED = {
    "no_answer": "timeout",
    "bad_checksum": "checksum",
    "garbled": "garbled",
    "truncated": "garbled",
}


class ModelLink:
    """A :class:`~reference_terminal.acquisition.drivers.Wiring` to ``fleet``'s meters: every
    device but a manual one is polled (a collector that pushes on the wire is read at its
    group's period)."""

    def __init__(self, fleet: FleetRuntime) -> None:
        self.fleet = fleet

    def polled(self, device: Device) -> bool:
        return not isinstance(device, ManualDevice)

    def driver(self, device: Device, *, buses: Mapping[str, BusArbiter], clock: Clock) -> Driver:
        meter = self.fleet.meters.get(device.id)
        if meter is None:
            raise ValueError(f"device {device.id}: the fleet has no such meter")
        if isinstance(device, ModbusTcpDevice | ModbusRtuDevice):
            return _RegisterModel(device, meter, clock)
        return _ValueModel(device, meter, clock)


def _failure(meter: MeterRuntime, t: float) -> Fault | None:
    """The communication fault this read meets, if any (``slow`` answers all the same)."""
    fault = meter.communication_fault(t)
    return None if fault is None or fault.kind == "slow" else fault


class _RegisterModel(ModbusDriver):
    """The terminal's Modbus driver, its requests answered from the meter's registers."""

    def __init__(
        self, device: ModbusTcpDevice | ModbusRtuDevice, meter: MeterRuntime, clock: Clock
    ) -> None:
        super().__init__(device, clock)
        self.meter = meter
        self.analog = AnalogInputs(meter) if isinstance(meter.spec, AnalogModule) else None
        registers = (
            self.analog.registers
            if self.analog is not None
            else [r for r in points_of(meter.spec) if isinstance(r, Register)]
        )
        self.registers = {(r.table, r.address): r for r in registers}
        self._fault: Fault | None = None
        self._layouts: dict[tuple[str, int, int], tuple[tuple[int, Shown, Encoder], ...]] = {}

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        self._fault = _failure(self.meter, self.clock.time())  # one draw per poll
        return await super().read(requests)

    async def _fetch(self, block: Block) -> list[int]:
        if self._fault is not None:
            if self._fault.kind == "exception":
                raise ExceptionReply(4)  # server device failure
            raise ExchangeError(_FAILED[self._fault.kind], f"the meter's model: {self._fault.kind}")
        t = self.clock.time()
        words = [0] * block.count
        for offset, shown, encode in self._layout(block):
            held = encode(shown(t))
            words[offset : offset + len(held)] = held
        return words[: block.count]

    def _layout(self, block: Block) -> tuple[tuple[int, Shown, Encoder], ...]:
        """The registers that start in ``block`` (offset, what it holds at t, its encoder), as
        a walk up its addresses finds them: each one's words skip the addresses it covers.
        Worked out once per block: the terminal asks the same blocks every period."""
        key = (block.table, block.start, block.count)
        layout = self._layouts.get(key)
        if layout is None:
            found = []
            address = block.start
            while address < block.start + block.count:
                register = self.registers.get((block.table, address))
                if register is None:
                    address += 1
                    continue
                found.append((address - block.start, self._shown(register), encoder(register)))
                address += register.words  # what its encoder gives
            layout = self._layouts[key] = tuple(found)
        return layout

    def _shown(self, register: Register) -> Shown:
        """What ``register`` holds at t: an analog channel's counts, or the meter's value."""
        analog = self.analog
        if analog is not None:
            return functools.partial(analog.read, register)
        return self.meter.reading(register)

    async def close(self) -> None:
        pass


class _ValueModel:
    """Any other polled device: each point's value as the meter shows it."""

    def __init__(self, device: Device, meter: MeterRuntime, clock: Clock) -> None:
        self.device_id = device.id
        self.meter = meter
        self.clock = clock
        #: a double on the wire (OPC UA Double, SQL REAL), shown at the point's decimals
        self.double = isinstance(device, OpcUaDevice | SqlDevice)
        self.sources = _sources(meter)
        self._by_source: dict[int, tuple[Source, Shown | None]] = {}

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        t = self.clock.time()
        fault = _failure(self.meter, t)
        if fault is not None and fault.kind != "exception":
            raise DriverError(
                self.device_id, f"the meter's model: {fault.kind}", kind=_FAILED[fault.kind]
            )
        out = []
        for point, source in requests:
            shown = self._found(source)
            if fault is not None or shown is None:
                why = "exception reply" if fault is not None else f"no such source {_key(source)}"
                out.append(RawValue(point.id, None, "", t, self.device_id, why))
                continue
            value = shown(t)
            if self.double:
                value = Decimal(repr(float(value))).quantize(
                    _quantum(point.decimals), ROUND_HALF_EVEN
                )
            out.append(new_raw_value(point.id, value, format(value, "f"), t, self.device_id))
        return out

    def _found(self, source: Source) -> Shown | None:
        """The meter's value ``source`` names (looked up once per source: the terminal asks
        the same sources every period; cached by identity, the source kept alive with it)."""
        cached = self._by_source.get(id(source))
        if cached is None:
            named = self.sources.get(_key(source))
            shown = None if named is None else self.meter.reading(*named)
            cached = self._by_source[id(source)] = (source, shown)
        return cached[1]

    async def close(self) -> None:
        pass


def _quantum(decimals: int) -> Decimal:
    return _QUANTA[decimals] if decimals < len(_QUANTA) else Decimal(1).scaleb(-decimals)


_QUANTA = tuple(Decimal(1).scaleb(-d) for d in range(19))


def _key(source: Source) -> tuple[str, ...]:
    if source.di is not None:
        return ("di", source.di, str(source.index))
    if source.field is not None:
        return ("field", source.field)
    if source.node is not None:  # ns=2;s=<meter>.<tag>, as the fleet's OPC UA server names it
        return ("name", source.node.rpartition("s=")[2].partition(".")[2])
    return ("name", source.name or "")


def _sources(meter: MeterRuntime) -> dict[tuple[str, ...], tuple[MeterPoint, str | None]]:
    """Each way a terminal's source names one of the meter's values: (point, quantity)."""
    spec = meter.spec
    out: dict[tuple[str, ...], tuple[MeterPoint, str | None]] = {}
    for field, point in getattr(spec, "fields", {}).items():
        out["field", field] = (point, None)
    for point in points_of(spec):
        if isinstance(point, Dlt645Point):
            for index, quantity in enumerate(point.quantities or [point.quantity]):
                out["di", point.di, str(index)] = (point, quantity)
        name = getattr(point, "name", None)
        if name is not None:
            out["name", name] = (point, None)
    return out

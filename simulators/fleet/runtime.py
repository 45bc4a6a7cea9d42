"""A fleet at run time: the plant, each meter's view of it, faults, and the record of answers.

Protocol servers (``simulators/meters/``) ask a :class:`MeterRuntime` what to say:
``read(point, t)`` gives the value the meter shows at ``t`` — the plant's truth, changed by any
value fault in force (frozen, spike, rollover, replaced) and cut to the meter's resolution —
and ``communication_fault(t)`` says whether this answer is to be lost, late or damaged. Every
answer is recorded (:class:`Observation`), and every communication fault played
(:class:`FaultEvent`), so a suite can tell what the terminal was sent.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

from common.clock import Clock, RealClock
from simulators.fleet.schema import (
    COMMUNICATION_FAULTS,
    Fault,
    Fleet,
    Meter,
    Point,
    points_of,
)
from simulators.plant import Plant

#: A counter without a declared full scale rolls over at 10^6 (DL/T 645's XXXXXX.XX).
DEFAULT_FULL_SCALE: Final = Decimal(1_000_000)
OBSERVATIONS_KEPT: Final = 200_000
#: Readings a meter keeps worked out (:meth:`MeterRuntime.reading`): one per point and block
#: quantity, a few hundred for the largest meter; past it they are forgotten and made again.
READINGS_KEPT: Final = 4096


@dataclass(frozen=True, slots=True)
class Observation:
    """One value a meter sent, when, and under which faults: the evidence of what was said."""

    t: float
    meter: str
    quantity: str
    value: Decimal
    truth: float  # the plant's value at t, before faults and resolution
    faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A communication fault played on one answer (value faults show in observations)."""

    t: float
    meter: str
    kind: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a meter (or bus, or server) listens, for people and for tests."""

    meter: str
    protocol: str
    address: str  # "127.0.0.1:15020 unit 1", "/dev/pts/7", "opc.tcp://…", "mqtt://…/topic"


def quantize(value: float | Decimal, point: Point) -> Decimal:
    """What the meter shows for a true ``value``: wrapped past its full scale (a counter rolls
    over to zero, CSMT §8.2.2) and cut to its resolution."""
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return _Resolution.of(point).show(exact)


#: Each resolution's quantum (a point shows 0 to 6 decimals), made once: one per value shown.
_EXPONENTS: Final = tuple(Decimal(1).scaleb(-d) for d in range(19))


@dataclass(frozen=True, slots=True)
class _Resolution:
    """How a point shows a value (:func:`quantize`), worked out once per point: a meter shows
    the same points at every read."""

    full_scale: Decimal | None
    exponent: Decimal
    rounding: str

    @staticmethod
    def of(point: Point) -> _Resolution:
        decimals = point.decimals
        return _Resolution(
            point.full_scale,
            _EXPONENTS[decimals] if decimals < len(_EXPONENTS) else Decimal(1).scaleb(-decimals),
            ROUND_FLOOR if point.rounding == "floor" else ROUND_HALF_EVEN,
        )

    def show(self, exact: Decimal) -> Decimal:
        if self.full_scale is not None:
            exact %= self.full_scale
        return exact.quantize(self.exponent, self.rounding)


def _observation_maker() -> Callable[
    [float, str, str, Decimal, float, tuple[str, ...]], Observation
]:
    """``Observation(...)`` for the reads, without the per-field ``object.__setattr__`` calls of
    a frozen dataclass's ``__init__`` (half its cost; one is made per value a meter shows): the
    slots set through their descriptors, an instance of the class itself all the same."""
    new = object.__new__
    set_t, set_meter, set_quantity, set_value, set_truth, set_faults = (
        getattr(Observation, f.name).__set__ for f in fields(Observation)
    )

    def observation(
        t: float, meter: str, quantity: str, value: Decimal, truth: float, faults: tuple[str, ...]
    ) -> Observation:
        o = new(Observation)
        set_t(o, t)
        set_meter(o, meter)
        set_quantity(o, quantity)
        set_value(o, value)
        set_truth(o, truth)
        set_faults(o, faults)
        return o

    return observation


_observation = _observation_maker()


class MeterRuntime:
    """One meter's behaviour: what it reads, how its clock runs, which faults it has."""

    def __init__(self, fleet: FleetRuntime, spec: Meter, index: int) -> None:
        self.fleet = fleet
        self.spec = spec
        self.id = spec.id
        self.faults = [f for f in fleet.spec.faults if f.meter == spec.id]
        self._rng = random.Random(f"{fleet.spec.seed}/{spec.id}")
        self._clock_offset = 0.0  # seconds set by a time sync (broadcast 0x08 …)
        self._plant = fleet.plant
        self._readings: dict[tuple[int, str | None], tuple[Point, Callable[[float], Decimal]]] = {}

    @property
    def points(self) -> list[Point]:
        return points_of(self.spec)

    # ---- values -------------------------------------------------------------------------
    def read(self, point: Point, t: float, quantity: str | None = None) -> Decimal:
        """The value the meter shows for ``point`` (or one ``quantity`` of a block) at ``t``."""
        return self.reading(point, quantity)(t)

    def reading(self, point: Point, quantity: str | None = None) -> Callable[[float], Decimal]:
        """:meth:`read` of ``point`` (``quantity``) as a function of ``t``, all that does not
        change between reads worked out once: a reader asks the same points every period.
        Cached by the point's identity, the point kept alive with it (a meter's points are
        its spec's; a caller making points anew only refills the cache past its bound)."""
        key = (id(point), quantity)
        cached = self._readings.get(key)
        if cached is None or cached[0] is not point:
            if len(self._readings) >= READINGS_KEPT:
                self._readings.clear()
            cached = self._readings[key] = (point, self._new_reading(point, quantity))
        return cached[1]

    def _new_reading(self, point: Point, quantity: str | None) -> Callable[[float], Decimal]:
        name = quantity or point.quantity
        value_at = self._plant.value
        show = _Resolution.of(point).show
        record = self.fleet.record
        meter = self.id

        def read(t: float) -> Decimal:
            if self.faults:
                truth, value, applied = self.measured(point, t, name)
            else:  # most meters, most of the time (faults can be added later): measured() inline
                truth = value_at(name, t)
                value, applied = Decimal(repr(truth)), ()
            shown = show(value)
            record(_observation(t, meter, name, shown, truth, applied))
            return shown

        return read

    def measured(
        self, point: Point, t: float, quantity: str | None = None
    ) -> tuple[float, Decimal, tuple[str, ...]]:
        """(the plant's truth, the value with the value faults in force, those faults' kinds)
        at ``t``, before the meter's resolution: for meters that show it through a chain of
        their own (an analog loop) and record what they showed themselves."""
        name = quantity or point.quantity
        truth = self._plant.value(name, t)
        value = Decimal(repr(truth))
        if not self.faults:  # most meters, most of the time (faults can be added later)
            return truth, value, ()
        applied: list[str] = []
        for fault in self._value_faults(t, name):
            value = self._apply(fault, point, name, value, t)
            applied.append(fault.kind)
        return truth, value, tuple(applied)

    def _value_faults(self, t: float, name: str) -> list[Fault]:
        out = []
        for fault in self.faults:
            if fault.kind in COMMUNICATION_FAULTS or fault.kind == "clock_drift":
                continue
            if fault.quantities and name not in fault.quantities:
                continue
            start = self.fleet.at(fault.start)
            persistent = fault.kind in ("rollover", "replaced")  # a counter stays where it went
            if t >= start and (persistent or fault.end is None or t < self.fleet.at(fault.end)):
                out.append(fault)
        return out

    def _apply(self, fault: Fault, point: Point, name: str, value: Decimal, t: float) -> Decimal:
        start = self.fleet.at(fault.start)
        if fault.kind == "frozen":
            return Decimal(repr(self.fleet.plant.value(name, start)))
        if fault.kind == "spike":
            return value * Decimal(repr(fault.factor))
        if fault.kind == "replaced":  # a new meter counts from zero
            return value - Decimal(repr(self.fleet.plant.value(name, start)))
        if fault.kind == "rollover":
            full = point.full_scale or DEFAULT_FULL_SCALE
            at_start = Decimal(repr(self.fleet.plant.value(name, start)))
            offset = (
                full - fault.headroom - at_start
            )  # at the start the counter shows full - headroom
            return (value + offset) % full
        return value

    # ---- clock --------------------------------------------------------------------------
    def clock(self, t: float) -> datetime:
        """The meter's own clock (plant local time, naive), with any drift and time sync."""
        drift = 0.0
        for fault in self.faults:
            if fault.kind == "clock_drift":
                start = self.fleet.at(fault.start)
                end = self.fleet.at(fault.end) if fault.end is not None else t
                if t > start:
                    drift += fault.drift_s_per_day * (min(t, end) - start) / 86400.0
        return self.fleet.plant.local_time(t) + timedelta(seconds=drift + self._clock_offset)

    def set_clock(self, t: float, shown: datetime) -> None:
        """A time sync: from now on the meter's clock shows ``shown`` at ``t``."""
        self._clock_offset = 0.0
        self._clock_offset = (shown - self.clock(t)).total_seconds()

    # ---- communication ------------------------------------------------------------------
    def communication_fault(self, t: float) -> Fault | None:
        """The communication fault to play on an answer at ``t``, if any (seeded draw)."""
        for fault in self.faults:
            if fault.kind not in COMMUNICATION_FAULTS:
                continue
            start = self.fleet.at(fault.start)
            if t < start or (fault.end is not None and t >= self.fleet.at(fault.end)):
                continue
            if fault.probability >= 1.0 or self._rng.random() < fault.probability:
                self.fleet.fault_events.append(FaultEvent(t, self.id, fault.kind))
                return fault
        return None

    def quiet_between(self, t0: float, t1: float) -> bool:
        """Whether no communication fault can play at any instant of [t0, t1]: then
        :meth:`communication_fault` would return None there without drawing."""
        for fault in self.faults:
            if fault.kind not in COMMUNICATION_FAULTS:
                continue
            start = self.fleet.at(fault.start)
            if start <= t1 and (fault.end is None or self.fleet.at(fault.end) > t0):
                return False
        return True

    def response_delay(self, low_ms: float, high_ms: float) -> float:
        """A seeded answer delay in seconds, uniform in [low, high] ms."""
        return self._rng.uniform(low_ms, high_ms) / 1000.0

    def random(self) -> random.Random:
        """The meter's own seeded random source (garbling bytes, picking truncation points)."""
        return self._rng


@dataclass
class FleetRuntime:
    """The plant and every meter of a fleet file, ready for protocol servers to serve."""

    spec: Fleet
    clock: Clock = field(default_factory=RealClock)
    #: how serial lines pace what meters send (``simulators.meters.serial_line.Pacing``)
    serial_pacing: Literal["char", "frame"] = "char"
    #: how OPC UA servers keep their tags: ``periodic`` rewrites them every ``update_s`` on the
    #: clock; ``on_read`` brings them up to date when a client reads, to what the periodic
    #: loop would show then (``simulators.meters.opcua``): no clock step per refresh, the
    #: choice for long virtual-time runs
    opcua_refresh: Literal["periodic", "on_read"] = "periodic"
    #: whether the meters that push (MQTT collectors, SQL historians) keep pushing; off, each
    #: announces its endpoint with its first values and then waits: for a bench that reads the
    #: meters through their models (``bench/scenario/model_link.py``), where the pushes cost
    #: half the run and nobody received them. OPC UA servers refreshing periodically pause
    #: with them. Switched while running with :meth:`set_push`.
    push: bool = True
    observations: deque[Observation] = field(
        default_factory=lambda: deque(maxlen=OBSERVATIONS_KEPT)
    )
    endpoints: list[Endpoint] = field(default_factory=list)
    fault_events: deque[FaultEvent] = field(default_factory=lambda: deque(maxlen=OBSERVATIONS_KEPT))

    def __post_init__(self) -> None:
        self.plant = Plant(self.spec.plant, seed=self.spec.seed, start=self.spec.start)
        self.meters = {m.id: MeterRuntime(self, m, i) for i, m in enumerate(self.spec.meters)}
        self._pushing = asyncio.Event()
        if self.push:
            self._pushing.set()

    def set_push(self, on: bool) -> None:
        """Let the pushing meters push, or make them wait after their next push (a bench
        reading the models for a stretch: ``bench/adapters/reference.py``'s unattended)."""
        self.push = on
        if on:
            self._pushing.set()
        else:
            self._pushing.clear()

    async def pushing(self) -> None:
        """Return once pushing is on (at once while it is)."""
        await self._pushing.wait()

    def at(self, offset: timedelta) -> float:
        """POSIX time of an offset from the fleet's start."""
        return self.spec.start.timestamp() + offset.total_seconds()

    def now(self) -> float:
        return self.clock.time()

    def record(self, observation: Observation) -> None:
        self.observations.append(observation)

    def listening(self, meter: str, protocol: str, address: str) -> None:
        self.endpoints.append(Endpoint(meter, protocol, address))

    def meters_of(self, protocol: str) -> list[MeterRuntime]:
        return [m for m in self.meters.values() if m.spec.protocol.startswith(protocol)]

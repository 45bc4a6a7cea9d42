"""Helpers for driving the terminal's drivers against the project's simulators."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from common.clock import RealClock
from reference_terminal.acquisition.serial_port import BusArbiter
from reference_terminal.config import Point, SerialBus, Source
from reference_terminal.model import RawValue
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.schema import Fleet
from simulators.meters.serial_line import SerialLine

CLOCK = RealClock()
SOURCES: list[dict[str, Any]] = [
    {"id": "grid", "kind": "electricity", "rated_kw": 500},
    {"id": "pv", "kind": "electricity", "rated_kw": 80, "direction": "export"},
    {"id": "heat", "kind": "heat", "rated_kw": 300},
    {"id": "water", "kind": "water", "rated_m3_h": 8},
    {"id": "gas", "kind": "gas", "rated_nm3_h": 120},
    {"id": "stack", "kind": "cems", "rated_nm3_h": 20000, "co2_pct": 8},
]
_ids = count()


def fleet(
    meters: Iterable[Mapping[str, Any]],
    *,
    buses: Iterable[Mapping[str, Any]] = (),
    faults: Iterable[Mapping[str, Any]] = (),
    seed: int = 1,
    hours_ago: float = 1.0,
) -> Fleet:
    """A fleet on a small plant that started an hour ago (faults starting at 0 are in force)."""
    start = datetime.now(UTC) - timedelta(hours=hours_ago)
    return Fleet.model_validate(
        {
            "name": "acquisition-tests",
            "seed": seed,
            "start": start.isoformat(),
            "plant": {"sources": SOURCES},
            "buses": list(buses),
            "meters": list(meters),
            "faults": list(faults),
        }
    )


def runtime(spec: Fleet) -> FleetRuntime:
    return FleetRuntime(spec)


def arbiter(line: SerialLine, *, turnaround_ms: float = 0.0) -> BusArbiter:
    """The terminal's arbiter for a simulated bus, opened on the pty."""
    bus = line.bus
    config = SerialBus(
        id=bus.id,
        port=line.path,
        protocol=bus.protocol,
        baud=bus.baud,
        framing=bus.framing,
        turnaround_ms=turnaround_ms,
    )
    return BusArbiter(config, CLOCK)


def request(device: str, *, decimals: int = 2, **source: Any) -> tuple[Point, Source]:
    """A (point, source) pair with a fresh point id; ``decimals``: the meter's resolution."""
    src = Source(device=device, **source)
    point = Point(id=f"p{next(_ids)}", group="g", source=src, decimals=decimals)
    return point, src


def requests(device: str, sources: Sequence[Mapping[str, Any]]) -> list[tuple[Point, Source]]:
    return [request(device, **s) for s in sources]


def last_observation(fleet: FleetRuntime, meter: str, quantity: str) -> Observation:
    for obs in reversed(fleet.observations):
        if obs.meter == meter and obs.quantity == quantity:
            return obs
    raise AssertionError(f"{meter} never sent {quantity}")


def sent(fleet: FleetRuntime, meter: str, quantity: str) -> Decimal:
    """The value the meter last sent for ``quantity``."""
    return last_observation(fleet, meter, quantity).value


def was_sent(fleet: FleetRuntime, meter: str, quantity: str, value: Decimal) -> bool:
    """Whether the meter ever sent ``value`` for ``quantity`` (a server that refreshes on its
    own, like OPC UA, may have moved on by the time the test looks)."""
    return any(
        o.meter == meter and o.quantity == quantity and o.value == value for o in fleet.observations
    )


def sent_at(fleet: FleetRuntime, meter: str, quantity: str, t: float, within: float) -> Decimal:
    """The value the meter sent for ``quantity`` closest to ``t`` (and within ``within`` s)."""
    best = min(
        (o for o in fleet.observations if o.meter == meter and o.quantity == quantity),
        key=lambda o: abs(o.t - t),
    )
    assert abs(best.t - t) <= within, f"{meter} {quantity}: nothing sent near {t}"
    return best.value


def good(raw: RawValue) -> Decimal:
    assert raw.error is None, raw
    assert raw.value is not None, raw
    return raw.value


def fault_count(fleet: FleetRuntime, meter: str, kind: str | None = None) -> int:
    return sum(1 for e in fleet.fault_events if e.meter == meter and kind in (None, e.kind))

"""A scenario's steps as a list of events at offsets from the start, seeded and sorted.

Everything random in a run (where the power cuts fall, how long they last) is drawn here from
the scenario's seed, so the same seed gives the same timeline."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from conformance.scenario.schema import (
    ClockJump,
    ConfigChange,
    LinkDown,
    LinkUp,
    MeterFault,
    OperatorAction,
    PlatformBehaviour,
    PowerCut,
    PowerCuts,
    Scenario,
    Toxic,
)

Action = Literal[
    "link_down",
    "link_up",
    "toxic_on",
    "toxic_off",
    "power_off",
    "power_on",
    "platform",
    "clock_jump",
    "config",
    "operator",
]


@dataclass(frozen=True)
class Event:
    at: timedelta
    action: Action
    centre: str = "all"
    detail: dict[str, Any] | None = None

    def describe(self) -> str:
        parts: list[str] = [self.action]
        if self.centre != "all" and not self.action.startswith("power"):
            parts.append(self.centre)
        parts += [f"{k}={v}" for k, v in (self.detail or {}).items()]
        return " ".join(parts)


def power_cut_windows(step: PowerCuts, rng: random.Random) -> list[tuple[timedelta, timedelta]]:
    """``count`` (off, on) pairs: the window split in equal slots, one cut somewhere in each,
    so cuts spread over the window and never overlap."""
    start, end = step.between
    slot = (end - start) / step.count
    low, high = step.off_for
    cuts = []
    for n in range(step.count):
        off_for = low + (high - low) * rng.random()
        begin = start + slot * n
        at = begin + (slot - off_for) * rng.random()
        cuts.append((at, at + off_for))
    return cuts


#: A torn cut lands before one of the terminal's next this-many disk writes or fsyncs (in
#: virtual time the draw's parity picks the next acknowledgement's write or its sync:
#: ``ReferenceTarget.tear``).
TORN_WITHIN_WRITES = 40


def _tear(scenario: Scenario, step: PowerCut | PowerCuts, n: int, k: int) -> dict[str, Any] | None:
    """Where a torn cut lands: its own seeded draw, so tearing does not move other events."""
    if not step.torn:
        return None
    return {"torn_after": random.Random(f"{scenario.seed}/{n}/{k}").randint(1, TORN_WITHIN_WRITES)}


def expand(scenario: Scenario) -> list[Event]:
    """Every event of the scenario's timeline, in time order (ties keep file order)."""
    rng = random.Random(scenario.seed)
    events: list[Event] = []
    for n, step in enumerate(scenario.timeline):
        match step:
            case LinkDown():
                events.append(Event(step.at, "link_down", step.centre))
            case LinkUp():
                events.append(Event(step.at, "link_up", step.centre))
            case Toxic():
                name = f"{step.type}-{n}"
                detail = {
                    "name": name,
                    "type": step.type,
                    "stream": step.stream,
                    "toxicity": step.toxicity,
                    **step.attributes,
                }
                events.append(Event(step.at, "toxic_on", step.centre, detail))
                if step.for_ is not None:
                    off = min(step.at + step.for_, scenario.duration)
                    events.append(Event(off, "toxic_off", step.centre, {"name": name}))
            case PowerCut():
                events.append(Event(step.at, "power_off", detail=_tear(scenario, step, n, 0)))
                events.append(Event(step.at + step.off_for, "power_on"))
            case PowerCuts():
                for k, (off, on) in enumerate(power_cut_windows(step, rng)):
                    events.append(Event(off, "power_off", detail=_tear(scenario, step, n, k)))
                    events.append(Event(on, "power_on"))
            case PlatformBehaviour():
                events.append(
                    Event(step.at, "platform", step.centre, {"behaviour": step.behaviour})
                )
            case ClockJump():
                events.append(Event(step.at, "clock_jump", detail={"seconds": step.seconds}))
            case ConfigChange():
                events.append(Event(step.at, "config", detail={"set": step.set}))
            case OperatorAction():
                request = {"method": step.method, "path": step.path, "expect": step.expect}
                if step.body is not None:
                    request["body"] = step.body
                events.append(Event(step.at, "operator", detail=request))
            case MeterFault():
                pass  # played by the fleet itself (see meter_faults)
    power = [e for e in events if e.action.startswith("power")]
    power.sort(key=lambda e: e.at)
    for first, second in itertools.pairwise(power):
        if first.action == second.action:
            raise ValueError(f"power cuts overlap at {second.at}: the power is already off")
    return sorted(events, key=lambda e: e.at)


def meter_faults(scenario: Scenario) -> list[dict[str, Any]]:
    """The timeline's meter faults as fleet faults (the fleet plays them on the wire)."""
    return [
        {
            "meter": step.meter,
            "kind": step.kind,
            "start": step.at,
            "end": None if step.for_ is None else step.at + step.for_,
            "probability": step.probability,
        }
        for step in scenario.timeline
        if isinstance(step, MeterFault)
    ]

"""Scenario files (``fixtures/scenarios/*.yaml``), validated with errors that name the field.

A scenario is a fleet, a terminal set-up, the platform centres, a duration, a seed, and a
timeline of steps at offsets from the start (``90s``, ``30m``, ``48h``, ``7d``)::

    name: retention-48h
    fleet: ../fleets/works.yaml          # relative to the scenario file
    meters: model                        # wire (default): over their protocols
    seed: 48
    duration: 48h
    drain: 3h                            # after the timeline: time for backlogs to empty
    terminal: {periods: {serial: 60, network: 60, push: 60}}
    platforms: {centres: [{name: provincial, protocol: hj212, passwords: any}]}
    timeline:
      - {at: 0s, do: link_down, centre: all}
      - {do: power_cuts, count: 10, between: [30m, 47h], off_for: [1m, 20m]}
      - {at: 48h, do: link_up, centre: all}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from common import yaml_input
from simulators.fleet.schema import FaultKind
from simulators.platform.config import PlatformFile

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``30m``, ``48h``, ``7d`` (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    raise ValueError(f"{value!r} is not a duration (a number with ms, s, m, h or d: 90s, 48h)")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- steps -------------------------------------------------------------------------------------


class _At(Strict):
    at: Duration


class LinkDown(_At):
    """The terminal's link to a centre (``all``: every centre) goes down: the fault proxy in
    front of the centre refuses and drops connections (Toxiproxy's ``down``)."""

    do: Literal["link_down"]
    centre: str = "all"


class LinkUp(_At):
    do: Literal["link_up"]
    centre: str = "all"


class Toxic(_At):
    """A Toxiproxy toxic on the link to a centre, for ``for`` (or until the end)."""

    do: Literal["toxic"]
    centre: str = "all"
    type: Literal[
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "corrupt",
    ]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    attributes: dict[str, float] = {}
    for_: Duration | None = Field(None, alias="for")


class PowerCut(_At):
    """Power off at ``at`` (nothing unsynced survives), on again ``off_for`` later."""

    do: Literal["power_cut"]
    off_for: Duration = timedelta(minutes=1)
    #: Land the cut inside the terminal's next disk writes (before a seeded one of them, so a
    #: commit may be torn) rather than at an instant when, in virtual time, all is quiet.
    torn: bool = True


class PowerCuts(Strict):
    """``count`` power cuts at seeded random instants within ``between``, each off for a
    seeded random time within ``off_for``; cuts never overlap."""

    do: Literal["power_cuts"]
    count: int = Field(ge=1, le=1000)
    between: tuple[Duration, Duration]
    off_for: tuple[Duration, Duration] = (timedelta(seconds=10), timedelta(minutes=5))
    torn: bool = True  # as for power_cut

    @model_validator(mode="after")
    def _ranges(self) -> PowerCuts:
        if self.between[1] <= self.between[0]:
            raise ValueError("between: the end must come after the start")
        if self.off_for[1] < self.off_for[0]:
            raise ValueError("off_for: the longest must not be shorter than the shortest")
        room = (self.between[1] - self.between[0]) / self.count
        if self.off_for[1] >= room:
            raise ValueError(
                f"{self.count} cuts of up to {self.off_for[1]} do not fit in "
                f"{self.between[1] - self.between[0]} without overlapping"
            )
        return self


class PlatformBehaviour(_At):
    """A centre starts answering differently (the platform simulator's behaviours)."""

    do: Literal["platform"]
    centre: str
    behaviour: str | dict[str, Any]


class MeterFault(_At):
    """A meter fault (the fleet's fault kinds) from ``at`` for ``for`` (or to the end)."""

    do: Literal["meter_fault"]
    meter: str
    kind: FaultKind
    probability: float = Field(1.0, gt=0, le=1)
    for_: Duration | None = Field(None, alias="for")


class ClockJump(_At):
    """The terminal's real-time clock is stepped by ``seconds`` (a wrongly set RTC)."""

    do: Literal["clock_jump"]
    seconds: float


class ConfigChange(_At):
    """A configuration change made by an operator: ``set`` is merged into the terminal's
    configuration (nested keys), which the terminal applies while running."""

    do: Literal["config"]
    set: dict[str, Any]


class OperatorAction(_At):
    """What an operator does at the terminal's console, as a request to its management API:
    enter a value by hand, resend or back-fill a range, send now, change a setting. The run
    fails unless the terminal answers with ``expect`` (an operator would notice)."""

    do: Literal["operator"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(pattern=r"^/")
    body: dict[str, Any] | list[Any] | None = None
    expect: int = Field(200, ge=100, le=599)


Step = Annotated[
    LinkDown
    | LinkUp
    | Toxic
    | PowerCut
    | PowerCuts
    | PlatformBehaviour
    | MeterFault
    | ClockJump
    | ConfigChange
    | OperatorAction,
    Field(discriminator="do"),
]


# ---- the scenario ------------------------------------------------------------------------------


class Periods(Strict):
    """Acquisition periods (s) by kind of link."""

    serial: float = Field(60.0, ge=1, le=10800)
    network: float = Field(60.0, ge=1, le=10800)
    push: float = Field(60.0, ge=1, le=10800)


class TerminalSetup(Strict):
    kind: Literal["reference"] = "reference"
    periods: Periods = Periods()
    #: SQLite's synchronous setting for the terminal's store. Anything but FULL is a weak
    #: terminal: the retention scenario must catch it losing acknowledged data.
    synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL"
    #: CN of the minute data uploaded (2051) and what else goes up.
    realtime: bool = False
    hourly: bool = False
    daily: bool = False
    over_time_s: int = Field(30, ge=1, le=3600)
    #: How far each uplink's reconnection delays are spread (the terminal's
    #: ``backoff.jitter``; None: its default). 0 puts the uplinks' retries in step, so that
    #: when the link returns the terminal drains to every centre at once: spread, each
    #: centre's turn came when the one before had drained, since virtual time stands still
    #: while a drain keeps the terminal busy.
    reconnect_jitter: float | None = Field(None, ge=0, le=1)


class PowerSetup(Strict):
    """``fuse``: a cut loses every write not fsynced (FUSE volatile-cache file system);
    ``stop``: the terminal stops dead but the OS keeps what it wrote (no FUSE here);
    ``auto``: fuse when available, else stop, said in the outcome."""

    mode: Literal["auto", "fuse", "stop"] = "auto"


class Scenario(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    fleet: Path
    #: How the terminal reads the meters: ``wire``, each over its own protocol (ptys,
    #: sockets); ``model``, each value straight from the meter's model at the instant of the
    #: read (``bench/scenario/model_link.py``), for scenarios about days, not about the wire.
    meters: Literal["wire", "model"] = "wire"
    seed: int = 0
    duration: Duration
    #: Virtual time after ``duration`` for backlogs to drain before the checker runs.
    drain: Duration = timedelta(hours=1)
    terminal: TerminalSetup = TerminalSetup()
    platforms: PlatformFile
    #: Run each centre in a process of its own, on the bench's clock
    #: (``simulators/platform/process.py``): a drain's decoding beside the terminal's encoding.
    platforms_process: bool = False
    power: PowerSetup = PowerSetup()
    timeline: list[Step] = []

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        centres = {c.name for c in self.platforms.centres}
        for n, step in enumerate(self.timeline):
            centre = getattr(step, "centre", None)
            if centre is not None and centre != "all" and centre not in centres:
                raise ValueError(
                    f"timeline[{n}]: no centre {centre!r} (centres: {', '.join(sorted(centres))})"
                )
            at = getattr(step, "at", None)
            if at is not None and not timedelta(0) <= at <= self.duration:
                raise ValueError(f"timeline[{n}]: at {at} is outside the duration {self.duration}")
            if isinstance(step, PowerCuts) and step.between[1] > self.duration:
                raise ValueError(f"timeline[{n}]: between ends after the duration")
        return self


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with the field at fault."""


def load_scenario(
    path: Path | str, *, seed: int | None = None, overrides: Sequence[str] = ()
) -> Scenario:
    """Read and validate a scenario file; ``seed`` overrides the file's, and each override
    ``dotted.key=value`` (a YAML value) one of its settings, e.g. ``terminal.synchronous=OFF``."""
    path = Path(path)
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(yaml_input.where(str(path), exc)) from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping (name, fleet, duration, …)")
    if seed is not None:
        data["seed"] = seed
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"override {override!r}: write it as dotted.key=value")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ScenarioError(f"override {override!r}: {part} is not a mapping")
            node = child
        value = yaml.safe_load(text)
        if isinstance(value, bool) and text.strip().lower() not in ("true", "false"):
            value = text.strip()  # YAML 1.1 reads OFF, on, yes as booleans: here they are words
        node[leaf] = value
    if isinstance(data.get("fleet"), str):
        data["fleet"] = str((path.parent / data["fleet"]).resolve())
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None

"""A scenario file's timeline played against the terminal under test, on the run's rig.

The scenario engine (``bench.scenario``) stands up its own fleet, centres and reference
terminal; a conformance run already has all three, and its terminal may be a vendor's box. So
the suites take from a scenario file what describes the *test* — its timeline (expanded by the
engine's own ``expand``, seeded), duration, drain, seed and acquisition periods — and play it
here through the rig (links, toxics, centre behaviours, meter faults) and the ``Dut`` (power).

What the terminal owes the centres is what it acknowledged: before every power cut, during
the drain and at the end the bench reads back, through the management interface, every minute
window it holds (committed, so acknowledged), and the centres must receive the union of those
exactly once — whatever the cuts did to the terminal's disk afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.scenario.schema import Scenario, load_scenario
from bench.scenario.timeline import Event, expand, meter_faults
from conformance.bench import MINUTE_DATA, Bench, local
from conformance.dut import PowerCut, SetPeriod
from conformance.verdicts import Inconclusive
from simulators.platform import CheckResult, Expected, check

DRAIN_CHECK_S = 300.0
SNAPSHOT_OVERLAP_S = 3600.0

_Window = tuple[Decimal | None, str, tuple[tuple[str, Decimal], ...]]


@dataclass
class Owed:
    """The union of the terminal's answers: (code, DataTime) → (value, field, the window's
    Min and Max)."""

    windows: dict[tuple[str, datetime], _Window] = field(default_factory=dict)
    since: float = 0.0

    async def snapshot(self, bench: Bench, until: float) -> None:
        for binding in bench.coded():
            assert binding.code is not None
            field_ = binding.minute_field
            for d, others in await bench.minute_windows(binding, self.since or None, until):
                key = (binding.code, local(d.start))
                # the latest answer's values; a window once acknowledged stays owed
                self.windows[key] = (d.value, field_, others)
        self.since = max(self.since, bench.now() - SNAPSHOT_OVERLAP_S)

    def expected(self, mn: str, *, with_values: bool) -> list[Expected]:
        return [
            Expected(mn, MINUTE_DATA, when, code, value, field_, others)
            if with_values
            else Expected(mn, MINUTE_DATA, when, code, None, field_)
            for (code, when), (value, field_, others) in sorted(self.windows.items())
        ]


@dataclass
class Played:
    scenario: Scenario
    file: Path
    cuts: list[PowerCut]
    results: dict[str, CheckResult]
    log: list[dict[str, Any]]
    windows: int

    def passed(self) -> bool:
        return all(
            r.expected and not r.lost and not r.unexpected and r.new_qn_copies == 0
            for r in self.results.values()
        )

    def summary(self) -> str:
        lines = [
            f"{self.scenario.name}: {self.windows} acknowledged windows, {len(self.cuts)} cuts"
        ]
        lines += [f"{name}: {r.summary()}" for name, r in self.results.items()]
        return "\n".join(lines)

    def timeline_jsonl(self) -> str:
        return "\n".join(json.dumps(e, ensure_ascii=False, default=str) for e in self.log)


async def play(bench: Bench, path: Path) -> Played:
    """Play the scenario file at ``path``; restores links, toxics and power afterwards."""
    scenario = load_scenario(path)
    unsupported = [e.action for e in expand(scenario) if e.action in ("clock_jump", "config")]
    if unsupported:
        raise Inconclusive(
            f"{path.name}: steps {sorted(set(unsupported))} change the reference terminal's own "
            "clock or configuration file; a conformance run plays links, power and faults only"
        )
    bench.note_scenario(path)
    rig, dut = bench.rig, bench.dut
    periods = scenario.terminal.periods.model_dump()
    groups = dut.target.parameters.periods
    original = {g: float(s) for g, s in groups.items()}
    await dut.configure(*[SetPeriod(g, float(periods.get(g, s))) for g, s in groups.items()])
    owed = Owed(since=bench.now())
    cuts: list[PowerCut] = []
    log: list[dict[str, Any]] = []
    toxics: dict[str, list[tuple[str, str]]] = {}
    t0 = bench.now()
    duration = scenario.duration.total_seconds()
    bench.needs(duration + scenario.drain.total_seconds())

    def note(what: str, **detail: Any) -> None:
        log.append({"virtual_s": round(bench.now() - t0, 3), "what": what, **detail})

    note("start", seed=scenario.seed, file=str(path))
    for fault in meter_faults(scenario):
        end = fault["end"]
        rig.meter_fault(
            fault["meter"],
            fault["kind"],
            seconds=None if end is None else (end - fault["start"]).total_seconds(),
        )
    try:
        for event in expand(scenario):
            await rig.sleep_until(t0 + event.at.total_seconds())
            note(event.describe())
            await _apply(bench, event, owed, cuts, toxics)
        await rig.sleep_until(t0 + duration)
        note("end of the timeline")
    finally:
        if not dut.powered:
            await dut.power_on()
        await rig.link("all", up=True)
        for centre, names in toxics.items():
            for name, _ in names:
                await rig.untoxic(centre, name)
        await dut.configure(*[SetPeriod(g, s) for g, s in original.items()])
    until = t0 + duration
    results = await _drain(bench, owed, until, t0 + duration + scenario.drain.total_seconds())
    note("checked", **{n: r.summary().splitlines()[0] for n, r in results.items()})
    return Played(scenario, path, cuts, results, log, len(owed.windows))


async def _apply(
    bench: Bench,
    event: Event,
    owed: Owed,
    cuts: list[PowerCut],
    toxics: dict[str, list[tuple[str, str]]],
) -> None:
    rig, dut = bench.rig, bench.dut
    names = [c.name for c in rig.centres] if event.centre == "all" else [event.centre]
    detail = dict(event.detail or {})
    match event.action:
        case "link_down" | "link_up":
            for name in names:
                await rig.link(name, up=event.action == "link_up")
        case "toxic_on":
            label = detail.pop("name")
            kind = detail.pop("type")
            stream = detail.pop("stream")
            detail.pop("toxicity", None)
            for name in names:
                made = await rig.toxic(name, kind, stream=stream, **detail)
                toxics.setdefault(name, []).append((made, label))
        case "toxic_off":
            for name in names:
                for made, label in list(toxics.get(name, [])):
                    if label == detail["name"]:
                        await rig.untoxic(name, made)
                        toxics[name].remove((made, label))
        case "power_off":
            if dut.powered:
                await owed.snapshot(bench, bench.now())
                torn_after = detail.get("torn_after")
                cuts.append(await dut.power_off(torn_after=int(torn_after) if torn_after else None))
        case "power_on":
            if not dut.powered:
                await dut.power_on()
        case "platform":
            for name in names:
                await rig.behaviour(name, detail["behaviour"])


async def _drain(bench: Bench, owed: Owed, until: float, deadline: float) -> dict[str, CheckResult]:
    """Let the backlogs drain; the check of every centre once all have everything (or at the
    deadline, with what is missing)."""
    results: dict[str, CheckResult] = {}
    while True:
        await owed.snapshot(bench, until)
        results = {name: _check(bench, owed, name, until) for name in _names(bench)}
        if all(r.complete for r in results.values()) or bench.now() >= deadline:
            return results
        await bench.rig.sleep(min(DRAIN_CHECK_S, max(1.0, deadline - bench.now())))


def _names(bench: Bench) -> Sequence[str]:
    return [c.name for c in bench.rig.centres]


def _check(bench: Bench, owed: Owed, centre: str, until: float) -> CheckResult:
    https = bench.rig.centre(centre).protocol == "https"
    expected = [
        e
        for e in owed.expected(bench.dut.mn(centre), with_values=True)
        if not (https and e.value is None)  # no JSON form for a window without a value
    ]
    rows = bench.readings(centre, MINUTE_DATA, since=owed_start(owed), before=until)
    return check(expected, rows)


def owed_start(owed: Owed) -> float | None:
    if not owed.windows:
        return None
    from conformance.bench import posix  # noqa: PLC0415

    return posix(min(when for _, when in owed.windows))


def scenario_file(name: str) -> Path:
    """A scenario shipped with the suites, else one of ``fixtures/scenarios``."""
    here = Path(__file__).resolve().parent / "suites" / "scenarios" / name
    if here.exists():
        return here
    return Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / name


def load(name: str) -> Scenario:
    return load_scenario(scenario_file(name))

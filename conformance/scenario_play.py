"""A scenario file's timeline played against the terminal under test, on the run's rig.

The suites take from a scenario file what describes the *test* — its timeline (expanded by
``conformance.scenario.timeline``, seeded), duration, drain, seed and acquisition periods — and
play it here through the rig (links, toxics, centre behaviours, meter faults) and the ``Dut``
(power), whatever the terminal is.

What the terminal owes the centres is what its meters gave it: at the end the oracle works out
from the meters' logs every minute window of the timeline (``Bench.owed_minutes``; a reading
given just before a cut only beyond the target's ``cut_loss_s``), and each centre must receive
every one exactly once, with its value — whatever the cuts did to the terminal's disk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.bench import Bench
from conformance.dut import PowerCut, SetPeriod
from conformance.oracle import Owed
from conformance.scenario.schema import Scenario, load_scenario
from conformance.scenario.timeline import Event, expand, meter_faults
from conformance.verdicts import Inconclusive
from simulators.platform import CheckResult

DRAIN_CHECK_S = 300.0


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
            r.expected
            and not r.lost
            and not r.unexpected
            and not r.wrong_value
            and r.new_qn_copies == 0
            for r in self.results.values()
        )

    def summary(self) -> str:
        lines = [
            f"{self.scenario.name}: {self.windows} windows owed by the meters' logs, "
            f"{len(self.cuts)} cuts"
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
    await bench.configure(
        *[SetPeriod(g, float(periods[g])) for g, s in groups.items() if periods.get(g, s) != s]
    )
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
            await _apply(bench, event, cuts, toxics)
        await rig.sleep_until(t0 + duration)
        note("end of the timeline")
    finally:
        if not dut.powered:
            await bench.power_on()
        await rig.link("all", up=True)
        for centre, names in toxics.items():
            for name, _ in names:
                await rig.untoxic(centre, name)
        await bench.configure(
            *[SetPeriod(g, s) for g, s in original.items() if periods.get(g, s) != s]
        )
    until = t0 + duration
    await rig.sleep_until(until + bench.settled_after())  # the last windows' reads are in
    owed = {name: bench.owed_minutes(name, t0, until) for name in _names(bench)}
    note("owed", **{n: o.summary() for n, o in owed.items()})
    results = await _drain(bench, owed, t0, until, until + scenario.drain.total_seconds())
    note("checked", **{n: r.summary().splitlines()[0] for n, r in results.items()})
    windows = max((o.windows for o in owed.values()), default=0)
    return Played(scenario, path, cuts, results, log, windows)


async def _apply(
    bench: Bench,
    event: Event,
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
                torn_after = detail.get("torn_after")
                cuts.append(
                    await bench.power_off(torn_after=int(torn_after) if torn_after else None)
                )
        case "power_on":
            if not dut.powered:
                await bench.power_on()
        case "platform":
            for name in names:
                await rig.behaviour(name, detail["behaviour"])


async def _drain(
    bench: Bench, owed: dict[str, Owed], start: float, until: float, deadline: float
) -> dict[str, CheckResult]:
    """Let the backlogs drain; the check of every centre once all have everything (or at the
    deadline, with what is missing)."""
    results: dict[str, CheckResult] = {}
    while True:
        results = {name: bench.minute_check(name, o, start, until) for name, o in owed.items()}
        if all(r.complete for r in results.values()) or bench.now() >= deadline:
            return results
        await bench.rig.sleep(min(DRAIN_CHECK_S, max(1.0, deadline - bench.now())))


def _names(bench: Bench) -> Sequence[str]:
    return [c.name for c in bench.rig.centres]


def scenario_file(name: str) -> Path:
    """A scenario shipped with the suites, else one of ``fixtures/scenarios``."""
    here = Path(__file__).resolve().parent / "suites" / "scenarios" / name
    if here.exists():
        return here
    return Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / name


def load(name: str) -> Scenario:
    return load_scenario(scenario_file(name))

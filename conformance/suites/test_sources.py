"""Acquisition by kind of source (ISC-2 §7.2.2 a)–e), §7.2.2(1); CSMT §5.2): the fleet's meters
of each kind are read through the terminal, and what it stored equals what the meter showed and
what the plant really did.

Each kind is judged on its own: a terminal that reads electricity meters but no heat meter fails
b) and passes a). A kind the fleet has no meter of cannot be judged (inconclusive, the run's
fleet named)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

import pytest

from conformance.bench import Bench
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.suites.readback import USABLE, entered, judge_points, plant_text
from conformance.verdicts import Inconclusive
from simulators.fleet.schema import point_quantities

#: ISC-2 §7.2.2 b): heat as a total from a heat meter, or steam flow + pressure + temperature.
HEAT_TOTAL_UNITS = ("kwh", "mwh", "gj", "kj", "mj")
STEAM_PARTS = ("flow", "pressure", "temp")
SOLIDS = ("weighbridge", "belt_scale", "production")
#: A value collected: measured and usable, entered by hand, or kept but flagged by a check.
COLLECTED = (*USABLE, "manual", "suspect")


def _source_kinds(bench: Bench) -> dict[str, str]:
    return {s.id: s.kind for s in bench.rig.fleet.spec.plant.sources}


def _of_kinds(bench: Bench, kinds: Iterable[str]) -> list[PointBinding]:
    """The terminal's points reading a fleet meter of a source of one of ``kinds``."""
    by_source = _source_kinds(bench)
    wanted = set(kinds)
    return [
        b
        for b in bench.dut.points()
        if b.quantity is not None
        and by_source.get(b.quantity.split(".")[0]) in wanted
        and b.acquisition != "manual"
        and bench.fleet_meter(b)
    ]


def _fleet_meters(bench: Bench, kinds: Iterable[str]) -> dict[str, list[str]]:
    """The fleet's (not manual) meters showing a quantity of a source of one of ``kinds``,
    with those quantities."""
    by_source = _source_kinds(bench)
    wanted = set(kinds)
    out: dict[str, list[str]] = {}
    for meter in bench.rig.fleet.spec.meters:
        if meter.protocol == "manual":
            continue
        names = [q for q in point_quantities(meter) if by_source.get(q.split(".")[0]) in wanted]
        if names:
            out[meter.id] = names
    return out


async def _judge_kind(
    bench: Bench,
    evidence: TestLog,
    label: str,
    kinds: Iterable[str],
    points: list[PointBinding],
    clause: str,
) -> None:
    """Every fleet meter of ``kinds`` is read by one of ``points`` at least, and ``points``
    are stored as their meters and the plant showed."""
    meters = _fleet_meters(bench, kinds)
    if not meters:
        raise Inconclusive(
            f"the fleet {bench.rig.fleet.spec.name!r} has no {label} meter to judge", clause
        )
    unread = sorted(set(meters) - {p.meter for p in points})
    assert not unread, f"{label} meters of the fleet the terminal does not read: {unread}"
    with step(f"compare {len(points)} {label} points' minute data with their meters' logs"):
        problems, judged = await judge_points(bench, points)
    evidence.attach_json("judged.json", judged)
    evidence.record_measurement("windows_judged", sum(judged.values()))
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("ISC-2 §7.2.2 a)")
async def test_electricity_meters_are_read(bench: Bench, evidence: TestLog) -> None:
    """Electricity: every electricity meter of the fleet is read, as the meter and the plant
    show it."""
    await bench.warm()
    points = _of_kinds(bench, ["electricity"])
    await _judge_kind(bench, evidence, "electricity", ["electricity"], points, "ISC-2 §7.2.2 a)")


@pytest.mark.clause("ISC-2 §7.2.2 b)")
async def test_heat_totals_are_read(bench: Bench, evidence: TestLog) -> None:
    """Heat: a heat meter's total (or steam flow, pressure and temperature) is read."""
    await bench.warm()
    points = _of_kinds(bench, ["heat", "steam"])
    totals = [p for p in points if p.kind == "counter" and p.unit.lower() in HEAT_TOTAL_UNITS]
    steam = {
        part: [p for p in points if p.quantity is not None and part in p.quantity]
        for part in STEAM_PARTS
    }
    have = sorted(p.point for p in points)
    assert not points or totals or all(steam.values()), (
        f"heat points {have} give neither a heat total nor steam flow, pressure and temperature"
    )
    await _judge_kind(bench, evidence, "heat", ["heat", "steam"], points, "ISC-2 §7.2.2 b)")


@pytest.mark.clause("ISC-2 §7.2.2 c)")
async def test_gas_flow_totals_are_read(bench: Bench, evidence: TestLog) -> None:
    """Gas: the flow total of every gas meter is read."""
    await bench.warm()
    points = _of_kinds(bench, ["gas"])
    totals = [p for p in points if p.kind == "counter"]
    assert totals or not points, f"gas points {[p.point for p in points]}: no flow total"
    await _judge_kind(bench, evidence, "gas", ["gas"], points, "ISC-2 §7.2.2 c)")


@pytest.mark.clause("ISC-2 §7.2.2 d)")
async def test_liquid_flow_totals_are_read(bench: Bench, evidence: TestLog) -> None:
    """Liquids: the flow total of every liquid meter (water, oil …) is read."""
    await bench.warm()
    points = _of_kinds(bench, ["liquid", "water", "oil"])
    totals = [p for p in points if p.kind == "counter"]
    assert totals or not points, f"liquid points {[p.point for p in points]}: no flow total"
    await _judge_kind(
        bench, evidence, "liquid", ["liquid", "water", "oil"], points, "ISC-2 §7.2.2 d)"
    )


@pytest.mark.clause("ISC-2 §7.2.2 e)")
async def test_solid_material_totals_are_read(bench: Bench, evidence: TestLog) -> None:
    """Solids: weighbridge and belt-scale totals are read (a weighbridge the plant only
    records on paper is judged by manual entry, ISC-2 §7.2.2(1))."""
    await bench.warm()
    points = _of_kinds(bench, SOLIDS)
    totals = [p for p in points if p.kind == "counter"]
    assert totals or not points, f"solid points {[p.point for p in points]}: no mass total"
    await _judge_kind(bench, evidence, "solid material", SOLIDS, totals, "ISC-2 §7.2.2 e)")


@pytest.mark.clause("ISC-2 §7.2.2(1)")
@pytest.mark.requires("feature:manual-entry")
async def test_manual_entry_and_external_systems(bench: Bench, evidence: TestLog) -> None:
    """Both ways in besides field meters: a value entered locally by hand is stored as given
    (flagged manual), and a point taken from an external system (a collector, the DCS, the
    energy-management system) is stored as that system showed it."""
    await bench.warm()
    manual = bench.points(acquisition="manual")
    if not manual:
        raise Inconclusive("the terminal declares manual entry but has no manual point")
    binding = manual[0]
    t = bench.now()
    value = plant_text(bench, binding, t)
    with step(f"enter {value} for {binding.point} by hand"):
        await bench.management.enter_manual(binding.point, value, t, operator="carbench")
    stored = await bench.management.readings(binding.point, t - 1, t + 1)
    evidence.attach_json("manual.json", [asdict(r) for r in stored])
    entry = await entered(bench, binding, value, t)
    assert not entry, "; ".join(entry)
    external = [
        b
        for b in bench.dut.points()
        if b.protocol in ("opcua", "mqtt", "https", "sql") and bench.fleet_meter(b)
    ]
    if not external:
        raise Inconclusive("the terminal reads no external system of the bench's fleet")
    with step(f"compare {len(external)} points of external systems with what they showed"):
        problems, _ = await judge_points(bench, external)
    assert not problems, "\n".join(problems[:20])


def _source_of(binding: PointBinding) -> str | None:
    return None if binding.quantity is None else binding.quantity.split(".")[0]


@pytest.mark.clause("CSMT §5.2")
async def test_every_activity_of_the_plant_is_collected(bench: Bench, evidence: TestLog) -> None:
    """Activity data are collected item by item: every source of the plant with an activity
    that a meter or system of the fleet measures is read and uploaded, each minute window as
    its meter's log owes it (a source recorded only on paper: the next test)."""
    await bench.warm()
    measured = {
        q.split(".")[0]
        for meter in bench.rig.fleet.spec.meters
        if meter.protocol != "manual"
        for q in point_quantities(meter)
    }
    online = {s.id for s in bench.rig.fleet.spec.plant.sources if s.activity and s.id in measured}
    if not online:
        raise Inconclusive("the fleet measures no activity of its plant", "CSMT §5.2")
    points = [b for b in bench.coded() if bench.fleet_meter(b) and _source_of(b) in online]
    with step(f"minute data of {len(points)} points of {len(online)} activities"):
        problems, judged = await judge_points(bench, points)
    evidence.attach_json("judged.json", judged)
    by_source: dict[str, int] = {}
    for b in points:
        source = _source_of(b)
        assert source is not None
        by_source[source] = by_source.get(source, 0) + judged.get(b.point, 0)
    unjudged = sorted(s for s in online if not by_source.get(s))
    assert not unjudged, f"activities with no minute window uploaded as measured: {unjudged}"
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("CSMT §5.2")
@pytest.mark.requires("feature:manual-entry")
async def test_activity_recorded_on_paper_is_entered(bench: Bench) -> None:
    """An activity no meter of the fleet measures (weighbridge tickets) is collected by hand:
    a value entered for it is stored as given (through the management profile, or by an
    operator)."""
    await bench.warm()
    measured = {_source_of(b) for b in bench.dut.points() if b.acquisition != "manual"}
    manual = [
        b
        for b in bench.points(acquisition="manual")
        if _source_of(b) not in measured and b.quantity is not None
    ]
    if not manual:
        raise Inconclusive("every activity of the plant is measured online", "CSMT §5.2")
    now = bench.now()
    problems = []
    for binding in manual:
        value = plant_text(bench, binding, now)
        with step(f"enter {value} for {binding.point} by hand"):
            await bench.management.enter_manual(binding.point, value, now, "carbench")
        problems += await entered(bench, binding, value, now)
    assert not problems, "; ".join(problems)

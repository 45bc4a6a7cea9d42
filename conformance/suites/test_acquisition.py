"""Acquisition (southbound): every declared protocol read, the kinds of sources, acquisition
periods, on-command reads, and the switch to a backup device when a meter falls silent."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import get_args

import pytest

from conformance.bench import Bench
from conformance.dut import PointBinding, SetBackup, SetPeriod
from conformance.evidence import TestLog, step
from conformance.judge import spacing
from conformance.management import ManagementRefused
from conformance.suites.readback import judge_points
from conformance.target import Protocol
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command

#: Every protocol a target can declare that the bench reads through a fleet (manual entry has
#: its own tests).
PROTOCOLS = [p for p in get_args(Protocol) if p != "manual"]
#: ISC-2 §7.2.2 a)–e): the plant's source kinds, by the fleet's source kinds.
SOURCE_KINDS = {
    "a) electricity": {"electricity"},
    "b) heat": {"heat", "steam"},
    "c) gas": {"gas"},
    "d) liquid": {"liquid", "water"},
    "e) solid": {"weighbridge", "belt_scale", "production"},
}


@pytest.mark.clause("ISC-2 §6.2", "ISC-2 §7.2.2(2)", "CSMT §4", "CSMT §7.1", "CSMT §11.3")
@pytest.mark.parametrize(
    "protocol", [pytest.param(p, marks=pytest.mark.requires(f"protocol:{p}")) for p in PROTOCOLS]
)
async def test_each_declared_protocol_is_read(bench: Bench, protocol: str) -> None:
    """Every point read over a declared protocol reaches the centres as its meter gave it."""
    await bench.warm()
    points = [b for b in bench.points(protocol=protocol) if bench.fleet_meter(b)]
    if not points:
        raise Inconclusive(
            f"the terminal declares {protocol} but reads no meter of the bench's fleet over it",
            "ISC-2 §6.2",
        )
    with step(f"compare the minute data of {len(points)} {protocol} points with their meters"):
        problems, _ = await judge_points(bench, points)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("ISC-2 §7.2.2", "CSMT §11.6")
@pytest.mark.requires("protocol:manual", "feature:manual-entry")
async def test_manual_entry_is_stored_with_its_digits(bench: Bench, evidence: TestLog) -> None:
    """A value entered by hand is stored at once, flagged manual, digits kept."""
    manual = bench.points(acquisition="manual")
    if not manual:
        raise Inconclusive("the terminal declares manual entry but has no manual point")
    point = manual[0]
    t = bench.now()
    value = "1234.50"
    with step(f"enter {value} for {point.point}"):
        await bench.management.enter_manual(
            point.point, value, t, operator="carbench", note="conformance"
        )
    stored = await bench.management.readings(point.point, t - 1, t + 1)
    evidence.attach_json("stored.json", [asdict(r) for r in stored])
    assert stored, f"{point.point}: the value entered at {t} is not stored"
    last = stored[-1]
    assert last.value == Decimal(value) and str(last.value) == value, (last.value, value)
    assert last.quality == "manual", f"{point.point}: stored as {last.quality}, not manual"


@pytest.mark.clause("ISC-2 §7.2.2", "ISC-2 §5.2", "ISC-2 §5.3")
async def test_every_kind_of_source_is_acquired(bench: Bench, evidence: TestLog) -> None:
    """Electricity, heat, gas, liquid and solid sources of the plant all reach the centres as
    their meters gave them (a kind read only by hand is judged by the manual-entry tests)."""
    await bench.warm()
    kinds = {source.id: source.kind for source in bench.rig.fleet.spec.plant.sources}
    missing, judged = [], {}
    for label, wanted in SOURCE_KINDS.items():
        present = {s for s, k in kinds.items() if k in wanted}
        points = [
            b
            for b in bench.points()
            if b.quantity is not None
            and b.quantity.split(".")[0] in present
            and b.acquisition != "manual"
            and bench.fleet_meter(b)
        ]
        if not present or not points:
            continue  # no such source, or read by hand only: nothing to judge on the wire
        with step(f"{label}: the minute data of {len(points)} points against their meters"):
            problems, windows = await judge_points(bench, points)
        judged[label] = windows
        if problems or not sum(windows.values()):
            missing.append(f"{label}: " + ("; ".join(problems[:3]) or "no window judged"))
    evidence.attach_json("judged.json", judged)
    assert judged, "the terminal reads no source of the plant from the bench's meters"
    assert not missing, "\n".join(missing)


@pytest.mark.clause("ISC-2 §9.1", "CSMT §11.2")
async def test_acquisition_period_is_configurable(bench: Bench, evidence: TestLog) -> None:
    """A group's period can be set from 1 s to 3 h, and readings follow the period set."""
    await bench.warm()
    groups = bench.dut.target.parameters.periods
    group = "network" if "network" in groups else next(iter(groups))
    original = float(groups[group])
    polled = [b for b in bench.points(acquisition="polled") if b.group == group]
    if not polled:
        raise Inconclusive(f"no polled point in group {group!r} to watch")
    point = polled[0].point
    try:
        with step(f"set group {group} to 20 s (second level) and watch {point}"):
            await bench.configure(SetPeriod(group, 20))
            start = bench.now()
            await bench.wait(300)
            readings = await bench.management.readings(point, start + 30, bench.now())
            gaps = spacing([r.t for r in readings])
            evidence.attach_json("spacing-20s.json", gaps)
        # every reading on the 20 s grid, and (a read may fail now and then) most of them
        assert len(readings) >= 11, f"{point}: {len(readings)} readings in 270 s at 20 s"
        on_grid = [g for g in gaps if 15 <= g <= 25]
        assert len(on_grid) >= 0.8 * len(gaps), f"{point}: spacing {sorted(gaps)} at 20 s"
        assert all(g % 20 < 5 or g % 20 > 15 for g in gaps), f"{point}: off the grid {gaps}"
        with step(f"set group {group} to 3 h (the longest ISC-2 §9.1 allows)"):
            await bench.configure(SetPeriod(group, 10800))
            listed = {p["id"]: p for p in await bench.management.points()}
            assert float(listed[point]["period_s"]) == 10800.0, listed[point]
        with step("a period under one second is refused"):
            refused = False
            try:
                await bench.configure(SetPeriod(group, 0.2))
            except ManagementRefused:
                refused = True
            assert refused, "a 0.2 s period was accepted: ISC-2 §9.1 sets 1 s to 3 h"
    finally:
        await bench.configure(SetPeriod(group, original))


@pytest.mark.clause("ISC-2 §9.1")
@pytest.mark.requires("feature:on-command-read")
async def test_on_command_read_returns_what_the_meter_shows(bench: Bench) -> None:
    """A point read on command answers at once with the meter's value, and stores it."""
    await bench.warm()
    candidates = [b for b in bench.points(acquisition="polled") if bench.fleet_meter(b)]
    if not candidates:
        raise Inconclusive("no polled point of the fleet to read on command")
    binding = next((b for b in candidates if b.protocol == "modbus-tcp"), candidates[0])
    assert binding.meter is not None and binding.quantity is not None
    t = bench.now()
    with step(f"read {binding.point} on command"):
        answer = await bench.management.read_now(binding.point)
    values = [a for a in answer if a.get("point") == binding.point and a.get("value") is not None]
    assert values, f"{binding.point}: the on-command read gave no value: {answer}"
    got = Decimal(str(values[0]["value"]))
    shown = {
        o.value for o in bench.rig.shown(binding.meter, binding.quantity, t - 1, bench.now() + 1)
    }
    assert got in shown, f"{binding.point}: read {got} on command, the meter showed {shown}"
    stored = await bench.management.readings(binding.point, t - 1, bench.now() + 1)
    assert any(r.value == got for r in stored), f"{binding.point}: {got} was not stored"


@pytest.mark.clause("ISC-2 §9.1")
@pytest.mark.requires("transport:hj212")
async def test_platform_requested_acquisition(bench: Bench) -> None:
    """A platform's request for real-time data (CN 2011, flow C.10) is accepted and executed,
    and real-time data of every uploaded point follows within one real-time interval."""
    await bench.warm()
    centre = bench.rig.hj212_centres()[0]
    mn = bench.dut.mn(centre)
    server = bench.rig.platforms.hj212(centre)
    await server.wait_connected(mn, 600)
    asked = bench.now()
    with step(f"{centre} asks for real-time data (2011)"):
        outcome = await server.commands(mn, timeout=120).request(int(Command.REALTIME_DATA))
    assert outcome.ok, f"2011: {outcome.status} {outcome.reason} {list(outcome.departures)}"
    expected = {b.code for b in bench.coded() if b.code and b.acquisition != "manual"}
    interval = bench.dut.target.parameters.realtime_interval_s
    codes: set[str] = set()

    async def arrived() -> bool:
        rows = bench.readings(centre, int(Command.REALTIME_DATA), since=asked - 1)
        codes.update(r.code for r in rows if r.frame_id)
        return expected <= codes

    with step(f"real-time data within {interval} s"):
        await bench.until(arrived, within=interval + 120, every=20)
    assert codes, "no real-time data followed the 2011 request"
    assert expected <= codes, f"missing after the request: {sorted(expected - codes)[:10]}"


def _backup_pair(bench: Bench) -> tuple[PointBinding, PointBinding] | None:
    """A polled serial point and another point reading the same quantity from another device."""
    polled = [b for b in bench.points(acquisition="polled") if bench.fleet_meter(b)]
    for primary in polled:
        if primary.protocol not in ("dlt645-2007", "dlt645-1997", "modbus-rtu", "cjt188"):
            continue
        for other in polled:
            if other.meter != primary.meter and other.quantity == primary.quantity:
                return primary, other
    return None


@pytest.mark.clause("ISC-2 §7.2.3(1)", "ISC-2 §7.2.6")
@pytest.mark.requires("feature:backup-device")
async def test_silent_meter_switches_to_backup_and_tells_the_operator(
    bench: Bench, evidence: TestLog
) -> None:
    """A meter silent for 10 s or more: the gap is recorded, the backup device takes over and
    the operator is notified."""
    await bench.warm()
    pair = _backup_pair(bench)
    if pair is None:
        raise Inconclusive("no point with a second device reading the same quantity")
    primary, backup = pair
    assert primary.meter is not None
    period = float(bench.dut.target.parameters.periods.get(primary.group, 60))
    try:
        with step(f"{backup.point} becomes the backup of {primary.point}"):
            await bench.configure(SetBackup(primary.point, backup.point))
            await bench.wait(2 * period)
        start = bench.now()
        with step(f"{primary.meter} stops answering for {4 * period:g} s"):
            fault = bench.rig.meter_fault(primary.meter, "no_answer", seconds=4 * period)
            await bench.wait(6 * period)
            bench.rig.clear_fault(fault)
        events = await bench.management.events(point=primary.point, start=start - 1)
        evidence.attach_json("events.json", [asdict(e) for e in events])
        kinds = [e.kind for e in events]
        readings = await bench.management.readings(primary.point, start, bench.now())
        qualities = {r.quality for r in readings}
    finally:
        await bench.configure(SetBackup(primary.point, None))
    assert "gap" in kinds, f"no gap recorded for {primary.point}: events {kinds}"
    assert "switch_to_backup" in kinds, f"no switch to the backup: events {kinds}"
    switched = min(e.t for e in events if e.kind == "switch_to_backup")
    assert switched - start <= 2 * period + 10, (
        f"switched {switched - start:.0f} s after the meter fell silent (period {period:g} s)"
    )
    assert "notification" in kinds, f"the operator was not notified: events {kinds}"
    assert "backup" in qualities, f"no reading taken from the backup: qualities {qualities}"

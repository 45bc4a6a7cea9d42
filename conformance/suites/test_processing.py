"""Processing: range validation, the second check against history, counter rollover, daily
settlement and its roll-up into months and years, interpolation of fault gaps (flagged),
units kept, and virtual points computed across points."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from decimal import Decimal

import pytest

from conformance.bench import Bench, local
from conformance.dut import PointBinding, SetRange
from conformance.evidence import TestLog, step
from conformance.management import DerivedValue
from conformance.suites import virtual_truth as vt
from conformance.suites.readback import full_scale
from conformance.verdicts import Inconclusive

SERIAL = ("dlt645-2007", "dlt645-1997", "modbus-rtu", "cjt188")


def _fleet_points(
    bench: Bench, *, kind: str, protocols: tuple[str, ...] = ()
) -> list[PointBinding]:
    return [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b)
        and b.kind == kind
        and b.quantity is not None
        and (not protocols or b.protocol in protocols)
    ]


def _period(bench: Bench, binding: PointBinding) -> float:
    return float(bench.dut.target.parameters.periods.get(binding.group, 60))


@pytest.mark.clause("CSMT §8.1.1", "SSEA §5.2.3.1")
@pytest.mark.requires("feature:range-check")
async def test_readings_outside_the_range_are_flagged_and_kept_out(
    bench: Bench, evidence: TestLog
) -> None:
    """A reading outside the meter's configured min/max is kept but marked invalid, and the
    window figures leave it out."""
    await bench.history(600)
    gauges = _fleet_points(bench, kind="gauge", protocols=("modbus-tcp",)) or _fleet_points(
        bench, kind="gauge"
    )
    if not gauges:
        raise Inconclusive("no polled gauge point to give a range to")
    now = bench.now()
    binding = None
    recent: list[Decimal] = []
    for candidate in gauges:
        readings = await bench.management.readings(candidate.point, now - 600, now)
        recent = [r.value for r in readings if r.value is not None and r.value > 0]
        if len(recent) >= 3:
            binding = candidate
            break
    if binding is None:
        raise Inconclusive("no gauge point has had positive readings to set a range around")
    assert binding.meter is not None and binding.quantity is not None
    high = max(recent) * 3
    period = _period(bench, binding)
    try:
        with step(f"{binding.point} gets the range [0, {high}]"):
            await bench.configure(SetRange(binding.point, Decimal(0), high))
            await bench.wait(period)
        start = bench.now()
        with step(f"{binding.meter} reads ten times too high for {3 * period:g} s"):
            fault = bench.rig.meter_fault(
                binding.meter, "spike", seconds=3 * period, factor=10, quantities=[binding.quantity]
            )
            await bench.wait(3 * period)
            bench.rig.clear_fault(fault)
            await bench.wait(3 * period)
        end = bench.now()
    finally:
        await bench.configure(SetRange(binding.point, None, None))
    readings = await bench.management.readings(binding.point, start, end)
    events = await bench.management.events(point=binding.point, start=start, end=end + 1)
    windows = await bench.management.derived(binding.point, "minute", start, end)
    evidence.attach_json("readings.json", [asdict(r) for r in readings])
    high_ones = [r for r in readings if r.value is not None and r.value > high]
    assert high_ones, "the spike never reached the terminal's readings"
    wrong = [r for r in high_ones if r.quality == "good"]
    assert not wrong, f"{len(wrong)} readings above {high} stored as good: {wrong[:3]}"
    assert any(e.kind == "out_of_range" for e in events), f"no event: {[e.kind for e in events]}"
    polluted = [w for w in windows if w.value is not None and w.value > high]
    assert not polluted, f"window figures include the invalid readings: {polluted[:3]}"


@pytest.mark.clause("CSMT §8.2.2")
async def test_counter_rollover_adds_the_full_scale(bench: Bench, evidence: TestLog) -> None:
    """A counter passing its full scale (9999 → 0000) keeps counting: the increments across
    the wrap add up to what the meter really advanced."""
    await bench.history(600)
    counters = [
        b
        for b in _fleet_points(bench, kind="counter", protocols=SERIAL)
        if full_scale(bench, b) is not None
    ]
    if not counters:
        raise Inconclusive("no polled counter with a full scale in the fleet")
    binding = max(counters, key=lambda b: _rate(bench, b))
    assert binding.meter is not None and binding.quantity is not None
    period = _period(bench, binding)
    rate = _rate(bench, binding)  # units per second now
    if rate <= 0:
        raise Inconclusive(f"{binding.quantity} is not advancing: nothing would wrap")
    headroom = Decimal(str(round(rate * 4 * period, 2)))  # wraps some four periods later
    with step(f"{binding.meter} stands {headroom} below its full scale"):
        fault = bench.rig.meter_fault(
            binding.meter, "rollover", headroom=headroom, quantities=[binding.quantity]
        )
    try:
        await bench.wait(2 * period)
        start = bench.now()
        with step("the counter wraps past its full scale"):
            await bench.wait(8 * period)
        end = bench.now()
    finally:
        # the meter shows the plant's reading again (later tests judge against the plant);
        # the jump back is read, and rightly found suspect, here and not in the next test
        bench.rig.clear_fault(fault)
        await bench.wait(2 * period)
    assert binding.code is not None, f"{binding.point} is uploaded under no item code"
    centre = bench.rig.centres[0].name
    shown = [o.value for o in bench.rig.shown(binding.meter, binding.quantity, start, end)]
    assert any(b < a for a, b in itertools.pairwise(shown)), (
        f"{binding.meter} never wrapped in the window: {shown}"
    )
    with step(f"the minute data at {centre} across the wrap"):
        owed, result = await bench.minutes_arrive(
            centre, start, end, within=900, codes={binding.code}
        )
    evidence.attach("check.txt", f"{owed.summary()}\n{result.summary()}")
    counted = sum((w.value for p in owed.points.values() for w in p.owed.values()), Decimal(0))
    evidence.record_measurement("counted_by_the_meters_log", float(counted))
    assert owed.windows >= 4, f"{binding.point}: {owed.windows} windows owed across the wrap"
    # the wrap shows in no window as a negative or a full-scale jump: each is what the meter
    # advanced in it, the register's full scale added where it wrapped (CSMT §8.2.2)
    assert result.complete, result.summary()


def _rate(bench: Bench, binding: PointBinding) -> float:
    assert binding.quantity is not None
    plant = bench.rig.fleet.plant
    now = bench.now()
    return (plant.value(binding.quantity, now) - plant.value(binding.quantity, now - 600)) / 600


@pytest.mark.clause("CSMT §8.2.1")
async def test_minute_figures_are_the_meters_increments_and_extremes(
    bench: Bench, evidence: TestLog
) -> None:
    """Each minute window at the first centre carries what the meters' logs give it: a
    counter's increment with the largest and smallest increment of one acquisition interval, a
    gauge's mean with its extremes, flag N ("同样计算出秒、分钟、小时数据")."""
    await bench.warm()
    centre = bench.rig.centres[0].name
    start = bench.now()
    with step("ten minutes of minute data"):
        await bench.wait(600)
    owed, result = await bench.minutes_arrive(centre, start, bench.now(), within=900, figures=True)
    evidence.attach("check.txt", f"{owed.summary()}\n{result.summary()}")
    evidence.record_measurement("windows", owed.windows)
    assert owed.windows, "the meters' logs owe no minute window: the terminal read nothing"
    assert result.complete, result.summary()


@pytest.mark.clause("CSMT §8.2.1")
@pytest.mark.requires("feature:settlement")
async def test_daily_settlement_rolls_up_into_month_and_year(
    bench: Bench, evidence: TestLog
) -> None:
    """At local midnight each counter's day is settled (increment, max, min) from its
    minute figures, and the month and year follow from the days."""
    await bench.warm()
    midnight = bench.first_midnight()
    bench.needs(midnight + 900 - bench.now())
    await bench.rig.sleep_until(midnight + 900)
    day_start = midnight - 86400
    counters = _fleet_points(bench, kind="counter")
    assert counters, "no counter to settle"

    async def settled() -> bool:
        for binding in counters:
            rows = await bench.management.derived(binding.point, "day", day_start, midnight)
            if not rows:
                return False
        return True

    # a counter's day closes with its first reading after midnight: allow an hour's period
    await bench.until(settled, within=2 * 3600, every=300)
    problems = []
    report = {}
    for binding in counters:
        rows = await bench.management.derived(binding.point, None, day_start, midnight)
        by_kind: dict[str, list[DerivedValue]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        day = [d for d in by_kind.get("day", []) if d.start == day_start]
        if not day or day[0].value is None:
            readings = await bench.management.readings(binding.point, day_start, midnight)
            kinds = {k: len(v) for k, v in by_kind.items()}
            problems.append(
                f"{binding.point}: no daily settlement for {local(day_start):%Y-%m-%d} "
                f"({len(readings)} readings that day, derived rows {kinds}, day rows {day})"
            )
            continue
        minutes = sum(
            (m.value for m in by_kind.get("minute", []) if m.value is not None), Decimal(0)
        )
        report[binding.point] = {"day": str(day[0].value), "minutes": str(minutes)}
        if abs(day[0].value - minutes) > Decimal(1).scaleb(-binding.decimals):
            problems.append(f"{binding.point}: day {day[0].value} ≠ Σ minutes {minutes}")
        for extreme in ("day_max", "day_min"):
            if not by_kind.get(extreme):
                problems.append(f"{binding.point}: no {extreme}")
        if local(midnight).day == 1:  # a month (and maybe a year) ended too
            months = await bench.management.derived(binding.point, "month", None, midnight)
            if not months:
                problems.append(f"{binding.point}: no monthly figure at the month's end")
    evidence.attach_json("settlement.json", report)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("CSMT §12.4", "SSEA §5.2.3.1", "ISC-2 §7.2.3(1)")
@pytest.mark.requires("feature:interpolation")
async def test_fault_gaps_are_interpolated_flagged_and_totals_kept(
    bench: Bench, evidence: TestLog
) -> None:
    """Values missing while a meter did not answer are filled by interpolation, flagged as
    such and logged; the counter's total across the gap is not lost."""
    await bench.warm()
    counters = _fleet_points(bench, kind="counter", protocols=SERIAL)
    if not counters:
        raise Inconclusive("no serial counter to silence")
    binding = max(counters, key=lambda b: _rate(bench, b))
    assert binding.meter is not None and binding.quantity is not None
    period = _period(bench, binding)
    await bench.wait(period)
    start = bench.now()
    with step(f"{binding.meter} does not answer for {3 * period:g} s"):
        fault = bench.rig.meter_fault(binding.meter, "no_answer", seconds=3 * period)
        await bench.wait(3 * period)
        bench.rig.clear_fault(fault)
    await bench.wait(3 * period)
    end = bench.now()
    readings = await bench.management.readings(binding.point, start - period, end)
    events = await bench.management.events(point=binding.point, start=start - period, end=end)
    evidence.attach_json("readings.json", [asdict(r) for r in readings])
    faults = [r for r in readings if r.quality == "comm_fault"]
    filled = [r for r in readings if r.quality == "interpolated"]
    good = [r for r in readings if r.quality == "good" and r.value is not None]
    assert faults, f"{binding.point}: the silence left no record"
    assert filled, (
        f"{binding.point}: the gap was not filled: {sorted({r.quality for r in readings})}"
    )
    assert {round(r.t, 3) for r in filled} <= {round(r.t, 3) for r in faults}, "fills off the gap"
    low = min(r.value for r in good if r.value is not None)
    high = max(r.value for r in good if r.value is not None)
    assert all(r.value is not None and low <= r.value <= high for r in filled), "fill out of bounds"
    kinds = {e.kind for e in events}
    assert {"gap", "interpolated"} <= kinds, f"fills not logged: events {sorted(kinds)}"
    first, last = good[0], good[-1]
    increments = await bench.management.derived(binding.point, "increment", first.t, end)
    counted = sum(
        (i.value for i in increments if i.value is not None and first.t < i.end <= last.t),
        Decimal(0),
    )
    assert first.value is not None and last.value is not None
    assert counted == last.value - first.value, (
        f"{binding.point}: increments across the gap {counted}, register advanced "
        f"{last.value - first.value}"
    )


@pytest.mark.clause("CSMT §8.1.2")
@pytest.mark.requires("feature:second-check")
async def test_an_increment_over_twice_the_monthly_history_is_suspect(
    bench: Bench, evidence: TestLog
) -> None:
    """A counter jumping by more than twice its valid monthly total is marked suspect."""
    await bench.warm()
    await bench.rig.sleep_until(bench.first_midnight() + 600)
    candidates = []
    for binding in _fleet_points(bench, kind="counter"):
        if binding.acquisition != "polled":
            continue
        months = await bench.management.derived(binding.point, "month", None, bench.now())
        totals = [
            m.value
            for m in months
            if m.value is not None and m.value > 0 and m.quality in ("good", "backup")
        ]
        latest = await bench.management.latest(binding.point)
        if not totals or latest is None or latest.value is None:
            continue
        # the jump must show on the register: not past its full scale (it would wrap), so not
        # a counter whose month an earlier test's fault inflated
        scale = full_scale(bench, binding)
        if scale is None or latest.value + 4 * max(totals) < scale:
            candidates.append((binding, max(totals), latest))
    if not candidates:
        raise Inconclusive("no counter has a complete month of history yet", "CSMT §8.1.2")
    binding, month, latest = candidates[0]
    assert binding.meter is not None and binding.quantity is not None
    assert latest.value is not None
    period = _period(bench, binding)
    factor = float((latest.value + 4 * month) / latest.value) if latest.value > 0 else 1000.0
    # The spike lasts one period, from halfway between two reads: exactly one read sees it,
    # however the fault's edges fall against the terminal's schedule
    await bench.wait(-bench.now() % period + period / 2)
    start = bench.now()
    with step(f"{binding.meter} jumps by more than twice its monthly total ({month})"):
        fault = bench.rig.meter_fault(
            binding.meter, "spike", seconds=period, factor=factor, quantities=[binding.quantity]
        )
        await bench.wait(period)
        bench.rig.clear_fault(fault)
        await bench.wait(2 * period)
    readings = await bench.management.readings(binding.point, start, bench.now())
    events = await bench.management.events(point=binding.point, start=start)
    evidence.attach_json("readings.json", [asdict(r) for r in readings])
    jumped = [r for r in readings if r.value is not None and r.value > latest.value + 2 * month]
    assert jumped, "the jump never reached the terminal"
    assert all(r.quality == "suspect" for r in jumped), [r.quality for r in jumped]
    assert any(e.kind == "suspect_increment" for e in events), [e.kind for e in events]


@pytest.mark.clause("SSEA §5.2.3.3")
async def test_units_follow_the_meters(bench: Bench) -> None:
    """Every point carries the unit of the quantity its meter shows."""
    await bench.warm()
    listed = {p["id"]: p for p in await bench.management.points()}
    plant = bench.rig.fleet.plant
    wrong = []
    for binding in bench.dut.points():
        if binding.quantity is None or binding.quantity not in plant.quantities:
            continue
        unit = plant.quantity(binding.quantity).unit
        shown = listed.get(binding.point, {}).get("unit")
        if shown != unit:
            wrong.append(f"{binding.point}: unit {shown!r}, the meter's is {unit!r}")
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.clause("CSMT §8.3.2", "ISC-2 §7.2.3(2)")
@pytest.mark.requires("feature:virtual-points")
async def test_virtual_points_add_and_subtract_across_points(
    bench: Bench, evidence: TestLog
) -> None:
    """A point defined as the sum of two others, and one as their difference, equal what the
    plant used through them, window by window (``virtual_truth``)."""
    await bench.warm()
    await vt.judge_rules(
        bench,
        evidence,
        vt.adding(bench, f"{vt.PREFIX}.sum"),
        vt.subtracting(bench, f"{vt.PREFIX}.difference"),
    )

"""Processing items (ISC-2 §7.2.3(1bis)–(3bis); CSMT §8.3.1, §8.3.2 a)–d)): conversion of
what a device gives into values in the quantity's unit, statistics that add up, validation
rules applied to incoming data, and virtual points computed from others (add, subtract,
multiply, allocate).

Virtual points are made through the ``dut`` interface (``AddVirtualPoint``, removed again
with ``RemoveVirtualPoint``) and judged against the plant's ground truth (``virtual_truth``):
a terminal that cannot be given one says so (inconclusive, with its adapter's reason), one that
computes it wrongly fails."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

import pytest

from conformance.bench import Bench
from conformance.dut import PointBinding, SetRange
from conformance.evidence import TestLog, step
from conformance.suites import virtual_truth as vt
from conformance.suites.readback import judge_point
from conformance.verdicts import Inconclusive


def _counters(bench: Bench) -> list[PointBinding]:
    return [
        b
        for b in bench.points(acquisition="polled")
        if b.kind == "counter" and b.quantity is not None and bench.fleet_meter(b)
    ]


# ---- conversion and statistics ------------------------------------------------------------------


@pytest.mark.clause("ISC-2 §7.2.3(1bis)", "CSMT §8.3.1")
async def test_device_values_are_converted_and_statistics_add_up(
    bench: Bench, evidence: TestLog
) -> None:
    """What a device gives (scaled registers, BCD, text) is stored converted into the value the
    meter shows, in the quantity's unit; a counter's hour figure is the sum of its minutes."""
    first_hour = bench.t0 - bench.t0 % 3600 + 3600  # the first whole hour the terminal lives
    await bench.history(first_hour + 3600 + 300 - bench.t0)
    plant = bench.rig.fleet.plant
    listed = {p["id"]: p for p in await bench.management.points()}
    converted: list[str] = []
    problems: list[str] = []
    with step("raw forms converted into the meters' values and units"):
        for binding in bench.points(acquisition="polled"):
            if not bench.fleet_meter(binding) or binding.quantity not in plant.quantities:
                continue
            assert binding.quantity is not None
            unit = plant.quantity(binding.quantity).unit
            shown = listed.get(binding.point, {}).get("unit")
            if shown != unit:
                problems.append(f"{binding.point}: unit {shown!r}, not {unit!r}")
            found, _ = await judge_point(bench, binding)
            problems += found
            latest = await bench.management.latest(binding.point)
            if latest is not None and latest.value is not None and latest.raw != str(latest.value):
                converted.append(f"{binding.point}: raw {latest.raw!r} → {latest.value}")
    evidence.attach("converted.txt", "\n".join(converted))
    assert converted, "no point's raw form differs from its value: no conversion to judge"
    end = bench.now() - 300
    hour_end = end - end % 3600
    hour_start = hour_end - 3600
    with step("each counter's hour figure against its minute figures"):
        for binding in _counters(bench):
            hours = await bench.management.derived(binding.point, "hour", hour_start, hour_end)
            minutes = await bench.management.derived(binding.point, "minute", hour_start, hour_end)
            hour = [h for h in hours if h.start == hour_start]
            if not hour or hour[0].value is None:
                problems.append(f"{binding.point}: no hour figure for the hour at {hour_start:.0f}")
                continue
            total = sum((m.value for m in minutes if m.value is not None), Decimal(0))
            if hour[0].value != total:
                problems.append(f"{binding.point}: hour {hour[0].value} ≠ Σ minutes {total}")
    assert not problems, "\n".join(problems[:20])


# ---- validation -------------------------------------------------------------------------------


@pytest.mark.clause("ISC-2 §7.2.3(3bis)")
@pytest.mark.requires("feature:range-check")
async def test_incoming_data_are_validated(bench: Bench, evidence: TestLog) -> None:
    """Incoming values are checked against the point's validation rule (its valid range,
    CSMT §8.1.1): values outside it are not stored as good, and the terminal says so."""
    await bench.warm()
    gauges = [
        b
        for b in bench.points(acquisition="polled")
        if b.kind == "gauge" and bench.fleet_meter(b) and b.quantity is not None
    ]
    now = bench.now()
    chosen: tuple[PointBinding, Decimal] | None = None
    for binding in gauges:
        readings = await bench.management.readings(binding.point, now - 600, now)
        values = [r.value for r in readings if r.value is not None and r.value > 0]
        if values:
            chosen = (binding, min(values) / 2)
            break
    if chosen is None:
        raise Inconclusive("no gauge point with positive readings to give a range to")
    binding, high = chosen
    period = float(bench.dut.target.parameters.periods.get(binding.group, 60))
    try:
        with step(f"{binding.point} gets the range [0, {high}], below what it reads"):
            await bench.configure(SetRange(binding.point, Decimal(0), high))
            start = bench.now()
            await bench.wait(3 * period)
            end = bench.now()
    finally:
        await bench.configure(SetRange(binding.point, None, None))
        await bench.wait(2 * period)  # usable readings again for the tests that follow
    readings = await bench.management.readings(binding.point, start + 1, end)
    events = await bench.management.events(point=binding.point, start=start, end=end + 1)
    evidence.attach_json("readings.json", [asdict(r) for r in readings])
    above = [r for r in readings if r.value is not None and r.value > high]
    assert above, f"{binding.point}: no reading after the range was set"
    good = [r for r in above if r.quality == "good"]
    assert not good, f"{len(good)} readings above {high} stored as good"
    assert any(e.kind == "out_of_range" for e in events), [e.kind for e in events]


# ---- virtual points ------------------------------------------------------------------------------
# Judged against the plant, not against the terminal's own figures for the inputs
# (``virtual_truth``): window by window, what really flowed through the inputs, combined by the
# operation, within the meters' last digit (and a rate's sampling).


@pytest.mark.clause("ISC-2 §7.2.3(2bis) a)", "CSMT §8.3.2 a)")
async def test_virtual_point_adds(bench: Bench, evidence: TestLog) -> None:
    """A point defined as the sum of several branches equals what the plant used through them,
    window by window."""
    await bench.warm()
    await vt.judge_rules(bench, evidence, vt.adding(bench, f"{vt.PREFIX}.add"))


@pytest.mark.clause("ISC-2 §7.2.3(2bis) b)", "CSMT §8.3.2 b)")
async def test_virtual_point_subtracts(bench: Bench, evidence: TestLog) -> None:
    """A total minus an unrelated branch equals the plant's difference, window by window."""
    await bench.warm()
    await vt.judge_rules(bench, evidence, vt.subtracting(bench, f"{vt.PREFIX}.subtract"))


@pytest.mark.clause("ISC-2 §7.2.3(2bis) c)", "CSMT §8.3.2 c)")
async def test_virtual_point_multiplies(bench: Bench, evidence: TestLog) -> None:
    """A source computed from a typical activity times a constant equals the plant's activity
    times that constant."""
    await bench.warm()
    await vt.judge_rules(bench, evidence, vt.multiplying(bench, f"{vt.PREFIX}.multiply"))


@pytest.mark.clause("CSMT §8.3.2 d)")
async def test_virtual_point_allocates(bench: Bench, evidence: TestLog) -> None:
    """One activity split over two sources by fixed shares: each gets its share of what the
    plant used."""
    await bench.warm()
    await vt.judge_rules(bench, evidence, vt.allocating(bench, f"{vt.PREFIX}.allocate"))


@pytest.mark.clause("ISC-2 §7.2.3(2bis)")
async def test_every_required_operation(bench: Bench, evidence: TestLog) -> None:
    """At least add, subtract, multiply/divide and integrate, all at once: each result against
    the plant (the integral against the plant's rate integrated over time)."""
    await bench.warm()
    await vt.judge_rules(
        bench,
        evidence,
        vt.adding(bench, f"{vt.PREFIX}.ops.add"),
        vt.subtracting(bench, f"{vt.PREFIX}.ops.subtract"),
        vt.multiplying(bench, f"{vt.PREFIX}.ops.multiply"),
        vt.dividing(bench, f"{vt.PREFIX}.ops.divide"),
        vt.integrating(bench, f"{vt.PREFIX}.ops.integrate"),
    )

"""Processing items (ISC-2 §7.2.3(1bis)–(3bis); CSMT §8.3.1, §8.3.2 a)–d)): conversion of
what a device gives into values in the quantity's unit, statistics that add up, validation
rules applied to incoming data, and virtual points computed from others (add, subtract,
multiply, divide, allocate, integrate).

Judged from the outside: what the first centre receives (HJ 212 minute and hour figures)
against the meters' logs, the plant and the faults the bench plays on a meter. What the
terminal must be set up with is what the lab configured on it before the run, declared as test
parameters: the valid ranges (``parameters.ranges``) and the virtual points
(``parameters.virtual_points``: what each computes from which of the terminal's points, and the
data item code it is uploaded under). A target that declares none is not applicable; one that
computes a point wrongly fails (``virtual_truth``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import pytest

from conformance.bench import MINUTE_DATA, Bench, local, posix, whole_minutes
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.oracle.minutes import window_of
from conformance.suites import virtual_truth as vt
from conformance.target import MANAGEMENT_PROFILE, VirtualOperation
from conformance.verdicts import Inconclusive, NotApplicable
from protocols.hj212 import Command
from simulators.fleet.schema import (
    AnalogModule,
    Cjt188Meter,
    Dlt645Meter,
    ModbusRtuMeter,
    ModbusTcpMeter,
)
from simulators.platform import ReadingRow

HOUR_DATA = int(Command.HOUR_DATA)
#: How long the figures of a closed hour may take to reach a centre (s).
ARRIVAL_S = 900.0

# ---- conversion and statistics ------------------------------------------------------------------


def _raw_form(bench: Bench, binding: PointBinding) -> str | None:
    """How ``binding``'s meter gives its value when that is not the number itself (a binary or
    scaled register, BCD, loop-current counts); None: a number or text already."""
    assert binding.meter is not None
    meter = bench.rig.fleet.meters[binding.meter].spec
    match meter:
        case Dlt645Meter():
            return f"{meter.protocol}: BCD, each byte +33H"
        case Cjt188Meter():
            return "CJ/T 188: BCD with a unit code"
        case AnalogModule():
            return "4–20 mA as µA counts, scaled onto the transmitter's range"
        case ModbusTcpMeter() | ModbusRtuMeter():
            for r in meter.registers:
                if r.quantity == binding.quantity:
                    scaled = f" × {r.scale}" if r.scale != 1 else ""
                    return f"Modbus {r.type} ({r.word_order} word order){scaled}"
    return None


def _first_copies(rows: list[ReadingRow]) -> dict[tuple[str, float], ReadingRow]:
    """(code, window start) → the first copy that arrived."""
    out: dict[tuple[str, float], ReadingRow] = {}
    for row in sorted(rows, key=lambda r: r.frame_id):
        out.setdefault((row.code, posix(row.data_time)), row)
    return out


def _cou(row: ReadingRow | None) -> Decimal | None:
    text = None if row is None else row.fields.get("Cou")
    try:
        return None if text is None else Decimal(text)
    except InvalidOperation:
        return None


@pytest.mark.clause("ISC-2 §7.2.3(1bis)", "CSMT §8.3.1")
async def test_device_values_are_converted_and_statistics_add_up(
    bench: Bench, evidence: TestLog
) -> None:
    """What a device gives (binary and scaled registers, BCD, loop-current counts) reaches the
    centres converted into the value the meter shows: every minute figure of a whole hour is
    what the meters' logs give, digit for digit, and each counter's hour figure (CN 2061) is the
    sum of its minute figures (CN 2051). HJ 212 carries no unit; where the target declares the
    carbench management profile, each point's unit is checked there to be the quantity's."""
    await bench.warm()
    plant = bench.rig.fleet.plant
    polled = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.quantity in plant.quantities
    ]
    coded = {b.code: b for b in polled if b.code}
    raw = {b.point: form for b in coded.values() if (form := _raw_form(bench, b)) is not None}
    evidence.attach_json("raw-forms.json", raw)
    evidence.attach("not-uploaded.txt", "\n".join(b.point for b in polled if not b.code))
    assert raw, (
        "expected an uploaded point read in a raw form (a scaled register, BCD, counts); "
        f"the uploaded points of the bench's meters are {sorted(b.point for b in coded.values())}"
    )
    centre = bench.rig.centres[0].name
    hour_start = bench.now() - bench.now() % 3600 + 3600  # the next whole hour: this test's own
    hour_end = hour_start + 3600
    bench.needs(hour_end + bench.settled_after() + 2 * ARRIVAL_S - bench.now())
    problems: list[str] = []
    with step(f"every minute figure of the hour from {local(hour_start):%H:%M} at {centre}"):
        owed, result = await bench.minutes_arrive(
            centre, hour_start, hour_end, within=ARRIVAL_S, codes=set(coded)
        )
    evidence.attach("minutes.txt", f"{owed.summary()}\n{result.summary()}")
    evidence.record_measurement("minute windows owed", owed.windows)
    if not owed.windows:
        problems.append("the meters' logs owe no minute window of the hour: nothing was read")
    if not result.complete:
        problems.append(f"minute figures at {centre} are not the meters': {result.summary()}")
    counters = sorted(c for c, b in coded.items() if b.kind == "counter")

    def hours() -> dict[tuple[str, float], ReadingRow]:
        return _first_copies(bench.readings(centre, HOUR_DATA, since=hour_start, before=hour_end))

    async def all_hours() -> bool:
        return all((c, hour_start) in hours() for c in counters)

    with step(f"each counter's hour figure at {centre} against its minute figures"):
        await bench.until(all_hours, within=ARRIVAL_S, every=30)
        hour = hours()
        minutes = _first_copies(
            bench.readings(centre, MINUTE_DATA, since=hour_start, before=hour_end)
        )
        sums: dict[str, list[str]] = {}
        for code in counters:
            point = coded[code].point
            figure = _cou(hour.get((code, hour_start)))
            mine = [r for (c, _), r in minutes.items() if c == code]
            total = sum((v for r in mine if (v := _cou(r)) is not None), Decimal(0))
            sums[point] = [str(figure), str(total), f"{len(mine)} minutes"]
            if figure is None:
                problems.append(f"{point} ({code}): no hour Cou, expected Σ minutes = {total}")
            elif figure != total:
                problems.append(
                    f"{point} ({code}): hour Cou {figure}, expected Σ of its {len(mine)} minute "
                    f"Cou = {total}"
                )
    evidence.attach_json("hour-and-minutes.json", sums)
    evidence.record_measurement("hour figures judged", len(counters))
    if bench.dut.target.declares(f"feature:{MANAGEMENT_PROFILE}"):
        with step("units, read back through the management profile"):
            listed = {p["id"]: p for p in await bench.management.points()}
            for b in polled:
                assert b.quantity is not None
                unit = plant.quantity(b.quantity).unit
                shown = listed.get(b.point, {}).get("unit")
                if shown != unit:
                    problems.append(f"{b.point}: unit {shown!r}, expected the meter's {unit!r}")
    assert not problems, "\n".join(problems[:20])


# ---- validation -------------------------------------------------------------------------------


def _ranged(
    bench: Bench, ranges: Mapping[str, tuple[Decimal, Decimal]]
) -> tuple[PointBinding, Decimal, Decimal, float]:
    """A declared range on an uploaded gauge of the bench's meters whose plant value lies
    inside it now and above zero (a spike multiplies it out of the range): the point, its
    range and that value."""
    plant = bench.rig.fleet.plant
    seen: list[str] = []
    for binding in bench.points(acquisition="polled"):
        if binding.point not in ranges:
            continue
        low, high = ranges[binding.point]
        if not (bench.fleet_meter(binding) and binding.code and binding.kind == "gauge"):
            seen.append(f"{binding.point}: not an uploaded gauge of the bench's meters")
            continue
        assert binding.quantity is not None
        value = plant.value(binding.quantity, bench.now())
        if not (value > 0 and low <= Decimal(repr(value)) <= high):
            seen.append(f"{binding.point}: the plant gives {value:g}, not inside ({low}, {high}]")
            continue
        return binding, low, high, value
    raise Inconclusive(
        f"no declared range (parameters.ranges: {', '.join(ranges)}) the bench can push a "
        f"value out of: {'; '.join(seen) or 'none is one of the polled points'}"
    )


@pytest.mark.clause("ISC-2 §7.2.3(3bis)")
@pytest.mark.requires("feature:range-check")
async def test_incoming_data_are_validated(bench: Bench, evidence: TestLog) -> None:
    """Incoming values are checked against the point's validation rule (its valid range,
    CSMT §8.1.1, set before the run: ``parameters.ranges``): a minute window holding a value its
    meter gave outside the range does not reach the centre as measured data (flag N), the
    terminal flags it; windows of values inside the range still arrive flagged N."""
    ranges = bench.dut.target.parameters.ranges
    if not ranges:
        raise NotApplicable(
            "parameters.ranges declares no valid range (PIXIT): the lab sets one on a point "
            "before the run and declares it there"
        )
    await bench.warm()
    binding, low, high, value = _ranged(bench, ranges)
    assert binding.meter is not None and binding.quantity is not None and binding.code
    factor = max(2.0, math.ceil(2 * float(high) / value))
    period = bench.longest_period(binding.group, bench.now(), bench.now() + 1)
    begin = bench.now()
    with step(f"{binding.point} read as it is for {3 * period:g} s"):
        await bench.wait(3 * period)
    spiked_at = bench.now()
    with step(f"its meter shows {factor:g} × the plant, above {high}, for {3 * period:g} s"):
        await bench.fault_for(
            binding.meter, "spike", 3 * period, factor=factor, quantities=[binding.quantity]
        )
    first, end = whole_minutes(begin, bench.now() + 60)
    await bench.rig.sleep_until(end + bench.settled_after())
    centre = bench.rig.centres[0].name
    starts = [first + 60.0 * k for k in range(int((end - first) // 60))]

    def windows() -> dict[float, ReadingRow]:
        rows = bench.readings(centre, MINUTE_DATA, since=first, before=end)
        return {w: r for (c, w), r in _first_copies(rows).items() if c == binding.code}

    async def arrived() -> bool:
        return set(starts) <= set(windows())

    with step(f"its minute windows reach {centre}"):
        await bench.until(arrived, within=ARRIVAL_S, every=30)
    got = windows()
    lag = bench.tolerances.stamp_lag_s
    shown = bench.rig.shown(binding.meter, binding.quantity, begin, end)
    outside = [o for o in shown if not low <= o.value <= high]
    evidence.attach_json(
        "windows.json",
        {
            "range": [str(low), str(high)],
            "meter": [f"{local(o.t):%H:%M:%S} {o.value} {','.join(o.faults)}" for o in shown],
            "uploaded": {f"{local(w):%H:%M}": [str(r.value), r.flag] for w, r in got.items()},
        },
    )
    assert outside, (
        f"expected {binding.meter} to give the terminal values outside [{low}, {high}] under "
        f"the spike; it gave {[str(o.value) for o in shown][:10]}"
    )
    flagged = sorted({w for o in outside for w in (window_of(o.t), window_of(o.t + lag))})
    clean = [
        w
        for w in starts
        if w + 60 <= spiked_at
        and not any(w - lag <= o.t < w + 60 and (o.faults or o in outside) for o in shown)
    ]
    problems = []
    for w in flagged:
        row = got.get(w)
        when = f"{local(w):%H:%M}"
        if row is None:
            problems.append(
                f"{when}: expected a flagged window (its meter gave values outside "
                f"[{low}, {high}]), nothing arrived"
            )
        elif row.flag in ("N", None):
            problems.append(
                f"{when}: expected a flag other than N for values outside [{low}, {high}], "
                f"it arrived flagged {row.flag} with {row.fields}"
            )
    good = [w for w in clean if (r := got.get(w)) and r.flag == "N" and r.value is not None]
    if not good:
        flags = {f"{local(w):%H:%M}": getattr(got.get(w), "flag", None) for w in clean}
        problems.append(
            f"expected the windows before the spike, inside [{low}, {high}], flagged N; their "
            f"flags: {flags}"
        )
    evidence.record_measurement("flagged windows judged", len(flagged))
    assert not problems, "\n".join(problems)


# ---- virtual points ------------------------------------------------------------------------------
# The declared virtual points' uploaded minute figures, judged against the plant
# (``virtual_truth``): window by window, what really flowed through the inputs (as their meters'
# logs say the terminal read them), combined by the operation, within the meters' last digit
# (and a rate's sampling).


@pytest.mark.clause("ISC-2 §7.2.3(2bis) a)", "CSMT §8.3.2 a)")
async def test_virtual_point_adds(bench: Bench, evidence: TestLog) -> None:
    """A point defined as the sum of several branches equals what the plant used through them,
    window by window."""
    await bench.warm()
    await vt.judge_declared(bench, evidence, "add")


@pytest.mark.clause("ISC-2 §7.2.3(2bis) b)", "CSMT §8.3.2 b)")
async def test_virtual_point_subtracts(bench: Bench, evidence: TestLog) -> None:
    """A total minus an unrelated branch equals the plant's difference, window by window."""
    await bench.warm()
    await vt.judge_declared(bench, evidence, "subtract")


@pytest.mark.clause("ISC-2 §7.2.3(2bis) c)", "CSMT §8.3.2 c)")
async def test_virtual_point_multiplies(bench: Bench, evidence: TestLog) -> None:
    """A source computed from a typical activity times a constant equals the plant's activity
    times that constant."""
    await bench.warm()
    await vt.judge_declared(bench, evidence, "multiply")


@pytest.mark.clause("CSMT §8.3.2 d)")
async def test_virtual_point_allocates(bench: Bench, evidence: TestLog) -> None:
    """One activity split over sources by fixed shares: each gets its share of what the plant
    used."""
    await bench.warm()
    await vt.judge_declared(bench, evidence, "allocate")


#: The operations each clause asks a terminal to offer at least ("乘除": either will do):
#: ISC-2 §7.2.3(2bis) add, subtract, multiply/divide and integrate; CSMT §8.3.2 allocate too.
ISC_OPERATIONS: tuple[tuple[VirtualOperation, ...], ...] = (
    ("add",),
    ("subtract",),
    ("multiply", "divide"),
    ("integrate",),
)
CSMT_OPERATIONS = (*ISC_OPERATIONS, ("allocate",))


@pytest.mark.parametrize(
    "required",
    [
        pytest.param(ISC_OPERATIONS, id="ISC-2", marks=pytest.mark.clause("ISC-2 §7.2.3(2bis)")),
        pytest.param(CSMT_OPERATIONS, id="CSMT", marks=pytest.mark.clause("CSMT §8.3.2")),
    ],
)
async def test_every_required_operation(
    bench: Bench, evidence: TestLog, required: tuple[tuple[VirtualOperation, ...], ...]
) -> None:
    """Every operation the clause names, all at once: each result against the plant (the
    integral against the plant's rate integrated over time)."""
    declared = {v.operation for v in bench.dut.target.parameters.virtual_points}
    missing = [" or ".join(ops) for ops in required if not declared.intersection(ops)]
    if missing:
        raise NotApplicable(
            f"parameters.virtual_points declares no {', no '.join(missing)} point: the lab "
            "configures one of each on the terminal before the run and declares it (PIXIT)"
        )
    await bench.warm()
    await vt.judge_declared(bench, evidence, *(op for ops in required for op in ops))

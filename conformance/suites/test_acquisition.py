"""Acquisition (southbound): every declared protocol read, the kinds of sources, acquisition
periods, on-command reads, the switch to a backup device when a meter falls silent, and
damaged answers kept out of the data.

Judged on the wire where it shows: when the terminal asked each meter (the meters' logs) and
the minute (2051) and real-time (2011) data at the first centre. A minute "arrives as
measured" when it carries a value and flag N (``MEASURED``). Configuring the terminal and what
it tells its operator need the carbench management profile (or an operator).
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import asdict
from decimal import Decimal
from typing import get_args

import pytest

from conformance.bench import Bench, local, whole_minutes
from conformance.dut import PointBinding, SetPeriod
from conformance.evidence import TestLog, step
from conformance.judge import spacing
from conformance.management import ManagementRefused
from conformance.oracle.arrivals import MEASURED
from conformance.oracle.minutes import GAP_FACTOR
from conformance.suites.readback import (
    SERIAL,
    arrive,
    declared_period,
    figures,
    judge_points,
    uploaded,
)
from conformance.target import Protocol
from conformance.verdicts import Inconclusive, NotApplicable
from protocols.hj212 import Command
from simulators.platform import ReadingRow

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
MINUTE_DATA = int(Command.MINUTE_DATA)
REALTIME_DATA = int(Command.REALTIME_DATA)
#: ISC-2 §7.2.3(1): seconds without data after which the backup takes over.
SWITCH_S = 10.0
#: How far the median interval between two requests may lie from the declared period.
PERIOD_SLACK = 0.1


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
    """A group's period can be set from 1 s to 3 h, and the meters are then asked at the period
    set (their logs say when). Setting it needs the carbench management profile (else an
    operator sets it); the periods the lab set are judged on the wire by
    ``test_meters_are_read_at_the_declared_periods``."""
    management = bench.management  # not applicable without the profile: judged before waiting
    await bench.warm()
    groups = bench.dut.target.parameters.periods
    group = "network" if "network" in groups else next(iter(groups))
    original = float(groups[group])
    log = bench.rig.meter_log
    polled = [
        b
        for b in bench.points(acquisition="polled")
        if b.group == group
        and bench.fleet_meter(b)
        and b.meter
        and b.quantity
        and log.kind(b.meter) == "answered"
    ]
    if not polled:
        raise Inconclusive(f"no point of group {group!r} reads a meter that answers requests")
    point, meter, quantity = polled[0].point, polled[0].meter, polled[0].quantity
    assert meter is not None and quantity is not None
    try:
        with step(f"set group {group} to 20 s (second level) and watch {meter}"):
            await bench.configure(SetPeriod(group, 20))
            start = bench.now()
            await bench.wait(300)
            asked = [o.t for o in log.shown(meter, quantity, start + 30, bench.now())]
            asked += log.fault_times(meter, start + 30, bench.now())
            gaps = spacing(asked)
            evidence.attach_json("spacing-20s.json", gaps)
        # every request on the 20 s grid, and (a read may fail now and then) most of them
        assert len(asked) >= 11, f"{point}: {meter} asked {len(asked)} times in 270 s at 20 s"
        on_grid = [g for g in gaps if 15 <= g <= 25]
        assert len(on_grid) >= 0.8 * len(gaps), f"{point}: spacing {sorted(gaps)} at 20 s"
        assert all(g % 20 < 5 or g % 20 > 15 for g in gaps), f"{point}: off the grid {gaps}"
        with step(f"set group {group} to 3 h (the longest ISC-2 §9.1 allows)"):
            await bench.configure(SetPeriod(group, 10800))
            listed = {p["id"]: p for p in await management.points()}
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


@pytest.mark.clause("ISC-2 §9.1", "CSMT §11.2 a)")
async def test_meters_are_read_at_the_declared_periods(bench: Bench, evidence: TestLog) -> None:
    """Scheduled acquisition at the period the user set (ISC-2 §9.1), meters at minute or hour
    level (CSMT §11.2 a)). Over eight periods of the longest group the lab set (PIXIT
    ``periods``), the meters' logs show the terminal asking each meter of the bench that
    answers requests for each point, at the point's group period: the median interval within
    10 % of it, none longer than the oracle's gap (1.5 periods)."""
    await bench.warm()
    periods = bench.dut.target.parameters.periods
    log = bench.rig.meter_log
    asked: dict[tuple[str, str], PointBinding] = {}
    for b in bench.points(acquisition="polled"):
        # an offered source's log says not when it was read
        answered = bench.fleet_meter(b) and b.meter and log.kind(b.meter) == "answered"
        if answered and b.meter and b.quantity and b.group in periods:
            asked.setdefault((b.meter, b.quantity), b)
    if not asked:
        raise Inconclusive("no polled point reads a meter of the bench that answers requests")
    longest = max(float(periods[b.group]) for b in asked.values())
    start = bench.now()
    with step(f"watch the meters' logs for {8 * longest:g} s"):
        await bench.wait(8 * longest)
    end = bench.now()
    problems, seen = [], {}
    for (meter, quantity), binding in sorted(asked.items()):
        period = float(periods[binding.group])
        times = [o.t for o in log.shown(meter, quantity, start, end)]
        times = sorted(times + log.fault_times(meter, start, end))
        gaps = spacing(times)
        seen[binding.point] = {"period_s": period, "intervals_s": [round(g, 3) for g in gaps]}
        if len(gaps) < 2:
            problems.append(
                f"{binding.point}: the terminal asked {meter} {len(times)} times in "
                f"{end - start:g} s (period {period:g} s)"
            )
            continue
        typical = statistics.median(gaps)
        if abs(typical - period) > PERIOD_SLACK * period:
            problems.append(
                f"{binding.point}: asked every {typical:.1f} s, the period is {period:g} s"
            )
        if max(gaps) > GAP_FACTOR * period:
            problems.append(
                f"{binding.point}: {max(gaps):.1f} s without asking {meter} (period {period:g} s)"
            )
    evidence.attach_json("intervals.json", seen)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("ISC-2 §9.1")
@pytest.mark.requires("feature:on-command-read")
async def test_on_command_read_returns_what_the_meter_shows(bench: Bench) -> None:
    """A point read on command answers at once with the meter's value, and stores it. The
    command and the answer are the carbench management profile's (else an operator reads on
    command); the data centre's command on the wire is ``test_platform_requested_acquisition``."""
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
@pytest.mark.hil
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


@pytest.mark.clause("ISC-2 §7.2.3(1)")
@pytest.mark.requires("feature:backup-device")
async def test_silent_meter_switches_to_its_backup(bench: Bench, evidence: TestLog) -> None:
    """After 10 s or more without data the terminal switches to the backup device (ISC-2
    §7.2.3(1)). On a point the lab gave a backup before the run (PIXIT ``backups``: a point
    reading the same quantity from another meter), the bench silences the point's meter for six
    periods. From the acquisition due once 10 s have passed since the terminal's first
    unanswered request (for a counter the one after: an increment needs two reads of the
    backup), every minute of the point reaches the first centre measured (flag N), its figure
    within what the backup meter answered then; the minutes before are what the meter gave.
    Telling the operator is judged by ``test_the_operator_is_told_of_a_silent_meter``."""
    primary, backup = _declared_backup(bench)
    assert primary.meter and backup.meter and backup.quantity and primary.code
    await bench.warm()
    log = bench.rig.meter_log
    period = declared_period(bench, primary)
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(2 * period)
    silenced = bench.now()
    with step(f"{primary.meter} stops answering for {6 * period:g} s"):
        await bench.fault_for(primary.meter, "no_answer", 6 * period)
    resumed = bench.now()
    with step(f"the minute data at {centre} before the silence"):
        owed, result = await bench.minutes_arrive(
            centre, start, silenced, within=900, codes={primary.code}
        )
    evidence.attach("check.txt", f"{owed.summary()}\n{result.summary()}")
    assert owed.windows, "the meters' logs owe no minute window: the terminal read nothing"
    assert result.complete, f"the minutes before the silence: {result.summary()}"
    unanswered = log.fault_times(primary.meter, silenced, resumed)
    assert unanswered, f"the terminal did not ask {primary.meter} in the {6 * period:g} s"
    reads = 2 if primary.kind == "counter" else 1
    due, last = whole_minutes(unanswered[0] + SWITCH_S + reads * period, resumed)
    judged = [float(w) for w in range(int(due), int(last), 60)]
    if not judged:
        raise Inconclusive(f"no whole minute on the backup in {6 * period:g} s", "ISC-2 §7.2.3(1)")
    await arrive(bench, centre, primary.code, judged)
    minutes = uploaded(bench, centre, primary.code, judged[0], judged[-1] + 60)
    evidence.attach_json(
        "uploaded.json", {str(local(w)): dict(r.fields) for w, r in minutes.items()}
    )
    problems = [_not_from_backup(bench, minutes.get(w), w, primary, backup) for w in judged]
    evidence.record_measurement(
        "back_on_primary_s", await _back_on_primary(bench, primary, resumed)
    )
    assert not any(problems), (
        f"{primary.point} on its backup {backup.point} after {primary.meter} fell silent at "
        f"{local(silenced):%H:%M:%S}:\n" + "\n".join(p for p in problems if p)
    )


def _declared_backup(bench: Bench) -> tuple[PointBinding, PointBinding]:
    """The first declared backup pair (PIXIT ``backups``) of an uploaded polled point and a
    point reading the same quantity from another meter of the bench."""
    backups = bench.dut.target.parameters.backups
    if not backups:
        raise NotApplicable(
            "the target declares no backup device set on a point (PIXIT parameters.backups)",
            "ISC-2 §7.2.3(1)",
        )
    by_point = {b.point: b for b in bench.dut.points()}
    for point, other in backups.items():
        primary, backup = by_point.get(point), by_point.get(other)
        if (
            primary is not None
            and backup is not None
            and primary.code
            and primary.acquisition == "polled"
            and bench.fleet_meter(primary)
            and bench.fleet_meter(backup)
            and primary.meter != backup.meter
            and primary.quantity is not None
            and primary.quantity == backup.quantity
        ):
            return primary, backup
    raise Inconclusive(
        f"no pair of parameters.backups ({backups}) is an uploaded polled point and a point "
        "reading its quantity from another meter of the bench",
        "ISC-2 §7.2.3(1)",
    )


def _not_from_backup(
    bench: Bench, row: ReadingRow | None, w: float, primary: PointBinding, backup: PointBinding
) -> str:
    """What is wrong with the minute ``row`` of ``primary`` for ``w``, read from ``backup``:
    not sent, not measured, or a figure the backup meter's answers do not bound (a gauge's mean
    within what it answered in the minute; a counter's increment within what it advanced over
    the minute and the two reads either side)."""
    assert backup.meter is not None and backup.quantity is not None
    when = f"{local(w):%H:%M}"
    if row is None:
        return f"{when}: not sent"
    value = figures(row).get(primary.minute_field)
    if value is None or row.flag not in MEASURED:
        return f"{when}: not measured ({primary.minute_field}={value}, flag {row.flag})"
    lag = bench.tolerances.stamp_lag_s
    reach = lag if primary.kind == "gauge" else 2 * declared_period(bench, primary) + lag
    given = [
        o.value for o in bench.rig.shown(backup.meter, backup.quantity, w - reach, w + 60 + reach)
    ]
    if not given:
        return f"{when}: {primary.minute_field}={value}, but {backup.meter} was not asked then"
    low, high = (
        (min(given), max(given))
        if primary.kind == "gauge"
        else (Decimal(0), max(given) - min(given))
    )
    if not low <= value <= high:
        return f"{when}: {primary.minute_field}={value}, {backup.meter} gave {low}..{high}"
    return ""


@pytest.mark.clause("ISC-2 §7.2.3(1)", "ISC-2 §7.2.6")
async def test_the_operator_is_told_of_a_silent_meter(bench: Bench, evidence: TestLog) -> None:
    """A missing data segment is recorded and, after 10 s or more without data, the operator is
    told to check (ISC-2 §7.2.3(1); an alarm on an acquisition fault, ISC-2 §7.2.6). What the
    terminal records and tells its operator shows at its management interface only: read
    through the carbench management profile, else an operator judges it (not applicable)."""
    management = bench.management
    await bench.warm()
    binding = _silenceable(bench)
    assert binding.meter is not None
    period = declared_period(bench, binding)
    start = bench.now()
    with step(f"{binding.meter} stops answering for {4 * period:g} s"):
        await bench.fault_for(binding.meter, "no_answer", 4 * period)
    await _back_on_primary(bench, binding, bench.now())
    events = await management.events(point=binding.point, start=start - 1)
    evidence.attach_json("events.json", [asdict(e) for e in events])
    kinds = [e.kind for e in events]
    unanswered = bench.rig.meter_log.fault_times(binding.meter, start, bench.now())
    assert unanswered, f"the terminal did not ask {binding.meter} while it was silent"
    assert "gap" in kinds, f"no missing segment recorded for {binding.point}: events {kinds}"
    told = [e.t for e in events if e.kind == "notification"]
    assert told, f"the operator was not told of {binding.point}: events {kinds}"
    late = min(told) - unanswered[0]
    assert late <= SWITCH_S + period, (
        f"the operator was told {late:.0f} s after the first unanswered request (10 s, and the "
        f"next acquisition of a {period:g} s period, allowed)"
    )


async def _back_on_primary(bench: Bench, binding: PointBinding, since: float) -> float:
    """Wait (up to 15 periods) until the terminal asks ``binding``'s meter again after
    ``since``: a terminal may stay on a backup a while (the clause does not say how long), and
    the tests after this one judge the point by its own meter. Seconds it took (-1: never)."""
    assert binding.meter is not None and binding.quantity is not None
    meter, quantity = binding.meter, binding.quantity

    async def asked() -> bool:
        return bench.rig.meter_log.answered_since(meter, quantity, since)

    back = await bench.until(asked, within=15 * declared_period(bench, binding), every=10)
    return bench.now() - since if back else -1.0


def _silenceable(bench: Bench) -> PointBinding:
    """The primary of a declared backup pair, else the last polled point on a serial bus."""
    if bench.dut.target.parameters.backups:
        with contextlib.suppress(Inconclusive):
            return _declared_backup(bench)[0]
    serial = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.protocol in SERIAL
    ]
    if not serial:
        raise Inconclusive("no point read from a serial meter of the bench to silence")
    return serial[-1]


@pytest.mark.clause("ISC-2 §9.3 c)", "ISC-2 §7.2.3(1)")
async def test_garbled_answers_never_reach_the_centres(bench: Bench, evidence: TestLog) -> None:
    """A damaged answer never becomes data (ISC-2 §9.3: collected values equal the meter's;
    §7.2.3(1): what could not be read is a missing segment). The bench makes a serial meter
    answer garbled frames for four periods. At the first centre every minute of its points
    that arrives as measured (flag N) has figures its answers bound — a gauge's Min and Max are
    values it gave in that minute and its mean lies between; a counter's figures within what it
    advanced over the minute and two reads either side — every real-time value is one it gave,
    and the minutes around the fault are what it gave."""
    await bench.warm()
    serial = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.protocol in SERIAL and b.code and b.quantity
    ]
    if not serial:
        raise Inconclusive("no uploaded point read from a serial meter of the bench", "ISC-2 §9.3")
    # Modbus RTU first: its CRC-16 catches every damage the fault plays, DL/T 645's sum not
    meter = min(serial, key=lambda b: b.protocol != "modbus-rtu").meter
    assert meter is not None
    points = [b for b in serial if b.meter == meter]
    period = max(declared_period(bench, b) for b in points)
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(period)
    garbled = bench.now()
    with step(f"{meter} answers garbled frames for {4 * period:g} s"):
        await bench.fault_for(meter, "garbled", 4 * period)
    await bench.wait(2 * period)
    end = bench.now()
    codes = {b.code for b in points if b.code}
    with step(f"the minute data of {len(points)} points at {centre}"):
        owed, result = await bench.minutes_arrive(centre, start, end, within=900, codes=codes)
    evidence.attach("check.txt", f"{owed.summary()}\n{result.summary()}")
    assert owed.windows, "the meters' logs owe no minute window: the terminal read nothing"
    assert result.complete, f"the minutes around the fault: {result.summary()}"
    damaged = bench.rig.meter_log.fault_times(meter, garbled, end)
    assert damaged, f"the terminal did not ask {meter} in the {4 * period:g} s it garbled"
    problems = []
    for binding in points:
        assert binding.code is not None
        for cn in (MINUTE_DATA, REALTIME_DATA):
            for t, row in uploaded(bench, centre, binding.code, start, end, cn=cn).items():
                problem = _unbound(bench, binding, row, t)
                if problem:
                    problems.append(f"{binding.point} {cn} {local(t):%H:%M:%S}: {problem}")
    assert not problems, "values its meter never gave arrived as measured:\n" + "\n".join(
        problems[:10]
    )


def _unbound(bench: Bench, binding: PointBinding, row: ReadingRow, t: float) -> str:
    """Why the measured figures of ``row`` (CN 2051 or 2011 at ``t``) are not values the
    meter's answers bound ("" when they are, or when the row does not claim to be measured)."""
    assert binding.meter is not None and binding.quantity is not None
    if row.flag not in MEASURED:
        return ""
    numbers = figures(row)
    lag = bench.tolerances.stamp_lag_s
    shown = bench.rig.shown
    if row.cn == REALTIME_DATA:  # the latest reading at its time (see test_accuracy)
        interval = float(bench.dut.target.parameters.realtime_interval_s)
        given = {o.value for o in shown(binding.meter, binding.quantity, t - interval - 60, t + 1)}
        rtd = numbers.get("Rtd")
        return "" if rtd is None or rtd in given else f"Rtd={rtd}"
    if binding.kind == "gauge":
        values = {o.value for o in shown(binding.meter, binding.quantity, t - lag, t + 60 + lag)}
        if not values:
            return f"{numbers}, the meter gave nothing in that minute"
        wrong = [
            f"{n}={v}"
            for n in ("Min", "Max")
            if (v := numbers.get(n)) is not None and v not in values
        ]
        mean = numbers.get("Avg")
        if mean is not None and not min(values) <= mean <= max(values):
            wrong.append(f"Avg={mean}")
        return ", ".join(wrong)
    reach = 2 * declared_period(bench, binding) + lag
    given_ = [o.value for o in shown(binding.meter, binding.quantity, t - reach, t + 60 + reach)]
    advance = max(given_) - min(given_) if given_ else Decimal(0)
    wrong = [f"{n}={v}" for n, v in numbers.items() if not 0 <= v <= advance]
    return ", ".join(wrong) + (f" (the meter advanced {advance})" if wrong else "")

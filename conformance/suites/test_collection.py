"""Collection (CSMT §6.2, §11.2 a)–c), §11.3 a)–d)): manual collection of what cannot be
acquired online, acquisition periods at minute and hour level for meters and third-party
systems, manual data at least monthly, and each family of data access the standard names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import pytest

from conformance.bench import Bench, local, posix
from conformance.dut import PointBinding, SetPeriod
from conformance.evidence import TestLog, step
from conformance.judge import spacing
from conformance.suites.readback import entered, judge_points, plant_text
from conformance.verdicts import Inconclusive

#: CSMT §11.3 a): field meters; b): collectors; c): plant systems (the fleet's historian for
#: ODBC/SQL, its analog input module for 4–20 mA).
METER_PROTOCOLS = {
    "Modbus RTU": ("modbus-rtu",),
    "DL/T 645": ("dlt645-2007", "dlt645-1997"),
    "CJ/T 188": ("cjt188",),
}
COLLECTOR_PROTOCOLS = {"Modbus TCP": ("modbus-tcp",), "MQTT": ("mqtt",), "HTTPS": ("https",)}
SYSTEM_PROTOCOLS = {
    "Modbus TCP": ("modbus-tcp",),
    "OPC": ("opcua", "opc-da"),
    "MQTT": ("mqtt",),
    "ODBC": ("sql",),
    "4–20 mA": ("analog",),
}
#: Third-party systems: plant systems and collectors the terminal reads (not field meters).
THIRD_PARTY = ("opcua", "opc-da", "https", "mqtt", "sql")
FIELD_METERS = ("modbus-rtu", "dlt645-2007", "dlt645-1997", "cjt188")
HOUR = 3600.0
MINUTE = 60.0


async def _judge_access(
    bench: Bench, evidence: TestLog, families: Mapping[str, tuple[str, ...]], clause: str
) -> None:
    """Each family is declared and its points read as their meters showed."""
    declared = set(bench.dut.target.implementation.protocols)
    problems: list[str] = []
    judged: dict[str, list[str]] = {}
    points: list[PointBinding] = []
    for family, protocols in families.items():
        if not declared & set(protocols):
            problems.append(f"{family}: not declared ({', '.join(protocols)})")
            continue
        read = [b for b in bench.dut.points() if b.protocol in protocols and bench.fleet_meter(b)]
        if not read:
            raise Inconclusive(f"{family}: no meter of the bench's fleet is read over it", clause)
        judged[family] = [b.point for b in read]
        points += read
    with step(f"compare the minute data of {len(points)} points with their meters' logs"):
        problems += (await judge_points(bench, points))[0]
    evidence.attach_json("judged.json", judged)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("CSMT §11.3 a)")
async def test_field_meter_protocols(bench: Bench, evidence: TestLog) -> None:
    """Field meters over Modbus RTU, DL/T 645 and CJ/T 188 are read as they show."""
    await bench.warm()
    await _judge_access(bench, evidence, METER_PROTOCOLS, "CSMT §11.3 a)")


@pytest.mark.clause("CSMT §11.3 b)")
async def test_collector_protocols(bench: Bench, evidence: TestLog) -> None:
    """Collectors over Modbus TCP, MQTT and HTTPS are read as they show."""
    await bench.warm()
    await _judge_access(bench, evidence, COLLECTOR_PROTOCOLS, "CSMT §11.3 b)")


@pytest.mark.clause("CSMT §11.3 c)")
async def test_plant_system_interfaces(bench: Bench, evidence: TestLog) -> None:
    """Plant systems (CEMS, DCS, energy systems, historians) over Modbus TCP, OPC, MQTT,
    ODBC and 4–20 mA are read as they show."""
    await bench.warm()
    await _judge_access(bench, evidence, SYSTEM_PROTOCOLS, "CSMT §11.3 c)")


def _watched(bench: Bench, protocols: tuple[str, ...]) -> PointBinding:
    polled = [
        b
        for b in bench.points(acquisition="polled")
        if b.protocol in protocols and bench.fleet_meter(b)
    ]
    if not polled:
        raise Inconclusive(f"no polled point over {', '.join(protocols)} to watch")
    return polled[0]


async def _follows_period(
    bench: Bench, evidence: TestLog, binding: PointBinding, seconds: float, label: str
) -> list[float]:
    """Set ``binding``'s group to ``seconds`` and watch one period and ten minutes (two and
    five minutes at the minute level): the readings come at that spacing, no more often."""
    watch = max(seconds, 240.0) + 600.0
    with step(f"{label}: group {binding.group} to {seconds:g} s, watch {binding.point}"):
        await bench.configure(SetPeriod(binding.group, seconds))
        start = bench.now()
        await bench.wait(watch)
        readings = await bench.management.readings(
            binding.point, start + min(90.0, seconds / 2), bench.now()
        )
    gaps = spacing([r.t for r in readings])
    evidence.attach_json(f"spacing-{seconds:g}s.json", gaps)
    most = int(watch // seconds) + 1
    assert 1 <= len(readings) <= most, (
        f"{binding.point}: {len(readings)} readings in {watch:g} s with the period at "
        f"{seconds:g} s (expected 1 to {most})"
    )
    assert seconds >= HOUR or len(readings) >= 2, f"{binding.point}: {len(readings)} readings"
    # a read may fail now and then (a missed slot: twice the period), never off the grid
    slack = max(10.0, seconds * 0.03)
    off = [g for g in gaps if abs(g - seconds * max(1, round(g / seconds))) > slack]
    assert not off, f"{binding.point}: spacing {sorted(gaps)} with the period at {seconds:g} s"
    single = [g for g in gaps if abs(g - seconds) <= slack]
    assert len(single) >= 0.8 * len(gaps), f"{binding.point}: slots missed: {sorted(gaps)}"
    return gaps


async def _minute_and_hour(
    bench: Bench, evidence: TestLog, protocols: tuple[str, ...], who: str
) -> None:
    await bench.warm()
    binding = _watched(bench, protocols)
    original = float(bench.dut.target.parameters.periods.get(binding.group, MINUTE))
    try:
        await _follows_period(bench, evidence, binding, MINUTE, f"{who}, minute level")
        await _follows_period(bench, evidence, binding, HOUR, f"{who}, hour level")
    finally:
        await bench.configure(SetPeriod(binding.group, original))
        await bench.wait(3 * original)  # fresh readings for the tests that follow


@pytest.mark.clause("CSMT §11.2 a)")
async def test_meter_periods_at_minute_and_hour_level(bench: Bench, evidence: TestLog) -> None:
    """A field meter's acquisition period can be set to one minute and to one hour, and the
    readings follow it."""
    await _minute_and_hour(bench, evidence, FIELD_METERS, "field meters")


@pytest.mark.clause("CSMT §11.2 b)")
async def test_third_party_periods_at_minute_and_hour_level(
    bench: Bench, evidence: TestLog
) -> None:
    """A third-party system's (DCS, energy-management system, collector) acquisition period
    can be set to one minute and to one hour, and the readings follow it."""
    await _minute_and_hour(bench, evidence, THIRD_PARTY, "third-party systems")


def _manual(bench: Bench) -> PointBinding:
    manual = bench.points(acquisition="manual")
    if not manual:
        raise Inconclusive("the terminal has no manual point")
    return manual[0]


def _source_name(bench: Bench, binding: PointBinding) -> str:
    """The name the fleet gives a manual point (what a manual-entry file calls it)."""
    for meter in bench.rig.fleet.spec.meters:
        if meter.id != binding.meter:
            continue
        for point in getattr(meter, "points", []):
            if getattr(point, "quantity", None) == binding.quantity:
                return str(point.name)
    raise Inconclusive(f"the fleet does not name {binding.point}'s source")


@pytest.mark.clause("CSMT §11.2 c)")
@pytest.mark.requires("feature:manual-entry")
async def test_manual_data_at_least_monthly(bench: Bench, evidence: TestLog) -> None:
    """Manual data are taken for a calendar month (a month's figure, imported as a file) and
    more often too (values typed in the same day). The month is the first the terminal lives
    to the end of (the plant's figure is known from its start); under the virtual clock the
    run starts half an hour before one ends."""
    await bench.warm()
    binding = _manual(bench)
    month_end = bench.first_month_end()
    typed_from = month_end + 60  # values typed in after the month's figure, not before it
    bench.needs(typed_from + 600 - bench.now(), ("CSMT §11.2 c)",))
    await bench.rig.sleep_until(typed_from + 600)
    now = bench.now()
    month_start = local(month_end)  # the day after the month imported
    previous = (month_start - timedelta(days=1)).replace(day=1)
    iso = "%Y-%m-%dT%H:%M:%S+08:00"
    month_value = plant_text(bench, binding, posix(month_start))
    row = [
        previous.strftime(iso),
        month_start.strftime(iso),
        _source_name(bench, binding),
        binding.quantity or "",
        month_value,
        binding.unit,
        "carbench",
        "conformance: a month's weighbridge tickets",
    ]
    body = "period_start,period_end,point,quantity,value,unit,entered_by,source\n" + ",".join(row)
    with step(f"import {previous:%Y-%m}'s figure for {binding.point}"):
        response = await bench.management.request(
            "POST", "/manual/csv", content=body.encode(), headers={"Content-Type": "text/csv"}
        )
    evidence.attach("import.csv", body, "text/csv")
    evidence.attach("import-answer.json", response.text, "application/json")
    assert response.status_code < 300, f"a month's figure was refused: {response.status_code}"
    answer = response.json()
    assert answer.get("accepted") and not answer.get("rejected"), answer
    end = posix(month_start)
    stored = await bench.management.readings(binding.point, end - 1, end + 1)
    assert any(r.value == Decimal(month_value) for r in stored), (
        f"{binding.point}: the month's figure is not stored at its period's end: "
        f"{[asdict(r) for r in stored]}"
    )
    problems = []
    with step("two values typed in ten minutes apart, the same day"):
        for t in (now - 600, now):
            value = plant_text(bench, binding, t)
            await bench.management.enter_manual(binding.point, value, t, "carbench")
            problems += await entered(bench, binding, value, t)
    assert not problems, "; ".join(problems)


@pytest.mark.clause("CSMT §11.3 d)")
@pytest.mark.requires("feature:manual-entry")
async def test_manual_entry_for_what_is_not_online(bench: Bench, evidence: TestLog) -> None:
    """A value typed in for a point with no online acquisition is stored as typed, flagged
    manual, with its digits."""
    await bench.warm()
    binding = _manual(bench)
    t = bench.now()
    value = plant_text(bench, binding, t)
    with step(f"type {value} for {binding.point}"):
        await bench.management.enter_manual(binding.point, value, t, "carbench")
    stored = await bench.management.readings(binding.point, t - 1, t + 1)
    evidence.attach_json("stored.json", [asdict(r) for r in stored])
    problems = await entered(bench, binding, value, t)
    assert not problems, "; ".join(problems)
    digits = [r.digits for r in stored if str(r.value) == value]
    assert binding.decimals in digits, f"{binding.point}: digits {digits}, typed {value}"


@pytest.mark.clause("CSMT §6.2")
@pytest.mark.requires("feature:manual-entry")
async def test_manual_collection_of_activity_data(bench: Bench) -> None:
    """Every activity of the plant that no meter reads online can be collected by hand: it has a
    manual point, and the plant's figure entered there is stored as entered."""
    await bench.warm()
    online = {
        b.quantity.split(".")[0]
        for b in bench.dut.points()
        if b.quantity is not None and b.acquisition != "manual"
    }
    offline = [s for s in bench.rig.fleet.spec.plant.sources if s.activity and s.id not in online]
    if not offline:
        raise Inconclusive("every activity of the fleet's plant is read online", "CSMT §6.2")
    now = bench.now()
    problems = []
    for source in offline:
        manual = [
            b
            for b in bench.points(acquisition="manual")
            if b.quantity is not None and b.quantity.split(".")[0] == source.id
        ]
        if not manual:
            problems.append(f"{source.id} ({source.activity}): no manual point")
            continue
        binding = manual[0]
        truth = plant_text(bench, binding, now)
        await bench.management.enter_manual(binding.point, truth, now, "carbench")
        problems += await entered(bench, binding, truth, now)
    assert not problems, "; ".join(problems)

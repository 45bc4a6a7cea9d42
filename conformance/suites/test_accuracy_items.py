"""Accuracy, item by item (ISC-2 §9.3 a)–c), ISC-2 §7.3.1, CSMT §12.3.2): values equal the
connected systems' and the field meters', with their significant digits; the list of activity
data sources; automatically collected data timely and true to the plant.

Judged on the wire: what the first centre received against the meters' own logs
(``readback``); only the list of sources needs the carbench management profile."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.bench import Bench, posix
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.oracle.minutes import GAP_FACTOR
from conformance.suites.readback import WINDOW_S, judge_points, uploaded_values
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command

FIELD_METERS = ("modbus-rtu", "modbus-tcp", "dlt645-2007", "dlt645-1997", "cjt188")
SYSTEMS = ("opcua", "opc-da", "mqtt", "https", "sql")
#: ISC-2 §7.3.1: what the list of activity data sources gives for each meter (names the
#: carbench profile's ``/points`` or ``/config`` devices may use for each).
SOURCE_LIST_FIELDS = {
    "name and model": ("model",),
    "location": ("location", "installed_at"),
    "measurement frequency": ("period_s",),
    "accuracy": ("accuracy", "accuracy_class"),
    "calibration interval": ("calibration_interval_days", "calibration_interval"),
    "related activity data": ("activity", "source_id", "emission_source"),
}


def _of(bench: Bench, protocols: tuple[str, ...]) -> list[PointBinding]:
    return [b for b in bench.coded() if b.protocol in protocols and bench.fleet_meter(b)]


async def _equal_to_their_sources(
    bench: Bench, evidence: TestLog, protocols: tuple[str, ...], what: str
) -> None:
    """Every value of the points read over ``protocols`` that reached the first centre is one
    their source's log shows, and their minute figures are what its answers owe."""
    points = _of(bench, protocols)
    if not points:
        raise Inconclusive(f"the terminal uploads no point of a {what} of the fleet")
    with step(f"{len(points)} points of {what}s, uploaded values against their logs"):
        values = await uploaded_values(bench, points)
        wrong = [str(v) for v in values if not v.equal()]
    evidence.record_measurement("values", len(values))
    assert values, f"no value of a {what} reached the first centre"
    assert not wrong, f"{len(wrong)} of {len(values)}:\n" + "\n".join(wrong[:10])
    with step(f"their minute figures against what the {what}s' logs owe"):
        problems, judged = await judge_points(bench, points)
    evidence.attach_json("windows.json", judged)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("ISC-2 §9.3 a)")
async def test_values_equal_the_connected_systems(bench: Bench, evidence: TestLog) -> None:
    """Values taken from connected systems (DCS, collectors, energy-management system) equal
    what those systems gave: each value uploaded for them is one the system's log shows, and
    their minute figures are what the system's values owe."""
    await _equal_to_their_sources(bench, evidence, SYSTEMS, "connected system")


@pytest.mark.clause("ISC-2 §9.3 b)")
async def test_values_keep_the_meters_significant_digits(bench: Bench, evidence: TestLog) -> None:
    """Each uploaded value has the digits the meter showed (12.50 stays 12.50, not 12.5)."""
    with step("uploaded values of every point of the fleet, digit for digit"):
        values = await uploaded_values(bench, _of(bench, FIELD_METERS + SYSTEMS))
    # a value the meter never showed is ISC-2 §9.3 a)/c)'s business; here only the digits
    compared = [v for v in values if v.equal()]
    wrong = [str(v) for v in compared if not v.as_shown()]
    evidence.record_measurement("compared", len(compared))
    assert compared, (
        f"no uploaded value equal to a meter's to compare digits with ({len(values)} values)"
    )
    assert not wrong, f"{len(wrong)} of {len(compared)}:\n" + "\n".join(wrong[:10])


@pytest.mark.clause("ISC-2 §9.3 c)")
async def test_values_equal_the_field_meters_readings(bench: Bench, evidence: TestLog) -> None:
    """Values read from field meters equal the meters' actual readings: each value uploaded for
    them is one the meter's log shows, and their minute figures are what its answers owe."""
    await _equal_to_their_sources(bench, evidence, FIELD_METERS, "field meter")


@pytest.mark.clause("ISC-2 §7.3.1")
async def test_activity_data_sources_are_listed(bench: Bench, evidence: TestLog) -> None:
    """The terminal lists its activity data sources with each meter's name and model,
    location, measurement frequency, accuracy, calibration interval and related activity."""
    await bench.warm()
    listed = {p["id"]: p for p in await bench.management.points()}
    config = await bench.management.config()
    devices: dict[str, dict[str, Any]] = {
        str(d.get("id")): d for d in config.get("devices", []) if isinstance(d, dict)
    }
    evidence.attach_json("points.json", listed)
    missing: dict[str, list[str]] = {}
    for binding in bench.points():
        if binding.acquisition == "manual":
            continue
        entry = dict(devices.get(binding.meter or "", {}))
        entry.update(listed.get(binding.point, {}))
        absent = [
            field
            for field, names in SOURCE_LIST_FIELDS.items()
            if not any(entry.get(n) not in (None, "") for n in names)
        ]
        if absent:
            missing[binding.point] = absent
    evidence.attach_json("missing.json", missing)
    fields = sorted({f for absent in missing.values() for f in absent})
    assert not missing, (
        f"{len(missing)} points lack in the source list (/points, /config devices): "
        f"{', '.join(fields)}"
    )


@pytest.mark.clause("CSMT §12.3.2")
async def test_collected_data_are_timely_and_true(bench: Bench, evidence: TestLog) -> None:
    """Automatically collected data reflect the plant as it runs: every minute window of every
    polled point that its meter's log owes reaches the first centre with the figure the meter's
    answers give (true), and no later after the read that settles it (one and a half periods
    after the window ends) than the target's ``tolerances.upload_lag_s`` (timely)."""
    points = [b for b in bench.coded() if b.acquisition == "polled" and bench.fleet_meter(b)]
    if not points:
        raise Inconclusive("the terminal uploads no polled point of the fleet")
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(WINDOW_S)
    by_code = {b.code: b for b in points if b.code is not None}
    with step(f"{len(points)} polled points' minute windows at {centre}"):
        owed, result = await bench.minutes_arrive(
            centre, start, bench.now(), within=900, codes=set(by_code)
        )
    assert owed.windows, "the meters' logs owe no minute window: nothing was read"
    assert result.complete, f"at {centre}: {result.summary()}"
    first: dict[tuple[str, float], float] = {}
    for row in bench.readings(centre, int(Command.MINUTE_DATA), since=start):
        key = (row.code, posix(row.data_time))
        first[key] = min(first.get(key, row.at), row.at)
    late = []
    lags = []
    for code, windows in owed.points.items():
        binding = by_code[code]
        period = bench.longest_period(binding.group, start, bench.now())
        limit = GAP_FACTOR * period + bench.tolerances.stamp_lag_s + bench.tolerances.upload_lag_s
        for w in windows.owed:
            lag = first[(code, w)] - (w + 60)
            lags.append(lag)
            if lag > limit:
                late.append(f"{binding.point} {w:.0f}: {lag:.0f} s after its end (> {limit:.0f})")
    evidence.record_measurement("windows", len(lags))
    evidence.record_measurement("worst_lag_s", max(lags))
    assert not late, f"{len(late)} of {len(lags)} windows late:\n" + "\n".join(late[:10])

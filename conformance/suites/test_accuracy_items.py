"""Accuracy, item by item (ISC-2 §9.3 a)–c), ISC-2 §7.3.1, CSMT §12.3.2): values equal the
connected systems' and the field meters', with their significant digits; the list of activity
data sources; automatically collected data timely and true to the plant.

``test_accuracy.py`` judges the heading ``ISC-2 §9.3`` as a whole; these tests name its items."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from conformance.bench import Bench
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.judge import ANSWER_AFTER_S, ANSWER_BEFORE_S, digits, matching_answer
from conformance.management import StoredReading
from conformance.suites.readback import USABLE
from simulators.fleet import Observation

WINDOW_S = 1800.0
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


def _near(reading: StoredReading, shown: list[Observation]) -> list[Observation]:
    return [o for o in shown if reading.t - ANSWER_BEFORE_S <= o.t <= reading.t + ANSWER_AFTER_S]


async def _window(
    bench: Bench, protocols: tuple[str, ...]
) -> list[tuple[PointBinding, StoredReading, list[Observation]]]:
    """Usable readings of the last half hour of points read over ``protocols``, each with what
    its meter (or system) showed around it."""
    await bench.history(WINDOW_S)
    end = bench.now()
    start = end - WINDOW_S
    out = []
    for binding in bench.points():
        if binding.protocol not in protocols or not bench.fleet_meter(binding):
            continue
        assert binding.meter is not None and binding.quantity is not None
        shown = bench.rig.shown(binding.meter, binding.quantity, start - 60, end + 10)
        for r in await bench.management.readings(binding.point, start, end):
            if r.quality in USABLE and r.value is not None:
                out.append((binding, r, _near(r, shown)))
    return out


def _equal_values(
    judged: list[tuple[PointBinding, StoredReading, list[Observation]]],
) -> list[str]:
    wrong = []
    for binding, r, near in judged:
        if not any(o.value == r.value for o in near):
            shown = sorted({str(o.value) for o in near})[:4]
            wrong.append(f"{binding.point} @ {r.t:.0f}: {r.value}, shown {shown}")
    return wrong


@pytest.mark.clause("ISC-2 §9.3 a)")
async def test_values_equal_the_connected_systems(bench: Bench, evidence: TestLog) -> None:
    """Values taken from connected systems (DCS, collectors, energy-management system) equal
    what those systems gave."""
    judged = await _window(bench, SYSTEMS)
    evidence.record_measurement("readings", len(judged))
    assert judged, "no reading of a connected system in the window"
    wrong = _equal_values(judged)
    assert not wrong, f"{len(wrong)} of {len(judged)}:\n" + "\n".join(wrong[:10])


@pytest.mark.clause("ISC-2 §9.3 b)")
async def test_values_keep_the_meters_significant_digits(bench: Bench, evidence: TestLog) -> None:
    """Each stored value has the digits the meter showed (12.50 stays 12.50, not 12.5)."""
    judged = await _window(bench, FIELD_METERS + SYSTEMS)
    assert judged, "no reading in the window"
    wrong = []
    compared = 0
    for binding, r, near in judged:
        assert r.value is not None
        same = [o for o in near if o.value == r.value]
        if not same:
            continue  # a value the meter never showed: ISC-2 §9.3 c)'s business
        compared += 1
        want = {digits(o.value) for o in same}
        if digits(r.value) not in want or r.digits not in want:
            wrong.append(
                f"{binding.point} @ {r.t:.0f}: {r.value} (digits {r.digits}), meter "
                f"{[str(o.value) for o in same][:2]}"
            )
    evidence.record_measurement("compared", compared)
    assert compared, "no stored value equal to a meter's to compare digits with"
    assert not wrong, f"{len(wrong)} of {compared}:\n" + "\n".join(wrong[:10])


@pytest.mark.clause("ISC-2 §9.3 c)")
async def test_values_equal_the_field_meters_readings(bench: Bench, evidence: TestLog) -> None:
    """Values read from field meters equal the meters' actual readings."""
    judged = await _window(bench, FIELD_METERS)
    evidence.record_measurement("readings", len(judged))
    assert judged, "no reading of a field meter in the window"
    wrong = _equal_values(judged)
    assert not wrong, f"{len(wrong)} of {len(judged)}:\n" + "\n".join(wrong[:10])


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
    """Automatically collected data reflect the real plant: every polled point's latest reading
    is at most two periods old, and what each counter counted over the last half hour is what
    the plant really used between the meter's two answers (within two of its last digit)."""
    await bench.history(WINDOW_S)
    end = bench.now()
    plant = bench.rig.fleet.plant
    problems = []
    report: dict[str, dict[str, str]] = {}
    with step("latest readings' age and counters' advance against the plant"):
        for binding in bench.points(acquisition="polled"):
            if not bench.fleet_meter(binding) or binding.quantity is None:
                continue
            period = float(bench.dut.target.parameters.periods.get(binding.group, 60))
            readings = await bench.management.readings(binding.point, end - WINDOW_S, end)
            # timely: a value collected (one failing a range check was collected too; a value
            # interpolated over a gap was not)
            collected = [r for r in readings if r.value is not None and r.quality != "interpolated"]
            if not collected or end - collected[-1].t > 2 * period + 10:
                age = "never" if not collected else f"{end - collected[-1].t:.0f} s"
                problems.append(f"{binding.point}: latest value collected {age} ago")
                continue
            usable = [r for r in collected if r.quality in USABLE]
            if binding.kind != "counter" or len(usable) < 2:
                continue
            first, last = usable[0], usable[-1]
            assert binding.meter is not None and first.value is not None
            assert last.value is not None
            shown = bench.rig.shown(binding.meter, binding.quantity, first.t - 60, last.t + 10)
            seen = [matching_answer(r, shown) for r in (first, last)]
            if seen[0] is None or seen[1] is None:
                problems.append(f"{binding.point}: readings the meter never showed")
                continue
            # the plant between the instants the meter made those two answers
            counted = last.value - first.value
            truth = Decimal(repr(plant.value(binding.quantity, seen[1].t))) - Decimal(
                repr(plant.value(binding.quantity, seen[0].t))
            )
            step_ = Decimal(1).scaleb(-binding.decimals)
            report[binding.point] = {"counted": str(counted), "truth": f"{truth:.6f}"}
            if abs(counted - truth) > 2 * step_:
                problems.append(f"{binding.point}: counted {counted}, the plant used {truth:.6f}")
    evidence.attach_json("advance.json", report)
    assert not problems, "\n".join(problems[:20])
    assert report, "no counter to compare with the plant"

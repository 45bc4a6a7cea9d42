"""Accuracy: what the terminal stores equals what the meters showed, digit for digit
(ISC-2 §9.3 a), c)), and over a whole run at least 99 % of readings are accurate and 98 % of
the due readings are there (SSEA §6.4)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest

from conformance.bench import Bench
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.judge import digits, matching_answer
from conformance.management import StoredReading

WINDOW_S = 1800.0
ACCURACY = 0.99
CORRECTNESS = 0.98
USABLE = ("good", "backup")


def _communication_faults(bench: Bench, meter: str, start: float, end: float) -> bool:
    """Whether the bench made ``meter`` fail to answer during ``[start, end)``."""
    fleet = bench.rig.fleet
    for fault in fleet.meters[meter].faults:
        if fault.kind in ("no_answer", "bad_checksum", "garbled", "truncated", "slow", "exception"):
            f_start = fleet.at(fault.start)
            f_end = end if fault.end is None else fleet.at(fault.end)
            if f_start < end and f_end > start:
                return True
    return False


async def _judged(
    bench: Bench, start: float, end: float
) -> dict[PointBinding, list[StoredReading]]:
    out = {}
    for binding in bench.points(acquisition="polled"):
        if binding.meter is None or not bench.fleet_meter(binding) or binding.quantity is None:
            continue
        out[binding] = await bench.management.readings(binding.point, start, end)
    return out


@pytest.mark.clause("ISC-2 §9.3 a)", "ISC-2 §9.3 c)", "CPCIF §8.2")
async def test_stored_values_equal_the_meters_readings(bench: Bench, evidence: TestLog) -> None:
    """Every reading the terminal stored as measured is a value its meter showed, with the
    meter's significant digits (every reading, not only those uploaded: through the management
    profile; ``test_accuracy_items`` judges the same items on the wire)."""
    await bench.history(WINDOW_S)
    end = bench.now()
    start = end - WINDOW_S
    judged = await _judged(bench, start, end)
    wrong: list[str] = []
    count = 0
    for binding, readings in judged.items():
        assert binding.meter is not None and binding.quantity is not None
        shown = bench.rig.shown(binding.meter, binding.quantity, start - 60, end + 10)
        for reading in readings:
            if reading.quality not in USABLE or reading.value is None:
                continue
            count += 1
            if matching_answer(reading, shown) is None:
                wrong.append(f"{binding.point} @ {reading.t:.0f}: {reading.value}")
    evidence.record_measurement("readings", count)
    evidence.record_measurement("not_as_shown", len(wrong))
    if wrong:
        evidence.attach("not-as-shown.txt", "\n".join(wrong))
    assert count > 0, "nothing to judge: no measured reading in the window"
    assert not wrong, (
        f"{len(wrong)} of {count} readings are not what the meter showed:\n" + "\n".join(wrong[:10])
    )


@pytest.mark.clause("SSEA §6.4 b)", "SSEA §6.4 c)")
async def test_accuracy_and_correctness_over_the_run(bench: Bench, evidence: TestLog) -> None:
    """Over the run: ≥ 99 % of the readings equal the meters' (accuracy) and ≥ 98 % of the
    readings due on schedule are there and usable (correctness)."""
    await bench.history(WINDOW_S)
    end = bench.now()
    start = max(bench.t0, end - 4 * 3600)
    with step("read back every polled point's readings of the run"):
        judged = await _judged(bench, start, end)
    accurate = total = due = present = 0
    by_point: dict[str, dict[str, float]] = defaultdict(dict)
    for binding, readings in judged.items():
        assert binding.meter is not None and binding.quantity is not None
        if _communication_faults(bench, binding.meter, start, end):
            continue  # the bench silenced this meter on purpose in this window
        shown = bench.rig.shown(binding.meter, binding.quantity, start - 60, end + 10)
        usable = [r for r in readings if r.quality in USABLE and r.value is not None]
        ok = sum(1 for r in usable if matching_answer(r, shown) is not None)
        period = float(bench.dut.target.parameters.periods.get(binding.group, 60))
        expected = int((end - start) // period) - 1
        accurate += ok
        total += len(usable)
        due += max(expected, 0)
        present += min(len({round(r.t / period) for r in usable}), max(expected, 0))
        by_point[binding.point] = {"usable": len(usable), "accurate": ok, "due": expected}
    evidence.attach_json("per-point.json", by_point)
    assert total > 0 and due > 0, "nothing to judge"
    accuracy = accurate / total
    correctness = present / due
    evidence.record_measurement("accuracy", accuracy)
    evidence.record_measurement("correctness", correctness)
    assert accuracy >= ACCURACY, f"accuracy {accuracy:.4f} < {ACCURACY} ({accurate}/{total})"
    assert correctness >= CORRECTNESS, (
        f"correctness {correctness:.4f} < {CORRECTNESS} ({present} of {due} due readings)"
    )


def _same_digits(a: Decimal, b: Decimal) -> bool:
    return digits(a) == digits(b)

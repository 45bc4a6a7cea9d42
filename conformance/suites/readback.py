"""Reading a point back through the terminal and judging it against its meter and the plant:
shared by the item-level suites (not a test module)."""

from __future__ import annotations

from decimal import Decimal

from conformance.bench import Bench
from conformance.dut import PointBinding
from conformance.judge import matching_answer

#: Readings of each point judged (the latest ones).
JUDGED = 5
#: How far back the latest readings are looked for (s).
WINDOW_S = 900.0
USABLE = ("good", "backup")


def full_scale(bench: Bench, binding: PointBinding) -> Decimal | None:
    """Where the fleet meter's register for ``binding`` rolls over (None: it does not)."""
    assert binding.meter is not None
    for point in bench.rig.fleet.meters[binding.meter].points:
        if point.quantity == binding.quantity or binding.quantity in getattr(
            point, "quantities", []
        ):
            return point.full_scale
    return None


def truth_tolerance(bench: Bench, binding: PointBinding, t: float) -> Decimal:
    """How far a reading may lie from the plant's value at its time: the meter's last digit,
    plus what the quantity moves while an answer travels (``judge.ANSWER_BEFORE_S``)."""
    assert binding.quantity is not None
    plant = bench.rig.fleet.plant
    drift = abs(plant.value(binding.quantity, t) - plant.value(binding.quantity, t - 20.0))
    return Decimal(1).scaleb(-binding.decimals) + Decimal(repr(drift))


async def judge_point(bench: Bench, binding: PointBinding) -> tuple[list[str], int]:
    """Problems of the point's latest readings (missing, unlike the meter, unlike the plant)
    and how many readings were judged."""
    assert binding.meter is not None and binding.quantity is not None
    now = bench.now()
    readings = await bench.dut.management.readings(binding.point, now - WINDOW_S, now + 1)
    good = [r for r in readings if r.quality in USABLE and r.value is not None]
    if not good:
        seen = sorted({r.quality for r in readings})
        return [f"{binding.point}: no usable reading in {WINDOW_S:g} s (qualities {seen})"], 0
    problems = []
    plant = bench.rig.fleet.plant
    for reading in good[-JUDGED:]:
        assert reading.value is not None
        # a backup device's reading (ISC-2 §7.2.3(1)) shows what the backup meter showed
        meter = binding.meter
        if reading.quality == "backup" and reading.device in bench.rig.fleet.meters:
            meter = reading.device
        shown = bench.rig.shown(meter, binding.quantity, reading.t - 60, reading.t + 10)
        if matching_answer(reading, shown) is None:
            values = sorted({str(o.value) for o in shown})[:6]
            problems.append(
                f"{binding.point} @ {reading.t:.0f} ({reading.quality} from {reading.device}): "
                f"stored {reading.value}, {meter} showed {values}"
            )
            continue
        truth = Decimal(repr(plant.value(binding.quantity, reading.t)))
        off = abs(reading.value - truth)
        scale = full_scale(bench, binding) if binding.kind == "counter" else None
        if scale is not None:  # the register has rolled over as often as the plant ran past it
            off %= scale
            off = min(off, scale - off)
        if off > truth_tolerance(bench, binding, reading.t):
            problems.append(
                f"{binding.point} @ {reading.t:.0f}: stored {reading.value}, the plant's "
                f"{binding.quantity} was {truth:.6f}"
            )
    return problems, min(len(good), JUDGED)


def plant_text(bench: Bench, binding: PointBinding, t: float) -> str:
    """The plant's value of ``binding``'s quantity at ``t`` as a meter of its digits would show
    it: what an operator copies off a ticket (a counter entered by hand stays plausible, so the
    terminal's second check has nothing to object to)."""
    assert binding.quantity is not None
    value = max(0.0, bench.rig.fleet.plant.value(binding.quantity, t))
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-binding.decimals)))


async def entered(bench: Bench, binding: PointBinding, value: str, t: float) -> list[str]:
    """Problems with a value entered by hand for ``binding`` at ``t``: not stored as typed
    (digits kept), or neither flagged manual nor logged as a manual entry."""
    stored = [
        r
        for r in await bench.dut.management.readings(binding.point, t - 1, t + 1)
        if abs(r.t - t) < 1
    ]
    if not stored:
        return [f"{binding.point}: the value {value} entered for {t:.0f} is not stored"]
    same = [r for r in stored if r.value is not None and str(r.value) == value]
    if not same:
        return [f"{binding.point}: entered {value}, stored {[str(r.value) for r in stored]}"]
    if any(r.quality == "manual" for r in same):
        return []
    events = await bench.dut.management.events("manual_entry", binding.point, t - 1, t + 1)
    if events:
        return []  # flagged otherwise (e.g. suspect by the second check), entry logged
    return [f"{binding.point}: {value} stored as {same[0].quality}, no manual entry logged"]

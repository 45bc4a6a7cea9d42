"""Judging a point by what reached the centres against what its meter gave (the meters' logs),
and the few read-backs through the management profile the item-level suites share (not a
test module)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from conformance.bench import Bench
from conformance.dut import PointBinding

#: How long a stretch of a point's minute windows is judged (s).
WINDOW_S = 300.0
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


async def judge_points(
    bench: Bench, bindings: Sequence[PointBinding]
) -> tuple[list[str], dict[str, int]]:
    """Problems of the points' minute windows of the next few minutes at the first centre,
    judged against what the meters' logs owe (``Bench.minutes_arrive``): missing, without
    their value, or not what the meters gave; and how many windows of each point were judged.
    Fresh windows, not the last ones: a test judges its own time, not what an earlier test
    did to the meters. A point without a data item code shows nothing on the wire and is a
    problem here."""
    problems = [f"{b.point}: uploaded under no data item code" for b in bindings if not b.code]
    coded = {b.code: b for b in bindings if b.code}
    if not coded:
        return problems, {}
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(WINDOW_S)
    owed, result = await bench.minutes_arrive(
        centre, start, bench.now(), within=900, codes=set(coded)
    )
    judged = {coded[code].point: len(windows.owed) for code, windows in owed.points.items()}
    for code, windows in owed.points.items():
        if not windows.owed and not windows.excused:
            problems.append(
                f"{coded[code].point}: its meter's log shows no reading of it in "
                f"{WINDOW_S / 60:g} minutes ({len(windows.unpolled)} windows never measured)"
            )
    if not result.complete:
        problems.append(f"at {centre}: {result.summary()}")
    return problems, judged


async def judge_point(bench: Bench, binding: PointBinding) -> tuple[list[str], int]:
    """:func:`judge_points` of one point."""
    problems, judged = await judge_points(bench, [binding])
    return problems, judged.get(binding.point, 0)


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
        r for r in await bench.management.readings(binding.point, t - 1, t + 1) if abs(r.t - t) < 1
    ]
    if not stored:
        return [f"{binding.point}: the value {value} entered for {t:.0f} is not stored"]
    same = [r for r in stored if r.value is not None and str(r.value) == value]
    if not same:
        return [f"{binding.point}: entered {value}, stored {[str(r.value) for r in stored]}"]
    if any(r.quality == "manual" for r in same):
        return []
    events = await bench.management.events("manual_entry", binding.point, t - 1, t + 1)
    if events:
        return []  # flagged otherwise (e.g. suspect by the second check), entry logged
    return [f"{binding.point}: {value} stored as {same[0].quality}, no manual entry logged"]

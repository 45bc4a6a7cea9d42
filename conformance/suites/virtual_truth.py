"""What a virtual point's window figures should be, from the plant (not a test module).

A virtual point (CSMT §8.3.2) is judged against the plant's ground truth, not against the
terminal's own figures for its inputs: a terminal that sums its inputs' windows right but got
those windows wrong still fails, and one that computes the virtual point wrong cannot hide
behind consistent inputs.

**What flowed.** Each input is a series of *intervals* between two consecutive readings the
terminal stored (its own times ``t0``, ``t1``):

- a counter's interval is worth what the plant used between the two meter answers those readings
  are (``judge.matching_answer``): ``plant(τ1) − plant(τ0)``. Over consecutive intervals this
  telescopes, so a window of them is within two of the meter's last digit of the readings'
  difference (each reading is the meter's rounding of the plant);
- a rate's interval is worth the plant's rate integrated over ``[t0, t1]`` (÷ ``per_s``), exact
  since the plant's rates are constant within each minute. A terminal knows the rate only at its
  samples, so any sound integral (trapezoid, step, …) lies within the plant's lowest and highest
  rate over the interval times its length: that band, plus the readings' last digit over the
  interval, is the tolerance.

**Which window.** A window's figure holds the intervals the terminal attributes to it: at their
middle, their end or their start (terminals differ; CSMT §8.2.1 does not say). The judgement
finds the attribution that explains the terminal's windows best and requires every judged
window to agree under it. A window is judged only when every input has an interval in it, and
none of its readings near it was unusable or unlike the meter's answer (those are the accuracy
suites' business).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from conformance.bench import Bench
from conformance.dut import AddVirtualPoint, PointBinding, RemoveVirtualPoint
from conformance.evidence import TestLog, step
from conformance.judge import matching_answer
from conformance.management import DerivedValue
from conformance.verdicts import Inconclusive

USABLE = ("good", "backup")
#: Where a terminal may attribute an interval between two readings.
ATTRIBUTIONS = ("mid", "end", "start")
#: Readings this close to a window (s) must be usable and the meter's for it to be judged.
MARGIN_S = 150.0
#: How long a virtual point is watched, and how close to its end windows may still be open.
WATCH_S = 600.0
SETTLE_S = 120.0


@dataclass(frozen=True, slots=True)
class Interval:
    t0: float
    t1: float
    truth: Decimal  # what flowed, by the plant
    band: Decimal  # how far a sound figure for it may lie from ``truth`` (rates; 0 for counters)

    def at(self, attribution: str) -> float:
        if attribution == "end":
            return self.t1
        if attribution == "start":
            return self.t0
        return (self.t0 + self.t1) / 2


@dataclass(frozen=True, slots=True)
class Series:
    """One input, as the plant says it went (see the module text)."""

    point: str
    kind: str  # counter | rate
    step: Decimal  # the meter's last digit
    intervals: list[Interval]
    #: Times of readings that were not usable or not the meter's: windows near them are skipped.
    doubtful: list[float] = field(default_factory=list)

    def evidence(self) -> dict[str, object]:
        return {
            "point": self.point,
            "kind": self.kind,
            "step": str(self.step),
            "doubtful": [f"{t:.1f}" for t in self.doubtful],
            "intervals": [
                f"{i.t0:.1f}–{i.t1:.1f}: {i.truth:.6f} ± {i.band:.6f}" for i in self.intervals
            ],
        }

    def window(self, start: float, end: float, attribution: str) -> tuple[Decimal, Decimal] | None:
        """(truth, tolerance) of the window ``[start, end)``; None when it cannot be judged."""
        if any(start - MARGIN_S <= t < end + MARGIN_S for t in self.doubtful):
            return None
        inside = [i for i in self.intervals if start <= i.at(attribution) < end]
        if not inside:
            return None
        truth = sum((i.truth for i in inside), Decimal(0))
        if self.kind == "counter":
            return truth, 2 * self.step
        return truth, sum((i.band for i in inside), Decimal(0))


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


async def series(
    bench: Bench, binding: PointBinding, start: float, end: float, *, per_s: int = 0
) -> Series:
    """The input ``binding`` over ``[start, end)`` (readings a little beyond, for the intervals
    at the edges). ``per_s``: the rate's time unit, for a rate integrated over time; 0 for a
    counter."""
    assert binding.meter is not None and binding.quantity is not None
    plant = bench.rig.fleet.plant
    step = Decimal(1).scaleb(-binding.decimals)
    readings = await bench.management.readings(binding.point, start - 2 * MARGIN_S, end + MARGIN_S)
    shown = bench.rig.shown(
        binding.meter, binding.quantity, start - 3 * MARGIN_S, end + 2 * MARGIN_S
    )
    doubtful: list[float] = []
    matched: list[tuple[float, float]] = []  # (reading time, the meter's answer time)
    for r in readings:
        answer = matching_answer(r, shown) if r.quality in USABLE else None
        if answer is None:
            doubtful.append(r.t)
        else:
            matched.append((r.t, answer.t))
    value = functools.partial(plant.value, binding.quantity)
    intervals = []
    for (t0, a0), (t1, a1) in itertools.pairwise(matched):
        if per_s:
            truth = _dec(_integral(value, t0, t1) / per_s)
            low, high = _range(value, min(t0, a0), max(t1, a1))
            band = _dec((high - low) * (t1 - t0) / per_s) + step * _dec((t1 - t0) / per_s)
            intervals.append(Interval(t0, t1, truth, band))
        else:
            intervals.append(Interval(t0, t1, _dec(value(a1)) - _dec(value(a0)), Decimal(0)))
    return Series(binding.point, "rate" if per_s else "counter", step, intervals, doubtful)


def _pieces(a: float, b: float) -> list[tuple[float, float]]:
    """``[a, b]`` cut at whole minutes (the plant's rates are constant within each)."""
    cuts = [a]
    m = math.floor(a / 60) * 60 + 60
    while m < b:
        cuts.append(float(m))
        m += 60
    cuts.append(b)
    return list(itertools.pairwise(cuts))


def _integral(rate: Callable[[float], float], a: float, b: float) -> float:
    return sum(rate((x + y) / 2) * (y - x) for x, y in _pieces(a, b))


def _range(rate: Callable[[float], float], a: float, b: float) -> tuple[float, float]:
    """The lowest and highest rate over ``[a, b]``, its ends included (a sample taken on the
    stroke of a minute sees the new minute's rate)."""
    values = [rate(a), rate(b), *(rate((x + y) / 2) for x, y in _pieces(a, b))]
    return min(values), max(values)


# ---- judging -------------------------------------------------------------------------------------


#: (truth, tolerance) of each input → (expected, tolerance) of the virtual point.
Formula = Callable[[Sequence[tuple[Decimal, Decimal]]], tuple[Decimal, Decimal] | None]


def add(parts: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    return sum((t for t, _ in parts), Decimal(0)), sum((e for _, e in parts), Decimal(0))


def subtract(parts: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    (first, _), *rest = parts
    return first - sum((t for t, _ in rest), Decimal(0)), sum((e for _, e in parts), Decimal(0))


def times(factor: Decimal) -> Formula:
    def formula(parts: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
        ((truth, error),) = parts
        return factor * truth, abs(factor) * error

    return formula


def ratio(factor: Decimal) -> Formula:
    def formula(parts: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal] | None:
        (a, ea), (b, eb) = parts
        if abs(b) <= 10 * eb:
            return None  # a denominator this small says nothing
        value = factor * a / b
        # relative errors add (to first order); the bound is taken generously at the far end
        return value, abs(factor) * (ea + abs(a) * eb / (abs(b) - eb)) / (abs(b) - eb)

    return formula


@dataclass
class Judgement:
    attribution: str
    judged: int
    wrong: list[str]
    unjudged: int
    rows: list[dict[str, str]]


def judge(
    result: Sequence[DerivedValue],
    inputs: Sequence[Series],
    formula: Formula,
) -> Judgement:
    """The virtual point's windows ``result`` against the truth of ``inputs`` (in formula
    order), under the attribution that explains them best (see the module text)."""
    best: Judgement | None = None
    for attribution in ATTRIBUTIONS:
        wrong: list[str] = []
        rows: list[dict[str, str]] = []
        judged = unjudged = 0
        for window in result:
            parts = [s.window(window.start, window.end, attribution) for s in inputs]
            if any(p is None for p in parts):
                unjudged += 1
                continue
            expected = formula([p for p in parts if p is not None])
            if expected is None:
                unjudged += 1
                continue
            want, error = expected
            value = window.value
            quantum = Decimal(1) if value is None else _quantum(value)
            tolerance = error + quantum
            judged += 1
            rows.append(
                {
                    "start": f"{window.start:.0f}",
                    "terminal": str(value),
                    "plant": f"{want:.6f}",
                    "tolerance": f"{tolerance:.6f}",
                }
            )
            if value is None:
                wrong.append(f"{window.start:.0f}: no value, the plant gives {want:.4f}")
            elif abs(value - want) > tolerance:
                wrong.append(
                    f"{window.start:.0f}: {value}, the plant gives {want:.4f} ± {tolerance:.4f}"
                )
        found = Judgement(attribution, judged, wrong, unjudged, rows)
        if best is None or (len(found.wrong), -found.judged) < (len(best.wrong), -best.judged):
            best = found
    assert best is not None
    return best


def _quantum(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


# ---- asking the terminal for virtual points and judging them -----------------------------------

#: Windows a virtual point must get right for a verdict (fewer judged: inconclusive).
MIN_JUDGED = 3
#: An input judged must have moved this many of its last digit in ten minutes (a meter standing
#: still cannot tell an addition from a subtraction).
MIN_STEPS = 50
PREFIX = "conformance.vp"


@dataclass(frozen=True, slots=True)
class _Rule:
    """A virtual point asked of the terminal and how its results are judged."""

    change: AddVirtualPoint
    inputs: tuple[PointBinding, ...]
    results: tuple[tuple[str, Formula], ...]  # (point made, its formula over the inputs)
    per_s: int = 0  # integrate: the rate's time unit


def _advance(bench: Bench, binding: PointBinding, seconds: float = 600.0) -> float:
    """What the plant did over the last ``seconds`` (since it started, at most), in the
    meter's last digit: a counter's advance, a rate's integral (per hour)."""
    assert binding.quantity is not None
    plant = bench.rig.fleet.plant
    now = bench.now()
    since = max(now - seconds, bench.rig.fleet.spec.start.timestamp())
    if binding.kind == "counter":
        moved = plant.value(binding.quantity, now) - plant.value(binding.quantity, since)
    else:
        # the rate at each minute of the span, for a minute each
        minutes = [now - 60.0 * (k + 1) for k in range(int((now - since) // 60))]
        moved = sum(plant.value(binding.quantity, t) for t in minutes) / 60
    return float(abs(moved) * 10.0**binding.decimals)


def _busy(bench: Bench, kind: str) -> list[PointBinding]:
    """Polled points of the fleet's meters of ``kind`` (``counter`` or ``rate``: a gauge the
    plant integrates per hour), busiest first, the idle ones left out."""
    plant = bench.rig.fleet.plant
    found = []
    for b in bench.points(acquisition="polled"):
        if not bench.fleet_meter(b) or b.quantity not in plant.quantities:
            continue
        q = plant.quantity(b.quantity)
        if kind == "counter" and (b.kind != "counter" or q.kind != "total"):
            continue
        if kind == "rate" and (b.kind != "gauge" or q.kind != "rate" or _per_s(q.unit) != 3600):
            continue
        if _advance(bench, b) >= MIN_STEPS:
            found.append(b)
    return sorted(found, key=lambda b: -_advance(bench, b))


def _per_s(unit: str) -> int:
    """The time unit of a rate's unit, in seconds (0: not a rate per unit of time)."""
    if unit in ("kW", "MW") or unit.endswith("/h"):
        return 3600
    if unit.endswith("/min"):
        return 60
    if unit.endswith("/s") or unit == "W":
        return 1
    return 0


def _alike(bench: Bench, n: int, what: str) -> tuple[PointBinding, ...]:
    """Up to ``n`` busy counters of different quantities in one unit (the busiest unit with at
    least two): two meters of one quantity would hide a subtraction done as anything else."""
    by_unit: dict[str, dict[str, PointBinding]] = {}
    for b in _busy(bench, "counter"):
        assert b.quantity is not None
        by_unit.setdefault(b.unit, {}).setdefault(b.quantity, b)
    groups = [list(g.values()) for g in by_unit.values() if len(g) >= 2]
    if not groups:
        raise Inconclusive(
            f"no two busy counters of different quantities in one unit to {what} "
            "(the plant is idle?)"
        )
    return tuple(groups[0][:n])


def _one_counter(bench: Bench) -> PointBinding:
    busy = _busy(bench, "counter")
    if not busy:
        raise Inconclusive("no busy counter among the fleet's polled points (the plant is idle?)")
    return busy[0]


def adding(bench: Bench, name: str) -> _Rule:
    inputs = _alike(bench, 3, "add")
    change = AddVirtualPoint(name, "add", tuple(b.point for b in inputs))
    return _Rule(change, inputs, ((name, add),))


def subtracting(bench: Bench, name: str) -> _Rule:
    inputs = _alike(bench, 2, "subtract")
    change = AddVirtualPoint(name, "subtract", tuple(b.point for b in inputs))
    return _Rule(change, inputs, ((name, subtract),))


#: A typical constant (a density, a conversion): neither 1 nor a power of ten.
FACTOR = Decimal("2.5")


def multiplying(bench: Bench, name: str) -> _Rule:
    source = _one_counter(bench)
    change = AddVirtualPoint(name, "multiply", (source.point,), factor=FACTOR)
    return _Rule(change, (source,), ((name, times(FACTOR)),))


def dividing(bench: Bench, name: str) -> _Rule:
    inputs = _alike(bench, 2, "divide")
    change = AddVirtualPoint(name, "divide", tuple(b.point for b in inputs))
    return _Rule(change, inputs, ((name, ratio(Decimal(1))),))


SHARES = (Decimal("0.3"), Decimal("0.7"))


def allocating(bench: Bench, name: str) -> _Rule:
    source = _one_counter(bench)
    targets = tuple(f"{name}.{k}" for k in range(len(SHARES)))
    change = AddVirtualPoint(name, "allocate", (source.point,), targets=targets, shares=SHARES)
    results = tuple((t, times(share)) for t, share in zip(targets, SHARES, strict=True))
    return _Rule(change, (source,), results)


def integrating(bench: Bench, name: str) -> _Rule:
    rates = _busy(bench, "rate")
    if not rates:
        raise Inconclusive("no busy rate (per hour) among the fleet's polled gauges to integrate")
    change = AddVirtualPoint(name, "integrate", (rates[0].point,), per_s=3600)
    return _Rule(change, (rates[0],), ((name, add),), per_s=3600)


async def judge_rules(bench: Bench, evidence: TestLog, *rules: _Rule) -> None:
    """Ask the terminal for ``rules``, watch ``WATCH_S``, judge every result's minute windows
    against the plant; the virtual points are removed again afterwards."""
    shown = "; ".join(
        f"{r.change.point} = {r.change.operation}({', '.join(r.change.inputs)})" for r in rules
    )
    with step(f"define {shown}"):
        await bench.configure(*(r.change for r in rules))
    start = bench.now()
    try:
        await bench.wait(WATCH_S)
        end = bench.now() - SETTLE_S
        wrong: list[str] = []
        thin: list[str] = []
        for rule in rules:
            with step(f"{rule.change.point}: its minute windows against the plant"):
                inputs = [await series(bench, b, start, end, per_s=rule.per_s) for b in rule.inputs]
                for point, formula in rule.results:
                    result = await bench.management.derived(point, "minute", start, end)
                    if not result:
                        wrong.append(f"{point}: no minute figures in {WATCH_S:g} s")
                        continue
                    j = judge(result, inputs, formula)
                    evidence.attach_json(
                        f"{point}.json",
                        {
                            "attribution": j.attribution,
                            "judged": j.judged,
                            "windows": j.rows,
                            "inputs": [s.evidence() for s in inputs],
                        },
                    )
                    evidence.record_measurement(f"{point} windows judged", j.judged)
                    if j.wrong:
                        wrong += [f"{point} ({rule.change.operation}): {w}" for w in j.wrong[:5]]
                    elif j.judged < MIN_JUDGED:
                        thin.append(f"{point}: {j.judged} window(s) judged ({j.unjudged} not)")
    finally:
        await bench.configure(*(RemoveVirtualPoint(r.change.point) for r in rules))
    assert not wrong, "\n".join(wrong)
    if thin:
        raise Inconclusive("too few windows could be judged: " + "; ".join(thin))

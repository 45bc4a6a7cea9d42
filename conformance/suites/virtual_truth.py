"""What a virtual point's window figures should be, from the plant, and the judgement of the
figures a terminal gives for them (not a test module).

A virtual point (CSMT §8.3.2) is judged against the plant's ground truth, not against the
terminal's own figures for its inputs: a terminal that sums its inputs' windows right but got
those windows wrong still fails, and one that computes the virtual point wrong cannot hide
behind consistent inputs.

**What flowed.** Each input is a series of *intervals* between two consecutive answers its meter
gave the terminal (the meter's log: each answer to a request is one reading the terminal took,
``conformance.oracle.meter_log``), at the answers' times ``a0``, ``a1``:

- a counter's interval is worth what the plant used between the two answers:
  ``plant(a1) − plant(a0)``. Over consecutive intervals this telescopes, so a window of them is
  within two of the meter's last digit of the readings' difference (each reading is the meter's
  rounding of the plant);
- a rate's interval is worth the plant's rate integrated over ``[a0, a1]`` (÷ ``per_s``), exact
  since the plant's rates are constant within each minute. A terminal knows the rate only at its
  samples, so any sound integral (trapezoid, step, …) lies within the plant's lowest and highest
  rate over the interval times its length: that band, plus the readings' last digit over the
  interval and the stamp lag at both ends, is the tolerance.

**Which window.** A window's figure holds the intervals the terminal attributes to it: at their
middle, their end or their start (terminals differ; CSMT §8.2.1 does not say). The judgement
finds the attribution that explains the terminal's windows best and requires every judged
window to agree under it. The terminal stamps a reading when it has the answer, at most the
target's ``stamp_lag_s`` later: an interval that may land on either side of a window's edge
leaves the window unjudged, and so do an input without an interval in it and a window near an
answer the terminal may not have had (a communication fault, a disturbed value, a power cut)
or a silence of the meter (those are the accuracy suites' business).

**Never read.** A window in which the terminal never asked an input's meter although its
declared acquisition period says it must have (the oracle's *unpolled*) cannot carry a measured
figure: the virtual point's window is wrong there, whatever arrived. A terminal that reads
nothing fails.

**Where the figures come from.** The virtual points the lab configured before the run are
test parameters (``parameters.virtual_points``): their minute figures are read off the wire at
the first centre (HJ 212 CN 2051, under the declared data item codes). Virtual points made at
run time through the carbench management profile (:func:`judge_rules`) are read back through
it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from conformance.bench import MINUTE_DATA, Bench, local, posix, whole_minutes
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.oracle import owed_windows
from conformance.oracle.minutes import GAP_FACTOR
from conformance.target import VirtualOperation, VirtualPointSpec
from conformance.verdicts import Inconclusive, NotApplicable
from simulators.platform import ReadingRow

#: Where a terminal may attribute an interval between two readings.
ATTRIBUTIONS = ("mid", "end", "start")
#: Answers this close to a window (s) must be certain for it to be judged.
MARGIN_S = 150.0
#: How long a virtual point is watched, and how long its last windows may take to arrive.
WATCH_S = 600.0
ARRIVAL_S = 900.0
WINDOW_S = 60.0


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
    #: How much later than its meter's answer the terminal may stamp a reading (s).
    lag: float = 0.0
    #: Spans (from, to) of answers the terminal may not have had, or of a silence: windows near
    #: them are skipped.
    doubtful: list[tuple[float, float]] = field(default_factory=list)
    #: Starts of minute windows in which the terminal never asked the meter (oracle).
    unpolled: frozenset[float] = frozenset()

    def evidence(self) -> dict[str, object]:
        return {
            "point": self.point,
            "kind": self.kind,
            "step": str(self.step),
            "doubtful": [f"{a:.1f}–{b:.1f}" for a, b in self.doubtful],
            "never read": sorted(f"{w:.0f}" for w in self.unpolled),
            "intervals": [
                f"{i.t0:.1f}–{i.t1:.1f}: {i.truth:.6f} ± {i.band:.6f}" for i in self.intervals
            ],
        }

    def never_read(self, start: float, end: float) -> bool:
        return any(start <= w < end for w in self.unpolled)

    def window(self, start: float, end: float, attribution: str) -> tuple[Decimal, Decimal] | None:
        """(truth, tolerance) of the window ``[start, end)``; None when it cannot be judged."""
        if any(a - MARGIN_S < end and b + MARGIN_S >= start for a, b in self.doubtful):
            return None
        inside = []
        for i in self.intervals:
            at = i.at(attribution)
            early, late = start <= at < end, start <= at + self.lag < end
            if early != late:
                return None  # stamped on one side of an edge or the other
            if early:
                inside.append(i)
        if not inside:
            return None
        truth = sum((i.truth for i in inside), Decimal(0))
        if self.kind == "counter":
            return truth, 2 * self.step
        return truth, sum((i.band for i in inside), Decimal(0))


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def series(
    bench: Bench, binding: PointBinding, start: float, end: float, *, per_s: int = 0
) -> Series:
    """The input ``binding`` over ``[start, end)`` from its meter's log (answers a little
    beyond, for the intervals at the edges). ``per_s``: the rate's time unit, for a rate
    integrated over time; 0 for a counter."""
    assert binding.meter is not None and binding.quantity is not None
    log = bench.rig.meter_log
    if log.kind(binding.meter) == "offered":
        raise Inconclusive(
            f"{binding.point} reads {binding.meter}, a source that offers states: its log does "
            "not say when the terminal read it, so its intervals are unknown"
        )
    tolerances = bench.tolerances
    lag = tolerances.stamp_lag_s
    step = Decimal(1).scaleb(-binding.decimals)
    begin, until = start - 2 * MARGIN_S, end + MARGIN_S
    answers = log.answers(
        binding.meter, binding.quantity, begin, until, cut_loss_s=tolerances.cut_loss_s
    )
    certain = [a for a in answers if a.certain]
    doubtful = [(a.t, a.t) for a in answers if not a.certain]
    doubtful += [(t, t) for t in log.fault_times(binding.meter, begin, until)]
    doubtful += log.off_between(begin, until)
    gaps = [b.t - a.t for a, b in itertools.pairwise(certain)]
    usual = sorted(gaps)[len(gaps) // 2] if gaps else WINDOW_S
    value = functools.partial(bench.rig.fleet.plant.value, binding.quantity)
    intervals = []
    for a0, a1 in itertools.pairwise(certain):
        if a1.t - a0.t > GAP_FACTOR * usual:
            doubtful.append((a0.t, a1.t))  # the meter fell silent, or was not asked
        elif per_s:
            span = a1.t - a0.t
            truth = _dec(_integral(value, a0.t, a1.t) / per_s)
            low, high = _range(value, a0.t, a1.t + lag)
            band = _dec((high - low) * span / per_s) + step * _dec(span / per_s)
            band += _dec(2 * lag * max(abs(low), abs(high)) / per_s)
            intervals.append(Interval(a0.t, a1.t, truth, band))
        else:
            truth = _dec(value(a1.t)) - _dec(value(a0.t))
            intervals.append(Interval(a0.t, a1.t, truth, Decimal(0)))
    owed = owed_windows(
        log,
        meter=binding.meter,
        quantity=binding.quantity,
        kind=binding.kind,
        start=start,
        end=end,
        tolerances=tolerances,
        period=bench.longest_period(binding.group, start, end),
    )
    kind = "rate" if per_s else "counter"
    return Series(
        binding.point, kind, step, intervals, lag, sorted(doubtful), frozenset(owed.unpolled)
    )


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


@dataclass(frozen=True, slots=True)
class Window:
    """One window figure of a virtual point as the terminal gave it (value None: without one)."""

    start: float
    value: Decimal | None


@dataclass
class Judgement:
    attribution: str
    judged: int
    wrong: list[str]
    unjudged: int
    rows: list[dict[str, str]]


def judge(
    result: Sequence[Window],
    inputs: Sequence[Series],
    formula: Formula,
    starts: Sequence[float],
) -> Judgement:
    """The virtual point's windows ``result`` against the truth of ``inputs`` (in formula
    order) for the minute windows beginning at ``starts``, under the attribution that explains
    them best (see the module text). A window owed and not in ``result`` is wrong."""
    given = {w.start: w for w in result}
    best: Judgement | None = None
    for attribution in ATTRIBUTIONS:
        wrong: list[str] = []
        rows: list[dict[str, str]] = []
        judged = unjudged = 0
        for start in starts:
            window = given.get(start)
            shown = "nothing" if window is None else str(window.value)
            when = f"{local(start):%Y-%m-%d %H:%M}"
            unread = [s.point for s in inputs if s.never_read(start, start + WINDOW_S)]
            if unread:
                judged += 1
                wrong.append(
                    f"{when}: expected a figure measured from its inputs, but the terminal "
                    f"never asked the meter of {', '.join(unread)} in this window "
                    f"({shown} arrived)"
                )
                continue
            parts = [s.window(start, start + WINDOW_S, attribution) for s in inputs]
            expected = None if None in parts else formula([p for p in parts if p is not None])
            if expected is None:
                unjudged += 1
                continue
            want, error = expected
            value = None if window is None else window.value
            tolerance = error + (Decimal(1) if value is None else _quantum(value))
            judged += 1
            rows.append(
                {
                    "window": when,
                    "terminal": shown,
                    "plant": f"{want:.6f}",
                    "tolerance": f"{tolerance:.6f}",
                }
            )
            if value is None:
                wrong.append(f"{when}: expected the plant's {want:.4f}, {shown} arrived")
            elif abs(value - want) > tolerance:
                wrong.append(
                    f"{when}: expected the plant's {want:.4f} ± {tolerance:.4f}, {value} arrived"
                )
        found = Judgement(attribution, judged, wrong, unjudged, rows)
        if best is None or (len(found.wrong), -found.judged) < (len(best.wrong), -best.judged):
            best = found
    assert best is not None
    return best


def _quantum(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


#: Windows a virtual point must get right for a verdict (fewer judged: inconclusive).
MIN_JUDGED = 3
#: An input judged must have moved this many of its last digit over the watch (a meter standing
#: still cannot tell an addition from a subtraction).
MIN_STEPS = 50


def _advance(bench: Bench, binding: PointBinding, start: float, end: float) -> float:
    """What the plant did over ``[start, end)`` in the meter's last digit: a counter's advance,
    a gauge's rate summed over the minutes (per hour)."""
    assert binding.quantity is not None
    plant = bench.rig.fleet.plant
    start = max(start, bench.rig.fleet.spec.start.timestamp())
    if binding.kind == "counter":
        moved = plant.value(binding.quantity, end) - plant.value(binding.quantity, start)
    else:
        minutes = [end - 60.0 * (k + 1) for k in range(int((end - start) // 60))]
        moved = sum(plant.value(binding.quantity, t) for t in minutes) / 60
    return float(abs(moved) * 10.0**binding.decimals)


@dataclass
class _Verdict:
    """What the judged points add up to."""

    wrong: list[str] = field(default_factory=list)
    thin: list[str] = field(default_factory=list)

    def take(
        self,
        evidence: TestLog,
        point: str,
        what: str,
        result: Sequence[Window],
        inputs: Sequence[Series],
        formula: Formula,
        starts: Sequence[float],
    ) -> None:
        j = judge(result, inputs, formula, starts)
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
            self.wrong += [f"{point} ({what}): {w}" for w in j.wrong[:5]]
        elif j.judged < MIN_JUDGED:
            self.thin.append(f"{point}: {j.judged} window(s) judged ({j.unjudged} not)")

    def idle(self, bench: Bench, inputs: Sequence[PointBinding], start: float, end: float) -> None:
        for binding in inputs:
            moved = _advance(bench, binding, start, end)
            if moved < MIN_STEPS:
                self.thin.append(
                    f"{binding.point} moved {moved:.0f} of its last digit in "
                    f"{(end - start) / 60:.0f} min (the plant is idle there)"
                )

    def conclude(self) -> None:
        assert not self.wrong, "\n".join(self.wrong)
        if self.thin:
            raise Inconclusive("too little to judge: " + "; ".join(self.thin))


# ---- the virtual points declared (PIXIT), judged on the wire -----------------------------------


@dataclass(frozen=True, slots=True)
class Declared:
    """A virtual point of ``parameters.virtual_points`` this run can judge: its inputs, and
    each point it makes with its data item code and formula."""

    spec: VirtualPointSpec
    inputs: tuple[PointBinding, ...]
    results: tuple[tuple[str, str, Formula], ...]  # (point, code, formula)

    @property
    def field(self) -> str:
        """The field its minute figure travels in: a ratio of two totals is a mean (Avg), the
        others are totals (Cou)."""
        return "Avg" if self.spec.operation == "divide" else "Cou"

    @property
    def per_s(self) -> int:
        return self.spec.per_s if self.spec.operation == "integrate" else 0

    def __str__(self) -> str:
        return f"{self.spec.point} = {self.spec.operation}({', '.join(self.spec.inputs)})"


def _formulas(spec: VirtualPointSpec) -> tuple[tuple[str, str, Formula], ...]:
    formula: Formula
    match spec.operation:
        case "allocate":
            return tuple((t.point, t.code, times(t.share)) for t in spec.targets)
        case "subtract":
            formula = subtract
        case "multiply":
            formula = times(spec.factor)
        case "divide":
            formula = ratio(spec.factor)
        case _:  # add; integrate: the one input's integral
            formula = add
    ((point, code),) = spec.results()
    return ((point, code, formula),)


def declared(
    bench: Bench, operations: Sequence[VirtualOperation]
) -> tuple[list[Declared], list[str]]:
    """The declared virtual points of ``operations`` this run can judge, and why the others
    cannot (an input that is not one of the terminal's points read from the bench's meters, or
    not of the kind the operation takes): not applicable when the target declares none (a
    PIXIT), inconclusive when it can judge none of them."""
    specs = [v for v in bench.dut.target.parameters.virtual_points if v.operation in operations]
    if not specs:
        raise NotApplicable(
            f"parameters.virtual_points declares no {' or '.join(operations)} point: the lab "
            "configures one on the terminal before the run and declares it there (PIXIT)"
        )
    bindings = {b.point: b for b in bench.dut.points()}
    out: list[Declared] = []
    skipped: list[str] = []
    for spec in specs:
        inputs = [bindings.get(x) for x in spec.inputs]
        want = "gauge" if spec.operation == "integrate" else "counter"
        problem = next(
            (
                f"{x}: not a point of the terminal read from the bench's meters"
                if b is None or not bench.fleet_meter(b) or b.quantity is None
                else f"{x}: a {b.kind}, {spec.operation} is judged over a {want}"
                for x, b in zip(spec.inputs, inputs, strict=True)
                if b is None or not bench.fleet_meter(b) or b.quantity is None or b.kind != want
            ),
            None,
        )
        if problem is not None:
            skipped.append(f"{spec.point}: {problem}")
            continue
        chosen = tuple(b for b in inputs if b is not None)
        out.append(Declared(spec, chosen, _formulas(spec)))
    if not out:
        raise Inconclusive(
            "no declared virtual point can be judged in this run: " + "; ".join(skipped)
        )
    return out, skipped


def _figure(row: ReadingRow, name: str) -> Decimal | None:
    text = row.fields.get(name)
    if text is None or row.flag not in ("N", None):
        return None  # a figure flagged as not measured is no measured figure
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def uploaded(rows: Sequence[ReadingRow], code: str, name: str) -> list[Window]:
    """The minute windows of ``code`` in ``rows``, the first copy of each (later copies are
    the upload suites' business)."""
    first: dict[float, Window] = {}
    for row in sorted(rows, key=lambda r: r.frame_id):
        if row.code == code:
            first.setdefault(posix(row.data_time), Window(posix(row.data_time), _figure(row, name)))
    return sorted(first.values(), key=lambda w: w.start)


async def judge_declared(bench: Bench, evidence: TestLog, *operations: VirtualOperation) -> None:
    """Watch the declared virtual points of ``operations`` for ``WATCH_S``, then judge each
    minute window of every point they make, as the first centre received it, against the
    plant (see the module text)."""
    points, skipped = declared(bench, operations)
    centre = bench.rig.centres[0].name
    start = bench.now()
    with step(f"watch {'; '.join(map(str, points))} for {WATCH_S:g} s"):
        await bench.wait(WATCH_S)
    first, end = whole_minutes(start, bench.now())
    starts = [first + WINDOW_S * k for k in range(int((end - first) // WINDOW_S))]
    codes = {code for d in points for _, code, _ in d.results}
    # the last window needs the reads after it, then its upload
    await bench.rig.sleep_until(end + bench.settled_after())

    def rows() -> list[ReadingRow]:
        return [
            r
            for r in bench.readings(centre, MINUTE_DATA, since=first, before=end)
            if r.code in codes
        ]

    async def arrived() -> bool:
        seen = {(r.code, posix(r.data_time)) for r in rows()}
        return all((c, w) in seen for c in codes for w in starts)

    with step(f"their minute windows reach {centre}"):
        await bench.until(arrived, within=ARRIVAL_S, every=30)
    received = rows()
    verdict = _Verdict(thin=[f"not judged here: {s}" for s in skipped])
    for d in points:
        with step(f"{d}: its minute windows at {centre} against the plant"):
            inputs = [series(bench, b, first, end, per_s=d.per_s) for b in d.inputs]
            verdict.idle(bench, d.inputs, first, end)
            for point, code, formula in d.results:
                result = uploaded(received, code, d.field)
                what = f"{d.spec.operation}, {code} {d.field}"
                verdict.take(evidence, point, what, result, inputs, formula, starts)
    verdict.conclude()

"""Which minute windows a conforming terminal owes a centre, and their figures, from the meters'
logs alone (HJ 212 CN 2051; the figures as CSMT §8.2.1 defines them).

"日结数据是某一活动数据在一天内的增量和当天采集间隔时间内的最大值、最小值 …
同样计算出秒、分钟、小时数据": a window of a **counter** carries its increment (Cou) and the
largest and smallest increment of one acquisition interval in it (Max, Min); a window of a
**gauge** the mean of its readings (Avg) and their extremes. A window is owed when the
terminal surely had a reading for it, and must then arrive with its value and flag N.

What the clauses leave open is a test parameter (``Tolerances``, stated in the report): which
window an increment between two reads counts in (by default the window of its interval's
middle: polls on the minute measure the minute before), how long after its meter answered a
terminal may stamp a reading, and how close to a power cut a reading may be lost.

A window the oracle cannot be sure of is **excused**: it may arrive or not, and its figures are
not judged here. That is a window with an uncertain answer (a communication fault near it, a
power cut just after it), one a gap between two reads crosses (the meter was silent, or the
terminal was off: what a terminal does there — nothing, interpolation, one long increment — is
the processing suites' to judge), one whose reading lies too close to its edge for the stamp to
tell which side it lands, and every window of an *offered* source (an OPC UA server, a
historian), whose log does not say when the terminal read it: those are owed but judged within
bounds (what was on offer over the window), not digit for digit.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from conformance.judge import digits
from conformance.oracle.meter_log import BOOT_S, Answer, MeterLog
from conformance.target import CounterRule, Tolerances

WINDOW_S = 60
DEFAULT_TOLERANCES = Tolerances()
#: An interval between two reads longer than this many times the point's usual one is a gap.
GAP_FACTOR = 1.5


@dataclass(frozen=True, slots=True)
class OwedWindow:
    """One minute window of one point that must arrive: its main figure and extremes. ``slack``
    is how far the main figure may lie from ``value`` (half a digit of the readings for a mean;
    zero for an increment); ``bounded`` windows are judged only to lie within ``low``..``high``
    (an offered source)."""

    start: float
    value: Decimal
    low: Decimal
    high: Decimal
    slack: Decimal = Decimal(0)
    bounded: bool = False


@dataclass
class PointWindows:
    """What one point owes over a range: windows by start, the starts excused, and the starts
    of windows the terminal never asked the meter for although its declared period says it
    must have (``unpolled``: owed, and never measured)."""

    owed: dict[float, OwedWindow] = field(default_factory=dict)
    excused: set[float] = field(default_factory=set)
    unpolled: set[float] = field(default_factory=set)


def window_of(t: float) -> float:
    return t - t % WINDOW_S


def windows_between(a: float, b: float) -> Iterable[float]:
    """The starts of every window that ``[a, b]`` touches."""
    w = window_of(a)
    while w <= b:
        yield w
        w += WINDOW_S


def owed_windows(
    log: MeterLog,
    *,
    meter: str,
    quantity: str,
    kind: Literal["counter", "gauge"],
    start: float,
    end: float,
    tolerances: Tolerances = DEFAULT_TOLERANCES,
    period: float | None = None,
) -> PointWindows:
    """The windows starting in ``[start, end)`` that one point owes (see the module text).
    ``period``: the longest acquisition period the terminal declared for the point over the
    range; windows its meter was never asked for within it are ``unpolled``."""
    # a counter's first window needs the read before it, an offered source's the state on
    # offer when the window began: look back far enough for a slow poll or refresh
    offered = log.kind(meter) == "offered"
    lookback = 3 * 3600.0 if kind == "counter" or offered else 0.0
    answers = log.answers(
        meter, quantity, start - lookback, end + WINDOW_S, cut_loss_s=tolerances.cut_loss_s
    )
    off = log.off_between(start - lookback, end)
    if offered:
        out = _offered(answers, kind, start, end, off)
    elif kind == "gauge":
        out = _gauge(answers, tolerances)
    else:
        out = _counter(answers, log.full_scale(meter, quantity), tolerances)
    inside = PointWindows()
    for w, owed in out.owed.items():
        if start <= w < end:
            inside.owed[w] = owed
    inside.excused = {w for w in out.excused if start <= w < end}
    if period is not None and not offered:
        asked = sorted([a.t for a in answers] + log.fault_times(meter, start - period, end))
        inside.unpolled = {
            w
            for w in _unpolled(asked, start, end, period, off)
            if w not in inside.owed and w not in inside.excused
        }
    return inside


def _unpolled(
    asked: Sequence[float],
    start: float,
    end: float,
    period: float,
    off: Sequence[tuple[float, float]],
) -> set[float]:
    """Windows of ``[start, end)`` inside a stretch longer than the declared period (with the
    gap factor's margin) in which the meter was asked nothing, the terminal being powered."""
    allowed = [(cut, on + period + BOOT_S) for cut, on in off]
    out: set[float] = set()
    edges = [start - period, *(t for t in asked if start - period < t < end), end]
    for a, b in itertools.pairwise(edges):
        if b - a <= GAP_FACTOR * period:
            continue
        for w in windows_between(a + period, b - WINDOW_S):
            if not (start <= w < end) or w + WINDOW_S > b:
                continue
            if any(cut <= w + WINDOW_S and w <= until for cut, until in allowed):
                continue  # the terminal was off, or booting
            out.add(w)
    return out


def _gauge(answers: Sequence[Answer], tolerances: Tolerances) -> PointWindows:
    out = PointWindows()
    samples: dict[float, list[Decimal]] = {}
    for a in answers:
        w = window_of(a.t)
        late = window_of(a.t + tolerances.stamp_lag_s)
        if not a.certain or late != w:  # which window its reading is stamped in is open
            out.excused.update({w, late})
            continue
        samples.setdefault(w, []).append(a.value)
    for w, values in samples.items():
        if w in out.excused:
            continue
        places = max(digits(v) for v in values)
        out.owed[w] = OwedWindow(
            w,
            sum(values, Decimal(0)) / len(values),
            min(values),
            max(values),
            slack=Decimal(1).scaleb(-places) / 2 if len(values) > 1 else Decimal(0),
        )
    return out


def _counter(
    answers: Sequence[Answer], full_scale: Decimal, tolerances: Tolerances
) -> PointWindows:
    out = PointWindows()
    certain = [a for a in answers if a.certain]
    for a in answers:
        if not a.certain:  # the terminal may or may not have read it: the windows near it
            out.excused.update(windows_between(a.t - WINDOW_S, a.t + WINDOW_S))
    usual = _usual_interval(certain)
    increments: dict[float, list[Decimal]] = {}
    lag = tolerances.stamp_lag_s
    for before, after in itertools.pairwise(certain):
        if after.t - before.t > GAP_FACTOR * usual:
            out.excused.update(windows_between(before.t, after.t + lag))
            continue
        step = after.value - before.value
        if step < 0:  # rolled over past full scale (CSMT §8.2.2), or reset
            step += full_scale
            if step > full_scale / 2:  # no register wraps that far in one interval: a reset
                out.excused.update(windows_between(before.t, after.t + lag))
                continue
        at = _attributed(before.t, after.t, tolerances.counter_window)
        w, late = window_of(at), window_of(at + lag)
        if late != w:
            out.excused.update({w, late})
            continue
        increments.setdefault(w, []).append(step)
    for w, steps in increments.items():
        if w in out.excused:
            continue
        out.owed[w] = OwedWindow(w, sum(steps, Decimal(0)), min(steps), max(steps))
    return out


def _offered(
    answers: Sequence[Answer],
    kind: Literal["counter", "gauge"],
    start: float,
    end: float,
    off: Sequence[tuple[float, float]],
) -> PointWindows:
    """Bounds only: the terminal read some state on offer in each window (and, for a counter,
    one in the window before), the log does not say which. Only while it was on: the log of an
    offered source goes on whether anybody reads it."""
    out = PointWindows()
    if not answers:
        return out
    times = [a.t for a in answers]
    reach = WINDOW_S if kind == "counter" else 0.0
    for w in windows_between(start, end - 1e-9):
        if w < start or w - reach < times[0] or w + WINDOW_S > times[-1]:
            continue  # not on offer all the window through
        if any(cut <= w + WINDOW_S and w - reach <= on + BOOT_S for cut, on in off):
            out.excused.add(w)  # off, or booting: what it reads first is its own affair
            continue
        on = _on_offer(answers, w - (WINDOW_S if kind == "counter" else 0), w + WINDOW_S)
        if not on or not all(a.certain for a in on):
            out.excused.add(w)
            continue
        values = [a.value for a in on]
        if kind == "gauge":
            low, high = min(values), max(values)
        else:  # counters only grow between two reads of the window and the one before
            low, high = Decimal(0), max(values) - min(values)
        out.owed[w] = OwedWindow(w, (low + high) / 2, low, high, bounded=True)
    return out


def _on_offer(answers: Sequence[Answer], a: float, b: float) -> list[Answer]:
    """The states on offer at some instant of ``[a, b)``: the last one before ``a`` and every
    one made in it."""
    before = [x for x in answers if x.t < a]
    inside = [x for x in answers if a <= x.t < b]
    return ([before[-1]] if before else []) + inside


def _attributed(t0: float, t1: float, rule: CounterRule) -> float:
    if rule == "end":
        return t1
    if rule == "start":
        return t0
    return (t0 + t1) / 2


def _usual_interval(answers: Sequence[Answer]) -> float:
    gaps = [b.t - a.t for a, b in itertools.pairwise(answers)]
    return max(statistics.median(gaps), 1.0) if gaps else 60.0

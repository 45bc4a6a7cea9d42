"""Alarms on emissions and intensities (ISC-2 §7.2.6; SSEA §5.4.6): thresholds, anomalies
against the recent past, and accounting periods with too little data.

A rule watches one *measure* (see :func:`~.statistics.measure`: ``total``, ``scope1``,
``source:NAME``, ``intensity:electricity`` …) over one kind of period, or over single minutes
(``period: minute``). Three kinds:

- :class:`ThresholdRule`: the figure is above ``above`` or below ``below``.
- :class:`AnomalyRule`: the figure departs from the median of the last ``window`` figures of
  the same rule: more than ``ratio`` times it (or less than it divided by ``ratio``), and/or a
  robust z-score ``|x − median| / (1.4826 · MAD)`` over ``z``. Nothing is judged before
  ``min_history`` figures exist, and a median below ``floor`` is taken as ``floor`` so that a
  plant that was idle does not alarm on its first kilowatt-hour.
- :class:`CoverageRule`: a source had data for less than ``min_coverage`` of the period's
  minutes (an acquisition gap that the period's emission silently lacks).

:class:`AlarmMonitor` keeps each rule's history and state: an alarm is *raised* once when its
condition starts and *cleared* once when it ends, each an :class:`AlarmEvent` with the rule, the
figure, the limit it broke, the period and the meters behind the figure. ``to_event`` turns it
into the terminal's event record (``kind="alarm"``).
"""

from __future__ import annotations

import bisect
import statistics as pystats
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.statistics import Period, PeriodTotals, measure
from reference_terminal.accounting.units import CONTEXT
from reference_terminal.model import Event

MINUTE: Literal["minute"] = "minute"
Granularity = Period | Literal["minute"]
MAD_SCALE = Decimal("1.4826")  # MAD → standard deviation for normal data


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlarmType(StrEnum):
    THRESHOLD = "threshold"
    ANOMALY = "anomaly"
    COVERAGE = "coverage"


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    id: str
    measure: str
    period: Granularity
    above: Decimal | None = None
    below: Decimal | None = None
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if self.above is None and self.below is None:
            raise AccountingError(f"alarm rule {self.id!r}: give above, below or both")


@dataclass(frozen=True, slots=True)
class AnomalyRule:
    id: str
    measure: str
    period: Granularity
    window: int = 24
    ratio: Decimal | None = Decimal(5)
    z: Decimal | None = None
    min_history: int = 6
    floor: Decimal = Decimal("0.001")
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if self.ratio is None and self.z is None:
            raise AccountingError(f"alarm rule {self.id!r}: give ratio, z or both")
        if self.ratio is not None and self.ratio <= 1:
            raise AccountingError(f"alarm rule {self.id!r}: ratio must be above 1")
        if not 1 <= self.min_history <= self.window:
            raise AccountingError(f"alarm rule {self.id!r}: need 1 ≤ min_history ≤ window")


@dataclass(frozen=True, slots=True)
class CoverageRule:
    id: str
    period: Period
    min_coverage: Decimal = Decimal("0.9")
    sources: tuple[str, ...] = ()  # empty: every source
    severity: Severity = Severity.WARNING


Rule = ThresholdRule | AnomalyRule | CoverageRule


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One alarm raised or cleared: what was watched, what it was, what it should have been."""

    t: float  # POSIX seconds: the end of the period (or minute) that was judged
    state: Literal["raised", "cleared"]
    rule: str
    type: AlarmType
    severity: Severity
    subject: str  # the measure, or "coverage:SOURCE"
    period: str  # "minute" or the period kind
    span: str  # the period's label, or the minute's time
    value: Decimal | None
    limit: Decimal | None  # the bound broken (a threshold, ratio × median, a coverage)
    baseline: Decimal | None = None  # anomalies: the median of the window
    meters: tuple[str, ...] = ()  # the meters behind the figure (traceability)
    message: str = ""

    def to_event(self) -> Event:
        """The terminal's event record for the log and the management API."""
        details = {
            "state": self.state,
            "rule": self.rule,
            "type": self.type.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "period": self.period,
            "span": self.span,
            "message": self.message,
        }
        for name in ("value", "limit", "baseline"):
            value = getattr(self, name)
            if value is not None:
                details[name] = plain(value)
        if self.meters:
            details["meters"] = ",".join(self.meters)
        return Event(t=self.t, kind="alarm", details=details)


# ---- judging one figure ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    value: Decimal | None
    limit: Decimal | None
    baseline: Decimal | None
    message: str


def plain(value: Decimal) -> str:
    """A decimal in fixed point without trailing zeros, every digit kept."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001'), context=CONTEXT).normalize():f}"


def threshold_breach(rule: ThresholdRule, value: Decimal | None) -> Breach | None:
    if value is None:
        return None
    if rule.above is not None and value > rule.above:
        return Breach(value, rule.above, None, f"{rule.measure} {_fmt(value)} > {rule.above}")
    if rule.below is not None and value < rule.below:
        return Breach(value, rule.below, None, f"{rule.measure} {_fmt(value)} < {rule.below}")
    return None


class _Window:
    """An anomaly rule's last ``size`` figures, also kept sorted: the median is then an index
    rather than a sort of the window every minute (one rule per point is judged each minute on
    the booking path, before the readings are written)."""

    __slots__ = ("_recent", "_sorted", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._recent: deque[Decimal] = deque()
        self._sorted: list[Decimal] = []

    def append(self, value: Decimal) -> None:
        if len(self._recent) == self.size:
            del self._sorted[bisect.bisect_left(self._sorted, self._recent.popleft())]
        self._recent.append(value)
        bisect.insort(self._sorted, value)

    def extend(self, values: Iterable[Decimal]) -> None:
        for value in values:
            self.append(value)

    def __len__(self) -> int:
        return len(self._recent)

    def __iter__(self) -> Iterator[Decimal]:
        return iter(self._recent)

    def median(self) -> Decimal:
        """As :func:`statistics.median` gives it (the mean of the middle two for an even
        count)."""
        ordered, n = self._sorted, len(self._sorted)
        mid = n // 2
        return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def anomaly_breach(
    rule: AnomalyRule, value: Decimal | None, history: Sequence[Decimal]
) -> Breach | None:
    """``value`` judged against ``history`` (oldest first; the last ``window`` count)."""
    window = _Window(rule.window)
    window.extend(history)
    return _judge_anomaly(rule, value, window)


def _judge_anomaly(rule: AnomalyRule, value: Decimal | None, recent: _Window) -> Breach | None:
    if value is None or len(recent) < rule.min_history:
        return None
    median = recent.median()
    base = max(abs(median), rule.floor)
    if rule.ratio is not None:
        high = CONTEXT.multiply(base, rule.ratio)
        if abs(value) > high:
            return Breach(
                value,
                high,
                median,
                f"{rule.measure} {_fmt(value)} is over {rule.ratio} × its median {_fmt(median)} "
                f"of the last {len(recent)}",
            )
    if rule.z is not None:
        mad = pystats.median(abs(CONTEXT.subtract(x, median)) for x in recent)
        spread = max(CONTEXT.multiply(MAD_SCALE, mad), CONTEXT.multiply(base, Decimal("0.01")))
        score = CONTEXT.divide(abs(CONTEXT.subtract(value, median)), spread)
        if score > rule.z:
            limit = CONTEXT.add(median, CONTEXT.multiply(rule.z, spread))
            return Breach(
                value,
                limit,
                median,
                f"{rule.measure} {_fmt(value)} is {_fmt(score)} robust deviations from its "
                f"median {_fmt(median)} (limit {rule.z})",
            )
    return None


def coverage_breaches(rule: CoverageRule, totals: PeriodTotals) -> dict[str, Breach]:
    """The sources of ``totals`` whose share of minutes with data is under the rule's."""
    names = rule.sources or tuple(totals.sources)
    out = {}
    for name in names:
        share = totals.coverage(name)
        if share < rule.min_coverage:
            out[name] = Breach(
                share,
                rule.min_coverage,
                None,
                f"source {name!r} has data for {_fmt(share * 100)} % of {totals.span} "
                f"(at least {_fmt(rule.min_coverage * 100)} % needed): its emission is incomplete",
            )
    return out


# ---- the monitor -------------------------------------------------------------------------------


def _type_of(rule: Rule) -> AlarmType:
    if isinstance(rule, ThresholdRule):
        return AlarmType.THRESHOLD
    return AlarmType.ANOMALY if isinstance(rule, AnomalyRule) else AlarmType.COVERAGE


@dataclass
class _State:
    history: _Window
    active: set[str] = field(default_factory=set)


class AlarmMonitor:
    """Rules with their history and their raised alarms; feed it figures as periods close."""

    def __init__(
        self, rules: Iterable[Rule], meters: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.rules = tuple(rules)
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise AccountingError("alarm rules: ids must be unique")
        #: source → its meters, so an alarm names the meters behind its figure
        self.meters = {k: tuple(v) for k, v in (meters or {}).items()}
        self._state = {
            r.id: _State(_Window(r.window if isinstance(r, AnomalyRule) else 1)) for r in self.rules
        }
        # The rules of each granularity: a point's monitor is asked every minute, and at every
        # period it closes, mostly about granularities it has no rule for.
        self._judging: dict[Granularity, tuple[Rule, ...]] = {}
        for r in self.rules:
            self._judging[r.period] = (*self._judging.get(r.period, ()), r)

    def judges(self, period: Granularity) -> bool:
        """Whether any rule judges figures of ``period``."""
        return period in self._judging

    def active(self) -> list[tuple[str, str]]:
        """(rule, subject) of every alarm raised and not cleared."""
        return sorted((rid, s) for rid, st in self._state.items() for s in st.active)

    def history(self, rule_id: str) -> list[Decimal]:
        """The figures an anomaly rule judges the next one against, oldest first."""
        return list(self._state[rule_id].history)

    def restore(
        self, rule_id: str, *, active: Iterable[str] = (), history: Iterable[Decimal] = ()
    ) -> None:
        """Carry a rule on from before a restart (ISC-2 §7.2.6): the subjects it had raised and
        not cleared (so they clear once, and are not raised twice), and for an anomaly rule the
        figures it had judged, oldest first (so it does not start blind)."""
        state = self._state.get(rule_id)
        if state is None:
            raise AccountingError(f"alarm rule {rule_id!r}: not a rule of this monitor")
        state.active |= set(active)
        if any(r.id == rule_id and isinstance(r, AnomalyRule) for r in self.rules):
            state.history.extend(history)  # the window's length: the last ones stay

    def _meters_of(self, subject: str) -> tuple[str, ...]:
        _, _, name = subject.partition(":")
        if name in self.meters:
            return self.meters[name]
        if subject.partition(":")[0] in ("source", "activity", "coverage"):
            return ()
        return tuple(m for ms in self.meters.values() for m in ms)

    def _transition(
        self,
        rule: Rule,
        subject: str,
        breach: Breach | None,
        value: Decimal | None,
        t: float,
        period: str,
        span: str,
    ) -> AlarmEvent | None:
        state = self._state[rule.id]
        if breach is not None and subject not in state.active:
            state.active.add(subject)
            return AlarmEvent(
                t, "raised", rule.id, _type_of(rule), rule.severity, subject, period, span,
                breach.value, breach.limit, breach.baseline, self._meters_of(subject),
                breach.message,
            )  # fmt: skip
        if breach is None and subject in state.active:
            state.active.discard(subject)
            return AlarmEvent(
                t, "cleared", rule.id, _type_of(rule), rule.severity, subject, period, span,
                value, None, None, self._meters_of(subject), f"{subject} back within limits",
            )  # fmt: skip
        return None

    def observe(
        self,
        period: Granularity,
        span: str,
        t: float,
        value_of: Callable[[str], Decimal | None],
        totals: PeriodTotals | None = None,
    ) -> list[AlarmEvent]:
        """Judge one closed period (or one minute) with every rule of that granularity.

        ``value_of`` gives a measure's figure; ``totals`` (for periods) is what coverage rules
        read. Anomaly rules judge the figure against the history *before* it, then add it.
        """
        events: list[AlarmEvent] = []
        for rule in self._judging.get(period, ()):
            if isinstance(rule, CoverageRule):
                if totals is None:
                    continue
                breaches = coverage_breaches(rule, totals)
                names = rule.sources or tuple(totals.sources)
                for name in names:
                    e = self._transition(
                        rule, f"coverage:{name}", breaches.get(name), totals.coverage(name),
                        t, str(period), span,
                    )  # fmt: skip
                    if e is not None:
                        events.append(e)
                continue
            state = self._state[rule.id]
            value = value_of(rule.measure)
            if isinstance(rule, ThresholdRule):
                breach = threshold_breach(rule, value)
            else:
                breach = _judge_anomaly(rule, value, state.history)
                if value is not None:
                    state.history.append(value)
            if (breach is None) != (rule.measure in state.active):
                continue  # no change: neither raised nor cleared (most minutes)
            e = self._transition(rule, rule.measure, breach, value, t, str(period), span)
            if e is not None:
                events.append(e)
        return events

    def observe_totals(
        self, totals: PeriodTotals, also: Mapping[str, Decimal] | None = None
    ) -> list[AlarmEvent]:
        """Judge a closed period's totals (at the period's end); ``also``: figures of the
        period the totals do not hold (a point that only feeds a basis: its activity)."""
        if totals.span.period not in self._judging:
            return []  # nothing to judge: no label to make

        def value_of(name: str) -> Decimal | None:
            if also and name in also:
                return also[name]
            return measure(totals, name)

        return self.observe(
            totals.span.period,
            totals.span.label,
            float(totals.span.end_minute * 60),
            value_of,
            totals,
        )

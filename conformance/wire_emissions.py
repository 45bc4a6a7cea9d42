"""Emissions judged on the wire: the figures a terminal uploads under its emission codes (CN
2051 minute, 2061 hourly, 2031 daily data; ``Cou`` = tCO2 in the period) against what the
bench's own truth gives — each read's activity in each minute window from the meters' logs
(:func:`conformance.oracle.owed_windows`: a counter's increment, exact) times its source's rate
(:mod:`conformance.emission_plan`).

**A code's minute** is the sum over the sources it adds up. It is *owed* when every metered
read's window is known: its increment (or none attributed there: nothing). It is *unknown* when
a read's window is excused (a fault near it, a gap, an edge the stamp cannot tell) or its rate
is (a publication changing): an upload is then not judged. It is *unmeasured* when the terminal
never asked a meter for it although its declared period says it must have: no conforming
terminal can have that figure, and the minute fails. A source entered by hand counts as what its
own code uploaded that minute (an entry's own figure is judged where the bench made it).

**The limit**: a correct figure is the truth rounded to the places the terminal reports, once
per source it adds (half a unit of its last place each); an offered source's window adds its
bounds' half width. The guard band of :func:`conformance.accounting_oracle.decide`.

**A period's figure** (an hour, a day) is the sum of its minutes: the owed ones' truths, and
where a minute is unknown what the terminal uploaded for it (not judged there, but no excuse for
the period's own arithmetic); a minute unknown and never uploaded leaves the period unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from conformance.accounting_oracle import Judgement, Outcome, decide, half_unit, unjudged
from conformance.bench import Bench, local, posix, whole_minutes
from conformance.emission_plan import Plan, PlannedSource, Rates
from conformance.oracle import PointWindows, owed_windows
from conformance.target import EmissionCode
from protocols.hj212 import Packet

MINUTE_CN, HOUR_CN, DAY_CN = 2051, 2061, 2031
WINDOW_S = 60.0
#: How long after a minute window ends its emission figure is due at the centres, beyond the
#: reads that settle its activity: a code waits for its slowest source (a period or two).
FIGURE_LAG_S = 240.0
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Known:
    """A figure the bench knows: ``value``, which a correct terminal reports within ``width``
    (how wide the truth is known: an offered source's bounds) and its rounding of ``parts``
    figures (half a unit of the last place it reports, each)."""

    value: Decimal
    width: Decimal
    parts: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A figure the bench cannot know; ``blame``: no conforming terminal can have it (a meter
    it never asked)."""

    why: str
    blame: bool = False


Expected = Known | Unknown


@dataclass
class Uploaded:
    """What a centre received under emission codes: (code, window start) → distinct values."""

    values: dict[tuple[str, float], list[Decimal]] = field(default_factory=dict)

    @classmethod
    def read(cls, bench: Bench, centre: str, cn: int, start: float, end: float) -> Uploaded:
        """The figures of CN ``cn`` with DataTime in ``[start, end)``."""
        out = cls()
        for row in bench.readings(centre, cn, since=start, before=end):
            if row.value is None:
                continue
            got = out.values.setdefault((row.code, posix(row.data_time)), [])
            if row.value not in got:
                got.append(row.value)
        return out

    @classmethod
    def answered(cls, records: Iterable[Packet]) -> Uploaded:
        """The ``Cou`` figures of the records a history request returned (2061, 2031 …)."""
        out = cls()
        for packet in records:
            data_time = packet.cp.data_time
            if data_time is None:
                continue
            for code, pollutant in packet.cp.pollutants.items():
                value = pollutant.values.get("Cou")
                got = out.values.setdefault((code, posix(data_time)), [])
                if value is not None and value not in got:
                    got.append(value)
        return out

    def first(self, code: str, w: float) -> Decimal | None:
        got = self.values.get((code, w))
        return got[0] if got else None


class Truth:
    """Each metered read's activity per minute window over ``[start, end)``, from the meters'
    logs (``owed_windows``)."""

    def __init__(
        self,
        bench: Bench,
        sources: Iterable[PlannedSource],
        start: float,
        end: float,
    ) -> None:
        self.start, self.end = whole_minutes(start, end)
        self.windows: dict[tuple[str, str], PointWindows] = {}
        for source in sources:
            if source.manual:
                continue
            for meter, quantity, _ in source.reads:
                if (meter, quantity) in self.windows:
                    continue
                self.windows[(meter, quantity)] = owed_windows(
                    bench.rig.meter_log,
                    meter=meter,
                    quantity=quantity,
                    kind="counter",
                    start=self.start,
                    end=self.end,
                    tolerances=bench.tolerances,
                    period=_period(bench, meter, quantity, self.start, self.end),
                )

    def minutes(self) -> list[float]:
        out, w = [], self.start
        while w < self.end:
            out.append(w)
            w += WINDOW_S
        return out

    def activity(self, meter: str, quantity: str, w: float) -> tuple[Decimal, Decimal] | Unknown:
        """The read's increment in window ``w`` and how wide the bench knows it (0 but for an
        offered source's bounds)."""
        windows = self.windows[(meter, quantity)]
        owed = windows.owed.get(w)
        if owed is not None:
            if owed.bounded:
                return owed.value, (owed.high - owed.low) / 2
            return owed.value, ZERO
        if w in windows.unpolled:
            return Unknown(f"the terminal never asked {meter} for {quantity}", blame=True)
        if w in windows.excused:
            return Unknown(f"{meter}'s window is excused (a fault, a gap or an edge)")
        return ZERO, ZERO  # no increment counts in this window


def _period(bench: Bench, meter: str, quantity: str, start: float, end: float) -> float:
    """The acquisition period the terminal declared for the point reading ``meter``'s
    ``quantity`` (the longest declared when the bench does not know the point)."""
    for binding in bench.dut.points():
        if binding.meter == meter and binding.quantity == quantity:
            return bench.longest_period(binding.group, start, end)
    periods = bench.dut.target.parameters.periods.values()
    return float(max(periods, default=60.0))


def expected_minute(
    plan: Plan,
    truth: Truth,
    rates: Rates,
    sources: Sequence[PlannedSource],
    w: float,
    uploaded: Uploaded,
) -> Expected:
    """What ``sources`` emitted in the minute window starting at ``w``."""
    value = width = ZERO
    parts = 0
    for source in sources:
        parts += 1
        if source.manual:
            own = plan.own_code(source.id)
            entered = None if own is None else uploaded.first(own, w)
            value += entered or ZERO
            continue
        for i, (meter, quantity, _) in enumerate(source.reads):
            activity = truth.activity(meter, quantity, w)
            if isinstance(activity, Unknown):
                return Unknown(f"{source.id}: {activity.why}", activity.blame)
            rate = rates.at(source, i, w)
            if isinstance(rate, str):
                return Unknown(f"{source.id}: {rate}")
            value += activity[0] * rate
            width += activity[1] * abs(rate)
    return Known(value, width, parts)


def judge_figure(figure: str, expected: Expected, reported: Sequence[Decimal]) -> list[Judgement]:
    """Each distinct value a centre received for one figure against what it should be."""
    if isinstance(expected, Unknown):
        if expected.blame:
            return [
                Judgement(figure, Outcome.FAIL, reported[0] if reported else None, None, ZERO,
                          ZERO, expected.why)
            ]  # fmt: skip
        return [unjudged(figure, r, expected.why) for r in reported]
    if not reported:
        why = f"owed ({expected.value:.10f} tCO2), never arrived"
        return [Judgement(figure, Outcome.FAIL, None, expected.value, ZERO, ZERO, why)]
    return [
        decide(figure, r, expected.value, expected.width + expected.parts * half_unit(r), ZERO)
        for r in reported
    ]


def judge_minutes(
    plan: Plan,
    truth: Truth,
    rates: Rates,
    codes: Iterable[EmissionCode],
    uploaded: Uploaded,
    minutes: Iterable[float] | None = None,
) -> list[Judgement]:
    """Every minute of ``truth``'s span (or ``minutes`` of it) of each code: owed ones must
    have arrived, right."""
    out = []
    chosen = truth.minutes() if minutes is None else list(minutes)
    for code in codes:
        members = plan.members(code)
        if not members or all(s.manual for s in members):
            continue  # entered by hand only: the meters' logs know nothing of it
        for w in chosen:
            expected = expected_minute(plan, truth, rates, members, w, uploaded)
            got = uploaded.values.get((code.code, w), [])
            if isinstance(expected, Unknown) and not expected.blame and not got:
                continue
            out += judge_figure(f"{code.code} {local(w):%H:%M}", expected, got)
    return out


def period_sum(
    plan: Plan,
    truth: Truth,
    rates: Rates,
    code: EmissionCode,
    minutes: Iterable[float],
    uploaded: Uploaded,
) -> Expected:
    """A period's figure of ``code`` from its minutes (see the module text)."""
    members = plan.members(code)
    value = width = ZERO
    parts = 0
    for w in minutes:
        expected: Expected = Unknown("before the span the bench judges")
        if w >= truth.start:
            expected = expected_minute(plan, truth, rates, members, w, uploaded)
        if isinstance(expected, Unknown):
            if expected.blame:
                return Unknown(f"minute {local(w):%H:%M}: {expected.why}", blame=True)
            # taken as it arrived (that minute is the minute test's to judge); before the
            # span, a minute that never came had nothing
            got = uploaded.first(code.code, w)
            if got is None and w >= truth.start:
                return Unknown(f"minute {local(w):%H:%M}: {expected.why}, and none arrived")
            value += got or ZERO
            parts += 1  # its own rounding
            continue
        value += expected.value
        width += expected.width
        parts += expected.parts
    return Known(value, width, parts)


def missing(
    codes: Iterable[str], minutes: Iterable[float], uploaded: Uploaded
) -> list[tuple[str, float]]:
    """(code, minute) pairs that have not arrived."""
    return [(c, w) for c in codes for w in minutes if (c, w) not in uploaded.values]


def first_hj212_centre(bench: Bench) -> str:
    return bench.rig.hj212_centres()[0]


async def minutes_uploaded(
    bench: Bench,
    plan: Plan,
    codes: Sequence[EmissionCode],
    start: float,
    end: float,
    extra: Sequence[PlannedSource] = (),
) -> tuple[str, Truth, Rates, Uploaded]:
    """Wait until the emission figures of ``codes`` for ``[start, end)`` are due at the first
    HJ 212 centre (and, within a while, every owed one has come): the centre, the truth (of
    the declared sources and ``extra`` ones), the rates and what arrived."""
    centre = first_hj212_centre(bench)
    start, end = whole_minutes(start, end)
    await bench.rig.sleep_until(end + bench.settled_after() + FIGURE_LAG_S)
    truth = Truth(bench, [*plan.sources.values(), *extra], start, end)
    rates = Rates.now(bench, plan)
    metered = [c for c in codes if any(not s.manual for s in plan.members(c))]

    async def complete() -> bool:
        got = Uploaded.read(bench, centre, MINUTE_CN, start, end)
        return not missing([c.code for c in metered], truth.minutes(), got)

    await bench.until(complete, within=600, every=60)
    return centre, truth, rates, Uploaded.read(bench, centre, MINUTE_CN, start, end)


def could_tell(judged: Sequence[Judgement]) -> bool:
    """Whether some figure was judged against a truth other than zero (a test on a plant
    standing still shows nothing)."""
    return any(j.expected is not None and j.expected != 0 for j in judged)

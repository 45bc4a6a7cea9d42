"""The accounting oracle: every emission figure a terminal reports, recomputed from the plant's
truth, and judged.

**What it knows.** The fleet's accounting section (which meter's reading of which plant
quantity feeds which source, with which method) and the bench's factor library
(``fixtures/factors``, read here as plain YAML): from them, its own arithmetic gives each
source's rate, the tCO2 of one unit of its activity (GB/T 32150 as FACTS.md states it:
combustion ``NCV × CC × OF × 44/12``, electricity and heat ``EF``, exported ones ``−EF``,
carbonates ``EF × purity``, process ``EF``). It shares no code with any terminal.

**A figure.** A terminal's emission over some span of one point, with the register readings
its activity spans (``first``, ``last``: the trace to the meter, CSMT §11.8). The bench's record
of what the meter said pins each register to the instant the meter showed it, and so to the
plant's exact value then: the true activity is ``truth(last) − truth(first)``, the expected
emission that times the rate. A hand entry is pinned by the times the bench entered it.

**The judgement** (a guard band, DESIGN.md "inconclusive"). A correct terminal's figure lies
within the *limit* the meters' resolution allows: a register shows the truth cut to the meter's
last digit at each end, so the activity is within one resolution step of the truth, the
emission within that times the rate, plus half a unit of the last place the terminal reports
the emission with. The bench's own *uncertainty* is how well
it pinned the ends (when several answers of the meter showed the same register, the truth
somewhere between them). Then ``|reported − expected| + uncertainty ≤ limit`` passes,
``|reported − expected| − uncertainty > limit`` fails, anything between is inconclusive. A
figure whose span saw a value fault of its meter (a spike, a replaced meter) is inconclusive:
the meter itself was wrong then.

**Intensities** (ISC-2 §7.2.3(3): tCO2 per unit of electricity, of heat, of product) are
quotients of two such figures: the period's total emission ``E`` (its points' truths, limits
and uncertainties added up) over the basis amount ``A`` (the basis meters' truths over the
same period, converted to the unit the terminal reports the amount in; each meter's limit one
resolution step). Both are intervals, so the quotient is judged by interval arithmetic: the
*limit* is how far ``E'/A'`` can be from ``E/A`` for any ``E'`` within ``E``'s limit and
``A'`` within ``A``'s (plus half a unit of the last place reported), the *uncertainty* the
same with the bench's own uncertainties. A basis that its limit and uncertainty cannot tell
from zero leaves the intensity inconclusive.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.accounting import Source

LIBRARY = Path(__file__).resolve().parents[1] / "fixtures" / "factors"
CALC = Context(prec=60)
C_TO_CO2 = CALC.divide(Decimal(44), Decimal(12))
SCOPE = {
    "combustion": 1,
    "process": 1,
    "carbonate": 1,
    "recovered": 1,
    "electricity": 2,
    "heat": 2,
    "exported_electricity": 2,
    "exported_heat": 2,
    "biomass": None,
}
NEGATIVE = {"exported_electricity", "exported_heat", "recovered"}

# ---- units, independently of any terminal ------------------------------------------------------

#: unit → (dimension, size in the dimension's base unit: GJ, t, Nm3, tCO2, tC, 1)
UNITS: dict[str, tuple[str, Decimal]] = {
    "GJ": ("energy", Decimal(1)),
    "MJ": ("energy", Decimal("0.001")),
    "TJ": ("energy", Decimal(1000)),
    "kWh": ("energy", Decimal("0.0036")),
    "MWh": ("energy", Decimal("3.6")),
    "t": ("mass", Decimal(1)),
    "kg": ("mass", Decimal("0.001")),
    "Nm3": ("volume", Decimal(1)),
    "Nm³": ("volume", Decimal(1)),
    "tCO2": ("co2", Decimal(1)),
    "kgCO2": ("co2", Decimal("0.001")),
    "tC": ("carbon", Decimal(1)),
    "%": ("fraction", Decimal("0.01")),
    "": ("fraction", Decimal(1)),
}
_TERM = re.compile(r"^\s*(?:10\^(-?\d+)\s*)?(\S*)\s*$")


class OracleError(ValueError):
    """The fleet's accounting cannot be recomputed (a unit or factor the oracle lacks)."""


def _term(text: str) -> tuple[str, Decimal]:
    match = _TERM.match(text)
    if match is None or match[2] not in UNITS:
        raise OracleError(f"unit {text!r}: not one the oracle knows")
    dimension, size = UNITS[match[2]]
    power = int(match[1] or 0)
    return dimension, size.scaleb(power)


@dataclass(frozen=True, slots=True)
class Rate:
    """A quantity per quantity: ``value`` in base units of ``num`` per ``den_size`` base units
    of ``den`` (kept apart so that the one division comes last)."""

    value: Decimal
    num: str
    den: str | None
    den_size: Decimal = Decimal(1)

    @classmethod
    def parse(cls, text: str) -> Rate:
        number, _, unit = text.strip().partition(" ")
        num, _, den = unit.partition("/")
        dim, size = _term(num)
        value = CALC.multiply(Decimal(number), size)
        if not den:
            return cls(value, dim, None)
        den_dim, den_size = _term(den)
        return cls(value, dim, den_dim, den_size)

    def per(self, unit: str) -> Decimal:
        """This rate per one ``unit`` of its denominator (base numerator units)."""
        dim, size = _term(unit)
        if dim != self.den:
            raise OracleError(f"a rate per {self.den} applied to {unit}")
        return CALC.divide(CALC.multiply(self.value, size), self.den_size)


# ---- the library and the expected rates --------------------------------------------------------


def library(directory: Path = LIBRARY) -> dict[tuple[str, str], dict[str, Any]]:
    """(vintage, name) → the factor's entry, from the library files as they are."""
    return library_of(path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.yaml")))


def library_of(texts: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """:func:`library` of library files' texts (one vintage, or ``vintages:`` several)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for text in texts:
        data = yaml.safe_load(text)
        for vintage in data.get("vintages", [data]):
            for entry in vintage["factors"]:
                key = (vintage["vintage"], entry["name"])
                if key in out:  # several data years: the oracle does not guess which
                    out[key] = {"ambiguous": True}
                else:
                    out[key] = entry
    return out


def expected_rate(
    source: Source,
    unit: str,
    factors: Mapping[tuple[str, str], Mapping[str, Any]],
    vintage: str | None,
) -> Decimal:
    """tCO2 per one ``unit`` of the source's activity (see the module text)."""
    params: dict[str, str] = {}
    named = source.fuel or (
        source.factor if source.factor and not _numeric(source.factor) else None
    )
    if named is not None:
        entry = factors.get((vintage or "", named))
        if entry is None or entry.get("ambiguous"):
            raise OracleError(f"source {source.id}: no single factor {named!r} in {vintage!r}")
        params |= {
            k: str(v)
            for k, v in entry.items()
            if k in ("ncv", "carbon_content", "oxidation", "factor")
        }
    for name in ("ncv", "carbon_content", "oxidation", "factor", "purity"):
        given = getattr(source, name)
        if given is not None and (name != "factor" or _numeric(given)):
            params[name] = given
    if source.kind in ("combustion", "biomass") and "factor" not in params:
        ad = Rate.parse(params["ncv"]).per(unit) if _term(unit)[0] != "energy" else _term(unit)[1]
        cc = Rate.parse(params["carbon_content"]).per("GJ")
        of = Rate.parse(params["oxidation"]).value
        rate = CALC.multiply(CALC.multiply(CALC.multiply(ad, cc), of), C_TO_CO2)
    else:
        factor = Rate.parse(params["factor"])
        if factor.num != "co2":
            raise OracleError(f"source {source.id}: factor {params['factor']!r} is not tCO2 per …")
        rate = factor.per(unit)
        if "purity" in params:
            rate = CALC.multiply(rate, Rate.parse(params["purity"]).value)
    return -rate if source.kind in NEGATIVE else rate


def _numeric(text: str) -> bool:
    return text.strip()[:1] in set("+-.0123456789")


@dataclass(frozen=True, slots=True)
class Bound:
    """One read of the fleet's accounting: a meter's quantity feeding a source at a rate."""

    source: str
    kind: str
    scope: int | None
    meter: str
    quantity: str
    unit: str
    rate: Decimal  # tCO2 per unit of the quantity


@dataclass(frozen=True, slots=True)
class BasisRead:
    """One read of an intensity basis: a meter's quantity counted in the basis."""

    basis: str  # electricity | heat | product
    meter: str
    quantity: str
    unit: str  # the quantity's unit in the plant


def basis_reads(fleet: FleetRuntime) -> dict[tuple[str, str], BasisRead]:
    """(meter, quantity) → the intensity basis it is counted in (the fleet's ``bases``)."""
    acc = fleet.spec.accounting
    if acc is None:
        return {}
    out = {}
    for name, basis in acc.bases.items():
        for read in basis.reads:
            unit = fleet.plant.quantity(read.quantity).unit
            out[(read.meter, read.quantity)] = BasisRead(name, read.meter, read.quantity, unit)
    return out


def conversion(unit: str, target: str) -> Decimal:
    """How many ``target`` one ``unit`` is (1 for the same unit text, e.g. a product's)."""
    if unit == target:
        return Decimal(1)
    (dim_a, size_a), (dim_b, size_b) = _term(unit), _term(target)
    if dim_a != dim_b:
        raise OracleError(f"cannot count {unit} in {target}")
    return CALC.divide(size_a, size_b)


def bound_reads(fleet: FleetRuntime, directory: Path = LIBRARY) -> dict[tuple[str, str], Bound]:
    """(meter, quantity) → what the fleet's accounting says it feeds, at which rate."""
    acc = fleet.spec.accounting
    if acc is None:
        return {}
    factors = library(directory)
    out = {}
    for _unit, source in acc.sources():
        for read in source.reads:
            unit = fleet.plant.quantity(read.quantity).unit
            rate = expected_rate(source, unit, factors, acc.vintage)
            out[(read.meter, read.quantity)] = Bound(
                source.id, source.kind, SCOPE[source.kind], read.meter, read.quantity, unit, rate
            )
    return out


# ---- judging -----------------------------------------------------------------------------------


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Judgement:
    figure: str  # what was judged, for people
    outcome: Outcome
    reported: Decimal | None
    expected: Decimal | None
    limit: Decimal
    uncertainty: Decimal
    why: str = ""
    faults: tuple[str, ...] = ()  # value faults of the meter over the figure's span

    def data(self) -> dict[str, str]:
        return {
            "figure": self.figure,
            "outcome": self.outcome.value,
            "reported": "" if self.reported is None else f"{self.reported:f}",
            "expected": "" if self.expected is None else f"{self.expected:.10f}",
            "limit": f"{self.limit:.10f}",
            "uncertainty": f"{self.uncertainty:.10f}",
            "why": self.why,
        }


def unjudged(figure: str, reported: Decimal, why: str) -> Judgement:
    """A figure the bench cannot recompute: inconclusive, with why."""
    return Judgement(figure, Outcome.INCONCLUSIVE, reported, None, Decimal(0), Decimal(0), why)


def decide(
    figure: str, reported: Decimal, expected: Decimal, limit: Decimal, uncertainty: Decimal
) -> Judgement:
    """The guard-band rule of the module text."""
    error = abs(reported - expected)
    if error + uncertainty <= limit:
        outcome = Outcome.PASS
    elif error - uncertainty > limit:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.INCONCLUSIVE
    why = f"|{reported} − {expected:.10f}| = {error:.10f} against {limit:.10f} ± {uncertainty:.10f}"
    return Judgement(figure, outcome, reported, expected, limit, uncertainty, why)


def half_unit(text: str | Decimal) -> Decimal:
    """Half a unit of the last place written (the rounding of a reported figure)."""
    exponent = Decimal(str(text)).as_tuple().exponent
    return Decimal(5).scaleb(exponent - 1) if isinstance(exponent, int) else Decimal(0)


@dataclass(frozen=True, slots=True)
class Edge:
    """The plant's truth at one end of a span: between ``low`` and ``high``."""

    low: Decimal
    high: Decimal
    faults: tuple[str, ...] = ()

    @property
    def truth(self) -> Decimal:
        return (self.low + self.high) / 2

    @property
    def spread(self) -> Decimal:
        return (self.high - self.low) / 2


@dataclass(frozen=True, slots=True)
class SpanActivity:
    """The plant's true activity over a span, how well the bench knows it, its meter's faults."""

    activity: Decimal
    spread: Decimal
    faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure the bench knows: ``value``, a correct terminal within ``limit`` of it, the
    bench itself sure of it to within ``uncertainty``."""

    value: Decimal
    limit: Decimal
    uncertainty: Decimal


def _quotient_deviation(num: Decimal, num_pm: Decimal, den: Decimal, den_pm: Decimal) -> Decimal:
    """The largest ``|n/d − num/den|`` for ``n`` within ``num_pm`` of ``num`` and ``d`` within
    ``den_pm`` of ``den`` (``den ± den_pm`` not containing zero)."""
    centre = CALC.divide(num, den)
    corners = (
        CALC.divide(num + sn * num_pm, den + sd * den_pm) for sn in (-1, 1) for sd in (-1, 1)
    )
    return max(abs(c - centre) for c in corners)


def judge_intensity(
    figure: str, reported: Decimal, emission: Interval, amount: Interval
) -> Judgement:
    """An intensity ``emission / amount`` (see the module text)."""
    reach = amount.limit + amount.uncertainty
    if abs(amount.value) <= reach:
        why = (
            f"the basis {amount.value:.10f} cannot be told from zero (± {reach:.10f}): the "
            "quotient is unbounded"
        )
        return unjudged(figure, reported, why)
    expected = CALC.divide(emission.value, amount.value)
    limit = _quotient_deviation(emission.value, emission.limit, amount.value, amount.limit)
    uncertainty = _quotient_deviation(
        emission.value, emission.uncertainty, amount.value, amount.uncertainty
    )
    return decide(figure, reported, expected, limit + half_unit(reported), uncertainty)


@dataclass
class Oracle:
    """Judges a terminal's emission figures against the plant (see the module text)."""

    fleet: FleetRuntime
    reads: dict[tuple[str, str], Bound]
    bases: dict[tuple[str, str], BasisRead] = field(default_factory=dict)
    _index: dict[tuple[str, str], list[Observation]] = field(default_factory=dict)
    _times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    @classmethod
    def for_fleet(cls, fleet: FleetRuntime) -> Oracle:
        return cls(fleet, bound_reads(fleet), basis_reads(fleet))

    def refresh(self) -> None:
        """Index the meters' answers recorded so far."""
        self._index.clear()
        for o in list(self.fleet.observations):
            self._index.setdefault((o.meter, o.quantity), []).append(o)
        self._times = {k: [o.t for o in v] for k, v in self._index.items()}

    def shown(self, meter: str, quantity: str, lo: float, hi: float) -> list[Observation]:
        key = (meter, quantity)
        times = self._times.get(key, [])
        i, j = bisect.bisect_left(times, lo), bisect.bisect_right(times, hi)
        return self._index.get(key, [])[i:j]

    def pin(
        self, meter: str, quantity: str, register: Decimal, lo: float, hi: float
    ) -> Edge | None:
        """The truth when ``meter`` showed ``register`` in [lo, hi]; None if it never did."""
        answers = [o for o in self.shown(meter, quantity, lo, hi) if o.value == register]
        if not answers:
            return None
        truths = [Decimal(repr(o.truth)) for o in answers]
        faults = tuple(sorted({f for o in answers for f in o.faults}))
        return Edge(min(truths), max(truths), faults)

    def faults_between(self, meter: str, quantity: str, lo: float, hi: float) -> set[str]:
        return {f for o in self.shown(meter, quantity, lo, hi) for f in o.faults}

    def judge_span(
        self,
        figure: str,
        bound: Bound,
        resolution: Decimal,
        *,
        first: Decimal | None,
        last: Decimal | None,
        lo: float,
        hi: float,
        emission: Decimal,
    ) -> Judgement:
        """A figure over a span whose registers the meter showed between ``lo`` and ``hi``."""
        rate = abs(bound.rate)
        rounding = half_unit(emission)
        span = self.span_activity(bound.meter, bound.quantity, first, last, lo, hi)
        if isinstance(span, str):
            return unjudged(figure, emission, span)
        expected = CALC.multiply(span.activity, bound.rate)
        limit = CALC.multiply(resolution, rate) + rounding
        uncertainty = CALC.multiply(span.spread, rate)
        if span.faults:
            why = f"{bound.meter} was under a value fault ({', '.join(span.faults)})"
            return Judgement(
                figure, Outcome.INCONCLUSIVE, emission, expected, limit, uncertainty, why,
                span.faults,
            )  # fmt: skip
        return decide(figure, emission, expected, limit, uncertainty)

    def span_activity(
        self,
        meter: str,
        quantity: str,
        first: Decimal | None,
        last: Decimal | None,
        lo: float,
        hi: float,
    ) -> SpanActivity | str:
        """The true activity between the registers ``first`` and ``last`` the meter showed
        within [lo, hi], or why it cannot be known."""
        if first is None or last is None:
            return "the terminal gives no registers to trace the figure to its meter"
        a = self.pin(meter, quantity, first, lo, hi)
        b = self.pin(meter, quantity, last, lo, hi)
        if a is None or b is None:
            return f"{meter} never showed the register {first if a is None else last} near the span"
        faults = set(a.faults) | set(b.faults)
        faults |= self.faults_between(meter, quantity, lo, hi) if not faults else set()
        return SpanActivity(b.truth - a.truth, a.spread + b.spread, tuple(sorted(faults)))

    def judge_entry(
        self,
        figure: str,
        bound: Bound,
        resolution: Decimal,
        *,
        t0: float,
        t1: float,
        emission: Decimal,
    ) -> Judgement:
        """A value entered by hand at ``t1`` after one at ``t0`` (each the plant's value
        rounded to the meter's digits: half a step off at most)."""
        plant = self.fleet.plant
        activity = Decimal(repr(plant.value(bound.quantity, t1))) - Decimal(
            repr(plant.value(bound.quantity, t0))
        )
        expected = CALC.multiply(activity, bound.rate)
        limit = CALC.multiply(resolution, abs(bound.rate)) + half_unit(emission)
        return decide(figure, emission, expected, limit, Decimal(0))


def overall(
    judgements: Sequence[Judgement], *, conclusive_share: Decimal = Decimal("0.9")
) -> tuple[Outcome, str]:
    """One verdict from many figures: any failure fails; otherwise a pass needs most figures
    conclusive (the share), else the whole is inconclusive."""
    if not judgements:
        return Outcome.INCONCLUSIVE, "no figure to judge"
    failed = [j for j in judgements if j.outcome is Outcome.FAIL]
    passed = [j for j in judgements if j.outcome is Outcome.PASS]
    unsure = len(judgements) - len(passed) - len(failed)
    summary = (
        f"{len(passed)} passed, {len(failed)} failed, {unsure} inconclusive of {len(judgements)}"
    )
    if failed:
        return Outcome.FAIL, f"{summary}; first failure: {failed[0].figure}: {failed[0].why}"
    if Decimal(len(passed)) >= conclusive_share * len(judgements):
        return Outcome.PASS, summary
    example = next(j for j in judgements if j.outcome is Outcome.INCONCLUSIVE)
    return Outcome.INCONCLUSIVE, f"{summary}; e.g. {example.figure}: {example.why}"


def chain_breaks(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Consecutive figures of one point whose registers do not chain (``last`` of one is not
    ``first`` of the next): activity lost or counted twice between them."""
    out = []
    ended: Decimal | None = None
    for row in rows:
        first = row.get("first")
        if ended is not None and first is not None and Decimal(str(first)) != ended:
            out.append(
                f"{row['point']} at {row['t']}: starts at register {first}, the figure "
                f"before ended at {ended}"
            )
        last = row.get("last")
        ended = None if last is None else Decimal(str(last))
    return out

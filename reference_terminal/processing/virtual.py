"""Virtual points: figures computed from other points (CSMT §8.3.2, ISC-2 §7.2.3(1)–(2)).

"应至少支持数据累加、相减、乘除、分摊、积分等逻辑计算功能" (CSMT §8.3.2). Six operations, each a
typed model of the configuration's ``virtual_points`` section (:data:`VirtualPoint` in
``reference_terminal.config``, discriminated by ``op``; :func:`plan` checks them against the
metered points: inputs exist, kinds and units fit, no id twice, no cycle):

========== =================================================================== ==============
op         result per window                                                   kind
========== =================================================================== ==============
add        Σ inputs                                                            inputs' kind
subtract   minuend − Σ subtrahends                                             inputs' kind
multiply   factor × Π inputs                                                   counter if any
                                                                               input is one
divide     factor × numerator / denominator (zero denominator: no value)       counter only
                                                                               for counter ÷
                                                                               gauge
allocate   source split over targets by fixed ``shares`` (fractions summing    counter
           to 1), or by the ``basis`` points' figures in the same window
           (shares when the basis sums to zero)
integrate  a rate (gauge) integrated over time into a total                    counter
========== =================================================================== ==============

**Where they are computed.** add … allocate work on closed windows (:class:`Aggregate`): an
input's figure is its *value*, the increment of a counter or the mean of a gauge, in the same
period and window (minute, hour, day, month, year: each period is evaluated on its own, so a
product of monthly figures is not the sum of products of minutes). A result is itself an
Aggregate (``first``/``last``/``min``/``max`` empty), emitted when every input's window is in,
and it can feed other virtual points. When an input has no window (no data) the result is
emitted with no value (COMM_FAULT) and an event, once every input has moved past that window or
``max_lag_s`` has gone by.

integrate works on samples instead: each pair of consecutive usable readings of the rate adds a
trapezoid (or, ``method: step``, the earlier value held) ``× Δt / per_s`` (``per_s`` 3600 for a
rate per hour), and the result is a counter point of its own with increments, windows and
settlement like a metered one. The running integral is kept exact and reported rounded, and
each increment is the difference of two rounded totals, so rounding never accumulates.

**Digits** (ISC-2 §9.3 asks for the meter's digits; a computed figure has none of its own):
``decimals`` when configured; otherwise add/subtract/multiply/divide keep the largest number of
decimals among their inputs' figures, allocate keeps the source's, integrate the rate point's
configured decimals. Rounding is half-even. Allocation distributes whole units of the last
digit by largest remainder, so the targets always add up to the source exactly and none is
negative unless the source is.

A subtraction may come out negative (a main meter minus sub-meters that read a little high):
the value is kept as computed, it is evidence of a metering problem rather than something to
hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from reference_terminal.config import (
    AddPoint,
    AllocatePoint,
    DividePoint,
    IntegratePoint,
    MultiplyPoint,
    Point,
    SubtractPoint,
    VirtualPoint,
    virtual_outputs,
)
from reference_terminal.model import Event, Quality, Reading
from reference_terminal.processing.increments import Increment
from reference_terminal.processing.settlement import Aggregate, Kind
from reference_terminal.processing.validation import BY_RANK, RANK, USABLE, worst

__all__ = [
    "AddPoint",
    "AllocatePoint",
    "DividePoint",
    "IntegratePoint",
    "Integrator",
    "MultiplyPoint",
    "Plan",
    "SubtractPoint",
    "VirtualConfigError",
    "VirtualEvaluator",
    "VirtualPoint",
    "allocate",
    "inputs_of",
    "integrators",
    "outputs_of",
    "plan",
]

# ---- configuration ------------------------------------------------------------------------------
# The models are the configuration's (``reference_terminal.config``: ``virtual_points``); the
# checks against the whole configuration are here.

WindowRule = AddPoint | SubtractPoint | MultiplyPoint | DividePoint | AllocatePoint


class VirtualConfigError(ValueError):
    """Virtual points that cannot be computed; the message starts with the field at fault
    (``virtual_points[1].inputs[0]: no point 'X'``)."""


def _input_fields(rule: VirtualPoint) -> Iterator[tuple[str, str]]:
    """(field, point) of every point a rule reads, in formula order."""
    if isinstance(rule, AddPoint | MultiplyPoint):
        yield from ((f"inputs[{k}]", x) for k, x in enumerate(rule.inputs))
    elif isinstance(rule, SubtractPoint):
        yield "minuend", rule.minuend
        yield from ((f"subtrahends[{k}]", x) for k, x in enumerate(rule.subtrahends))
    elif isinstance(rule, DividePoint):
        yield "numerator", rule.numerator
        yield "denominator", rule.denominator
    elif isinstance(rule, AllocatePoint):
        yield "source", rule.source
        yield from ((f"basis[{k}]", x) for k, x in enumerate(rule.basis or []))
    else:
        yield "source", rule.source


def inputs_of(rule: VirtualPoint) -> list[str]:
    """The points a rule reads, in formula order (duplicates kept)."""
    return [x for _, x in _input_fields(rule)]


def outputs_of(rule: VirtualPoint) -> list[str]:
    return virtual_outputs(rule)


@dataclass(frozen=True, slots=True)
class Plan:
    """Validated virtual points: window rules in an order where every input comes first, the
    integrals, and the kind and unit of every point (physical and virtual)."""

    rules: tuple[WindowRule, ...]
    integrals: tuple[IntegratePoint, ...]
    kinds: Mapping[str, Kind]
    units: Mapping[str, str]


def plan(points: Sequence[Point], virtual: Sequence[VirtualPoint]) -> Plan:
    """Check ``virtual`` against the physical ``points``; raise :class:`VirtualConfigError`
    naming the field of the first problem (``virtual_points[i]…``, as in the configuration)."""
    metered = {p.id for p in points}
    kinds: dict[str, Kind] = {p.id: p.kind for p in points}
    units: dict[str, str] = {p.id: p.unit for p in points}
    producer: dict[str, int] = {}
    for i, rule in enumerate(virtual):
        # An allocate rule's own id names the rule: it is reserved too, so events stay unique.
        fields = [("id", rule.id)]
        if isinstance(rule, AllocatePoint):
            fields += [(f"targets[{k}]", t) for k, t in enumerate(rule.targets)]
        for field, out in fields:
            if out in metered:
                raise VirtualConfigError(
                    f"virtual_points[{i}].{field}: {out!r} is a metered point's id already"
                )
            if out in producer and producer[out] != i:
                raise VirtualConfigError(
                    f"virtual_points[{i}].{field}: {out!r} is made by "
                    f"virtual_points[{producer[out]}] already"
                )
            producer[out] = i
    made = {out for rule in virtual for out in outputs_of(rule)}
    for i, rule in enumerate(virtual):
        for field, x in _input_fields(rule):
            if x not in metered and x not in made:
                rule_of = virtual[producer[x]] if x in producer else None
                if isinstance(rule_of, AllocatePoint):
                    raise VirtualConfigError(
                        f"virtual_points[{i}].{field}: {x!r} names an allocation; read one of "
                        f"its targets ({', '.join(rule_of.targets)})"
                    )
                raise VirtualConfigError(f"virtual_points[{i}].{field}: no point {x!r}")
            if x in outputs_of(rule) or (isinstance(rule, AllocatePoint) and x == rule.id):
                raise VirtualConfigError(f"virtual_points[{i}].{field}: {x!r} reads itself")
        if isinstance(rule, IntegratePoint) and rule.source not in metered:
            raise VirtualConfigError(
                f"virtual_points[{i}].source: {rule.source!r} must be a metered point "
                f"(integration works on its readings)"
            )
    # Topological order (Kahn): a rule runs once all the virtual points it reads are computed.
    order: list[int] = []
    remaining = list(range(len(virtual)))
    while remaining:
        ready = [i for i in remaining if all(x in kinds for x in inputs_of(virtual[i]))]
        if not ready:
            raise VirtualConfigError(
                "virtual_points: these points depend on each other in a cycle: "
                + _cycle(virtual, remaining, producer)
            )
        for i in ready:
            rule = virtual[i]
            kind = _kind_of(i, rule, kinds)
            unit = _unit_of(i, rule, units)
            for out in outputs_of(rule):
                kinds[out] = kind
                units[out] = unit
            order.append(i)
            remaining.remove(i)
    rules = tuple(r for r in (virtual[i] for i in order) if not isinstance(r, IntegratePoint))
    integrals = tuple(r for r in virtual if isinstance(r, IntegratePoint))
    return Plan(rules, integrals, kinds, units)


def _cycle(
    virtual: Sequence[VirtualPoint], remaining: list[int], producer: Mapping[str, int]
) -> str:
    """One cycle among ``remaining`` rules, as ``A → B → A``."""
    left = set(remaining)
    path = [remaining[0]]
    while True:
        nxt = next(producer[x] for x in inputs_of(virtual[path[-1]]) if producer.get(x) in left)
        if nxt in path:
            loop = [*path[path.index(nxt) :], nxt]
            return " → ".join(virtual[k].id for k in loop)
        path.append(nxt)


def _kind_of(i: int, rule: VirtualPoint, kinds: Mapping[str, Kind]) -> Kind:
    where = f"virtual_points[{i}]"
    if isinstance(rule, AddPoint | SubtractPoint):
        found = {kinds[x] for x in inputs_of(rule)}
        if len(found) > 1:
            shown = ", ".join(f"{x} ({kinds[x]})" for x in inputs_of(rule))
            raise VirtualConfigError(
                f"{where}: {rule.op} mixes counters and gauges ({shown}); "
                f"a total and an instantaneous value cannot be added"
            )
        return found.pop()
    if isinstance(rule, MultiplyPoint):
        return "counter" if any(kinds[x] == "counter" for x in rule.inputs) else "gauge"
    if isinstance(rule, DividePoint):
        numerator, denominator = kinds[rule.numerator], kinds[rule.denominator]
        return "counter" if (numerator, denominator) == ("counter", "gauge") else "gauge"
    if isinstance(rule, AllocatePoint):
        if kinds[rule.source] != "counter":
            raise VirtualConfigError(
                f"{where}.source: allocate splits a counter's increments; "
                f"{rule.source!r} is a gauge"
            )
        return "counter"
    if kinds[rule.source] != "gauge":
        raise VirtualConfigError(
            f"{where}.source: integrate turns a rate (a gauge) into a total; "
            f"{rule.source!r} is a counter, whose increments are the total already"
        )
    return "counter"


def _unit_of(i: int, rule: VirtualPoint, units: Mapping[str, str]) -> str:
    """The result's unit: as configured; add, subtract and allocate take their inputs' (which
    must agree: they convert nothing)."""
    if not isinstance(rule, AddPoint | SubtractPoint | AllocatePoint):
        return rule.unit
    names = [rule.source] if isinstance(rule, AllocatePoint) else inputs_of(rule)
    found = {units[x] for x in names} - {""}
    if len(found) > 1:
        shown = ", ".join(f"{x} ({units[x] or 'no unit'})" for x in names)
        raise VirtualConfigError(
            f"virtual_points[{i}]: {rule.op} of values in different units ({shown}); "
            f"convert first (multiply by a factor)"
        )
    common = found.pop() if found else ""
    if rule.unit and common and rule.unit != common:
        raise VirtualConfigError(
            f"virtual_points[{i}].unit: {rule.unit!r}, but its inputs are in {common!r} "
            f"({rule.op} converts nothing)"
        )
    return rule.unit or common


# ---- window rules -------------------------------------------------------------------------------


def _quantum(digits: int) -> Decimal:
    return Decimal(1).scaleb(-digits)


def allocate(total: Decimal, weights: Sequence[Decimal], digits: int) -> list[Decimal]:
    """Split ``total`` by ``weights`` (Σ > 0) into values of ``digits`` decimals that add up to
    ``total`` exactly (rounded to ``digits`` first): each gets its share rounded down, and the
    units left over go to the largest remainders (the earlier target on a tie)."""
    q = _quantum(digits)
    total = total.quantize(q)
    whole = sum(weights, Decimal(0))
    exact = [total * w / whole for w in weights]
    floors = [e.quantize(q, rounding=ROUND_FLOOR) for e in exact]
    left = int((total - sum(floors, Decimal(0))) / q)
    order = sorted(range(len(exact)), key=lambda i: exact[i] - floors[i], reverse=True)
    for i in order[:left]:
        floors[i] += q
    return floors


class _Rule:
    """A window rule's state: the inputs gathered per (period, window start)."""

    __slots__ = ("digits", "kind", "needed", "pending", "problems", "rule")

    def __init__(self, rule: WindowRule, kind: Kind) -> None:
        self.rule = rule
        self.kind: Kind = kind
        self.needed = frozenset(inputs_of(rule))
        self.pending: dict[tuple[str, float], dict[str, Aggregate]] = {}
        self.digits = rule.decimals
        #: Per (problem, period), what went wrong at the last evaluation: a dead input or a
        #: denominator at zero all night yields one event when it starts, not one per window.
        self.problems: dict[tuple[str, str], str] = {}

    def starts(self, problem: str, period: str, what: str) -> bool:
        """Record ``what`` (empty: no problem) and say whether a new problem starts here."""
        before = self.problems.get((problem, period), "")
        self.problems[(problem, period)] = what
        return bool(what) and what != before


class VirtualEvaluator:
    """Evaluates the window rules of a :class:`Plan` as input windows close.

    :meth:`feed` takes every emitted :class:`Aggregate` (physical or virtual) and returns the
    virtual aggregates it completed (and those they completed in turn) with any events.
    :meth:`resume` gives one rule, after a restart, the input windows that closed before it.
    """

    def __init__(self, plan: Plan, *, max_lag_s: float = 4 * 86_400) -> None:
        self.plan = plan
        self.max_lag_s = max_lag_s
        self._users: dict[str, list[_Rule]] = {}
        self._rules: dict[str, _Rule] = {}
        for rule in plan.rules:
            state = _Rule(rule, plan.kinds[outputs_of(rule)[0]])
            self._rules[rule.id] = state
            for x in state.needed:
                self._users.setdefault(x, []).append(state)
        self._latest: dict[tuple[str, str], float] = {}

    def inputs(self) -> frozenset[str]:
        """The points whose windows some rule takes: :meth:`feed` does nothing with others."""
        return frozenset(self._users)

    def feed(self, aggregate: Aggregate) -> tuple[list[Aggregate], list[Event]]:
        out: list[Aggregate] = []
        events: list[Event] = []
        if aggregate.point not in self._users:
            return out, events
        queue = [aggregate]
        while queue:
            a = queue.pop(0)
            self._seen(a)
            for state in self._users.get(a.point, ()):
                queue += self._take(state, a, events)
            if a is not aggregate:
                out.append(a)
        return out, events

    def resume(
        self, rule_id: str, windows: Iterable[Aggregate]
    ) -> tuple[list[Aggregate], list[Event]]:
        """After a restart, give the rule ``rule_id`` its inputs' windows that closed before it
        and whose results the store may lack (stored ones, and those the replay closed again).
        A window whose inputs are all in is evaluated now; the others wait for the rest of their
        inputs, which close after the restart, like any window. Unlike :meth:`feed` nothing
        cascades: the caller gives the rules one by one in plan order, each with the results of
        the rules before it among its inputs."""
        state = self._rules[rule_id]
        out: list[Aggregate] = []
        events: list[Event] = []
        for a in sorted(windows, key=lambda a: (a.end, a.start)):
            if a.point in state.needed:
                self._seen(a)
                out += self._take(state, a, events)
        return out, events

    def _seen(self, a: Aggregate) -> None:
        key = (a.point, a.period)
        self._latest[key] = max(a.start, self._latest.get(key, a.start))

    def _take(self, state: _Rule, a: Aggregate, events: list[Event]) -> list[Aggregate]:
        """One input window for one rule: the results it completes, earlier windows first (so
        each virtual point's windows come out in time order)."""
        done = self._resolve_stale(state, a, events)
        key = (a.period, a.start)
        got = state.pending.setdefault(key, {})
        got[a.point] = a
        if len(got) == len(state.needed):
            del state.pending[key]
            done += self._evaluate(state, got, events)
        return done

    def _resolve_stale(self, state: _Rule, a: Aggregate, events: list[Event]) -> list[Aggregate]:
        """Evaluate, with missing inputs, the windows of ``a.period`` no input can still give."""
        done: list[Aggregate] = []
        for key in [k for k in state.pending if k[0] == a.period and k[1] < a.start]:
            moved_on = all(
                self._latest.get((x, a.period), float("-inf")) > key[1] for x in state.needed
            )
            if moved_on or a.start - key[1] > self.max_lag_s:
                done += self._evaluate(state, state.pending.pop(key), events)
        return done

    def _evaluate(
        self, state: _Rule, got: Mapping[str, Aggregate], events: list[Event]
    ) -> list[Aggregate]:
        rule = state.rule
        any_agg = next(iter(got.values()))
        names = inputs_of(rule)
        missing = [x for x in dict.fromkeys(names) if x not in got or got[x].value is None]
        outputs = outputs_of(rule)
        if state.starts("virtual_input_missing", any_agg.period, ",".join(missing)):
            events.append(
                self._event(
                    any_agg,
                    "virtual_input_missing",
                    rule.id,
                    {"missing": ",".join(missing), "op": rule.op},
                )
            )
        if missing:
            return [
                self._result(state, o, any_agg, got, None, "no value: " + ",".join(missing))
                for o in outputs
            ]
        values = {x: v for x in names if (v := got[x].value) is not None}  # all, none missing
        digits = {x: got[x].digits for x in names}
        formula = _formula(rule)
        if isinstance(rule, AllocatePoint):
            return self._allocate(state, rule, got, values, digits, events)
        own = state.digits if state.digits is not None else max(digits.values())
        result: Decimal
        if isinstance(rule, AddPoint):
            result = sum((values[x] for x in rule.inputs), Decimal(0))
        elif isinstance(rule, SubtractPoint):
            result = values[rule.minuend] - sum((values[x] for x in rule.subtrahends), Decimal(0))
        elif isinstance(rule, MultiplyPoint):
            result = rule.factor
            for x in rule.inputs:
                result *= values[x]
        else:
            denominator = values[rule.denominator]
            zero = "zero" if not denominator else ""
            if state.starts("virtual_division_by_zero", any_agg.period, zero):
                events.append(
                    self._event(
                        any_agg,
                        "virtual_division_by_zero",
                        rule.id,
                        {"denominator": rule.denominator, "numerator": rule.numerator},
                    )
                )
            if zero:
                return [
                    self._result(state, rule.id, any_agg, got, None, f"{formula}: division by zero")
                ]
            result = rule.factor * values[rule.numerator] / denominator
        return [self._result(state, rule.id, any_agg, got, result.quantize(_quantum(own)), formula)]

    def _allocate(
        self,
        state: _Rule,
        rule: AllocatePoint,
        got: Mapping[str, Aggregate],
        values: Mapping[str, Decimal],
        digits: Mapping[str, int],
        events: list[Event],
    ) -> list[Aggregate]:
        any_agg = got[rule.source]
        weights: Sequence[Decimal] | None = None
        how = ""
        if rule.basis is not None:
            basis = [values[b] for b in rule.basis]
            if sum(basis, Decimal(0)) > 0 and all(b >= 0 for b in basis):
                weights, how = basis, "by " + ",".join(rule.basis)
        if weights is None and rule.shares is not None:
            weights, how = rule.shares, "by shares " + ",".join(map(str, rule.shares))
        if state.starts(
            "allocation_basis_zero", any_agg.period, "" if weights is not None else "zero"
        ):
            events.append(
                self._event(
                    any_agg, "allocation_basis_zero", rule.id, {"basis": ",".join(rule.basis or [])}
                )
            )
        if weights is None:
            return [
                self._result(state, t, any_agg, got, None, "allocation basis is zero")
                for t in rule.targets
            ]
        own = state.digits if state.digits is not None else digits[rule.source]
        parts = allocate(values[rule.source], weights, own)
        note = f"allocate({rule.source}) {how}"
        return [
            self._result(state, t, any_agg, got, v, note)
            for t, v in zip(rule.targets, parts, strict=True)
        ]

    def _result(
        self,
        state: _Rule,
        point: str,
        window: Aggregate,
        got: Mapping[str, Aggregate],
        value: Decimal | None,
        note: str,
    ) -> Aggregate:
        if value is None:
            quality = Quality.COMM_FAULT
            digits = state.digits or 0
        else:
            quality = BY_RANK[max(RANK[a.quality] for a in got.values())]
            exponent = value.as_tuple().exponent
            digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        counter = state.kind == "counter"
        return Aggregate(
            point,
            window.period,
            window.start,
            window.end,
            window.label,
            state.kind,
            min((a.count for a in got.values()), default=0),
            None,
            None,
            None,
            None,
            None if counter else value,
            value if counter else None,
            sum(a.excluded for a in got.values()),
            digits,
            quality,
            note,
        )

    @staticmethod
    def _event(window: Aggregate, kind: str, point: str, details: dict[str, str]) -> Event:
        return Event(
            window.end,
            kind,
            point,
            start=window.start,
            end=window.end,
            details={**details, "period": window.period, "clause": "CSMT §8.3.2"},
        )


def _formula(rule: WindowRule) -> str:
    if isinstance(rule, AddPoint):
        return " + ".join(rule.inputs)
    if isinstance(rule, SubtractPoint):
        return " - ".join([rule.minuend, *rule.subtrahends])
    if isinstance(rule, MultiplyPoint):
        constant = [] if rule.factor == 1 else [str(rule.factor)]
        return " × ".join([*constant, *rule.inputs])
    if isinstance(rule, DividePoint):
        prefix = "" if rule.factor == 1 else f"{rule.factor} × "
        return f"{prefix}{rule.numerator} / {rule.denominator}"
    return f"allocate({rule.source})"


# ---- integration ------------------------------------------------------------------------------


class Integrator:
    """One integrate point: turns the rate point's usable readings into increments of a
    virtual counter (see the module text)."""

    __slots__ = ("_last", "_quantum", "_reported", "_total", "digits", "rule")

    def __init__(self, rule: IntegratePoint, source_decimals: int) -> None:
        self.rule = rule
        self.digits = rule.decimals if rule.decimals is not None else source_decimals
        self._quantum = _quantum(self.digits)
        self._last: Reading | None = None
        self._total = Decimal(0)  # exact
        self._reported = Decimal(0).quantize(self._quantum)

    @property
    def total(self) -> Decimal:
        """The running integral as reported (rounded)."""
        return self._reported

    def seed(self, total: Decimal) -> None:
        """Continue from a stored total (after a restart)."""
        self._total = total
        self._reported = total.quantize(self._quantum)

    def resume_from(self, last: Reading | None) -> None:
        """After a restart: the rate's last usable reading before the replay, the start of the
        first interval integrated."""
        if last is not None and last.value is not None and last.quality in USABLE:
            self._last = last

    def update(self, reading: Reading) -> tuple[Increment | None, Event | None]:
        v = reading.value
        if v is None or reading.quality not in USABLE:
            return None, None
        last, self._last = self._last, reading
        if last is None or last.value is None:
            return None, None
        rule = self.rule
        dt = reading.t - last.t
        if rule.max_step_s is not None and dt > rule.max_step_s:
            return None, Event(
                reading.t,
                "integration_gap",
                rule.id,
                reading.device,
                last.t,
                reading.t,
                {
                    "source": rule.source,
                    "seconds": f"{dt:.3f}",
                    "max_step_s": str(rule.max_step_s),
                    "note": "not integrated across: too far apart (CSMT §8.3.2 积分)",
                },
            )
        # Microseconds are the finest a POSIX float time carries honestly.
        seconds = Decimal(round(dt * 1_000_000)).scaleb(-6)
        if rule.method == "trapezoid":
            area = (last.value + v) * seconds / (2 * rule.per_s)
        else:
            area = last.value * seconds / rule.per_s
        self._total += area
        before, self._reported = self._reported, self._total.quantize(self._quantum)
        return (
            Increment(
                rule.id,
                last.t,
                reading.t,
                before,
                self._reported,
                self._reported - before,
                worst(last.quality, reading.quality),
                self.digits,
                f"{rule.method} integral of {rule.source} / {rule.per_s} s",
            ),
            None,
        )


def integrators(plan: Plan, points: Iterable[Point]) -> dict[str, list[Integrator]]:
    """The integrators of ``plan`` by the rate point they read."""
    decimals = {p.id: p.decimals for p in points}
    out: dict[str, list[Integrator]] = {}
    for rule in plan.integrals:
        out.setdefault(rule.source, []).append(Integrator(rule, decimals[rule.source]))
    return out

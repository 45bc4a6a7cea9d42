"""Virtual points: add, subtract, multiply, divide, allocate and integrate (CSMT §8.3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from reference_terminal.model import Event, Quality
from reference_terminal.processing.settlement import Aggregate, Kind
from reference_terminal.processing.validation import digits_of
from reference_terminal.processing.virtual import (
    IntegratePoint,
    Integrator,
    VirtualConfigError,
    VirtualEvaluator,
    VirtualPoint,
    allocate,
    plan,
)
from tests.reference_terminal.processing.support import T0, point, reading

D = Decimal
POINTS = [
    point("E1", "counter"),
    point("E2", "counter"),
    point("E3", "counter"),
    point("F", "gauge"),
    point("R", "gauge"),
]
ADAPTER: TypeAdapter[list[VirtualPoint]] = TypeAdapter(list[VirtualPoint])


def rules(*specs: dict[str, Any]) -> list[VirtualPoint]:
    return ADAPTER.validate_python(list(specs))


def agg(
    pid: str,
    value: str | None,
    kind: Kind = "counter",
    start: float = T0,
    period: str = "minute",
    quality: Quality = Quality.GOOD,
) -> Aggregate:
    v = None if value is None else D(value)
    return Aggregate(
        pid,
        period,
        start,
        start + 60,
        "label",
        kind,
        1,
        None,
        None,
        v,
        v,
        v if kind == "gauge" else None,
        v if kind == "counter" else None,
        0,
        0 if v is None else digits_of(v),
        quality,
    )


def run(
    specs: Sequence[dict[str, Any]], *aggregates: Aggregate
) -> tuple[dict[str, Aggregate], list[Event]]:
    evaluator = VirtualEvaluator(plan(POINTS, rules(*specs)))
    out: dict[str, Aggregate] = {}
    events: list[Event] = []
    for a in aggregates:
        derived, ev = evaluator.feed(a)
        out.update({d.point: d for d in derived})
        events += ev
    return out, events


def test_add_sums_the_inputs_with_the_most_digits() -> None:
    out, _ = run(
        [{"op": "add", "id": "T", "inputs": ["E1", "E2"]}], agg("E1", "1.25"), agg("E2", "2.5")
    )
    t = out["T"]
    assert t.increment == D("3.75") and t.digits == 2 and t.kind == "counter"
    assert (t.period, t.start, t.end) == ("minute", T0, T0 + 60)
    assert t.note == "E1 + E2" and t.quality is Quality.GOOD


def test_nothing_is_computed_until_every_input_is_in() -> None:
    out, _ = run([{"op": "add", "id": "T", "inputs": ["E1", "E2"]}], agg("E1", "1"))
    assert out == {}


def test_subtract_and_the_worst_quality() -> None:
    out, _ = run(
        [{"op": "subtract", "id": "S", "minuend": "E1", "subtrahends": ["E2", "E3"]}],
        agg("E1", "10.0"),
        agg("E2", "2.5", quality=Quality.INTERPOLATED),
        agg("E3", "8.0"),
    )
    assert out["S"].increment == D("-0.5")  # kept as computed: evidence of a metering problem
    assert out["S"].quality is Quality.INTERPOLATED


def test_multiply_with_a_constant_factor() -> None:
    out, _ = run(
        [{"op": "multiply", "id": "M", "inputs": ["E1", "F"], "factor": "0.5", "decimals": 3}],
        agg("E1", "12.5"),
        agg("F", "0.7174", "gauge"),
    )
    assert out["M"].increment == D("4.484")  # 0.5 × 12.5 × 0.7174 = 4.48375, 3 decimals
    assert out["M"].kind == "counter" and out["M"].note == "0.5 × E1 × F"


def test_divide_and_division_by_zero() -> None:
    spec = [{"op": "divide", "id": "Q", "numerator": "E1", "denominator": "E2"}]
    out, events = run(spec, agg("E1", "10.00"), agg("E2", "3.00"))
    assert out["Q"].mean == D("3.33") and out["Q"].kind == "gauge"  # a ratio of counters
    out, events = run(spec, agg("E1", "10.00"), agg("E2", "0.00"))
    assert out["Q"].value is None and out["Q"].quality is Quality.COMM_FAULT
    assert [e.kind for e in events] == ["virtual_division_by_zero"]
    assert events[0].details["clause"] == "CSMT §8.3.2"


def test_allocate_by_fixed_shares_keeps_the_total_exact() -> None:
    out, _ = run(
        [
            {
                "op": "allocate",
                "id": "A",
                "source": "E1",
                "targets": ["X", "Y", "Z"],
                "shares": ["0.5", "0.25", "0.25"],
            }
        ],
        agg("E1", "10.01"),
    )
    values = [out[t].increment for t in "XYZ"]
    # 5.005, 2.5025, 2.5025: the hundredth left over goes to the largest remainder
    assert values == [D("5.01"), D("2.50"), D("2.50")]
    assert sum(v for v in values if v is not None) == D("10.01")


def test_allocate_by_the_proportions_of_other_points() -> None:
    spec = [
        {
            "op": "allocate",
            "id": "A",
            "source": "E1",
            "targets": ["X", "Y"],
            "basis": ["E2", "E3"],
            "shares": ["0.25", "0.75"],
        }
    ]
    out, _ = run(spec, agg("E1", "9.0"), agg("E2", "1"), agg("E3", "2"))
    assert (out["X"].increment, out["Y"].increment) == (D("3.0"), D("6.0"))
    assert "by E2,E3" in out["X"].note
    # A basis that sums to zero falls back to the shares.
    out, _ = run(spec, agg("E1", "8.0"), agg("E2", "0"), agg("E3", "0"))
    assert (out["X"].increment, out["Y"].increment) == (D("2.0"), D("6.0"))


def test_allocate_without_a_usable_basis_gives_no_value() -> None:
    spec = [{"op": "allocate", "id": "A", "source": "E1", "targets": ["X"], "basis": ["E2"]}]
    out, events = run(spec, agg("E1", "8.0"), agg("E2", "0"))
    assert out["X"].value is None and [e.kind for e in events] == ["allocation_basis_zero"]


def test_virtual_points_chain() -> None:
    out, _ = run(
        [
            {"op": "add", "id": "T", "inputs": ["E1", "E2"]},
            {"op": "subtract", "id": "U", "minuend": "T", "subtrahends": ["E3"]},
        ],
        agg("E1", "5"),
        agg("E2", "5"),
        agg("E3", "3"),
    )
    assert out["U"].increment == D(7)


def test_a_missing_input_gives_no_value_once_the_others_moved_on() -> None:
    evaluator = VirtualEvaluator(
        plan(POINTS, rules({"op": "add", "id": "T", "inputs": ["E1", "E2"]}))
    )
    evaluator.feed(agg("E1", "1"))
    evaluator.feed(agg("E1", "1", start=T0 + 60))
    # E2 had nothing in the first minute: its second minute shows it never will.
    derived, events = evaluator.feed(agg("E2", "2", start=T0 + 60))
    assert [(d.start, d.value) for d in derived] == [(T0, None), (T0 + 60, D(3))]
    assert [e.kind for e in events] == ["virtual_input_missing"]
    assert events[0].details["missing"] == "E2"


def test_a_dead_input_is_given_up_after_the_lag() -> None:
    evaluator = VirtualEvaluator(
        plan(POINTS, rules({"op": "add", "id": "T", "inputs": ["E1", "E2"]})), max_lag_s=120
    )
    events: list[Event] = []
    derived: list[Aggregate] = []
    for k in range(6):
        d, e = evaluator.feed(agg("E1", "1", start=T0 + 60 * k))
        derived += d
        events += e
    assert [d.start for d in derived] == [T0, T0 + 60, T0 + 120]
    assert all(d.quality is Quality.COMM_FAULT for d in derived)
    assert len(events) == 1  # one event when the input goes missing, not one per window


def test_trapezoid_integration_of_a_rate() -> None:
    rule = IntegratePoint(op="integrate", id="H", source="F")
    integ = Integrator(rule, source_decimals=2)
    assert integ.update(reading("F", 0, "10.00")) == (None, None)
    inc, _ = integ.update(reading("F", 1800, "14.00"))  # half an hour, mean 12 t/h
    assert inc is not None and inc.value == D("6.00") and inc.point == "H"
    inc, _ = integ.update(reading("F", 3600, "14.00", Quality.INTERPOLATED))
    assert inc is not None and inc.value == D("7.00") and inc.quality is Quality.INTERPOLATED
    assert integ.total == D("13.00")


def test_step_integration_holds_the_earlier_value() -> None:
    rule = IntegratePoint(op="integrate", id="H", source="F", method="step", per_s=D(1))
    integ = Integrator(rule, source_decimals=1)
    integ.update(reading("F", 0, "2.0"))
    inc, _ = integ.update(reading("F", 10, "100.0"))
    assert inc is not None and inc.value == D("20.0")


def test_integration_rounding_never_accumulates() -> None:
    rule = IntegratePoint(op="integrate", id="H", source="F")
    integ = Integrator(rule, source_decimals=2)
    total = D(0)
    for k in range(3601):  # 12.34 t/h read every second for an hour
        inc, _ = integ.update(reading("F", k, "12.34"))
        total += inc.value if inc is not None else 0
    assert total == D("12.34") == integ.total


def test_integration_does_not_bridge_long_gaps_when_told() -> None:
    rule = IntegratePoint(op="integrate", id="H", source="F", max_step_s=120)
    integ = Integrator(rule, source_decimals=2)
    integ.update(reading("F", 0, "1"))
    inc, event = integ.update(reading("F", 600, "1"))
    assert inc is None and event is not None and event.kind == "integration_gap"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "add", "id": "T", "inputs": ["E1", "NOPE"]}, "no point 'NOPE'"),
        ({"op": "add", "id": "E1", "inputs": ["E2", "E3"]}, "a metered point's id already"),
        ({"op": "add", "id": "T", "inputs": ["E1", "F"]}, "mixes counters and gauges"),
        (
            {"op": "allocate", "id": "A", "source": "F", "targets": ["X"], "shares": ["1"]},
            "is a gauge",
        ),
        ({"op": "integrate", "id": "H", "source": "E1"}, "is a counter"),
    ],
)
def test_configuration_errors_name_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(VirtualConfigError, match=message):
        plan(POINTS, rules(spec))


def test_cycles_are_refused() -> None:
    with pytest.raises(VirtualConfigError, match="cycle"):
        plan(
            POINTS,
            rules(
                {"op": "add", "id": "A", "inputs": ["B", "E1"]},
                {"op": "add", "id": "B", "inputs": ["A", "E2"]},
            ),
        )


def test_integrate_reads_a_metered_point() -> None:
    with pytest.raises(VirtualConfigError, match="metered point"):
        plan(
            POINTS,
            rules(
                {"op": "add", "id": "G2", "inputs": ["F", "R"]},
                {"op": "integrate", "id": "H", "source": "G2"},
            ),
        )


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "allocate", "id": "A", "source": "E1", "targets": ["X"]},
        {"op": "allocate", "id": "A", "source": "E1", "targets": ["X", "Y"], "shares": ["1"]},
        {"op": "allocate", "id": "A", "source": "E1", "targets": ["X"], "shares": ["0"]},
        {"op": "allocate", "id": "A", "source": "E1", "targets": ["X", "Y"], "shares": [1, 1]},
        {"op": "add", "id": "T", "inputs": []},
        {"op": "power", "id": "T", "inputs": ["E1"]},
    ],
)
def test_invalid_models_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        rules(spec)


def test_plan_orders_rules_and_knows_every_kind() -> None:
    p = plan(
        POINTS,
        rules(
            {"op": "subtract", "id": "U", "minuend": "T", "subtrahends": ["E3"]},
            {"op": "add", "id": "T", "inputs": ["E1", "E2"]},
            {"op": "integrate", "id": "H", "source": "F"},
        ),
    )
    assert [r.id for r in p.rules] == ["T", "U"]
    assert [r.id for r in p.integrals] == ["H"]
    assert (p.kinds["U"], p.kinds["H"], p.kinds["F"]) == ("counter", "counter", "gauge")


@given(
    st.integers(-(10**6), 10**8),
    st.lists(st.integers(0, 1000), min_size=1, max_size=8).filter(lambda w: sum(w) > 0),
    st.integers(0, 4),
)
def test_allocation_adds_up_exactly_and_stays_fair(
    units: int, weights: list[int], digits: int
) -> None:
    total = D(units).scaleb(-digits)
    parts = allocate(total, [D(w) for w in weights], digits)
    assert sum(parts, D(0)) == total
    quantum = D(1).scaleb(-digits)
    whole = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - total * w / whole) < quantum
        if units >= 0:
            assert part >= 0


def test_a_lasting_problem_is_one_event_until_it_clears() -> None:
    evaluator = VirtualEvaluator(
        plan(POINTS, rules({"op": "divide", "id": "Q", "numerator": "E1", "denominator": "E2"}))
    )
    kinds: list[str] = []
    for k, denominator in enumerate(["0", "0", "2", "0"]):
        for a in (agg("E1", "1", start=T0 + 60 * k), agg("E2", denominator, start=T0 + 60 * k)):
            kinds += [e.kind for e in evaluator.feed(a)[1]]
    assert kinds == ["virtual_division_by_zero", "virtual_division_by_zero"]

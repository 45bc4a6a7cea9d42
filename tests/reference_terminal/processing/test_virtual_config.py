"""The configuration's ``virtual_points`` section (CSMT §8.3.2): what a user may write, and the
clear error each mistake gets, naming its field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from reference_terminal.config import ConfigError, TerminalConfig, load_config
from reference_terminal.processing.pipeline import Processor
from reference_terminal.processing.virtual import plan
from tests.reference_terminal.processing.support import T0, raw

D = Decimal


def metered(pid: str, kind: str, unit: str) -> dict[str, Any]:
    return {"id": pid, "kind": kind, "unit": unit, "group": "g", "source": {"device": "m1"}}


BASE: dict[str, Any] = {
    "devices": [{"id": "m1", "protocol": "modbus-tcp", "host": "127.0.0.1"}],
    "groups": [{"id": "g", "period_s": 60}],
    "points": [
        metered("E1", "counter", "kWh"),
        metered("E2", "counter", "kWh"),
        metered("E3", "counter", "kWh"),
        metered("M1", "counter", "MWh"),
        metered("F", "gauge", "t/h"),
        metered("R", "gauge", "t/h"),
    ],
}


def config(*virtual: dict[str, Any], **extra: Any) -> TerminalConfig:
    return TerminalConfig.model_validate({**BASE, "virtual_points": list(virtual), **extra})


def refused(*virtual: dict[str, Any]) -> str:
    """The message of the one error ``virtual`` gets."""
    with pytest.raises(ValidationError) as caught:
        config(*virtual)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return str(errors[0]["msg"])


# ---- what may be written ----------------------------------------------------------------------


def test_every_operation_can_be_declared() -> None:
    c = config(
        {"op": "add", "id": "Total", "inputs": ["E1", "E2"]},
        {"op": "subtract", "id": "Rest", "minuend": "Total", "subtrahends": ["E3"]},
        {"op": "multiply", "id": "Steam", "inputs": ["E1"], "factor": "0.0036", "unit": "GJ"},
        {"op": "divide", "id": "Ratio", "numerator": "E1", "denominator": "E2"},
        {
            "op": "allocate",
            "id": "Split",
            "source": "E3",
            "targets": ["LineA", "LineB"],
            "shares": ["0.4", "0.6"],
        },
        {"op": "integrate", "id": "Mass", "source": "F", "per_s": 3600, "unit": "t"},
    )
    assert [v.op for v in c.virtual_points] == [
        "add",
        "subtract",
        "multiply",
        "divide",
        "allocate",
        "integrate",
    ]


def test_a_configured_virtual_point_is_computed_by_the_terminal_processing() -> None:
    c = config({"op": "add", "id": "Total", "inputs": ["E1", "E2"]})
    p = Processor.from_config(c)
    raws = [
        raw(x, T0 + 60 * k + 0.2, str(10 * k + n))
        for k in range(3)
        for n, x in [(1, "E1"), (2, "E2")]
    ]
    out = [*p.process_many(raws).aggregates, *p.close_until(T0 + 300).aggregates]
    total = [a for a in out if a.point == "Total" and a.period == "minute"]
    assert [(a.start, a.increment) for a in total] == [(T0, D(20)), (T0 + 60, D(20))]


def test_add_subtract_and_allocate_take_their_inputs_unit() -> None:
    c = config(
        {"op": "add", "id": "Total", "inputs": ["E1", "E2"]},
        {"op": "allocate", "id": "Split", "source": "E3", "targets": ["A"], "shares": ["1"]},
    )
    units = plan(c.points, c.virtual_points).units
    assert (units["Total"], units["A"]) == ("kWh", "kWh")


def test_a_virtual_point_with_a_data_item_code_is_uploaded_like_a_metered_one() -> None:
    c = config(
        {"op": "add", "id": "Total", "inputs": ["E1", "E2"]},
        uplink={"codes": [{"point": "Total", "code": "a05001"}]},
    )
    assert c.uplink.codes[0].point == "Total"


def test_a_data_item_code_for_no_point_is_still_refused() -> None:
    with pytest.raises(ValidationError, match=r"uplink.codes\[0\].point: no point 'Nope'"):
        config(
            {"op": "add", "id": "Total", "inputs": ["E1", "E2"]},
            uplink={"codes": [{"point": "Nope", "code": "a05001"}]},
        )


# ---- mistakes, each with a message naming its field ---------------------------------------------


def test_an_unknown_input_is_named_with_its_field() -> None:
    message = refused({"op": "add", "id": "T", "inputs": ["E1", "Nope"]})
    assert "virtual_points[0].inputs[1]: no point 'Nope'" in message


def test_a_cycle_is_refused_and_shown() -> None:
    message = refused(
        {"op": "add", "id": "A", "inputs": ["B", "E1"]},
        {"op": "subtract", "id": "B", "minuend": "C", "subtrahends": ["E2"]},
        {"op": "multiply", "id": "C", "inputs": ["A"]},
    )
    assert "virtual_points: these points depend on each other in a cycle: A → B → C → A" in message


def test_a_point_that_reads_itself_is_refused() -> None:
    message = refused({"op": "add", "id": "A", "inputs": ["A", "E1"]})
    assert "virtual_points[0].inputs[0]: 'A' reads itself" in message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "add", "id": "T", "inputs": ["E1"]}, "inputs: add sums two or more points"),
        ({"op": "add", "id": "T", "inputs": []}, "inputs: add sums two or more points, got 0"),
        (
            {"op": "subtract", "id": "T", "minuend": "E1", "subtrahends": []},
            "subtrahends: subtract takes at least one point from E1",
        ),
        ({"op": "multiply", "id": "T", "inputs": []}, "inputs: multiply needs at least one"),
        (
            {"op": "allocate", "id": "A", "source": "E1", "targets": ["X", "Y"], "shares": ["1"]},
            "shares: 1 shares for 2 targets",
        ),
        (
            {"op": "allocate", "id": "A", "source": "E1", "targets": [], "shares": []},
            "targets: allocate splits its source over at least one point",
        ),
        (
            {"op": "allocate", "id": "A", "source": "E1", "targets": ["X", "Y"], "basis": ["E2"]},
            "basis: 1 basis points for 2 targets",
        ),
    ],
)
def test_wrong_arity_is_refused(spec: dict[str, Any], message: str) -> None:
    assert message in refused(spec)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        (["0.5", "0.4"], "shares: they sum to 0.9, not 1"),
        (["1", "1"], "shares: they sum to 2, not 1"),
        (["1.5", "-0.5"], "shares[0]: 1.5 is not a fraction between 0 and 1"),
        (["0.5", "NaN"], "Input should be a finite number"),  # at virtual_points.0.…shares.1
    ],
)
def test_shares_are_fractions_summing_to_one(shares: list[str], message: str) -> None:
    spec = {"op": "allocate", "id": "A", "source": "E1", "targets": ["X", "Y"], "shares": shares}
    assert message in refused(spec)


def test_allocation_needs_shares_or_a_basis() -> None:
    message = refused({"op": "allocate", "id": "A", "source": "E1", "targets": ["X"]})
    assert "shares: allocate needs shares (fractions summing to 1), basis or both" in message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"op": "add", "id": "T", "inputs": ["E1", "E2", "E1"]},
            "inputs[2]: 'E1' is listed twice",
        ),
        (
            {"op": "subtract", "id": "T", "minuend": "E1", "subtrahends": ["E1"]},
            "subtrahends: 'E1' is the minuend too",
        ),
        (
            {
                "op": "allocate",
                "id": "A",
                "source": "E1",
                "targets": ["X", "X"],
                "basis": ["E2", "E3"],
            },
            "targets[1]: 'X' is listed twice",
        ),
        (
            {
                "op": "allocate",
                "id": "A",
                "source": "E1",
                "targets": ["X", "A"],
                "basis": ["E2", "E3"],
            },
            "targets[1]: 'A' is the allocation's own id",
        ),
    ],
)
def test_a_point_listed_twice_is_refused(spec: dict[str, Any], message: str) -> None:
    assert message in refused(spec)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            [{"op": "add", "id": "E1", "inputs": ["E2", "E3"]}],
            "virtual_points[0].id: 'E1' is a metered point's id already",
        ),
        (
            [
                {"op": "add", "id": "T", "inputs": ["E1", "E2"]},
                {"op": "multiply", "id": "T", "inputs": ["E3"]},
            ],
            "virtual_points[1].id: 'T' is made by virtual_points[0] already",
        ),
        (
            [
                {"op": "add", "id": "T", "inputs": ["E1", "E2"]},
                {"op": "allocate", "id": "A", "source": "E3", "targets": ["T"], "shares": ["1"]},
            ],
            "virtual_points[1].targets[0]: 'T' is made by virtual_points[0] already",
        ),
    ],
)
def test_ids_are_unique_across_metered_and_virtual_points(
    specs: list[dict[str, Any]], message: str
) -> None:
    assert message in refused(*specs)


def test_an_allocation_is_read_through_its_targets() -> None:
    message = refused(
        {"op": "allocate", "id": "A", "source": "E3", "targets": ["X", "Y"], "basis": ["E1", "E2"]},
        {"op": "add", "id": "T", "inputs": ["A", "E1"]},
    )
    assert (
        "virtual_points[1].inputs[0]: 'A' names an allocation; read one of its targets" in message
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "add", "id": "T", "inputs": ["E1", "F"]}, "add mixes counters and gauges"),
        (
            {"op": "allocate", "id": "A", "source": "F", "targets": ["X"], "shares": ["1"]},
            "virtual_points[0].source: allocate splits a counter's increments; 'F' is a gauge",
        ),
        (
            {"op": "integrate", "id": "H", "source": "E1"},
            "virtual_points[0].source: integrate turns a rate (a gauge) into a total",
        ),
    ],
)
def test_kinds_must_fit_the_operation(spec: dict[str, Any], message: str) -> None:
    assert message in refused(spec)


def test_integration_reads_a_metered_rate() -> None:
    message = refused(
        {"op": "add", "id": "G", "inputs": ["F", "R"]},
        {"op": "integrate", "id": "H", "source": "G"},
    )
    assert "virtual_points[1].source: 'G' must be a metered point" in message


def test_add_and_subtract_convert_no_units() -> None:
    message = refused({"op": "add", "id": "T", "inputs": ["E1", "M1"]})
    assert "virtual_points[0]: add of values in different units (E1 (kWh), M1 (MWh))" in message
    message = refused({"op": "add", "id": "T", "inputs": ["E1", "E2"], "unit": "MWh"})
    assert "virtual_points[0].unit: 'MWh', but its inputs are in 'kWh'" in message


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "power", "id": "T", "inputs": ["E1", "E2"]},
        {"id": "T", "inputs": ["E1", "E2"]},
        {"op": "add", "id": "bad id!", "inputs": ["E1", "E2"]},
        {"op": "add", "id": "T", "inputs": ["E1", "E2"], "colour": "red"},
        {"op": "multiply", "id": "T", "inputs": ["E1"], "factor": "Infinity"},
        {"op": "integrate", "id": "H", "source": "F", "per_s": 0},
    ],
)
def test_malformed_entries_are_refused_by_the_schema(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config(spec)


def test_a_configuration_file_names_the_virtual_point_field_at_fault(tmp_path: Path) -> None:
    path = tmp_path / "terminal.yaml"
    path.write_text(
        yaml.safe_dump(
            {**BASE, "virtual_points": [{"op": "add", "id": "T", "inputs": ["E1", "X"]}]}
        )
    )
    with pytest.raises(ConfigError, match=r"virtual_points\[0\].inputs\[1\]: no point 'X'"):
        load_config(path)


# ---- garbage ------------------------------------------------------------------------------------

IDS = st.sampled_from(["E1", "E2", "E3", "M1", "F", "R", "T", "U", "A", "X", "Y", "", "bad id"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    IDS,
    st.sampled_from(["NaN", "-Infinity", "1e999999", "0.5", "1", "sNaN", "-0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "op",
        "id",
        "name",
        "unit",
        "decimals",
        "inputs",
        "minuend",
        "subtrahends",
        "numerator",
        "denominator",
        "factor",
        "source",
        "targets",
        "shares",
        "basis",
        "method",
        "per_s",
        "max_step_s",
    ]
)
OPS = st.sampled_from(["add", "subtract", "multiply", "divide", "allocate", "integrate", "nope"])
ENTRY = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"op": OPS, "id": IDS},
        optional={
            "inputs": st.lists(IDS, max_size=4) | VALUES,
            "minuend": IDS,
            "subtrahends": st.lists(IDS, max_size=3),
            "numerator": IDS,
            "denominator": IDS,
            "factor": VALUES,
            "source": IDS,
            "targets": st.lists(IDS, max_size=3),
            "shares": st.lists(SCALARS, max_size=3),
            "basis": st.lists(IDS, max_size=3),
            "per_s": SCALARS,
            "decimals": SCALARS,
        },
    ),
    st.dictionaries(KEYS, VALUES, max_size=6),
)


@given(st.one_of(st.lists(ENTRY, max_size=5), VALUES))
def test_the_validator_never_crashes_on_garbage(virtual: Any) -> None:
    """Whatever is written under ``virtual_points``, validation either accepts it (and the
    terminal's processing can be built from it) or refuses it with its clear error: never
    another exception."""
    try:
        c = TerminalConfig.model_validate({**BASE, "virtual_points": virtual})
    except ValidationError as exc:
        for error in exc.errors():
            assert error["msg"], error
        return
    Processor.from_config(c)

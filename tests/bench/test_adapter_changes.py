"""Configuration changes the suites ask for, made in the carbench profile's form (the reference
terminal's schema): both adapters send the result with ``PUT /config``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bench.adapters.changes import apply_changes
from conformance.dut import AddVirtualPoint, RemoveVirtualPoint
from conformance.verdicts import Inconclusive
from reference_terminal.config import TerminalConfig

CONFIG: dict[str, Any] = TerminalConfig.model_validate(
    {
        "devices": [{"id": "m1", "protocol": "modbus-tcp", "host": "127.0.0.1"}],
        "groups": [{"id": "g", "period_s": 60}],
        "points": [
            {"id": p, "kind": kind, "unit": unit, "group": "g", "source": {"device": "m1"}}
            for p, kind, unit in [
                ("E1", "counter", "kWh"),
                ("E2", "counter", "kWh"),
                ("F", "gauge", "kW"),
            ]
        ],
    }
).model_dump(mode="json")


@pytest.mark.parametrize(
    "change",
    [
        AddVirtualPoint("V", "add", ("E1", "E2")),
        AddVirtualPoint("V", "subtract", ("E1", "E2")),
        AddVirtualPoint("V", "multiply", ("E1",), factor=Decimal("2.5")),
        AddVirtualPoint("V", "divide", ("E1", "E2"), factor=Decimal(100)),
        AddVirtualPoint(
            "V", "allocate", ("E1",), targets=("A", "B"), shares=(Decimal("0.3"), Decimal("0.7"))
        ),
        AddVirtualPoint("V", "integrate", ("F",), per_s=3600),
    ],
)
def test_every_virtual_operation_becomes_a_valid_configuration(change: AddVirtualPoint) -> None:
    config = TerminalConfig.model_validate(apply_changes(CONFIG, (change,)))
    (rule,) = config.virtual_points
    assert (rule.id, rule.op) == ("V", change.operation)


def test_a_virtual_point_is_replaced_by_one_of_the_same_id_and_removed_again() -> None:
    first = apply_changes(CONFIG, (AddVirtualPoint("V", "add", ("E1", "E2")),))
    second = apply_changes(first, (AddVirtualPoint("V", "subtract", ("E1", "E2")),))
    assert [r["op"] for r in second["virtual_points"]] == ["subtract"]
    assert apply_changes(second, (RemoveVirtualPoint("V"),))["virtual_points"] == []
    assert first["virtual_points"][0]["op"] == "add"  # the argument is left alone


def test_a_terminal_without_virtual_points_in_its_configuration_is_inconclusive() -> None:
    without = {k: v for k, v in CONFIG.items() if k != "virtual_points"}
    with pytest.raises(Inconclusive, match="no virtual_points section"):
        apply_changes(without, (AddVirtualPoint("V", "add", ("E1", "E2")),))

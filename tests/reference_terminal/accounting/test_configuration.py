"""The accounting section of the terminal configuration: a boundary of units, sources and
points, each source bound to a method of the factor library, and every mistake refused with a
message that names the field."""

from __future__ import annotations

from copy import deepcopy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from reference_terminal.accounting.bindings import resolve
from reference_terminal.accounting.methods import SourceKind
from reference_terminal.config import TerminalConfig
from tests.reference_terminal.accounting.terminal_config import config_data, make_config


def refused(tmp_path: Path, edit: Any) -> str:
    data = deepcopy(config_data(tmp_path))
    edit(data["accounting"])
    with pytest.raises(ValidationError) as caught:
        TerminalConfig.model_validate(data)
    return str(caught.value)


def source(acc: dict[str, Any], unit: int, index: int) -> dict[str, Any]:
    found: dict[str, Any] = acc["units"][unit]["sources"][index]
    return found


def test_each_point_is_bound_to_its_source_method_and_rate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.accounting is not None
    bindings = resolve(config.accounting, config.points, manual_devices=frozenset({"ticket"}))
    grid, gas = bindings.points["em.ep"], bindings.points["gm.vol"]
    assert (grid.kind, grid.scope, grid.category, grid.unit_id) == (
        SourceKind.ELECTRICITY,
        2,
        "electricity",
        "utilities",
    )
    assert grid.rate.rate == Decimal("0.0005703")  # tCO2 per kWh
    # natural gas: 389.31 GJ/10^4 Nm3 × 0.01532 tC/GJ × 99 % × 44/12, per Nm3
    assert abs(gas.rate.rate - Decimal("0.00216501519960")) < Decimal("1e-14")
    assert bindings.points["ticket.clinker"].manual and not grid.manual
    assert bindings.vintage == "2015 guidelines / GB/T 32150"
    assert set(bindings.tracked) == {"em.ep", "gm.vol", "ticket.clinker", "scale.t"}


def test_an_unknown_point_is_named(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 0).update(points=["em.nope"]))
    assert "accounting.units[0].sources[0].points[0]: no point 'em.nope'" in message


def test_a_gauge_cannot_carry_activity(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 0).update(points=["em.kw"]))
    assert "accounting.units[0].sources[0].points[0]: 'em.kw' is a gauge" in message


def test_an_unknown_fuel_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 1).update(fuel="natral_gas"))
    assert "accounting.units[0].sources[1].fuel:" in message
    assert "did you mean 'natural_gas'" in message


def test_a_unit_the_method_cannot_use_is_named(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 1).update(points=["wm.vol"]))
    assert "accounting.units[0].sources[1].points[0]: 'wm.vol' measures m³" in message
    assert "Nm3" in message  # gas is accounted at normal conditions


def test_an_electricity_factor_on_a_mass_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 0).update(points=["scale.t"]))
    assert "accounting.units[0].sources[0].points[0]: 'scale.t' measures t" in message


def test_a_point_in_two_sources_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: source(a, 0, 1).update(points=["em.ep"]))
    assert "units[0].sources[1].points[0]: 'em.ep' already feeds source 'grid'" in message


def test_a_vintage_the_library_lacks_is_named(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: a.update(vintage="2099 set"))
    assert "accounting.vintage: '2099 set' is not in the library" in message


def test_an_alarm_on_a_point_outside_the_accounting_is_refused(tmp_path: Path) -> None:
    def edit(a: dict[str, Any]) -> None:
        a["alarms"][0]["point"] = "wm.vol"

    assert "accounting.alarms[0].point: 'wm.vol' is no point of the accounting" in refused(
        tmp_path, edit
    )


def test_a_missing_library_is_named(tmp_path: Path) -> None:
    message = refused(tmp_path, lambda a: a.update(library=[str(tmp_path / "none")]))
    assert "accounting.library[0]:" in message and "no such file" in message


def test_a_terminal_without_accounting_still_validates(tmp_path: Path) -> None:
    data = deepcopy(config_data(tmp_path))
    del data["accounting"]
    assert TerminalConfig.model_validate(data).accounting is None

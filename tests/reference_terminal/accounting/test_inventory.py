"""Classified accounting: scopes, totals, biomass apart, and one vintage per calculation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.accounting.errors import InvalidParameter, VintageMix
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.inventory import account
from reference_terminal.accounting.methods import spec_from_text

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
D = Decimal


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.load(LIBRARY)


def test_scopes_and_totals_follow_gbt_32150(lib: FactorLibrary) -> None:
    inv = account(
        [
            spec_from_text("gas", "combustion", "1000 GJ", fuel="natural_gas"),
            spec_from_text("lime", "carbonate", "100 t", factor="caco3"),
            spec_from_text("capture", "recovered", "10 t"),
            spec_from_text("grid", "electricity", "100 MWh", factor="0.5 tCO2/MWh"),
            spec_from_text("steam", "heat", "100 GJ", factor="purchased_heat"),
            spec_from_text("pv", "exported_electricity", "10 MWh", factor="0.5 tCO2/MWh"),
            spec_from_text("hot water", "exported_heat", "10 GJ", factor="purchased_heat"),
            spec_from_text("wood", "biomass", "10 GJ", factor="0.1 tCO2/GJ"),
        ],
        lib,
    )
    # scope 1: 55.6116 + 43.971 − 10; scope 2: 50 + 11 − 5 − 1.1; biomass 1 apart
    assert inv.scope1_tco2 == D("89.5826")
    assert inv.scope2_tco2 == D("54.9")
    assert inv.total_tco2 == D("144.4826")
    assert inv.biomass_tco2 == D("1.0")
    assert inv.vintage == "2015 guidelines / GB/T 32150"
    assert [f.name for f in inv.factors_to_confirm()] == ["natural_gas", "purchased_heat"]


def test_factors_of_two_vintages_are_refused(lib: FactorLibrary) -> None:
    specs = [
        spec_from_text("boiler", "combustion", "1 t", fuel="diesel"),
        spec_from_text(
            "incomer", "electricity", "1 MWh", factor="grid", vintage="MEE 2023 carbon market"
        ),
    ]
    with pytest.raises(VintageMix) as info:
        account(specs, lib)
    message = str(info.value)
    assert "source 'incomer'" in message and "source 'boiler'" in message
    assert "'MEE 2023 carbon market'" in message and "'2015 guidelines / GB/T 32150'" in message
    assert "one vintage only" in message


def test_a_vintage_found_by_lookup_is_refused_too(lib: FactorLibrary) -> None:
    # 'grid' resolved without a vintage would be ambiguous; with the data year it is the
    # MEE/NBS one, which differs from the 2015 fuel's.
    specs = [
        spec_from_text("incomer", "electricity", "1 MWh", factor="grid", data_year=2022),
        spec_from_text("boiler", "combustion", "1 t", fuel="diesel"),
    ]
    with pytest.raises(VintageMix, match=r"source 'boiler': fuel: 'diesel' comes from"):
        account(specs, lib)


def test_the_calculation_s_vintage_restricts_every_lookup(lib: FactorLibrary) -> None:
    specs = [spec_from_text("incomer", "electricity", "1 MWh", factor="grid")]
    inv = account(specs, lib, vintage="MEE 2023 carbon market")
    assert inv.total_tco2 == D("0.5703")
    with pytest.raises(InvalidParameter, match="factor: 'grid' is not in vintage"):
        account(specs, lib, vintage="2015 guidelines / GB/T 32150")
    other = [spec_from_text("x", "combustion", "1 t", fuel="diesel", vintage="other")]
    with pytest.raises(VintageMix, match="source 'x': vintage: 'other'"):
        account(other, lib, vintage="2015 guidelines / GB/T 32150")


def test_explicit_parameters_carry_no_vintage(lib: FactorLibrary) -> None:
    inv = account(
        [
            spec_from_text("boiler", "combustion", "1 t", fuel="diesel"),
            spec_from_text("incomer", "electricity", "1 MWh", factor="0.5703 tCO2/MWh"),
        ],
        lib,
    )
    assert inv.vintage == "2015 guidelines / GB/T 32150"
    only_explicit = account([spec_from_text("a", "heat", "1 GJ", factor="0.1 tCO2/GJ")], lib)
    assert only_explicit.vintage is None


def test_an_empty_inventory_is_zero() -> None:
    inv = account([])
    assert (inv.scope1_tco2, inv.scope2_tco2, inv.total_tco2, inv.biomass_tco2) == (D(0),) * 4


def test_totals_are_summed_before_rounding(lib: FactorLibrary) -> None:
    # Three sources of 0.0004 tCO2 each: rounded one by one they would sum to 0.000.
    specs = [
        spec_from_text(f"s{i}", "electricity", "1 kWh", factor="0.4 tCO2/MWh") for i in range(3)
    ]
    assert account(specs, lib).total_tco2 == D("0.0012")

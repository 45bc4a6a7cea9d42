"""The emission-factor method per source: formulas, parameter origins, errors naming fields."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.accounting.errors import InvalidParameter, MissingParameter, SourceError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.methods import (
    SourceKind,
    SourceResult,
    account_source,
    spec_from_text,
)
from reference_terminal.accounting.units import round_report

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
D = Decimal


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.load(LIBRARY)


def run(lib: FactorLibrary, kind: str, quantity: str, **fields: Any) -> SourceResult:
    return account_source(spec_from_text("s", kind, quantity, **fields), lib)


def exact(value: Decimal) -> Fraction:
    return Fraction(value)


def test_combustion_from_the_library_keeps_every_step(lib: FactorLibrary) -> None:
    r = run(lib, "combustion", "12 10^4 Nm3", fuel="natural_gas")
    assert r.scope == 1
    assert str(r.activity_data) == "4671.72 GJ"
    assert r.emission_factor.value == D("0.0556116")
    assert [p.name for p in r.parameters] == ["ncv", "carbon_content", "oxidation"]
    assert all(p.origin == "library" and p.factor is not None for p in r.parameters)
    assert r.factor is not None and r.vintage == "2015 guidelines / GB/T 32150"
    assert r.tco2 == D("259.801823952")
    assert "EF = CC × OF × 44/12" in r.formula


def test_the_44_over_12_division_is_the_only_rounding(lib: FactorLibrary) -> None:
    r = run(lib, "combustion", "5 t", fuel="diesel")
    expected = Fraction("213.26") * Fraction("0.0202") * Fraction("0.98") * Fraction(44, 12)
    assert abs(exact(r.tco2) - expected) < Fraction(1, 10**90)
    assert round_report(r.tco2, 3) == D("15.480")


def test_explicit_parameters_alone(lib: FactorLibrary) -> None:
    r = run(
        lib,
        "combustion",
        "2 t",
        ncv="40 GJ/t",
        carbon_content="20 kgC/GJ",
        oxidation="0.9",
    )
    # 80 GJ × 0.020 × 0.9 × 44/12 = 5.28
    assert r.tco2 == D("5.28")
    assert all(p.origin == "input" for p in r.parameters)
    assert r.factor is None


def test_an_explicit_parameter_overrides_the_library_one(lib: FactorLibrary) -> None:
    r = run(lib, "combustion", "1 t", fuel="diesel", ncv="43 GJ/t")
    origins = {p.name: p.origin for p in r.parameters}
    assert origins == {"ncv": "input", "carbon_content": "library", "oxidation": "library"}
    assert str(r.activity_data) == "43 GJ"


def test_a_fuel_given_as_energy_needs_no_ncv(lib: FactorLibrary) -> None:
    r = run(lib, "combustion", "1000 GJ", fuel="natural_gas")
    assert [p.name for p in r.parameters] == ["carbon_content", "oxidation"]
    assert r.tco2 == D("55.6116")


def test_combustion_with_an_emission_factor(lib: FactorLibrary) -> None:
    per_mass = run(lib, "combustion", "10 t", factor="3.1 tCO2/t")
    assert per_mass.tco2 == D("31.0") and per_mass.formula == "E = AD × EF"
    per_energy = run(lib, "combustion", "10 t", fuel="diesel", factor="0.07 tCO2/GJ")
    assert per_energy.tco2 == D("29.8564")  # 426.52 GJ × 0.07; library CC and OF unused
    assert [p.name for p in per_energy.parameters] == ["ncv", "factor"]


def test_process_carbonate_electricity_heat(lib: FactorLibrary) -> None:
    assert run(lib, "process", "40 t", carbon_content="0.998 tC/t").tco2.quantize(D("0.001")) == D(
        "146.373"
    )
    assert run(lib, "process", "2 t", factor="500 kgCO2/t").tco2 == D("1")
    assert run(lib, "carbonate", "1000 t", factor="caco3", purity="90 %").tco2 == D("395.739")
    assert run(lib, "carbonate", "2 kt", factor="mgco3").tco2 == D("1043.94")
    e = run(lib, "electricity", "5000 kWh", factor="grid", vintage="MEE 2023 carbon market")
    assert (e.scope, e.tco2) == (2, D("2.8515"))
    assert run(lib, "heat", "1 TJ", factor="purchased_heat").tco2 == D("110")


def test_an_emission_in_kg_is_reported_in_tonnes(lib: FactorLibrary) -> None:
    r = run(lib, "electricity", "5000 MWh", factor="0.5703 kgCO2/kWh")
    assert r.tco2 == D("2851.5")
    assert str(r.activity_data) == "5000000 kWh"


def test_deductions_are_negative(lib: FactorLibrary) -> None:
    x = run(lib, "exported_electricity", "200 MWh", factor="0.5703 tCO2/MWh")
    assert (x.scope, x.tco2) == (2, D("-114.06")) and x.formula == "E = −AD × EF"
    h = run(lib, "exported_heat", "100 GJ", factor="purchased_heat")
    assert (h.scope, h.tco2) == (2, D("-11"))
    rec = run(lib, "recovered", "800 t", purity="99 %")
    assert (rec.scope, rec.tco2) == (1, D("-792"))
    assert str(rec.activity_data) == "800 tCO2"
    assert [(p.name, p.origin) for p in run(lib, "recovered", "1 tCO2").parameters] == [
        ("purity", "default")
    ]


def test_recovered_by_volume_needs_the_density(lib: FactorLibrary) -> None:
    r = run(lib, "recovered", "10 10^4 Nm3", factor="19.7 t/10^4 Nm3", purity="98 %")
    assert r.tco2 == D("-193.06")  # 10 × 19.7 × 0.98
    with pytest.raises(MissingParameter, match=r"source 's': factor: missing: .*CO2 density"):
        run(lib, "recovered", "10 10^4 Nm3")


def test_biomass_has_no_scope(lib: FactorLibrary) -> None:
    r = run(lib, "biomass", "100 t", ncv="16 GJ/t", carbon_content="0.03 tC/GJ", oxidation="1")
    assert r.scope is None and r.tco2 == D("176")
    assert "reported apart" in r.formula


@pytest.mark.parametrize(
    ("kind", "quantity", "fields", "error", "message"),
    [
        (
            "combustion",
            "10 t",
            {"ncv": "40 GJ/t", "carbon_content": "0.02 tC/GJ"},
            MissingParameter,
            "source 's': oxidation: missing",
        ),
        ("combustion", "10 t", {}, MissingParameter, "source 's': ncv: missing: AD = FC × NCV"),
        (
            "combustion",
            "10 t",
            {"ncv": "40 GJ/t"},
            MissingParameter,
            "carbon_content: missing: EF = CC × OF × 44/12",
        ),
        ("combustion", "10 t", {"fuel": "natgas"}, InvalidParameter, "fuel: no factor 'natgas'"),
        (
            "combustion",
            "10 t",
            {"fuel": "caco3"},
            InvalidParameter,
            "fuel: 'caco3' is a carbonate entry; a combustion source takes fuel",
        ),
        (
            "combustion",
            "10 MWh",
            {"fuel": "diesel", "ncv": "40 GJ/t"},
            InvalidParameter,
            "ncv: given, but the quantity 10 MWh is already energy",
        ),
        (
            "combustion",
            "10 tCO2",
            {"fuel": "diesel"},
            InvalidParameter,
            "quantity: 10 tCO2 is co2: give a fuel's mass",
        ),
        (
            "combustion",
            "10 10^4 Nm3",
            {"fuel": "diesel"},
            InvalidParameter,
            r"ncv: cannot convert 10 10\^4 Nm3 \(volume\) to t \(mass\)",
        ),
        (
            "combustion",
            "10 t",
            {"fuel": "diesel", "oxidation": "101 %"},
            InvalidParameter,
            r"oxidation: 101 % is outside \(0, 100 %\]",
        ),
        (
            "combustion",
            "10 t",
            {"ncv": "40 GJ/t", "carbon_content": "0.02 tCO2/GJ", "oxidation": "1"},
            InvalidParameter,
            "carbon_content: 0.02 tCO2/GJ is co2 per energy, expected carbon",
        ),
        (
            "combustion",
            "10 t",
            {"factor": "3 tCO2/t", "carbon_content": "0.02 tC/GJ"},
            InvalidParameter,
            "carbon_content: given together with factor",
        ),
        (
            "combustion",
            "10 GJ",
            {"factor": "3 tCO2/t"},
            InvalidParameter,
            "factor: 3 tCO2/t is per mass, the quantity 10 GJ is energy",
        ),
        (
            "electricity",
            "10 t",
            {"factor": "0.5703 tCO2/MWh"},
            InvalidParameter,
            r"quantity: cannot convert 10 t \(mass\) to MWh \(energy\)",
        ),
        (
            "electricity",
            "10 MWh",
            {"ncv": "1 GJ/t", "factor": "0.5 tCO2/MWh"},
            InvalidParameter,
            "ncv: does not apply to kind electricity",
        ),
        ("electricity", "10 MWh", {}, MissingParameter, "factor: missing: E = AD × EF"),
        (
            "electricity",
            "10 MWh",
            {"factor": "grid"},
            InvalidParameter,
            "factor: 'grid' is in several vintages",
        ),
        (
            "heat",
            "10 MWh",
            {"factor": "0.11 tC/GJ"},
            InvalidParameter,
            "factor: 0.11 tC/GJ is carbon per energy, expected co2",
        ),
        (
            "carbonate",
            "10 GJ",
            {"factor": "caco3"},
            InvalidParameter,
            r"quantity: cannot convert 10 GJ \(energy\) to t \(mass\)",
        ),
        (
            "carbonate",
            "10 t",
            {"factor": "caco3", "purity": "5 t"},
            InvalidParameter,
            "purity: 5 t is mass, expected %",
        ),
        (
            "electricity",
            "-5 MWh",
            {"factor": "0.5 tCO2/MWh"},
            InvalidParameter,
            "quantity: -5 MWh is negative: deductions have their own kinds",
        ),
        (
            "electricity",
            "5 MWh",
            {"factor": "-0.5 tCO2/MWh"},
            InvalidParameter,
            "factor: -0.5 tCO2/MWh must be greater than zero",
        ),
        ("flare", "5 t", {}, InvalidParameter, "kind: 'flare' is not one of combustion"),
        ("heat", "5 GJJ", {}, InvalidParameter, "quantity: unknown unit 'GJJ'"),
        (
            "combustion",
            "5 t",
            {"fuel": "diesel", "factor": "grid"},
            InvalidParameter,
            "factor: names 'grid' from the library and fuel names 'diesel'",
        ),
        (
            "recovered",
            "5 t",
            {"factor": "19.7 t/10^4 Nm3"},
            InvalidParameter,
            "factor: not used: the quantity 5 t is already a mass of CO2",
        ),
    ],
)
def test_errors_name_the_source_and_the_field(
    lib: FactorLibrary,
    kind: str,
    quantity: str,
    fields: dict[str, Any],
    error: type[SourceError],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as info:
        run(lib, kind, quantity, **fields)
    assert info.value.source == "s"
    assert str(info.value).startswith(f"source 's': {info.value.field}: ")


def test_every_kind_has_a_scope_rule() -> None:
    from reference_terminal.accounting.methods import SCOPE

    assert set(SCOPE) == set(SourceKind)


def test_a_source_s_vintage_must_agree_with_the_calculation_s(lib: FactorLibrary) -> None:
    spec = spec_from_text("s", "combustion", "1 t", fuel="diesel", vintage="other")
    with pytest.raises(InvalidParameter, match="source 's': vintage: 'other', but the calc"):
        account_source(spec, lib, "2015 guidelines / GB/T 32150")


def test_without_a_library_a_name_is_an_error() -> None:
    with pytest.raises(InvalidParameter, match="fuel: no factor library loaded"):
        account_source(spec_from_text("s", "combustion", "1 t", fuel="diesel"))

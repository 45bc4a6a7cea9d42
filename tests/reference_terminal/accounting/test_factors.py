"""The factor library: contents, lookups, import/export round trip, updates, bad files."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from reference_terminal.accounting.errors import AmbiguousFactor, LibraryError, UnknownFactor
from reference_terminal.accounting.factors import Factor, FactorKind, FactorLibrary
from reference_terminal.accounting.units import parse_quantity

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
V2015 = "2015 guidelines / GB/T 32150"


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.load(LIBRARY)


def test_the_library_holds_facts_md_by_vintage(lib: FactorLibrary) -> None:
    assert lib.counts_by_vintage() == {
        V2015: 9,
        "MEE 2023 carbon market": 1,
        "MEE/NBS national average": 3,
    }
    gas = lib.get("natural_gas")
    assert str(gas.ncv) == "389.31 GJ/10^4 Nm3"
    assert str(gas.carbon_content) == "0.01532 tC/GJ"
    assert str(gas.oxidation) == "99 %"
    grid = {
        f.data_year: f.factor for f in lib.query(name="grid", vintage="MEE/NBS national average")
    }
    assert {y: str(q) for y, q in grid.items()} == {
        2021: "0.5568 tCO2/MWh",
        2022: "0.5366 tCO2/MWh",
        2023: "0.5306 tCO2/MWh",
    }
    assert str(lib.get("grid", "MEE 2023 carbon market").factor) == "0.5703 tCO2/MWh"
    assert str(lib.get("purchased_heat").factor) == "0.11 tCO2/GJ"


def test_every_transcribed_default_is_marked_to_confirm(lib: FactorLibrary) -> None:
    fuels = lib.query(kind=FactorKind.FUEL)
    assert {f.name for f in fuels} == {"natural_gas", "diesel", "gasoline", "lpg", "coke"}
    assert all(f.to_confirm and "to confirm against the primary table" in f.note for f in fuels)
    assert {f.name for f in lib.query(to_confirm=True)} == {f.name for f in fuels} | {
        "purchased_heat"
    }


def test_no_coal_without_a_source(lib: FactorLibrary) -> None:
    # FACTS.md gives no coal parameters; none may be invented.
    assert not [f for f in lib.factors if "coal" in f.name]


def test_every_factor_has_a_source_and_a_vintage(lib: FactorLibrary) -> None:
    for f in lib.factors:
        assert f.source and f.vintage in lib.vintages


# IUPAC standard atomic weights (2007 abridged): the carbonate factors are stoichiometric.
C, OX, CA, MG = Decimal("12.0107"), Decimal("15.9994"), Decimal("40.078"), Decimal("24.305")


@pytest.mark.parametrize(
    ("name", "co2", "carbonate"),
    [
        ("caco3", C + 2 * OX, CA + C + 3 * OX),
        ("mgco3", C + 2 * OX, MG + C + 3 * OX),
        ("dolomite", 2 * (C + 2 * OX), CA + MG + 2 * (C + 3 * OX)),
    ],
)
def test_carbonate_factors_are_the_stoichiometric_ratio(
    lib: FactorLibrary, name: str, co2: Decimal, carbonate: Decimal
) -> None:
    factor = lib.get(name).factor
    assert factor is not None
    assert factor.value == (co2 / carbonate).quantize(Decimal("0.00001"))


def test_lookups_by_label_and_case(lib: FactorLibrary) -> None:
    assert lib.get("天然气").name == "natural_gas"
    assert lib.get("CaCO3").name == "caco3"


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("natgas",), UnknownFactor, "did you mean 'natural_gas'"),
        (("grid",), AmbiguousFactor, "several vintages"),
        (("grid", "MEE/NBS national average"), AmbiguousFactor, "choose a data_year"),
        (("grid", "MEE/NBS national average", 2019), UnknownFactor, "no data year 2019"),
        (("grid", V2015), UnknownFactor, "not in vintage"),
        (("diesel", "2013 guidelines"), UnknownFactor, "no vintage '2013 guidelines'"),
    ],
)
def test_lookup_errors_say_what_there_is(
    lib: FactorLibrary, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        lib.get(*args)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_export_and_import_round_trip(lib: FactorLibrary, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"library{suffix}"
    lib.export(out)
    again = FactorLibrary.load(out)
    assert again == lib
    assert FactorLibrary.from_data(lib.to_data()) == lib
    if suffix == ".json":
        assert json.loads(out.read_text(encoding="utf-8"))["vintages"][0]["vintage"] == V2015


def test_an_update_makes_a_new_library_and_bumps_the_vintage_revision(lib: FactorLibrary) -> None:
    new = lib.updated("diesel", V2015, ncv="43.330 GJ/t", to_confirm=False, note="measured")
    assert str(new.get("diesel").ncv) == "43.330 GJ/t"
    assert new.vintages[V2015].revision == lib.vintages[V2015].revision + 1
    assert str(lib.get("diesel").ncv) == "42.652 GJ/t"  # the old library is untouched
    assert new.vintages["MEE 2023 carbon market"] == lib.vintages["MEE 2023 carbon market"]
    exported = FactorLibrary.from_data(new.to_data())
    assert exported.vintages[V2015].revision == 2


def test_updates_are_checked_like_files(lib: FactorLibrary) -> None:
    with pytest.raises(LibraryError, match="ncv"):
        lib.updated("diesel", V2015, ncv="43 tCO2/t")
    with pytest.raises(LibraryError, match="oxidation"):
        lib.updated("diesel", V2015, oxidation="120 %")
    with pytest.raises(LibraryError, match="colour"):
        lib.updated("diesel", V2015, colour="red")
    with pytest.raises(LibraryError, match="unknown unit"):
        lib.updated("diesel", V2015, ncv="43 GJ/tonne")


def test_adding_a_factor(lib: FactorLibrary) -> None:
    grid_2024 = dataclasses.replace(
        lib.get("grid", "MEE/NBS national average", 2023),
        data_year=2024,
        factor=parse_quantity("0.5 tCO2/MWh"),
        source="test only",
    )
    new = lib.with_factor(grid_2024)
    assert new.get("grid", "MEE/NBS national average", 2024).factor == grid_2024.factor
    with pytest.raises(LibraryError, match="already exists"):
        new.with_factor(grid_2024)
    with pytest.raises(LibraryError, match="no vintage"):
        lib.with_factor(dataclasses.replace(grid_2024, vintage="nowhere"))


def test_importing_a_vintage_already_there_needs_replace(lib: FactorLibrary) -> None:
    other = FactorLibrary.from_data(
        {
            "vintage": "MEE 2023 carbon market",
            "methodology": "test",
            "revision": 7,
            "factors": [
                {
                    "name": "grid",
                    "kind": "electricity",
                    "factor": "0.6 tCO2/MWh",
                    "data_year": None,
                    "source": "test",
                    "to_confirm": False,
                }
            ],
        }
    )
    with pytest.raises(LibraryError, match="already in the library"):
        lib.merged(other)
    merged = lib.merged(other, replace=True)
    assert str(merged.get("grid", "MEE 2023 carbon market").factor) == "0.6 tCO2/MWh"
    assert merged.vintages["MEE 2023 carbon market"].revision == 7
    assert len(merged.factors) == len(lib.factors)


def _vintage(**factor: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "x",
        "kind": "fuel",
        "ncv": "10 GJ/t",
        "carbon_content": "0.02 tC/GJ",
        "oxidation": "98 %",
        "data_year": None,
        "source": "test",
        "to_confirm": False,
    }
    return {"vintage": "v", "methodology": "m", "factors": [base | factor]}


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        ({"ncv": "10 tCO2/t"}, r"factors\[0\]\.ncv: '10 tCO2/t' is co2 per mass, expected"),
        ({"ncv": None}, r"factors\[0\]\.ncv: missing"),
        ({"oxidation": "101 %"}, r"factors\[0\]\.oxidation: .* out of range"),
        ({"carbon_content": "0 tC/GJ"}, "out of range"),
        ({"factor": "1 tCO2/t"}, "a fuel factor has no factor"),
        ({"ncv": "10 GJ/tonne"}, "unknown unit 'tonne'"),
        ({"source": ""}, r"factors\[0\]\.source: String should have at least 1 character"),
        ({"colour": "red"}, r"factors\[0\]\.colour: Extra inputs are not permitted"),
        ({"name": "Diesel Oil"}, r"factors\[0\]\.name: String should match pattern"),
        ({"kind": "magic"}, r"factors\[0\]\.kind: Input should be"),
    ],
)
def test_a_bad_entry_names_the_file_and_the_field(
    tmp_path: Path, factor: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_vintage(**factor)), encoding="utf-8")
    with pytest.raises(LibraryError, match=message) as info:
        FactorLibrary.load(path)
    assert str(path) in str(info.value)


def test_a_missing_data_year_key_is_an_error(tmp_path: Path) -> None:
    data = _vintage()
    del data["factors"][0]["data_year"]
    with pytest.raises(LibraryError, match=r"data_year: Field required"):
        FactorLibrary.from_data(data, "mem")


def test_duplicates_and_unreadable_files(tmp_path: Path) -> None:
    data = _vintage()
    data["factors"] *= 2
    with pytest.raises(LibraryError, match="appears twice"):
        FactorLibrary.from_data(data)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(_vintage()), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(_vintage()), encoding="utf-8")
    with pytest.raises(LibraryError, match="defined twice"):
        FactorLibrary.load(tmp_path)
    (tmp_path / "c.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LibraryError, match="cannot read"):
        FactorLibrary.load(tmp_path / "c.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match=r"no \.yaml"):
        FactorLibrary.load(tmp_path / "empty")


def test_a_factor_made_in_code_is_checked(lib: FactorLibrary) -> None:
    bad = Factor(
        name="gas",
        kind=FactorKind.FUEL,
        vintage=V2015,
        data_year=None,
        source="x",
        to_confirm=False,
        ncv=parse_quantity("1 GJ/t"),
    )
    with pytest.raises(LibraryError, match="carbon_content: missing"):
        lib.with_factor(bad)

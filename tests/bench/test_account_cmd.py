"""``carbench account FILE``: JSON by scope, the worked examples, errors naming source and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bench.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXAMPLES = sorted((FIXTURES / "accounting").glob("*.yaml"))


def run(path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = CliRunner().invoke(main, ["account", str(path), *args])
    out = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, out, result.stderr


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_worked_example_through_the_cli(path: Path) -> None:
    code, out, err = run(path)
    assert code == 0, err
    assert out is not None
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    sources = [
        {k: s[k] for k in ("name", "scope", "activity_data", "tco2")} for s in out["sources"]
    ]
    assert sources == expected["sources"]
    for key in ("vintage", "scope1_tco2", "scope2_tco2", "total_tco2", "biomass_tco2"):
        assert out[key] == expected[key], key


def test_the_output_is_traceable() -> None:
    code, out, _ = run(FIXTURES / "accounting" / "01-natural-gas-boiler.yaml")
    assert code == 0 and out is not None
    (boiler,) = out["sources"]
    assert boiler["kind"] == "combustion" and boiler["quantity"] == "12 10^4 Nm3"
    assert boiler["emission_factor"] == "0.0556116 tCO2/GJ"
    ncv = boiler["parameters"][0]
    assert ncv["name"] == "ncv" and ncv["value"] == "389.31 GJ/10^4 Nm3"
    assert ncv["origin"] == "library" and ncv["factor"] == "natural_gas"
    assert ncv["vintage"] == "2015 guidelines / GB/T 32150" and ncv["to_confirm"] is True
    assert out["factors_to_confirm"] == ["natural_gas (2015 guidelines / GB/T 32150)"]
    assert "half up" in out["rounding"]["tco2"]


def test_places_and_a_long_factor_shown_to_ten_places(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"sources": [{"name": "g", "kind": "combustion", "quantity": "5 t", "fuel": "diesel"}]},
    )
    code, out, _ = run(path, "--places", "6")
    assert code == 0 and out is not None
    assert out["total_tco2"] == "15.479548"
    assert out["sources"][0]["emission_factor"] == "0.0725853333 tCO2/GJ"


def test_another_library(tmp_path: Path) -> None:
    lib = tmp_path / "lib.json"
    lib.write_text(
        json.dumps(
            {
                "vintage": "mine",
                "methodology": "test",
                "factors": [
                    {
                        "name": "grid",
                        "kind": "electricity",
                        "factor": "0.6 tCO2/MWh",
                        "data_year": 2024,
                        "source": "test",
                        "to_confirm": False,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    path = write(
        tmp_path,
        {"sources": [{"name": "e", "kind": "electricity", "quantity": "10 MWh", "factor": "grid"}]},
    )
    code, out, _ = run(path, "--library", str(lib))
    assert code == 0 and out is not None
    assert out["total_tco2"] == "6.000" and out["vintage"] == "mine"


def source(**fields: Any) -> dict[str, Any]:
    return {"sources": [{"name": "boiler", "kind": "combustion", "quantity": "10 t"} | fields]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (source(fuel="natgas"), "source 'boiler': fuel: no factor 'natgas' in the library"),
        (
            source(ncv="40 GJ/t", carbon_content="0.02 tC/GJ"),
            "source 'boiler': oxidation: missing",
        ),
        (source(), "source 'boiler': ncv: missing"),
        (
            source(quantity="10 MWh", kind="electricity", factor="0.5 tCO2/t"),
            "source 'boiler': factor: 0.5 tCO2/t is not per energy",
        ),
        (
            source(quantity="10 t", kind="electricity", factor="0.5 tCO2/MWh"),
            r"source 'boiler': quantity: cannot convert 10 t (mass) to MWh (energy)",
        ),
        (source(quantity="10 tonnes", fuel="diesel"), "source 'boiler': quantity: unknown unit"),
        (source(kind="flare"), "sources[0] ('boiler'): kind: Input should be 'combustion'"),
        (source(colour="red"), "sources[0] ('boiler'): colour: Extra inputs are not permitted"),
        (source(quantity=10), "sources[0] ('boiler'): quantity: Input should be a valid string"),
        ({"sources": [{"kind": "heat", "quantity": "1 GJ"}]}, "sources[0]: name: Field required"),
        ({"sources": []}, "sources: List should have at least 1 item"),
        ({"source": []}, "source: Extra inputs are not permitted"),
        (
            {
                "sources": [
                    {"name": "a", "kind": "heat", "quantity": "1 GJ", "factor": "0.1 tCO2/GJ"}
                ]
                * 2
            },
            "source 'a': name: used more than once",
        ),
        (
            {
                "sources": [
                    {"name": "boiler", "kind": "combustion", "quantity": "1 t", "fuel": "diesel"},
                    {
                        "name": "incomer",
                        "kind": "electricity",
                        "quantity": "1 MWh",
                        "factor": "grid",
                        "vintage": "MEE 2023 carbon market",
                    },
                ]
            },
            "one vintage only",
        ),
        ("sources: [unclosed", "not valid YAML"),
    ],
)
def test_errors_exit_1_with_one_message_on_stderr(tmp_path: Path, data: Any, message: str) -> None:
    code, out, err = run(write(tmp_path, data))
    assert code == 1
    assert out is None
    assert message in err


def test_a_broken_library_is_an_error(tmp_path: Path) -> None:
    lib = tmp_path / "lib.yaml"
    lib.write_text("vintage: v\nmethodology: m\nfactors: [{name: x}]\n", encoding="utf-8")
    code, _, err = run(FIXTURES / "accounting" / "04-purchased-heat.yaml", "--library", str(lib))
    assert code == 1 and "factors[0].kind: Field required" in err

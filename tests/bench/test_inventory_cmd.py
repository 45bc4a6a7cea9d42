"""``carbench inventory PLANT DATA --period P``: the report files and a one-line summary."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bench.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "accounting" / "report"


def test_the_annual_report_of_the_example_plant(tmp_path: Path) -> None:
    args = ["inventory", str(EXAMPLE / "plant.yaml"), str(EXAMPLE / "meters-2023-2024.csv")]
    result = CliRunner().invoke(main, [*args, "--period", "2024", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["total_tco2"] == "21011.126" and summary["biomass_tco2"] == "176.000"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "inventory-2024.html",
        "inventory-2024.json",
        "inventory-2024.pdf",
    ]
    data = json.loads((tmp_path / "inventory-2024.json").read_text("utf-8"))
    assert len(data["data_sm3"]) == 64 and data["data_origin"] == "meters-2023-2024.csv"
    assert (tmp_path / "inventory-2024.pdf").read_bytes().startswith(b"%PDF-")


def test_one_format_and_a_bad_period(tmp_path: Path) -> None:
    args = ["inventory", str(EXAMPLE / "plant.yaml"), str(EXAMPLE / "meters-2023-2024.csv")]
    result = CliRunner().invoke(
        main, [*args, "--period", "2024-03", "--format", "html", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["inventory-2024-03.html"]
    result = CliRunner().invoke(main, [*args, "--period", "March", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "period 'March': expected 2024" in result.stderr

"""The worked examples of fixtures/accounting/, through the library API, exact to 3 places."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.inventory import account
from reference_terminal.accounting.methods import spec_from_text
from reference_terminal.accounting.units import round_report

ROOT = Path(__file__).resolve().parents[3] / "fixtures"
EXAMPLES = sorted((ROOT / "accounting").glob("*.yaml"))


def test_the_examples_the_issue_asks_for_are_there() -> None:
    names = {p.stem for p in EXAMPLES}
    assert len(names) >= 8
    for want in ("natural-gas", "diesel", "electricity", "heat", "carbonates", "exported"):
        assert any(want in n for n in names), want
    assert any("biomass" in n for n in names) and any("mixed" in n for n in names)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_worked_example(path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    specs = []
    for source in data["sources"]:
        fields = dict(source)
        name, kind, quantity = fields.pop("name"), fields.pop("kind"), fields.pop("quantity")
        year = fields.pop("data_year", None)
        texts = {k: str(v) for k, v in fields.items()}
        specs.append(spec_from_text(name, kind, quantity, data_year=year, **texts))
    inv = account(specs, FactorLibrary.load(ROOT / "factors"), data.get("vintage"))
    assert inv.vintage == expected["vintage"]
    got = [
        {"name": r.spec.name, "scope": r.scope, "tco2": str(round_report(r.tco2, 3))}
        for r in inv.results
    ]
    assert got == [{k: s[k] for k in ("name", "scope", "tco2")} for s in expected["sources"]]
    for key in ("scope1_tco2", "scope2_tco2", "total_tco2", "biomass_tco2"):
        assert str(round_report(getattr(inv, key), 3)) == expected[key], key

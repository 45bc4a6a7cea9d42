"""``carbench account FILE``: the emission calculator alone, from a YAML list of sources.

The file (docs/accounting.md, "Carbon accounting calculator")::

    vintage: 2015 guidelines / GB/T 32150     # optional: every library lookup in this vintage
    sources:
      - {name: boiler, kind: combustion, quantity: "12 10^4 Nm3", fuel: natural_gas}
      - {name: grid, kind: electricity, quantity: "5000 MWh", factor: "0.5703 tCO2/MWh"}

Each source has ``name``, ``kind``, ``quantity`` and either ``fuel``/``factor`` naming a library
entry or explicit ``ncv``, ``carbon_content``, ``oxidation``, ``factor`` (and ``purity`` for
carbonates and recovered CO2), each a string with its unit; optional ``vintage`` and
``data_year`` (to pick one of a factor's data years). The output is one JSON object; figures
are strings so they stay exact decimals. Any error is one message on stderr naming the source
and the field, with exit status 1.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common import yaml_input
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.inventory import Inventory, account
from reference_terminal.accounting.methods import (
    SourceKindName,
    SourceResult,
    spec_from_text,
)
from reference_terminal.accounting.units import Quantity, round_report

LIBRARY = Path(__file__).resolve().parent.parent / "fixtures" / "factors"
DISPLAY_PLACES = 10  # activity data and factors in the output (display only)

_Text = Annotated[str, Field(min_length=1)]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Text
    kind: SourceKindName
    quantity: _Text
    fuel: _Text | None = None
    factor: _Text | None = None
    ncv: _Text | None = None
    carbon_content: _Text | None = None
    oxidation: _Text | None = None
    purity: _Text | None = None
    vintage: _Text | None = None
    data_year: int | None = None


class AccountFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vintage: _Text | None = None
    sources: Annotated[list[SourceIn], Field(min_length=1)]


def _located(exc: ValidationError, data: Any) -> str:
    """Pydantic's errors as ``sources[2] ('boiler'): kind: …`` lines."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
            where = f"sources[{loc[1]}]"
            with contextlib.suppress(KeyError, TypeError, IndexError):
                where += f" ({data['sources'][loc[1]]['name']!r})"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc)
        lines.append(": ".join(p for p in (where, field, error["msg"]) if p))
    return "\n".join(lines)


def load(path: Path) -> AccountFile:
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise click.ClickException(yaml_input.where(str(path), exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from None
    try:
        parsed = AccountFile.model_validate(data)
    except ValidationError as exc:
        raise click.ClickException(f"{path}:\n{_located(exc, data)}") from None
    twice = [n for n, c in Counter(s.name for s in parsed.sources).items() if c > 1]
    if twice:
        raise click.ClickException(f"{path}: source {twice[0]!r}: name: used more than once")
    return parsed


def calculate(file: AccountFile, library: FactorLibrary) -> Inventory:
    specs = [
        spec_from_text(
            s.name,
            s.kind,
            s.quantity,
            fuel=s.fuel,
            factor=s.factor,
            ncv=s.ncv,
            carbon_content=s.carbon_content,
            oxidation=s.oxidation,
            purity=s.purity,
            vintage=s.vintage,
            data_year=s.data_year,
        )
        for s in file.sources
    ]
    return account(specs, library, file.vintage)


def _show(q: Quantity) -> str:
    value = q.value
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > DISPLAY_PLACES:
        value = round_report(value, DISPLAY_PLACES)
    unit = str(q.unit)
    text = f"{value.normalize():f}"
    return f"{text} {unit}" if unit else text


def _source_json(r: SourceResult, places: int) -> dict[str, Any]:
    parameters = []
    for p in r.parameters:
        row: dict[str, Any] = {"name": p.name, "value": str(p.value), "origin": p.origin}
        if p.factor is not None:
            row |= {
                "factor": p.factor.name,
                "vintage": p.factor.vintage,
                "data_year": p.factor.data_year,
                "source": p.factor.source,
                "to_confirm": p.factor.to_confirm,
            }
        parameters.append(row)
    return {
        "name": r.spec.name,
        "kind": r.spec.kind.value,
        "scope": r.scope,
        "quantity": str(r.spec.quantity),
        "activity_data": _show(r.activity_data),
        "emission_factor": _show(r.emission_factor),
        "parameters": parameters,
        "formula": r.formula,
        "tco2": str(round_report(r.tco2, places)),
    }


def to_json(inventory: Inventory, places: int) -> dict[str, Any]:
    def fig(value: Decimal) -> str:
        return str(round_report(value, places))

    return {
        "vintage": inventory.vintage,
        "sources": [_source_json(r, places) for r in inventory.results],
        "scope1_tco2": fig(inventory.scope1_tco2),
        "scope2_tco2": fig(inventory.scope2_tco2),
        "total_tco2": fig(inventory.total_tco2),
        "biomass_tco2": fig(inventory.biomass_tco2),
        "factors_to_confirm": [f.describe() for f in inventory.factors_to_confirm()],
        "rounding": {
            "tco2": f"{places} decimal places, half up; totals are summed before rounding",
            "activity_data_and_factors": f"at most {DISPLAY_PLACES} decimal places (display)",
        },
    }


#: The factor library to account with (``carbench account`` and ``carbench inventory``).
library_option = click.option(
    "--library",
    type=click.Path(exists=True, path_type=Path),
    default=LIBRARY,
    show_default=True,
    help="Factor library: a YAML/JSON file or a directory of them.",
)


@click.command("account")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@library_option
@click.option(
    "--places",
    type=click.IntRange(0, 12),
    default=3,
    show_default=True,
    help="Decimal places of the reported tCO2 figures (rounded half up).",
)
def account_command(file: Path, library: Path, places: int) -> None:
    """Account the emission sources of FILE (YAML) and print JSON: each source with its scope
    and tCO2, then scope 1, scope 2, the total and biomass CO2 (reported apart)."""
    parsed = load(file)
    try:
        lib = FactorLibrary.load(library)
        inventory = calculate(parsed, lib)
    except AccountingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(to_json(inventory, places), ensure_ascii=False, indent=2))

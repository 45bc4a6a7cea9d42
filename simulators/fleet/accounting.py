"""How a fleet's plant is accounted for (the ``accounting:`` section of a fleet file): the
reporting enterprise, its accounting units and emission sources, each source read by one or more
meters (a meter and the plant quantity it shows) and bound to its method, and the intensity
bases. It is the bench's side of the accounting: the reference terminal is configured from it
(``bench.terminal_for_fleet``), a vendor's terminal by the lab from the same description, and the
conformance accounting oracle recomputes every emission from it and the plant's truth.

Method fields are those of ``carbench account``: ``fuel`` or ``factor`` (a library name or a
quantity such as ``"0.5703 tCO2/MWh"``), ``ncv``, ``carbon_content``, ``oxidation``,
``purity``, each a quantity with its unit; the library is the bench's (``fixtures/factors``),
``vintage`` the one every library factor comes from.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Read(_Strict):
    """A meter's reading of a plant quantity (a counter: its increments are the activity)."""

    meter: Id
    quantity: Text


#: What a source's method is (GB/T 32150, as ``carbench account`` says).
SourceKind = Literal[
    "combustion",
    "process",
    "carbonate",
    "electricity",
    "heat",
    "exported_electricity",
    "exported_heat",
    "recovered",
    "biomass",
]


class Source(_Strict):
    id: Id
    name: str = ""
    kind: SourceKind
    reads: Annotated[list[Read], Field(min_length=1)]
    fuel: Text | None = None
    factor: Text | None = None
    ncv: Text | None = None
    carbon_content: Text | None = None
    oxidation: Text | None = None
    purity: Text | None = None
    note: str = ""  # where an explicit factor comes from


class Unit(_Strict):
    id: Id
    name: str = ""
    sources: Annotated[list[Source], Field(min_length=1)]


class Basis(_Strict):
    reads: Annotated[list[Read], Field(min_length=1)]
    name: str = ""
    unit: str = ""


class Enterprise(_Strict):
    name: Text
    credit_code: str = ""
    sector: str = ""
    address: str = ""
    contact: str = ""


class Accounting(_Strict):
    enterprise: Enterprise
    vintage: str | None = None
    description: str = ""
    units: Annotated[list[Unit], Field(min_length=1)]
    bases: dict[Literal["electricity", "heat", "product"], Basis] = {}

    def sources(self) -> list[tuple[Unit, Source]]:
        return [(u, s) for u in self.units for s in u.sources]

    def reads(self) -> list[tuple[str, Read]]:
        """Every read with where it is in the section (for messages)."""
        out = []
        for i, unit in enumerate(self.units):
            for j, source in enumerate(unit.sources):
                for k, read in enumerate(source.reads):
                    out.append((f"accounting.units[{i}].sources[{j}].reads[{k}]", read))
        for name, basis in self.bases.items():
            for k, read in enumerate(basis.reads):
                out.append((f"accounting.bases.{name}.reads[{k}]", read))
        return out

"""The methodology and emission-factor library: versioned sets of factors, each traceable.

A *vintage* is one published set of factors and the methodology it belongs to ("2015
guidelines / GB/T 32150", "MEE 2023 carbon market" …). Sets disagree, so a factor is known by
its name, its vintage and its data year, and a calculation takes all its factors from one
vintage (:mod:`reference_terminal.accounting.inventory` enforces that). Every factor carries
its source and a ``to_confirm`` flag for values that were transcribed rather than read from
the primary table (FACTS.md).

Files are YAML or JSON, either one vintage (``vintage:``, ``factors:``) or a whole library
(``vintages: [...]``); a directory is every ``*.yaml``/``*.yml``/``*.json`` in it. The API is
import (:meth:`FactorLibrary.load`, :meth:`FactorLibrary.merged`), query
(:meth:`FactorLibrary.query`, :meth:`FactorLibrary.get`), update
(:meth:`FactorLibrary.updated`, :meth:`FactorLibrary.with_factor`: a new library, the vintage's
revision one higher) and export (:meth:`FactorLibrary.export`, :meth:`FactorLibrary.to_data`)
(ISC-2 §7.2.8, SSEA §5.4.9, CPCIF §5.2.1 d), CSMT §11.4 offline import/export).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reference_terminal.accounting.errors import (
    AmbiguousFactor,
    LibraryError,
    UnitError,
    UnknownFactor,
)
from reference_terminal.accounting.units import Dimension, Quantity, parse_quantity


class FactorKind(StrEnum):
    FUEL = "fuel"  # ncv, carbon_content, oxidation
    ELECTRICITY = "electricity"  # factor: tCO2 per energy
    HEAT = "heat"  # factor: tCO2 per energy
    CARBONATE = "carbonate"  # factor: tCO2 per mass of carbonate
    PROCESS = "process"  # factor: tCO2 per mass, volume or energy of a raw material


PARAMETERS = ("ncv", "carbon_content", "oxidation", "factor")
# Which parameters each kind has, and the dimensions each may take.
_E, _M, _V = Dimension.ENERGY, Dimension.MASS, Dimension.VOLUME
_SHAPES: dict[FactorKind, dict[str, set[tuple[Dimension, Dimension | None]]]] = {
    FactorKind.FUEL: {
        "ncv": {(_E, _M), (_E, _V)},
        "carbon_content": {(Dimension.CARBON, _E)},
        "oxidation": {(Dimension.FRACTION, None)},
    },
    FactorKind.ELECTRICITY: {"factor": {(Dimension.CO2, _E)}},
    FactorKind.HEAT: {"factor": {(Dimension.CO2, _E)}},
    FactorKind.CARBONATE: {"factor": {(Dimension.CO2, _M)}},
    FactorKind.PROCESS: {"factor": {(Dimension.CO2, _M), (Dimension.CO2, _V), (Dimension.CO2, _E)}},
}


@dataclass(frozen=True, slots=True)
class Factor:
    """One entry: a fuel's parameters or one emission factor, with where it comes from."""

    name: str
    kind: FactorKind
    vintage: str
    data_year: int | None  # None: the source states none
    source: str
    to_confirm: bool
    label: str = ""
    note: str = ""
    ncv: Quantity | None = None
    carbon_content: Quantity | None = None
    oxidation: Quantity | None = None
    factor: Quantity | None = None

    @property
    def key(self) -> tuple[str, str, int | None]:
        return self.name, self.vintage, self.data_year

    def parameters(self) -> dict[str, Quantity]:
        return {p: q for p in PARAMETERS if (q := getattr(self, p)) is not None}

    def describe(self) -> str:
        year = "" if self.data_year is None else f", data year {self.data_year}"
        return f"{self.name} ({self.vintage}{year})"


@dataclass(frozen=True, slots=True)
class Vintage:
    name: str
    methodology: str
    revision: int = 1  # one higher after each update of a factor in this vintage
    description: str = ""


# ---- the file format ---------------------------------------------------------------------------

_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
_Text = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactorDoc(_Strict):
    name: _Name
    label: str = ""
    kind: FactorKind
    ncv: str | None = None
    carbon_content: str | None = None
    oxidation: str | None = None
    factor: str | None = None
    data_year: int | None = Field(ge=1990, le=2100)  # required key; null = not stated
    source: _Text
    to_confirm: bool
    note: str = ""


class VintageDoc(_Strict):
    vintage: _Text
    methodology: _Text
    description: str = ""
    revision: int = Field(1, ge=1)
    factors: list[FactorDoc]


class LibraryDoc(_Strict):
    vintages: list[VintageDoc]


def _factor_from_doc(doc: FactorDoc, vintage: str, where: str) -> Factor:
    shape = _SHAPES[doc.kind]
    values: dict[str, Quantity] = {}
    for parameter in PARAMETERS:
        text = getattr(doc, parameter)
        if parameter not in shape:
            if text is not None:
                raise LibraryError(f"{where}.{parameter}: a {doc.kind} factor has no {parameter}")
            continue
        if text is None:
            raise LibraryError(f"{where}.{parameter}: missing (a {doc.kind} factor needs it)")
        try:
            q = parse_quantity(text)
        except UnitError as exc:
            raise LibraryError(f"{where}.{parameter}: {exc}") from None
        if q.dimension not in shape[parameter]:
            allowed = " or ".join(
                f"{n.value}" if d is None else f"{n.value} per {d.value}"
                for n, d in sorted(shape[parameter])
            )
            raise LibraryError(
                f"{where}.{parameter}: {text!r} is {q.unit.describe_dimension()}, "
                f"expected {allowed}"
            )
        if q.value <= 0 or (parameter == "oxidation" and q.to("").value > 1):
            raise LibraryError(f"{where}.{parameter}: {text!r} is out of range")
        values[parameter] = q
    return Factor(
        name=doc.name,
        kind=doc.kind,
        vintage=vintage,
        data_year=doc.data_year,
        source=doc.source,
        to_confirm=doc.to_confirm,
        label=doc.label,
        note=doc.note,
        **values,
    )


def _located(exc: ValidationError, origin: str, prefix: str = "") -> LibraryError:
    lines = []
    for error in exc.errors():
        loc = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        lines.append(f"{origin}: {loc.lstrip('.') or '(top)'}: {error['msg']}")
    return LibraryError("\n".join(lines))


def _docs(data: Any, origin: str) -> list[VintageDoc]:
    try:
        if isinstance(data, Mapping) and "vintages" in data:
            return LibraryDoc.model_validate(data).vintages
        return [VintageDoc.model_validate(data)]
    except ValidationError as exc:
        raise _located(exc, origin) from None


# ---- the library -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FactorLibrary:
    """An immutable set of vintages and their factors; updates return a new library."""

    vintages: Mapping[str, Vintage]
    factors: tuple[Factor, ...]
    # Name and label (case-folded) → factors: every calculation looks names up.
    _by_name: Mapping[str, tuple[Factor, ...]] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[Factor]] = {}
        for f in self.factors:
            for key in {f.name.casefold(), f.label.casefold()} - {""}:
                index.setdefault(key, []).append(f)
        object.__setattr__(self, "_by_name", {k: tuple(v) for k, v in index.items()})
        seen = Counter(f.key for f in self.factors)
        if dup := [k for k, n in seen.items() if n > 1]:
            name, vintage, year = dup[0]
            raise LibraryError(f"factor {name!r} appears twice in {vintage!r} (data year {year})")
        for f in self.factors:
            if f.vintage not in self.vintages:
                raise LibraryError(f"factor {f.name!r}: vintage {f.vintage!r} is not declared")

    # -- import / export --

    @classmethod
    def from_data(cls, data: Any, origin: str = "<data>") -> FactorLibrary:
        """A library from parsed YAML/JSON: one vintage document or ``{vintages: [...]}``."""
        return cls._from_docs([(d, origin) for d in _docs(data, origin)])

    @classmethod
    def load(cls, path: Path | str) -> FactorLibrary:
        """A library from a YAML/JSON file, or from every such file in a directory."""
        path = Path(path)
        files = (
            sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"})
            if path.is_dir()
            else [path]
        )
        if not files:
            raise LibraryError(f"{path}: no .yaml, .yml or .json files")
        docs: list[tuple[VintageDoc, str]] = []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
                data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                raise LibraryError(f"{file}: cannot read: {exc}") from None
            docs += [(d, str(file)) for d in _docs(data, str(file))]
        return cls._from_docs(docs)

    @classmethod
    def _from_docs(cls, docs: Iterable[tuple[VintageDoc, str]]) -> FactorLibrary:
        vintages: dict[str, Vintage] = {}
        factors: list[Factor] = []
        for doc, origin in docs:
            if doc.vintage in vintages:
                raise LibraryError(f"{origin}: vintage {doc.vintage!r} is defined twice")
            vintages[doc.vintage] = Vintage(
                doc.vintage, doc.methodology, doc.revision, doc.description
            )
            for i, f in enumerate(doc.factors):
                factors.append(_factor_from_doc(f, doc.vintage, f"{origin}: factors[{i}]"))
        return cls(vintages, tuple(factors))

    def to_data(self) -> dict[str, Any]:
        """The whole library as plain data that :meth:`from_data` reads back unchanged."""
        out = []
        for v in self.vintages.values():
            rows = []
            for f in self.factors:
                if f.vintage != v.name:
                    continue
                row: dict[str, Any] = {"name": f.name, "label": f.label, "kind": f.kind.value}
                row |= {p: str(q) for p, q in f.parameters().items()}
                row |= {"data_year": f.data_year, "source": f.source, "to_confirm": f.to_confirm}
                if f.note:
                    row["note"] = f.note
                rows.append(row)
            out.append(
                {
                    "vintage": v.name,
                    "methodology": v.methodology,
                    "description": v.description,
                    "revision": v.revision,
                    "factors": rows,
                }
            )
        return {"vintages": out}

    def export(self, path: Path | str) -> None:
        """Write the library to ``path``: JSON for ``.json``, YAML otherwise."""
        path = Path(path)
        data = self.to_data()
        if path.suffix == ".json":
            text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        else:
            text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
        path.write_text(text, encoding="utf-8")

    def merged(self, other: FactorLibrary, *, replace: bool = False) -> FactorLibrary:
        """This library with ``other``'s vintages imported.

        A vintage both have is refused unless ``replace``: then ``other``'s copy wins whole,
        because half of one vintage and half of another is exactly the mix to avoid.
        """
        clash = set(self.vintages) & set(other.vintages)
        if clash and not replace:
            raise LibraryError(
                f"vintage {sorted(clash)[0]!r} is already in the library (import with replace)"
            )
        vintages = {k: v for k, v in self.vintages.items() if k not in clash}
        vintages |= dict(other.vintages)
        kept = tuple(f for f in self.factors if f.vintage not in clash)
        return FactorLibrary(vintages, kept + other.factors)

    # -- query --

    def query(
        self,
        *,
        name: str | None = None,
        vintage: str | None = None,
        kind: FactorKind | str | None = None,
        data_year: int | None = None,
        to_confirm: bool | None = None,
    ) -> list[Factor]:
        """Factors matching every given criterion (a name also matches a label)."""
        pool = self.factors if name is None else self._by_name.get(name.casefold(), ())
        return [
            f
            for f in pool
            if (vintage is None or f.vintage == vintage)
            and (kind is None or f.kind == kind)
            and (data_year is None or f.data_year == data_year)
            and (to_confirm is None or f.to_confirm == to_confirm)
        ]

    def get(self, name: str, vintage: str | None = None, data_year: int | None = None) -> Factor:
        """The one factor called ``name``; errors say what else there is to choose from."""
        named = self.query(name=name)
        if not named:
            names = sorted({f.name for f in self.factors})
            close = difflib.get_close_matches(name.casefold(), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownFactor(f"no factor {name!r} in the library{hint}; known: {names}")
        if vintage is not None:
            if vintage not in self.vintages:
                raise UnknownFactor(
                    f"no vintage {vintage!r} in the library; known: {sorted(self.vintages)}"
                )
            in_vintage = [f for f in named if f.vintage == vintage]
            if not in_vintage:
                where = sorted({f.vintage for f in named})
                raise UnknownFactor(f"{name!r} is not in vintage {vintage!r}; it is in {where}")
            named = in_vintage
        if data_year is not None:
            years = [f for f in named if f.data_year == data_year]
            if not years:
                have = sorted(str(f.data_year) for f in named)
                raise UnknownFactor(f"{name!r} has no data year {data_year}; it has {have}")
            named = years
        if len({f.vintage for f in named}) > 1:
            where = sorted({f.vintage for f in named})
            raise AmbiguousFactor(f"{name!r} is in several vintages {where}: choose a vintage")
        if len(named) > 1:
            have = sorted(str(f.data_year) for f in named)
            raise AmbiguousFactor(f"{name!r} has data years {have}: choose a data_year")
        return named[0]

    def counts_by_vintage(self) -> dict[str, int]:
        counts = Counter(f.vintage for f in self.factors)
        return {v: counts[v] for v in self.vintages}

    # -- update --

    def with_factor(self, factor: Factor, *, replace: bool = False) -> FactorLibrary:
        """Add ``factor`` (or replace the one with its key, if ``replace``); revision + 1."""
        if factor.vintage not in self.vintages:
            raise LibraryError(f"factor {factor.name!r}: no vintage {factor.vintage!r}")
        exists = any(f.key == factor.key for f in self.factors)
        if exists and not replace:
            raise LibraryError(f"{factor.describe()} already exists (update it with replace)")
        if not exists and replace:
            raise UnknownFactor(f"{factor.describe()} is not in the library")
        _check(factor)
        factors = tuple(factor if f.key == factor.key else f for f in self.factors)
        if not exists:
            factors += (factor,)
        vintage = self.vintages[factor.vintage]
        bumped = dataclasses.replace(vintage, revision=vintage.revision + 1)
        return FactorLibrary({**self.vintages, vintage.name: bumped}, factors)

    def updated(
        self,
        name: str,
        vintage: str,
        data_year: int | None = None,
        **changes: Any,
    ) -> FactorLibrary:
        """The factor ``(name, vintage, data_year)`` with ``changes`` (quantities as text)."""
        old = self.get(name, vintage, data_year)
        for parameter in PARAMETERS:
            if isinstance(changes.get(parameter), str):
                try:
                    changes[parameter] = parse_quantity(changes[parameter])
                except UnitError as exc:
                    raise LibraryError(f"{old.describe()}.{parameter}: {exc}") from None
        try:
            new = dataclasses.replace(old, **changes)
        except TypeError as exc:
            raise LibraryError(f"{old.describe()}: {exc}") from None
        return self.with_factor(new, replace=True)


def _check(factor: Factor) -> None:
    """The same checks a file gets, for a factor made in code."""
    data = {
        "name": factor.name,
        "label": factor.label,
        "kind": factor.kind,
        "data_year": factor.data_year,
        "source": factor.source,
        "to_confirm": factor.to_confirm,
        "note": factor.note,
        **{p: str(q) for p, q in factor.parameters().items()},
    }
    try:
        doc = FactorDoc.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, factor.describe()) from None
    _factor_from_doc(doc, factor.vintage, factor.describe())

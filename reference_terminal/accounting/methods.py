"""The emission-factor method per source (GB/T 32150 as FACTS.md states it; CSMT §9.2, §9.4).

One :class:`SourceSpec` (a named activity, its kind, its quantity, a library name and/or
explicit parameters) becomes one :class:`SourceResult` that keeps the activity as given, the
activity data the formula used, every parameter with where it came from, the formula and the
emission in tCO2 (signed, unrounded). Formulas, by kind:

- combustion, biomass: AD = FC × NCV (GJ); E = AD × CC × OF × 44/12, or E = AD × EF when an
  emission factor is given. Biomass CO2 is reported apart, never in a scope or the total.
- process: E = AD × EF, or E = AD × C × 44/12 with the raw material's carbon content.
- carbonate: E = AD × EF × PUR (purity, 100 % unless given).
- electricity, heat: E = AD × EF. exported_electricity, exported_heat: E = −AD × EF.
- recovered (CO2 recovered or destroyed): E = −Q × PUR for a mass of CO2, −Q × ρ × PUR for a
  volume (ρ given as ``factor``, e.g. t/10^4 Nm3).

Scopes (CSMT §9.4): combustion, process, carbonate and recovered are scope 1; electricity,
heat and the exported kinds are scope 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal, get_args

from reference_terminal.accounting.errors import (
    AccountingError,
    InvalidParameter,
    MissingParameter,
    SourceError,
    UnitError,
)
from reference_terminal.accounting.factors import Factor, FactorKind, FactorLibrary
from reference_terminal.accounting.units import (
    CONTEXT,
    Dimension,
    Quantity,
    Unit,
    parse_quantity,
    parse_unit,
)

CO2_PER_C = Decimal(44), Decimal(12)  # molar masses, kept as a ratio so the division is last


class SourceKind(StrEnum):
    COMBUSTION = "combustion"
    PROCESS = "process"
    CARBONATE = "carbonate"
    ELECTRICITY = "electricity"
    HEAT = "heat"
    EXPORTED_ELECTRICITY = "exported_electricity"
    EXPORTED_HEAT = "exported_heat"
    RECOVERED = "recovered"
    BIOMASS = "biomass"


#: The kinds as configuration files spell them (a Literal: validation errors list them).
SourceKindName = Literal[
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
assert set(get_args(SourceKindName)) == {k.value for k in SourceKind}

SCOPE: dict[SourceKind, int | None] = {
    SourceKind.COMBUSTION: 1,
    SourceKind.PROCESS: 1,
    SourceKind.CARBONATE: 1,
    SourceKind.RECOVERED: 1,
    SourceKind.ELECTRICITY: 2,
    SourceKind.HEAT: 2,
    SourceKind.EXPORTED_ELECTRICITY: 2,
    SourceKind.EXPORTED_HEAT: 2,
    SourceKind.BIOMASS: None,  # reported apart
}
DEDUCTED = {SourceKind.RECOVERED, SourceKind.EXPORTED_ELECTRICITY, SourceKind.EXPORTED_HEAT}

# The library kind a source of each kind may name, and the parameters it may be given.
_LIBRARY_KIND: dict[SourceKind, set[FactorKind]] = {
    SourceKind.COMBUSTION: {FactorKind.FUEL},
    SourceKind.BIOMASS: {FactorKind.FUEL},
    SourceKind.PROCESS: {FactorKind.PROCESS},
    SourceKind.CARBONATE: {FactorKind.CARBONATE},
    SourceKind.ELECTRICITY: {FactorKind.ELECTRICITY},
    SourceKind.EXPORTED_ELECTRICITY: {FactorKind.ELECTRICITY},
    SourceKind.HEAT: {FactorKind.HEAT},
    SourceKind.EXPORTED_HEAT: {FactorKind.HEAT},
    SourceKind.RECOVERED: set(),
}
_FUEL = {"ncv", "carbon_content", "oxidation", "factor"}
_ACCEPTS: dict[SourceKind, set[str]] = {
    SourceKind.COMBUSTION: _FUEL,
    SourceKind.BIOMASS: _FUEL,
    SourceKind.PROCESS: {"factor", "carbon_content"},
    SourceKind.CARBONATE: {"factor", "purity"},
    SourceKind.ELECTRICITY: {"factor"},
    SourceKind.EXPORTED_ELECTRICITY: {"factor"},
    SourceKind.HEAT: {"factor"},
    SourceKind.EXPORTED_HEAT: {"factor"},
    SourceKind.RECOVERED: {"factor", "purity"},
}
EXPLICIT = ("ncv", "carbon_content", "oxidation", "factor", "purity")
GJ = parse_unit("GJ")
TONNE = parse_unit("t")
TCO2 = parse_unit("tCO2")
TC = parse_unit("tC")
ONE = parse_unit("")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One emission source as given: what was measured and how to turn it into CO2."""

    name: str
    kind: SourceKind
    quantity: Quantity
    library_name: str | None = None  # a fuel or factor of the library
    library_field: str = "fuel"  # the input field that named it, for messages
    ncv: Quantity | None = None
    carbon_content: Quantity | None = None
    oxidation: Quantity | None = None
    factor: Quantity | None = None
    purity: Quantity | None = None
    vintage: str | None = None
    data_year: int | None = None

    def explicit(self) -> dict[str, Quantity]:
        return {p: q for p in EXPLICIT if (q := getattr(self, p)) is not None}


@dataclass(frozen=True, slots=True)
class Parameter:
    """A value a formula used and where it came from: the input, the library, or a default."""

    name: str
    value: Quantity
    origin: str  # "input" | "library" | "default"
    factor: Factor | None = None  # the library entry, when origin is "library"


@dataclass(frozen=True, slots=True)
class SourceResult:
    spec: SourceSpec
    scope: int | None  # None: reported apart (biomass)
    activity_data: Quantity  # AD as the formula used it (GJ for fuels, t for carbonates …)
    emission_factor: Quantity  # tCO2 per unit of activity_data (exact, unrounded)
    parameters: tuple[Parameter, ...]
    formula: str
    tco2: Decimal  # signed: deductions are negative; unrounded
    factor: Factor | None = field(default=None)  # the library entry named, if any

    @property
    def vintage(self) -> str | None:
        return None if self.factor is None else self.factor.vintage


# ---- building a spec from text (files, forms) --------------------------------------------------


def spec_from_text(
    name: str,
    kind: str,
    quantity: str,
    *,
    fuel: str | None = None,
    factor: str | None = None,
    ncv: str | None = None,
    carbon_content: str | None = None,
    oxidation: str | None = None,
    purity: str | None = None,
    vintage: str | None = None,
    data_year: int | None = None,
) -> SourceSpec:
    """A :class:`SourceSpec` from strings; ``factor`` is a library name or a quantity.

    Errors name the source and the field.
    """
    try:
        source_kind = SourceKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in SourceKind)
        raise InvalidParameter(name, "kind", f"{kind!r} is not one of {known}") from None

    def read(field_name: str, text: str | None) -> Quantity | None:
        if text is None:
            return None
        try:
            return parse_quantity(text)
        except UnitError as exc:
            raise InvalidParameter(name, field_name, str(exc)) from None

    library_name, library_field, factor_q = fuel, "fuel", None
    if factor is not None:
        first = factor.strip()[:1]
        if first and first in "+-.0123456789":  # a value, not a library name
            factor_q = read("factor", factor)
        elif fuel is not None:
            raise InvalidParameter(
                name, "factor", f"names {factor!r} from the library and fuel names {fuel!r}"
            )
        else:
            library_name, library_field = factor, "factor"
    quantity_q = read("quantity", quantity)
    assert quantity_q is not None  # a str was given
    return SourceSpec(
        name=name,
        kind=source_kind,
        quantity=quantity_q,
        library_name=library_name,
        library_field=library_field,
        ncv=read("ncv", ncv),
        carbon_content=read("carbon_content", carbon_content),
        oxidation=read("oxidation", oxidation),
        factor=factor_q,
        purity=read("purity", purity),
        vintage=vintage,
        data_year=data_year,
    )


# ---- accounting one source ---------------------------------------------------------------------


class _Resolved:
    """The parameters of one source, each with its origin; errors name the source."""

    def __init__(self, spec: SourceSpec, library: FactorLibrary | None, vintage: str | None):
        self.spec = spec
        self.factor: Factor | None = None
        self.values: dict[str, Parameter] = {}
        accepts = _ACCEPTS[spec.kind]
        for p, q in spec.explicit().items():
            if p not in accepts:
                raise InvalidParameter(
                    spec.name, p, f"does not apply to kind {spec.kind} ({_formula_hint(spec)})"
                )
            self.values[p] = Parameter(p, q, "input")
        if spec.vintage is not None and vintage is not None and spec.vintage != vintage:
            raise InvalidParameter(
                spec.name,
                "vintage",
                f"{spec.vintage!r}, but the calculation's vintage is {vintage!r}: one "
                "calculation takes factors from one vintage only",
            )
        if spec.library_name is not None:
            self._from_library(spec.library_name, library, spec.vintage or vintage)

    def _from_library(self, name: str, library: FactorLibrary | None, vintage: str | None) -> None:
        spec = self.spec
        if library is None:
            raise InvalidParameter(spec.name, spec.library_field, "no factor library loaded")
        try:
            entry = library.get(name, vintage, spec.data_year)
        except AccountingError as exc:
            raise InvalidParameter(spec.name, spec.library_field, str(exc)) from None
        wanted = _LIBRARY_KIND[spec.kind]
        if entry.kind not in wanted:
            need = " or ".join(sorted(k.value for k in wanted)) or "no library entry"
            raise InvalidParameter(
                spec.name,
                spec.library_field,
                f"{name!r} is a {entry.kind} entry; a {spec.kind} source takes {need}",
            )
        self.factor = entry
        explicit_factor = "factor" in self.values
        for p, q in entry.parameters().items():
            # An explicit emission factor replaces the carbon-content route whole, so library
            # CC and OF are not silently combined with it.
            if explicit_factor and p in {"carbon_content", "oxidation"}:
                continue
            self.values.setdefault(p, Parameter(p, q, "library", entry))

    def get(self, name: str) -> Parameter | None:
        return self.values.get(name)

    def need(self, name: str, why: str) -> Parameter:
        if name not in self.values:
            raise MissingParameter(self.spec.name, name, f"missing: {why}")
        return self.values[name]

    def bad(self, name: str, message: str) -> InvalidParameter:
        return InvalidParameter(self.spec.name, name, message)


def _formula_hint(spec: SourceSpec) -> str:
    return {
        SourceKind.COMBUSTION: "E = FC × NCV × CC × OF × 44/12, or AD × EF",
        SourceKind.BIOMASS: "E = FC × NCV × CC × OF × 44/12, or AD × EF",
        SourceKind.PROCESS: "E = AD × EF, or AD × C × 44/12",
        SourceKind.CARBONATE: "E = AD × EF × PUR",
        SourceKind.RECOVERED: "E = −Q × PUR, or −Q × ρ × PUR",
    }.get(spec.kind, "E = AD × EF")


def _convert(r: _Resolved, field_name: str, q: Quantity, unit: str, what: str) -> Quantity:
    try:
        return q.to(unit)
    except UnitError as exc:
        raise r.bad(field_name, f"{exc}: {what}") from None


def _fraction(r: _Resolved, name: str, *, default: str | None = None) -> Parameter:
    p = r.get(name)
    if p is None:
        if default is None:
            raise MissingParameter(r.spec.name, name, "missing")
        p = Parameter(name, parse_quantity(default), "default")
        r.values[name] = p
    if p.value.dimension != (Dimension.FRACTION, None):
        raise r.bad(name, f"{p.value} is {p.value.unit.describe_dimension()}, expected % or 0–1")
    value = p.value.to(ONE).value
    if not Decimal(0) < value <= Decimal(1):
        raise r.bad(name, f"{p.value} is outside (0, 100 %]")
    return p


def _positive(r: _Resolved, p: Parameter) -> None:
    if p.value.value <= 0:
        raise r.bad(p.name, f"{p.value} must be greater than zero")


def _rate(r: _Resolved, name: str, numerator: Dimension, why: str) -> Parameter:
    p = r.need(name, why)
    num, den = p.value.dimension
    if num is not numerator or den is None:
        raise r.bad(
            name,
            f"{p.value} is {p.value.unit.describe_dimension()}, expected {numerator.value} per "
            "activity unit",
        )
    _positive(r, p)
    return p


def _energy(r: _Resolved) -> tuple[Quantity, list[Parameter]]:
    """AD in GJ for a fuel: the quantity itself if it is energy, else FC × NCV."""
    q = r.spec.quantity
    if q.dimension == (Dimension.ENERGY, None):
        if (ncv := r.get("ncv")) is not None and ncv.origin == "input":
            raise r.bad("ncv", f"given, but the quantity {q} is already energy: drop one")
        return q.to(GJ), []
    if q.dimension[0] not in (Dimension.MASS, Dimension.VOLUME) or q.dimension[1] is not None:
        raise r.bad(
            "quantity",
            f"{q} is {q.unit.describe_dimension()}: give a fuel's mass, volume or energy",
        )
    ncv = _rate(r, "ncv", Dimension.ENERGY, "AD = FC × NCV needs the net calorific value")
    try:
        energy = ncv.value.times(q)
    except UnitError as exc:
        raise r.bad("ncv", f"{exc} (the quantity is {q})") from None
    return energy.to(GJ), [ncv]


def _combustion(r: _Resolved) -> tuple[Quantity, Quantity, list[Parameter], str]:
    """(AD, EF, parameters used, formula) for a fuel burnt."""
    if (ef := r.get("factor")) is not None:
        for other in ("carbon_content", "oxidation"):
            if other in r.values and r.values[other].origin == "input":
                raise r.bad(other, "given together with factor: E = AD × EF uses no CC or OF")
        _rate(r, "factor", Dimension.CO2, "")
        den = ef.value.dimension[1]
        if den is Dimension.ENERGY:
            ad, used = _energy(r)
            return ad, ef.value.to("tCO2/GJ"), [*used, ef], "E = AD × EF, AD = FC × NCV"
        q = r.spec.quantity
        if q.dimension[0] is not den:
            raise r.bad("factor", f"{ef.value} is per {den}, the quantity {q} is {q.dimension[0]}")
        return q, ef.value, [ef], "E = AD × EF"
    ad, used = _energy(r)
    cc = _rate(r, "carbon_content", Dimension.CARBON, "EF = CC × OF × 44/12 needs it")
    of = _fraction(r, "oxidation")
    cc_gj = _convert(r, "carbon_content", cc.value, "tC/GJ", "carbon content is per energy")
    # EF = CC × OF × 44/12: multiply first, divide last, so the one rounding is at digit 100.
    product = CONTEXT.multiply(CONTEXT.multiply(cc_gj.value, of.value.to(ONE).value), CO2_PER_C[0])
    ef_q = Quantity(CONTEXT.divide(product, CO2_PER_C[1]), parse_unit("tCO2/GJ"))
    return ad, ef_q, [*used, cc, of], "E = AD × EF, AD = FC × NCV, EF = CC × OF × 44/12"


def _process(r: _Resolved) -> tuple[Quantity, Quantity, list[Parameter], str]:
    q = r.spec.quantity
    if (ef := r.get("factor")) is not None:
        if "carbon_content" in r.values:
            raise r.bad("factor", "given together with carbon_content: give one route, not both")
        _rate(r, "factor", Dimension.CO2, "")
        ad = _convert(r, "quantity", q, str(ef.value.unit.denominator), "the factor's unit")
        return ad, ef.value, [ef], "E = AD × EF"
    c = _rate(r, "carbon_content", Dimension.CARBON, "E = AD × EF needs factor (or C × 44/12)")
    den = c.value.unit.den
    assert den is not None  # _rate checked it is a rate
    ad = _convert(r, "quantity", q, str(Unit(den)), "the carbon content's unit")
    c_t = c.value.to(Unit(TC.num, den))
    ef_value = CONTEXT.divide(CONTEXT.multiply(c_t.value, CO2_PER_C[0]), CO2_PER_C[1])
    return ad, Quantity(ef_value, Unit(TCO2.num, den)), [c], "E = AD × C × 44/12"


def _carbonate(r: _Resolved) -> tuple[Quantity, Quantity, list[Parameter], str]:
    ef = _rate(r, "factor", Dimension.CO2, "E = AD × EF × PUR needs the carbonate's factor")
    if ef.value.dimension[1] is not Dimension.MASS:
        raise r.bad("factor", f"{ef.value} is not per mass of carbonate")
    pur = _fraction(r, "purity", default="100 %")
    ad = _convert(r, "quantity", r.spec.quantity, str(ef.value.unit.denominator), "a mass")
    ef_pur = ef.value.scaled(pur.value.to(ONE).value)
    return ad, ef_pur, [ef, pur], "E = AD × EF × PUR"


def _energy_bought(r: _Resolved) -> tuple[Quantity, Quantity, list[Parameter], str]:
    ef = _rate(r, "factor", Dimension.CO2, "E = AD × EF needs the emission factor")
    if ef.value.dimension[1] is not Dimension.ENERGY:
        raise r.bad("factor", f"{ef.value} is not per energy")
    ad = _convert(r, "quantity", r.spec.quantity, str(ef.value.unit.denominator), "give an energy")
    sign = "−" if r.spec.kind in DEDUCTED else ""
    return ad, ef.value, [ef], f"E = {sign}AD × EF"


def _recovered(r: _Resolved) -> tuple[Quantity, Quantity, list[Parameter], str]:
    q = r.spec.quantity
    pur = _fraction(r, "purity", default="100 %")
    share = pur.value.to(ONE).value
    if q.dimension in ((Dimension.MASS, None), (Dimension.CO2, None)):
        if r.get("factor") is not None:
            raise r.bad("factor", f"not used: the quantity {q} is already a mass of CO2")
        # A mass given in plain t or kg is read as a mass of CO2: that is what is recovered.
        tonnes = q.to(TONNE if q.dimension[0] is Dimension.MASS else TCO2).value
        per_tonne = Quantity(share, Unit(TCO2.num, TCO2.num))
        return Quantity(tonnes, TCO2), per_tonne, [pur], "E = −Q × PUR"
    density = r.need("factor", f"the quantity {q} is not a mass: give the CO2 density (t/Nm3)")
    num, den = density.value.dimension
    if num not in (Dimension.MASS, Dimension.CO2) or den is not q.dimension[0]:
        raise r.bad("factor", f"{density.value} is not a mass of CO2 per unit of {q}")
    _positive(r, density)
    rate_den = density.value.unit.den
    assert rate_den is not None
    ad = _convert(r, "quantity", q, str(Unit(rate_den)), "the density's unit")
    rho = density.value.to(Unit((TONNE if num is Dimension.MASS else TCO2).num, rate_den))
    ef = Quantity(CONTEXT.multiply(rho.value, share), Unit(TCO2.num, rate_den))
    return ad, ef, [density, pur], "E = −Q × ρ × PUR"


_METHODS: dict[SourceKind, Callable[[_Resolved], tuple[Quantity, Quantity, list[Parameter], str]]]
_METHODS = {
    SourceKind.COMBUSTION: _combustion,
    SourceKind.BIOMASS: _combustion,
    SourceKind.PROCESS: _process,
    SourceKind.CARBONATE: _carbonate,
    SourceKind.ELECTRICITY: _energy_bought,
    SourceKind.HEAT: _energy_bought,
    SourceKind.EXPORTED_ELECTRICITY: _energy_bought,
    SourceKind.EXPORTED_HEAT: _energy_bought,
    SourceKind.RECOVERED: _recovered,
}


def account_source(
    spec: SourceSpec, library: FactorLibrary | None = None, vintage: str | None = None
) -> SourceResult:
    """The emission of one source; :class:`SourceError` names the source and the field."""
    if spec.quantity.value < 0:
        raise InvalidParameter(
            spec.name,
            "quantity",
            f"{spec.quantity} is negative: deductions have their own kinds "
            "(exported_electricity, exported_heat, recovered)",
        )
    r = _Resolved(spec, library, vintage)
    try:
        ad, ef, used, formula = _METHODS[spec.kind](r)
    except SourceError:
        raise
    except AccountingError as exc:  # a unit problem the steps did not place: blame the input
        raise InvalidParameter(spec.name, "quantity", str(exc)) from None
    value = ef.times(ad).to(TCO2).value  # a factor may be in kgCO2 per unit
    if spec.kind in DEDUCTED:
        value = CONTEXT.minus(value)  # in CONTEXT: unary minus would round at 28 digits
    if spec.kind is SourceKind.BIOMASS:
        formula += " (biomass: reported apart, not in the total)"
    return SourceResult(
        spec=spec,
        scope=SCOPE[spec.kind],
        activity_data=ad,
        emission_factor=ef,
        parameters=tuple(used),
        formula=formula,
        tco2=value,
        factor=r.factor,
    )

"""Quantities with units, as exact decimals: parse ``"12 10^4 Nm3"``, convert, multiply by rates.

A unit is a numerator term and an optional denominator term; a term is an optional power of ten
and an atom (``kg``, ``tCO2``, ``MWh``, ``Nm3``, ``%`` …). Each atom has a dimension and its size
in that dimension's base unit: t, tC, tCO2, GJ, Nm3, or 1 for fractions. Mass of a material,
mass of carbon and mass of CO2 are three dimensions, not one, so a carbon content (tC/GJ) can
never be mistaken for an emission factor (tCO2/GJ): the 44/12 step has to be written out.

Arithmetic runs in :data:`CONTEXT` (100 significant digits). Inputs are limited to
:data:`MAX_DIGITS` significant digits, so products of a handful of inputs are exact; the only
rounding is in divisions that do not terminate (44/12, GJ → MWh), at the 100th digit, far
below any reported place. Reported figures are rounded once, by :func:`round_report`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from enum import StrEnum

from reference_terminal.accounting.errors import IncompatibleUnits, UnitError

CONTEXT = Context(prec=100, traps=[InvalidOperation, DivisionByZero, Overflow])
MAX_DIGITS = 20  # significant digits of one input number
MAX_TEXT = 200  # characters of one quantity string
MAX_POWER = 12  # |N| in a "10^N" multiplier

# Reported figures round half up (四舍五入), the convention of Chinese inventory reports.
REPORT_ROUNDING = ROUND_HALF_UP


class Dimension(StrEnum):
    MASS = "mass"  # a material: fuel, carbonate, product (base: t)
    CARBON = "carbon"  # mass of carbon (base: tC)
    CO2 = "co2"  # mass of CO2 (base: tCO2)
    ENERGY = "energy"  # base: GJ
    VOLUME = "volume"  # normal cubic metres (base: Nm3)
    FRACTION = "fraction"  # %, or a plain number (base: 1)


@dataclass(frozen=True, slots=True)
class Atom:
    symbol: str
    dimension: Dimension
    scale: Decimal  # size in the dimension's base unit


def _atoms(dimension: Dimension, sizes: dict[str, str]) -> dict[str, Atom]:
    return {s: Atom(s, dimension, Decimal(v)) for s, v in sizes.items()}


ATOMS: dict[str, Atom] = {
    **_atoms(Dimension.MASS, {"g": "0.000001", "kg": "0.001", "t": "1", "kt": "1000"}),
    **_atoms(Dimension.CARBON, {"kgC": "0.001", "tC": "1"}),
    **_atoms(Dimension.CO2, {"kgCO2": "0.001", "tCO2": "1", "ktCO2": "1000"}),
    **_atoms(
        Dimension.ENERGY,
        {
            "kJ": "0.000001",
            "MJ": "0.001",
            "GJ": "1",
            "TJ": "1000",
            # 1 kWh = 3.6 MJ exactly, so every electrical unit converts exactly to GJ.
            "kWh": "0.0036",
            "MWh": "3.6",
            "GWh": "3600",
        },
    ),
    **_atoms(Dimension.VOLUME, {"Nm3": "1"}),
    **_atoms(Dimension.FRACTION, {"%": "0.01", "": "1"}),
}
# Spellings people paste from documents, mapped to the atom they mean.
ALIASES = {"Nm³": "Nm3", "tCO₂": "tCO2", "kgCO₂": "kgCO2", "ktCO₂": "ktCO2"}
# Units that look close to a known one but mean something else; say why instead of guessing.
REFUSED = {
    "m3": "use Nm3: gas volumes are accounted at normal conditions",
    "m³": "use Nm3: gas volumes are accounted at normal conditions",
    "tce": "tonnes of coal equivalent are not an accounting unit here; give GJ",
}

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
# ASCII digits only: Decimal would accept other scripts' digits, a unit text should not.
_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))(.*)\Z", re.DOTALL | re.ASCII)
_POWER = re.compile(r"10(?:\^\s*([+-]?\d+)|([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+))\s*(.*)\Z", re.DOTALL | re.ASCII)


@dataclass(frozen=True, slots=True)
class Term:
    """An atom times a power of ten: ``10^4 Nm3`` is (Nm3, 4)."""

    atom: Atom
    power: int = 0
    # Derived once: conversions read them on every call.
    scale: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", self.atom.scale.scaleb(self.power, CONTEXT))

    @property
    def dimension(self) -> Dimension:
        return self.atom.dimension

    def __str__(self) -> str:
        if self.power == 0:
            return self.atom.symbol
        return f"10^{self.power} {self.atom.symbol}".rstrip()


@dataclass(frozen=True, slots=True)
class Unit:
    num: Term
    den: Term | None = None
    dimension: tuple[Dimension, Dimension | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        den = None if self.den is None else self.den.atom.dimension
        object.__setattr__(self, "dimension", (self.num.atom.dimension, den))

    @property
    def numerator(self) -> Unit:
        return Unit(self.num)

    @property
    def denominator(self) -> Unit | None:
        return None if self.den is None else Unit(self.den)

    @property
    def scale(self) -> Decimal:
        """Size in base units of the same dimensions (``GJ/10^4 Nm3`` → 0.0001 GJ/Nm3)."""
        if self.den is None:
            return self.num.scale
        return CONTEXT.divide(self.num.scale, self.den.scale)

    def describe_dimension(self) -> str:
        num, den = self.dimension
        return num.value if den is None else f"{num.value} per {den.value}"

    def __str__(self) -> str:
        return str(self.num) if self.den is None else f"{self.num}/{self.den}"


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    unit: Unit

    @property
    def dimension(self) -> tuple[Dimension, Dimension | None]:
        return self.unit.dimension

    def to(self, unit: Unit | str) -> Quantity:
        """The same quantity in ``unit``; :class:`IncompatibleUnits` across dimensions."""
        target = parse_unit(unit) if isinstance(unit, str) else unit
        if target.dimension != self.unit.dimension:
            raise IncompatibleUnits(
                f"cannot convert {self} ({self.unit.describe_dimension()}) to {target} "
                f"({target.describe_dimension()})"
            )
        if target == self.unit:
            return self
        # One division, last: exact whenever the ratio of the scales terminates.
        numerator = CONTEXT.multiply(self.value, _scale_num(self.unit, target))
        return Quantity(CONTEXT.divide(numerator, _scale_den(self.unit, target)), target)

    def times(self, amount: Quantity) -> Quantity:
        """This rate (X per Y) applied to ``amount`` (some Y): a quantity of X.

        ``amount`` is first converted to the rate's denominator unit, so "0.5703 tCO2/MWh"
        times "5000 kWh" is 2.8515 tCO2.
        """
        denominator = self.unit.denominator
        if denominator is None:
            raise IncompatibleUnits(f"{self} is not a rate (no '/' in its unit)")
        converted = amount.to(denominator)
        return Quantity(CONTEXT.multiply(self.value, converted.value), self.unit.numerator)

    def scaled(self, factor: Decimal) -> Quantity:
        return Quantity(CONTEXT.multiply(self.value, factor), self.unit)

    def __str__(self) -> str:
        # Fixed-point, never 1.2E+5: these strings go into reports people read.
        unit = str(self.unit)
        return f"{self.value:f} {unit}" if unit else f"{self.value:f}"


def _scale_num(source: Unit, target: Unit) -> Decimal:
    # source.num × target.den: the part of the ratio that multiplies.
    den = target.den.scale if target.den is not None else Decimal(1)
    return CONTEXT.multiply(source.num.scale, den)


def _scale_den(source: Unit, target: Unit) -> Decimal:
    den = source.den.scale if source.den is not None else Decimal(1)
    return CONTEXT.multiply(target.num.scale, den)


def _atom(text: str, whole: str) -> Atom:
    symbol = ALIASES.get(text, text)
    if symbol in ATOMS:
        return ATOMS[symbol]
    if text in REFUSED:
        raise UnitError(f"unit {text!r} in {whole!r}: {REFUSED[text]}")
    hint = ""
    folded = {a.lower(): a for a in ATOMS if a}
    if text.lower() in folded:
        hint = f" (units are case-sensitive: did you mean {folded[text.lower()]!r}?)"
    else:
        close = difflib.get_close_matches(text, [a for a in ATOMS if a], n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise UnitError(f"unknown unit {text!r} in {whole!r}{hint}; known: {_known()}")


def _known() -> str:
    return ", ".join(a or "(plain number)" for a in ATOMS)


def _term(text: str, whole: str) -> Term:
    text = text.strip()
    power = 0
    if match := _POWER.match(text):
        digits = match[1] if match[1] is not None else match[2].translate(_SUPERSCRIPTS)
        try:
            power = int(digits)
        except ValueError:
            raise UnitError(f"bad power of ten in {whole!r}") from None
        if abs(power) > MAX_POWER:
            raise UnitError(f"power of ten 10^{power} in {whole!r} is beyond ±{MAX_POWER}")
        text = match[3].strip()
        if not text:
            raise UnitError(f"{whole!r}: a power of ten needs a unit after it (10^4 Nm3)")
    atom = _atom(text, whole)
    if power and atom.dimension is Dimension.FRACTION:
        raise UnitError(f"{whole!r}: a power of ten cannot scale a fraction")
    return Term(atom, power)


def parse_unit(text: str) -> Unit:
    """``"GJ/10^4 Nm3"`` → a :class:`Unit`; :class:`UnitError` says what is wrong."""
    if not isinstance(text, str):
        raise UnitError(f"a unit must be text, not {type(text).__name__}")
    return _known_unit(text)


@functools.lru_cache(maxsize=1024)
def _known_unit(text: str) -> Unit:
    # Units are few and immutable: parsing each once makes conversions cheap. Errors raise
    # through the cache and are never stored in it.
    return _parse_unit(text, text)


def _parse_unit(text: str, whole: str) -> Unit:
    if not isinstance(text, str):
        raise UnitError(f"a unit must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise UnitError(f"unit text of {len(text)} characters (at most {MAX_TEXT})")
    parts = text.split("/")
    if len(parts) > 2:
        raise UnitError(f"unit {text!r} in {whole!r}: at most one '/'")
    num = _term(parts[0], whole)
    if len(parts) == 1:
        return Unit(num)
    den = _term(parts[1], whole)
    if Dimension.FRACTION in (num.dimension, den.dimension):
        raise UnitError(f"{whole!r}: a fraction (% or a plain number) cannot be in a ratio")
    if num.dimension is den.dimension:
        raise UnitError(f"{whole!r}: numerator and denominator are both {num.dimension}")
    return Unit(num, den)


def parse_quantity(text: str) -> Quantity:
    """``"12 10^4 Nm3"`` → 120 000 Nm3 as ``Quantity(12, 10^4 Nm3)``.

    The number is plain decimal notation (no exponent, no thousands separators) with at most
    :data:`MAX_DIGITS` significant digits; the unit follows, a space between them optional.
    A number alone is a fraction (``"0.98"``). Never raises anything but :class:`UnitError`.
    """
    if not isinstance(text, str):
        raise UnitError(f"a quantity must be text like '5000 kg', not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise UnitError(f"quantity text of {len(text)} characters (at most {MAX_TEXT})")
    match = _NUMBER.match(text)
    if match is None:
        raise UnitError(f"{text!r} is not a quantity: expected a number then a unit ('5000 kg')")
    number, rest = match[1], match[2]
    digits = number.lstrip("+-").replace(".", "").lstrip("0")
    if len(digits) > MAX_DIGITS:
        raise UnitError(f"{text!r}: more than {MAX_DIGITS} significant digits")
    rest = rest.strip()
    try:
        unit = _known_unit(rest)
    except UnitError:
        unit = _parse_unit(rest, text)  # raises again, quoting the whole quantity
    return Quantity(Decimal(number), unit)


def quantity(value: Decimal | int | str, unit: str) -> Quantity:
    """A quantity from a value and a unit text (for code; files go through parse_quantity)."""
    return Quantity(Decimal(value), parse_unit(unit))


def dsum(values: Iterable[Decimal]) -> Decimal:
    """An exact sum in :data:`CONTEXT` (the built-in ``sum`` rounds at 28 digits)."""
    total = Decimal(0)
    for v in values:
        total = CONTEXT.add(total, v)
    return total


def round_report(value: Decimal, places: int) -> Decimal:
    """``value`` rounded half up to ``places`` decimals: the one rounding of a reported figure."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=REPORT_ROUNDING, context=CONTEXT)

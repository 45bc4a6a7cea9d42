"""Quantities with units: parsing, conversion, rates, rounding; garbage gives a UnitError."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.accounting.errors import IncompatibleUnits, UnitError
from reference_terminal.accounting.units import (
    ATOMS,
    Dimension,
    Quantity,
    dsum,
    parse_quantity,
    parse_unit,
    quantity,
    round_report,
)

D = Decimal


@pytest.mark.parametrize(
    ("text", "value", "unit", "dimension"),
    [
        ("5000 kg", "5000", "kg", (Dimension.MASS, None)),
        ("1000 t", "1000", "t", (Dimension.MASS, None)),
        ("5000 MWh", "5000", "MWh", (Dimension.ENERGY, None)),
        ("12 10^4 Nm3", "12", "10^4 Nm3", (Dimension.VOLUME, None)),
        ("800 GJ", "800", "GJ", (Dimension.ENERGY, None)),
        ("389.31 GJ/10^4 Nm3", "389.31", "GJ/10^4 Nm3", (Dimension.ENERGY, Dimension.VOLUME)),
        ("0.01532 tC/GJ", "0.01532", "tC/GJ", (Dimension.CARBON, Dimension.ENERGY)),
        ("99 %", "99", "%", (Dimension.FRACTION, None)),
        ("0.5703 tCO2/MWh", "0.5703", "tCO2/MWh", (Dimension.CO2, Dimension.ENERGY)),
        ("0.11 tCO2/GJ", "0.11", "tCO2/GJ", (Dimension.CO2, Dimension.ENERGY)),
        ("0.98", "0.98", "", (Dimension.FRACTION, None)),
        ("12 10⁴Nm³", "12", "10^4 Nm3", (Dimension.VOLUME, None)),
        ("  7.5kWh ", "7.5", "kWh", (Dimension.ENERGY, None)),
        ("15.32 tC/TJ", "15.32", "tC/TJ", (Dimension.CARBON, Dimension.ENERGY)),
    ],
)
def test_the_issue_s_strings_parse(text: str, value: str, unit: str, dimension: object) -> None:
    q = parse_quantity(text)
    assert q.value == D(value)
    assert str(q.unit) == unit
    assert q.dimension == dimension


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("5000 kg", "t", "5"),
        ("1.5 t", "kg", "1500"),
        ("5000 MWh", "GJ", "18000"),
        ("1 kWh", "MJ", "3.6"),
        ("2 GWh", "MWh", "2000"),
        ("3 TJ", "GJ", "3000"),
        ("12 10^4 Nm3", "Nm3", "120000"),
        ("120000 Nm3", "10^4 Nm3", "12"),
        ("389.31 GJ/10^4 Nm3", "GJ/Nm3", "0.038931"),
        ("15.32 tC/TJ", "tC/GJ", "0.01532"),
        ("0.5703 tCO2/MWh", "kgCO2/kWh", "0.5703"),
        ("99 %", "", "0.99"),
        ("0.5 kgCO2", "tCO2", "0.0005"),
    ],
)
def test_conversions_are_exact(text: str, target: str, expected: str) -> None:
    assert parse_quantity(text).to(target).value == D(expected)


def test_a_conversion_that_does_not_terminate_is_rounded_at_the_100th_digit() -> None:
    mwh = parse_quantity("1 GJ").to("MWh").value
    assert round_report(mwh, 12) == D("0.277777777778")
    assert len(mwh.as_tuple().digits) == 100


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("5 GJ", "t"),
        ("5 tC/GJ", "tCO2/GJ"),  # carbon is not CO2: the 44/12 step must be written out
        ("5 t", "tCO2"),  # a material is not CO2
        ("5 GJ/t", "GJ/Nm3"),
        ("99 %", "t"),
        ("5 MWh", "tCO2/MWh"),
    ],
)
def test_incompatible_units_are_a_clear_error(text: str, target: str) -> None:
    with pytest.raises(IncompatibleUnits, match=r"cannot convert .* to "):
        parse_quantity(text).to(target)


def test_a_rate_applies_to_an_amount_in_any_compatible_unit() -> None:
    e = parse_quantity("0.5703 tCO2/MWh").times(parse_quantity("5000 kWh"))
    assert e.value == D("2.8515") and str(e.unit) == "tCO2"
    gj = parse_quantity("389.31 GJ/10^4 Nm3").times(parse_quantity("120000 Nm3"))
    assert gj.value == D("4671.72") and str(gj.unit) == "GJ"
    with pytest.raises(IncompatibleUnits):
        parse_quantity("0.5703 tCO2/MWh").times(parse_quantity("5 t"))
    with pytest.raises(IncompatibleUnits, match="not a rate"):
        parse_quantity("5 t").times(parse_quantity("5 t"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kg", "not a quantity"),
        ("", "not a quantity"),
        ("5 kwh", "case-sensitive: did you mean 'kWh'"),
        ("5 GJJ", "did you mean 'GJ'"),
        ("5 m3", "use Nm3"),
        ("5 tce", "coal equivalent"),
        ("5 GJ/t/t", "at most one '/'"),
        ("5 tCO2/%", "cannot be in a ratio"),
        ("5 GJ/MWh", "both energy"),
        ("5 10^4", "needs a unit after it"),
        ("5 10^40 Nm3", "beyond"),
        ("5 10^4 %", "cannot scale a fraction"),
        ("1e5 kg", "unknown unit 'e5 kg'"),
        ("123456789012345678901 kg", "significant digits"),
        ("5 ٣kg", "unknown unit"),
        ("x" * 300, "characters"),
    ],
)
def test_bad_text_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        parse_quantity(text)


def test_an_error_quotes_the_whole_quantity() -> None:
    with pytest.raises(UnitError, match=r"'5 kwh'"):
        parse_quantity("5 kwh")


def test_non_text_is_refused() -> None:
    with pytest.raises(UnitError, match="must be text"):
        parse_quantity(5000)  # type: ignore[arg-type]
    with pytest.raises(UnitError, match="must be text"):
        parse_unit(None)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_the_parser_never_crashes_on_garbage(text: str) -> None:
    try:
        q = parse_quantity(text)
    except UnitError as exc:
        assert str(exc)
    else:
        assert isinstance(q.value, Decimal) and q.value.is_finite()


_PIECES = st.sampled_from(
    [
        "5",
        "12.5",
        " ",
        "/",
        "10^4",
        "10⁴",
        "^",
        "-",
        ".",
        "%",
        "kg",
        "t",
        "tC",
        "tCO2",
        "GJ",
        "MWh",
        "Nm3",
        "Nm³",
        "kwh",
        "m3",
        "e",
        "10^",
        "10^99",
        "0",
    ]
)


@given(st.lists(_PIECES, max_size=8).map("".join))
def test_the_parser_never_crashes_on_near_misses(text: str) -> None:
    try:
        parse_quantity(text)
    except UnitError as exc:
        assert str(exc)


_UNITS = st.sampled_from(
    [a for a in ATOMS if a]
    + ["10^4 Nm3", "GJ/10^4 Nm3", "tC/GJ", "tCO2/MWh", "kgCO2/kWh", "GJ/t", "t/10^4 Nm3"]
)
_VALUES = st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False)


@given(_VALUES, _UNITS)
def test_printed_quantities_read_back_equal(value: Decimal, unit: str) -> None:
    q = quantity(value, unit)
    assert parse_quantity(str(q)) == q


@given(_VALUES, st.sampled_from(["kg", "t", "kt", "g"]), st.sampled_from(["kg", "t", "kt", "g"]))
def test_mass_conversions_round_trip_exactly(value: Decimal, a: str, b: str) -> None:
    q = quantity(value, a)
    assert q.to(b).to(a).value == q.value


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [("2.0005", 3, "2.001"), ("2.0015", 3, "2.002"), ("-2.0005", 3, "-2.001"), ("7", 3, "7.000")],
)
def test_reported_figures_round_half_up(value: str, places: int, expected: str) -> None:
    assert str(round_report(D(value), places)) == expected


def test_sums_keep_every_digit() -> None:
    # The built-in sum would round at 28 significant digits and lose the 1e-30.
    assert dsum([D("1e20"), D("1e-30"), D("-1e20")]) == D("1e-30")


def test_a_quantity_prints_in_fixed_point() -> None:
    assert str(parse_quantity("12 10^4 Nm3").to("Nm3")) == "120000 Nm3"
    assert str(Quantity(D("0.99"), parse_unit(""))) == "0.99"

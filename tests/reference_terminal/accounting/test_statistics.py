"""Statistics (ISC-2 §7.2.3(3), §7.2.5): per-minute activity → periods, exactly.

The calendar is Beijing time; weeks are ISO weeks (Monday first) and may cross a month or a
year boundary; 29 February has no year-before. Period emissions are activity sums times the
source's rate, with no rounding, so periods add up to their parent to the last digit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.methods import spec_from_text
from reference_terminal.accounting.statistics import (
    BEIJING,
    Basis,
    MinuteSeries,
    Period,
    SourceRate,
    Span,
    combined,
    exact_sum,
    indexed,
    key_of,
    keys_of,
    measure,
    minute_of,
    mom,
    period_sums,
    rolled_up,
    source_rates,
    totals,
    yoy,
)
from reference_terminal.accounting.units import round_report

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
D = Decimal
V2015 = "2015 guidelines / GB/T 32150"


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.load(LIBRARY)


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def series(name: str, unit: str, values: dict[datetime, str]) -> MinuteSeries:
    return MinuteSeries.from_values(name, unit, values.items())


# ---- the calendar ------------------------------------------------------------------------------


def test_periods_are_beijing_calendar_periods() -> None:
    assert Span.parse("2024-02").minutes == 29 * 1440  # a leap February
    assert Span.parse("2023-02").minutes == 28 * 1440
    assert Span.parse("2024").minutes == 366 * 1440
    assert Span.parse("2023").minutes == 365 * 1440
    assert Span.parse("2024-Q1").minutes == (31 + 29 + 31) * 1440
    # Midnight in Beijing is 16:00 UTC the day before.
    assert Span.parse("2024-03-01").start.astimezone(UTC) == datetime(2024, 2, 29, 16, tzinfo=UTC)
    # 2024-01-31 23:59 Beijing is still January though it is 15:59 UTC.
    assert Span.of(bj(2024, 1, 31, 23, 59), Period.MONTH).label == "2024-01"
    assert Span.of(bj(2024, 2, 1, 0, 0), Period.MONTH).label == "2024-02"


def test_iso_weeks_start_on_monday_and_cross_boundaries() -> None:
    week = Span.of(bj(2024, 1, 31), Period.WEEK)  # a Wednesday
    assert week.label == "2024-W05"
    assert week.start == bj(2024, 1, 29) and week.end == bj(2024, 2, 5)
    # 2024-12-30 (Monday) starts week 1 of 2025.
    assert Span.of(bj(2024, 12, 31), Period.WEEK).label == "2025-W01"
    assert Span.parse("2025-W01").start == bj(2024, 12, 30)
    with pytest.raises(AccountingError, match="not made of whole weeks"):
        Span.parse("2024-02").children(Period.WEEK)


def test_base_periods_of_yoy_and_mom() -> None:
    assert Span.parse("2024-03").previous().label == "2024-02"
    assert Span.parse("2024-01").previous().label == "2023-12"
    assert Span.parse("2024-03").year_before() == Span.parse("2023-03")
    assert Span.parse("2024-Q1").previous().label == "2023-Q4"
    assert Span.parse("2024-03-01").previous().label == "2024-02-29"
    assert Span.parse("2024-02-29").year_before() is None  # no 29 February in 2023
    assert Span.parse("2024-02-29 10:00").year_before() is None
    assert Span.parse("2025-03-01 10:00").year_before() == Span.parse("2024-03-01 10:00")
    assert Span.parse("2020-W53").year_before() is None  # 2019 had 52 ISO weeks
    assert Span.parse("2021-W10").year_before() == Span.parse("2020-W10")


@pytest.mark.parametrize("label", ["2024", "2024-Q4", "2024-02", "2024-W09", "2024-02-29"])
def test_labels_read_back(label: str) -> None:
    assert Span.parse(label).label == label


@pytest.mark.parametrize("bad", ["2024-13", "2024-Q5", "24", "2024-02-30", "2024-03-01 13:30"])
def test_a_bad_label_says_what_is_expected(bad: str) -> None:
    with pytest.raises(AccountingError, match="expected 2024, 2024-Q1"):
        Span.parse(bad)


minutes_2000_2040 = st.integers(
    minute_of(datetime(2000, 1, 1, tzinfo=UTC)), minute_of(datetime(2040, 1, 1, tzinfo=UTC))
)


@given(minute=minutes_2000_2040, period=st.sampled_from(list(Period)))
def test_every_minute_is_in_exactly_its_period(minute: int, period: Period) -> None:
    span = Span.of(minute, period)
    assert span.contains(minute)
    assert not span.previous().contains(minute) and not span.next().contains(minute)
    assert span.previous().end_minute == span.start_minute
    # Against the standard library's calendar, independently.
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)).astimezone(BEIJING)
    expected = {
        Period.HOUR: local.strftime("%Y-%m-%d %H:00"),
        Period.DAY: local.strftime("%Y-%m-%d"),
        Period.WEEK: "{}-W{:02d}".format(*local.isocalendar()[:2]),
        Period.MONTH: local.strftime("%Y-%m"),
        Period.QUARTER: f"{local.year}-Q{(local.month - 1) // 3 + 1}",
        Period.YEAR: str(local.year),
    }[period]
    assert span.label == expected


@given(st.lists(minutes_2000_2040, min_size=1, max_size=50), st.sampled_from(list(Period)))
def test_vectorised_keys_match_one_by_one(minutes: list[int], period: Period) -> None:
    array = np.array(sorted(minutes), dtype=np.int64)
    assert keys_of(array, period, 480).tolist() == [key_of(m, period) for m in sorted(minutes)]


# ---- sums of periods ---------------------------------------------------------------------------


@given(
    st.lists(st.tuples(minutes_2000_2040, st.integers(0, 10**9)), max_size=40),
    st.sampled_from(list(Period)),
)
def test_period_sums_group_minutes_as_the_calendar_does(
    pairs: list[tuple[int, int]], period: Period
) -> None:
    values = dict(pairs)  # one value per minute
    s = MinuteSeries.from_values("m", "kWh", [(m, str(v)) for m, v in values.items()], D(1))
    expected: dict[int, tuple[int, int]] = {}
    for minute, value in values.items():
        total, count = expected.get(key_of(minute, period), (0, 0))
        expected[key_of(minute, period)] = (total + value, count + 1)
    got = period_sums(s, period)
    assert {k: (int(v.activity), v.minutes) for k, v in got.items()} == expected


def test_a_source_rate_is_its_method_applied_to_one_unit(lib: FactorLibrary) -> None:
    rates = source_rates(
        [
            spec_from_text("boiler", "combustion", "1 Nm3", fuel="natural_gas"),
            spec_from_text("grid", "electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("pv", "exported_electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
        ],
        lib,
    )
    # 389.31 GJ/10^4 Nm3 × 0.01532 tC/GJ × 99 % × 44/12 per Nm3
    assert rates["boiler"].rate == D("0.0021650151996")
    assert rates["grid"].rate == D("0.0005703") and rates["pv"].rate == D("-0.0005703")
    assert rates["boiler"].scope == 1 and rates["boiler"].vintage == V2015


def test_a_year_of_minutes_gives_the_inventory_figure(lib: FactorLibrary) -> None:
    """Worked example 01 spread over minutes: 12 10^4 Nm3 in a year → 259.802 tCO2."""
    rates = source_rates([spec_from_text("boiler", "combustion", "1 Nm3", fuel="natural_gas")], lib)
    start = minute_of(bj(2024, 1, 1))
    # 120 000 Nm3 over 1 200 minutes spread over the year, 100 Nm3 each
    minutes = start + np.arange(1200, dtype=np.int64) * 439
    gas = MinuteSeries("boiler", "Nm3", D(1), minutes, np.full(1200, 100, dtype=np.int64))
    (year,) = totals({"boiler": gas}, rates, Period.YEAR)
    assert year.span.label == "2024"
    assert year.sources["boiler"].activity == 120_000
    assert round_report(year.total_tco2, 3) == D("259.802")
    assert year.total_tco2 == D("259.801823952")  # exact: no rounding anywhere
    months = totals({"boiler": gas}, rates, Period.MONTH, within=year.span)
    assert len(months) == 12 and exact_sum(m.total_tco2 for m in months) == year.total_tco2


def _rates(lib: FactorLibrary) -> dict[str, SourceRate]:
    return source_rates(
        [
            spec_from_text("boiler", "combustion", "1 Nm3", fuel="natural_gas"),
            spec_from_text("diesel", "combustion", "1 kg", fuel="diesel"),
            spec_from_text("grid", "electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("pv", "exported_electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("steam", "heat", "1 GJ", factor="purchased_heat"),
            spec_from_text("pellets", "biomass", "1 t", ncv="16 GJ/t", factor="0.1 tCO2/GJ"),
        ],
        lib,
        V2015,
    )


UNITS = {"boiler": "Nm3", "diesel": "kg", "grid": "kWh", "pv": "kWh", "steam": "GJ"}
UNITS["pellets"] = "t"


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, MinuteSeries]:
    """Sparse minutes around a year's end, a leap day, month ends and week ends."""
    anchor = draw(
        st.sampled_from(
            [
                bj(2023, 12, 31, 22),  # year and quarter boundary, ISO week 2024-W01
                bj(2024, 2, 28, 23),  # leap day
                bj(2024, 1, 29),  # a week from January into February
                bj(2024, 3, 31, 20),  # Sunday 31 March: month, quarter and week end
                bj(2025, 2, 28, 23),  # not a leap year
            ]
        )
    )
    base = minute_of(anchor)
    out = {}
    for name, unit in UNITS.items():
        offsets = draw(st.lists(st.integers(0, 3 * 1440), unique=True, max_size=30))
        values = [
            (base + o, str(D(draw(st.integers(0, 10**6))).scaleb(-draw(st.integers(0, 3)))))
            for o in offsets
        ]
        out[name] = MinuteSeries.from_values(name, unit, values)
    return out


NESTS = [
    (Period.DAY, Period.HOUR),
    (Period.WEEK, Period.DAY),
    (Period.WEEK, Period.HOUR),
    (Period.MONTH, Period.DAY),
    (Period.QUARTER, Period.MONTH),
    (Period.YEAR, Period.QUARTER),
    (Period.YEAR, Period.MONTH),
]


@given(fleet=fleets(), nest=st.sampled_from(NESTS))
def test_sums_of_periods_equal_the_parent_total(
    lib: FactorLibrary, fleet: dict[str, MinuteSeries], nest: tuple[Period, Period]
) -> None:
    rates = _rates(lib)
    parent, child = nest
    for whole in totals(fleet, rates, parent):
        parts = totals(fleet, rates, child, within=whole.span)
        assert [p.span for p in parts] == list(whole.span.children(child))
        again = rolled_up(parts, whole.span)
        assert again.total_tco2 == whole.total_tco2  # exactly, not approximately
        assert again.scope1_tco2 == whole.scope1_tco2
        assert again.scope2_tco2 == whole.scope2_tco2
        assert again.biomass_tco2 == whole.biomass_tco2
        for name, source in whole.sources.items():
            assert again.sources[name] == source


@given(fleet=fleets())
def test_a_week_across_a_month_boundary_splits_exactly(
    lib: FactorLibrary, fleet: dict[str, MinuteSeries]
) -> None:
    rates = _rates(lib)
    days = indexed(totals(fleet, rates, Period.DAY))
    for week in totals(fleet, rates, Period.WEEK):
        by_month: dict[str, list[Decimal]] = {}
        for day in week.span.children(Period.DAY):
            if day in days:
                by_month.setdefault(Span.of(day.start, Period.MONTH).label, []).append(
                    days[day].total_tco2
                )
        assert exact_sum(exact_sum(v) for v in by_month.values()) == week.total_tco2


@given(fleet=fleets())
def test_totals_are_scope_sums_and_biomass_is_apart(
    lib: FactorLibrary, fleet: dict[str, MinuteSeries]
) -> None:
    rates = _rates(lib)
    for t in totals(fleet, rates, Period.DAY):
        s = t.sources
        assert t.scope1_tco2 == exact_sum([s["boiler"].tco2, s["diesel"].tco2])
        assert t.scope2_tco2 == exact_sum([s["grid"].tco2, s["pv"].tco2, s["steam"].tco2])
        assert t.biomass_tco2 == s["pellets"].tco2
        assert t.total_tco2 == exact_sum([t.scope1_tco2, t.scope2_tco2])
        assert s["pv"].tco2 <= 0  # exported: deducted


def test_within_a_period_every_sub_period_is_listed_and_outside_data_is_left_out(
    lib: FactorLibrary,
) -> None:
    rates = _rates(lib)
    grid = series("grid", "kWh", {bj(2024, 2, 29, 12): "100", bj(2024, 3, 1, 0): "50"})
    days = totals({"grid": grid}, rates, Period.DAY, within=Span.parse("2024-02"))
    assert len(days) == 29
    assert [d.span.label for d in days if d.total_tco2] == ["2024-02-29"]
    assert days[0].sources["grid"] == days[0].sources["grid"].__class__(D(0), D(0), 0)
    assert round_report(days[-1].coverage("grid"), 6) == D("0.000694")  # 1 of 1440 minutes


# ---- intensity, YoY, MoM -----------------------------------------------------------------------


def test_intensity_per_unit_of_electricity_heat_and_product(lib: FactorLibrary) -> None:
    rates = _rates(lib)
    t = bj(2024, 5, 1, 8)
    gas = series("boiler", "Nm3", {t: "1000"})  # 2.1650151996 tCO2
    made = series("power", "kWh", {t: "4000"})  # 4 MWh generated
    heat = series("heat out", "MWh", {t: "2"})  # 7.2 GJ
    clinker = series("clinker", "t", {t: "5"})
    (hour,) = totals(
        {"boiler": gas},
        rates,
        Period.HOUR,
        bases={Basis.ELECTRICITY: made, Basis.HEAT: heat, Basis.PRODUCT: clinker},
    )
    assert hour.bases[Basis.ELECTRICITY].activity == 4  # MWh
    assert hour.bases[Basis.HEAT].activity == D("7.2")  # GJ
    assert hour.intensity(Basis.ELECTRICITY) == D("0.5412537999")
    assert hour.intensity(Basis.PRODUCT) == D("0.43300303992")
    assert round_report(hour.intensity(Basis.HEAT) or D(0), 6) == D("0.300697")
    assert measure(hour, "intensity:product") == hour.intensity(Basis.PRODUCT)
    (none,) = totals({"boiler": gas}, rates, Period.HOUR)
    assert none.intensity(Basis.ELECTRICITY) is None  # no basis: no figure, not zero


def test_yoy_and_mom_compare_with_the_right_periods(lib: FactorLibrary) -> None:
    rates = _rates(lib)
    grid = series(
        "grid",
        "kWh",
        {
            bj(2023, 3, 15): "1000",  # 0.5703 t
            bj(2024, 2, 10): "2000",  # 1.1406 t
            bj(2024, 3, 15): "1500",  # 0.85545 t
        },
    )
    table = indexed(totals({"grid": grid}, rates, Period.MONTH))
    march = Span.parse("2024-03")
    y = yoy(table, march)
    assert y.base_span == Span.parse("2023-03") and y.base == D("0.5703")
    assert y.change == D("0.28515") and y.ratio == D("0.5")
    m = mom(table, march)
    assert m.base_span == Span.parse("2024-02") and m.ratio == D("-0.25")
    # No data a year before February: no ratio, not 0 % and not infinity.
    assert yoy(table, Span.parse("2024-02")).base is None
    assert yoy(table, Span.parse("2024-02")).ratio is None
    assert mom(table, march, "source:grid").ratio == D("-0.25")
    assert mom(table, march, "activity:grid").change == D("-500")


def test_a_series_is_checked_when_made() -> None:
    with pytest.raises(AccountingError, match="not a multiple of the resolution"):
        MinuteSeries.from_values("m", "kWh", [(0, "1.25")], resolution=D("0.1"))
    with pytest.raises(AccountingError, match="two values in minute 5"):
        MinuteSeries.from_values("m", "kWh", [(5, "1"), (5, "2")])
    with pytest.raises(AccountingError, match="increase strictly"):
        MinuteSeries("m", "kWh", D(1), np.array([2, 1]), np.array([1, 1]))
    with pytest.raises(AccountingError, match="without a zone"):
        minute_of(datetime(2024, 1, 1))
    with pytest.raises(AccountingError, match="not exact"):
        MinuteSeries.from_values("m", "GJ", [(0, "1")]).in_unit("MWh")


def test_meters_of_one_source_add_up_at_the_finest_resolution() -> None:
    a = MinuteSeries.from_values("a", "kWh", [(1, "1.5"), (2, "2")])
    b = MinuteSeries.from_values("b", "MWh", [(2, "0.001"), (3, "0.002")])
    both = combined("grid", [a, b])
    assert both.unit == "kWh" and both.resolution == D("0.1")
    assert both.minutes.tolist() == [1, 2, 3]
    assert [both.value(c) for c in both.counts.tolist()] == [D("1.5"), D("3"), D("2")]

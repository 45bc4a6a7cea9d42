"""Per-minute accounting (ISC-2 §7.2.3(3)): each minute's emission at once, cumulative
emission, and the periods it closes, equal to the statistics computed afterwards."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.live import LiveAccounting
from reference_terminal.accounting.methods import spec_from_text
from reference_terminal.accounting.statistics import (
    BEIJING,
    MinuteSeries,
    Period,
    PeriodTotals,
    SourceRate,
    indexed,
    minute_of,
    source_rates,
    totals,
)

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
D = Decimal


@pytest.fixture(scope="module")
def rates() -> dict[str, SourceRate]:
    lib = FactorLibrary.load(LIBRARY)
    return source_rates(
        [
            spec_from_text("boiler", "combustion", "1 Nm3", fuel="natural_gas"),
            spec_from_text("grid", "electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("pv", "exported_electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("pellets", "biomass", "1 t", ncv="16 GJ/t", factor="0.1 tCO2/GJ"),
        ],
        lib,
    )


def test_each_minute_is_activity_times_factor_and_adds_up(rates: dict[str, SourceRate]) -> None:
    live = LiveAccounting(rates)
    t0 = minute_of(datetime(2024, 3, 1, 9, 0, tzinfo=BEIJING))
    first = live.update(t0, {"grid": D("100"), "boiler": D("10")})
    second = live.update(t0 + 1, {"grid": D("50.5"), "pv": D("20")})
    grid = {r.source: r for r in first.rows}["grid"]
    assert (grid.activity, grid.factor, grid.emission) == (D(100), D("0.0005703"), D("0.05703"))
    rows = {r.source: r for r in second.rows}
    assert rows["grid"].emission == D("0.02880015")
    assert rows["grid"].cumulative == D("0.08583015")  # 0.05703 + 0.02880015
    assert rows["pv"].emission == D("-0.011406")
    assert second.scope2_tco2 == D("0.01739415") and second.scope1_tco2 == 0
    assert first.scope1_tco2 == D("0.021650151996")
    assert first.closed == () and second.closed == ()


def test_a_new_hour_closes_the_last_one(rates: dict[str, SourceRate]) -> None:
    live = LiveAccounting(rates, periods=(Period.HOUR, Period.DAY))
    t0 = minute_of(datetime(2024, 3, 1, 23, 58, tzinfo=BEIJING))
    live.update(t0, {"grid": D("1000")})
    live.update(t0 + 1, {"grid": D("1000")})
    update = live.update(t0 + 2, {"grid": D("1")})  # 00:00 on 2 March
    assert [t.span.label for t in update.closed] == ["2024-03-01 23:00", "2024-03-01"]
    hour = update.closed[0]
    assert hour.sources["grid"].activity == 2000 and hour.total_tco2 == D("1.1406")
    assert hour.sources["grid"].minutes == 2


def test_late_minutes_are_refused(rates: dict[str, SourceRate]) -> None:
    live = LiveAccounting(rates)
    live.update(1000, {"grid": D(1)})
    live.update(1000, {"grid": D(2)})  # the same minute again (a manual entry): adds up
    assert live.cumulative["grid"] == D("0.0017109")
    with pytest.raises(AccountingError, match="late data is recomputed"):
        live.update(999, {"grid": D(1)})
    with pytest.raises(AccountingError, match="no source"):
        live.update(1001, {"meter 9": D(1)})


minute_streams = st.lists(
    st.tuples(
        st.integers(0, 4 * 1440),  # minutes after the start
        st.sampled_from(["boiler", "grid", "pv", "pellets"]),
        st.integers(0, 10**6),
        st.integers(0, 3),
    ),
    max_size=60,
)


@given(stream=minute_streams, start=st.sampled_from([(2023, 12, 30), (2024, 2, 28), (2024, 3, 30)]))
def test_live_periods_equal_the_statistics_from_the_store(
    rates: dict[str, SourceRate],
    stream: list[tuple[int, str, int, int]],
    start: tuple[int, int, int],
) -> None:
    base = minute_of(datetime(*start, tzinfo=BEIJING))
    per_minute: dict[int, dict[str, Decimal]] = {}
    for offset, source, count, places in stream:
        per_minute.setdefault(base + offset, {})[source] = D(count).scaleb(-places)
    live = LiveAccounting(rates)
    closed: list[PeriodTotals] = []
    for minute in sorted(per_minute):
        closed += live.update(minute, per_minute[minute]).closed
    closed += live.flush()
    stored = {
        name: MinuteSeries.from_values(
            name,
            rates[name].unit,
            [(m, v[name]) for m, v in sorted(per_minute.items()) if name in v],
        )
        for name in rates
    }
    for period in Period:
        batch = indexed(totals(stored, rates, period))
        mine = {t.span: t for t in closed if t.span.period is period}
        assert set(mine) == set(batch)
        for span, t in mine.items():
            assert t.total_tco2 == batch[span].total_tco2
            assert t.biomass_tco2 == batch[span].biomass_tco2
            assert dict(t.sources) == dict(batch[span].sources)


period_choices = st.lists(st.sampled_from(list(Period)), min_size=1, max_size=6, unique=True)


@given(stream=minute_streams, periods=period_choices)
def test_any_choice_of_periods_closes_as_the_statistics(
    rates: dict[str, SourceRate],
    stream: list[tuple[int, str, int, int]],
    periods: list[Period],
) -> None:
    # minutes are added to the periods in bulk, whichever is the shortest and in any order
    base = minute_of(datetime(2024, 2, 28, tzinfo=BEIJING))
    per_minute: dict[int, dict[str, Decimal]] = {}
    for offset, source, count, places in stream:
        per_minute.setdefault(base + offset * 7, {})[source] = D(count).scaleb(-places)
    live = LiveAccounting(rates, periods=tuple(periods))
    closed: list[PeriodTotals] = []
    for minute in sorted(per_minute):
        closed += live.update(minute, per_minute[minute]).closed
    closed += live.flush()
    stored = {
        name: MinuteSeries.from_values(
            name, rates[name].unit, [(m, v[name]) for m, v in per_minute.items() if name in v]
        )
        for name in rates
    }
    for period in periods:
        batch = indexed(totals(stored, rates, period))
        mine = {t.span: t for t in closed if t.span.period is period}
        assert set(mine) == set(batch)
        for span, t in mine.items():
            assert t.total_tco2 == batch[span].total_tco2
            assert dict(t.sources) == dict(batch[span].sources)


def test_the_open_periods_read_mid_hour_hold_every_minute_so_far(
    rates: dict[str, SourceRate],
) -> None:
    live = LiveAccounting(rates, periods=(Period.HOUR, Period.DAY, Period.MONTH))
    t0 = minute_of(datetime(2024, 3, 31, 22, 58, tzinfo=BEIJING))
    for k, kwh in enumerate(["1.5", "2.25", "3", "4"]):  # 22:58 … 23:01
        live.update(t0 + k, {"grid": D(kwh)})
    hour, day, month = (live.open_totals(p) for p in (Period.HOUR, Period.DAY, Period.MONTH))
    assert hour is not None and day is not None and month is not None
    assert (hour.sources["grid"].activity, hour.sources["grid"].minutes) == (D("7"), 2)
    assert (day.sources["grid"].activity, day.sources["grid"].minutes) == (D("10.75"), 4)
    assert str(day.sources["grid"].activity) == "10.75"  # the exponent of minute-by-minute sums
    assert month.sources["grid"].activity == D("10.75")
    live.update(t0 + 4, {"grid": D("0.5")})  # 23:02, after the reading
    closed = live.update(t0 + 62, {"grid": D(1)}).closed  # 00:00 on 1 April
    assert [(t.span.label, t.sources["grid"].activity) for t in closed] == [
        ("2024-03-31 23:00", D("7.5")),
        ("2024-03-31", D("11.25")),
        ("2024-03", D("11.25")),
    ]

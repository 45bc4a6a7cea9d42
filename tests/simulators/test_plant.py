"""The plant model: deterministic by seed, totals the exact integrals of their rates."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.plant import Plant, PlantSpec, PlantTimeError

CST = timezone(timedelta(hours=8))
START = datetime(2026, 1, 5, 0, 0, tzinfo=CST)  # a Monday
T0 = START.timestamp()
SPEC = PlantSpec.model_validate(
    {
        "sources": [
            {
                "id": "grid",
                "kind": "electricity",
                "rated_kw": 1000,
                "load": {"profile": "two_shift", "weekend_factor": 0.3, "outages_per_month": 4},
            },
            {"id": "kiln", "kind": "production", "rated_t_h": 200},
            {"id": "coal", "kind": "weighbridge", "trucks_per_day": 30, "truck_t": 35},
            {"id": "stack", "kind": "cems", "rated_nm3_h": 400000, "co2_pct": 22},
            {"id": "steam", "kind": "steam", "rated_t_h": 20},
            {"id": "hw", "kind": "heat", "rated_kw": 500},
            {
                "id": "pv",
                "kind": "electricity",
                "rated_kw": 100,
                "direction": "export",
                "load": {"profile": "day_shift"},
            },
        ]
    }
)


def plant(seed: int = 1) -> Plant:
    return Plant(SPEC, seed=seed, start=START)


def test_the_same_seed_gives_the_same_plant_and_another_seed_another() -> None:
    t = T0 + 3 * 86400 + 10 * 3600 + 7.5
    names = ["grid.power_kw", "grid.energy_import_kwh", "stack.co2_t", "coal.mass_t"]
    assert plant(1).values(names, t) == plant(1).values(names, t)
    assert plant(1).values(names, t) != plant(2).values(names, t)


def test_answers_do_not_depend_on_the_order_of_questions() -> None:
    late, early = T0 + 40 * 86400 + 123.0, T0 + 2 * 86400 + 55.0
    a = plant()
    first = (a.value("grid.energy_import_kwh", late), a.value("grid.energy_import_kwh", early))
    b = plant()
    second = (b.value("grid.energy_import_kwh", late), b.value("grid.energy_import_kwh", early))
    assert first == second


def test_totals_do_not_depend_on_which_days_were_read_before() -> None:
    t = T0 + 9 * 86400 + 13 * 3600 + 17.0
    fresh = plant().value("hw.volume_m3", t)
    browsed = plant()
    for d in range(10):  # reading a state caches each whole day first
        browsed.value("hw.supply_temp_c", T0 + d * 86400 + 600)
    assert browsed.value("hw.volume_m3", t) == fresh


@settings(max_examples=30, deadline=None)
@given(
    start=st.floats(min_value=0, max_value=20 * 86400),
    span=st.floats(min_value=1, max_value=6 * 3600),
)
def test_a_total_grows_by_the_integral_of_its_rate(start: float, span: float) -> None:
    p = plant()
    t1 = T0 + start
    t2 = t1 + span
    grown = p.value("grid.energy_import_kwh", t2) - p.value("grid.energy_import_kwh", t1)
    # Integrate the per-minute power piece by piece: minute boundaries split the span.
    inside = [m * 60.0 for m in range(int(t1 // 60) + 1, math.ceil(t2 / 60))]
    edges = [t1, *inside, t2]
    integral = sum(
        p.value("grid.power_kw", (a + b) / 2) * (b - a) / 3600 for a, b in itertools.pairwise(edges)
    )
    assert grown == pytest.approx(integral, rel=1e-9, abs=1e-9)


def test_totals_never_fall_and_start_at_zero() -> None:
    p = plant()
    assert p.value("kiln.mass_t", T0) == 0.0
    samples = [p.value("kiln.mass_t", T0 + i * 3571.3) for i in range(300)]
    assert samples == sorted(samples)


def test_two_shift_load_stops_at_night_and_weekends_run_lighter() -> None:
    p = plant()
    monday_night = T0 + 3 * 3600
    assert p.value("grid.power_kw", monday_night) == 0.0
    weekday = [p.value("grid.power_kw", T0 + d * 86400 + 12 * 3600) for d in range(5)]
    weekend = [p.value("grid.power_kw", T0 + d * 86400 + 12 * 3600) for d in (5, 6)]
    assert min(w for w in weekday if w) > 2 * max(weekend)


def test_outages_appear_and_restarts_ramp_up() -> None:
    p = plant()
    zero_minutes = sum(
        p.value("grid.power_kw", T0 + d * 86400 + m * 60 + 30) == 0.0
        for d in range(20)
        for m in range(7 * 60, 21 * 60)
    )
    assert zero_minutes > 0  # 4 outages a month: some working minutes are lost


def test_electricity_quantities_are_consistent() -> None:
    p = plant()
    t = T0 + 10 * 3600 + 30
    power = p.value("grid.power_kw", t)
    pf = p.value("grid.power_factor", t)
    phases = sum(p.value(f"grid.voltage_{x}", t) * p.value(f"grid.current_{x}", t) for x in "abc")
    assert phases * pf / 1000 == pytest.approx(power, rel=0.02)
    assert p.value("pv.energy_import_kwh", t + 86400) == 0.0
    assert p.value("pv.energy_export_kwh", t + 86400) > 0.0


def test_cems_co2_mass_follows_flow_and_concentration() -> None:
    p = plant()
    t = T0 + 5 * 3600 + 10
    expected = p.value("stack.flow_nm3_h", t) * p.value("stack.co2_pct", t) / 100 * 1.977
    assert p.value("stack.co2_kg_h", t) == pytest.approx(expected)


def test_weighbridge_totals_move_in_truckloads() -> None:
    p = plant()
    trucks = p.value("coal.trucks", T0 + 7 * 86400)
    mass = p.value("coal.mass_t", T0 + 7 * 86400)
    assert trucks == pytest.approx(round(trucks), abs=1e-9) and trucks > 100
    assert mass / trucks == pytest.approx(35, rel=0.05)


def test_before_the_start_there_is_no_truth() -> None:
    with pytest.raises(PlantTimeError, match="before the plant's start"):
        plant().value("grid.power_kw", T0 - 1)


def test_an_unknown_quantity_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"grid\.energy_import_kwh"):
        plant().value("grid.energy", T0)

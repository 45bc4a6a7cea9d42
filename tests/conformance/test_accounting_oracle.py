"""The accounting oracle: the rates it derives from the fleet's accounting and the factor
library on its own, and how it judges a terminal's figure against the plant's truth — a
correct figure passes, one made with a wrong factor fails, one the bench cannot pin down is
inconclusive."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from conformance.accounting_oracle import (
    Interval,
    Oracle,
    OracleError,
    Outcome,
    Rate,
    chain_breaks,
    conversion,
    decide,
    half_unit,
    judge_intensity,
    overall,
)
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.loader import load_fleet

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"
R = Decimal("0.01")  # the grid meter's resolution, kWh
D = Decimal


@pytest.fixture(scope="module")
def fleet() -> FleetRuntime:
    return FleetRuntime(load_fleet(SMALL))


@pytest.fixture
def oracle(fleet: FleetRuntime) -> Oracle:
    fleet.observations.clear()
    return Oracle.for_fleet(fleet)


def test_rates_follow_the_methods_from_the_library_alone(oracle: Oracle) -> None:
    rates = {bound.source: bound.rate for bound in oracle.reads.values()}
    assert rates["grid"] == D("0.0005703")  # 0.5703 tCO2/MWh per kWh
    assert rates["pv"] == D("-0.0005703")  # exported: deducted
    assert rates["heat"] == D("0.000396")  # 0.11 tCO2/GJ × 0.0036 GJ/kWh
    assert rates["stack"] == 1 and rates["clinker"] == D("0.527")
    # natural gas: 389.31 GJ/10^4 Nm3 × 0.01532 tC/GJ × 99 % × 44/12, per Nm3
    expected = D("389.31") / 10_000 * D("0.01532") * D("0.99") * 44 / 12
    assert abs(rates["boiler"] - expected) < D("1e-20")
    assert {b.scope for b in oracle.reads.values() if b.source == "boiler"} == {1}


def test_units_the_oracle_does_not_know_are_refused() -> None:
    assert Rate.parse("389.31 GJ/10^4 Nm3").per("Nm3") == D("0.038931")
    with pytest.raises(OracleError, match="m³"):
        Rate.parse("1 tCO2/m³")


def test_the_guard_band_passes_fails_or_cannot_tell() -> None:
    limit = D("0.00001")
    assert decide("x", D("1.000005"), D("1"), limit, D(0)).outcome is Outcome.PASS
    assert decide("x", D("1.00003"), D("1"), limit, D("0.00001")).outcome is Outcome.FAIL
    # within the limit, but the bench's own uncertainty reaches past it
    assert decide("x", D("1.000008"), D("1"), limit, D("0.000005")).outcome is Outcome.INCONCLUSIVE
    assert half_unit("0.0030454020") == D("0.00000000005")


def observe(fleet: FleetRuntime, t: float, value: str, truth: float, *faults: str) -> None:
    fleet.record(
        Observation(t, "em-grid", "grid.energy_import_kwh", D(value), truth, tuple(faults))
    )


def grid(oracle: Oracle):  # type: ignore[no-untyped-def]
    return oracle.reads[("em-grid", "grid.energy_import_kwh")]


def judge(oracle: Oracle, emission: Decimal, first: str = "21.34", last: str = "26.68"):  # type: ignore[no-untyped-def]
    oracle.refresh()
    return oracle.judge_span(
        "grid minute", grid(oracle), R, first=D(first), last=D(last), lo=0, hi=200,
        emission=emission,
    )  # fmt: skip


def test_a_figure_with_the_right_factor_passes(fleet: FleetRuntime, oracle: Oracle) -> None:
    observe(fleet, 60.02, "21.34", 21.3468)
    observe(fleet, 120.02, "26.68", 26.6851)
    # the terminal: (26.68 − 21.34) kWh × 0.5703 tCO2/MWh, rounded to 10 places
    verdict = judge(oracle, D("0.0030454020"))
    assert verdict.outcome is Outcome.PASS, verdict.why
    assert verdict.expected == (D("26.6851") - D("21.3468")) * D("0.0005703")


def test_a_figure_with_a_wrong_factor_fails(fleet: FleetRuntime, oracle: Oracle) -> None:
    observe(fleet, 60.02, "21.34", 21.3468)
    observe(fleet, 120.02, "26.68", 26.6851)
    wrong = (D("5.34") * D("0.000581")).quantize(D("1e-10"))  # 0.5810 tCO2/MWh: 1.9 % high
    verdict = judge(oracle, wrong)
    assert verdict.outcome is Outcome.FAIL, verdict.why


def test_lost_activity_fails(fleet: FleetRuntime, oracle: Oracle) -> None:
    observe(fleet, 60.02, "21.34", 21.3468)
    observe(fleet, 120.02, "26.68", 26.6851)
    verdict = judge(oracle, (D("5.00") * D("0.0005703")).quantize(D("1e-10")))
    assert verdict.outcome is Outcome.FAIL


def test_a_register_shown_over_a_long_stretch_leaves_the_bench_unsure(
    fleet: FleetRuntime, oracle: Oracle
) -> None:
    # the meter showed 21.34 twice, the truth moving 0.009 kWh meanwhile: the span is known
    # only to within that, more than the resolution leaves for judging a figure this close
    observe(fleet, 10.0, "21.34", 21.3401)
    observe(fleet, 60.02, "21.34", 21.3491)
    observe(fleet, 120.02, "26.68", 26.6851)
    reported = (D("26.6851") - D("21.3446")) * D("0.0005703") + D("0.000005")
    verdict = judge(oracle, reported.quantize(D("1e-10")))
    assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.why


def test_a_figure_over_a_value_fault_is_not_judged(fleet: FleetRuntime, oracle: Oracle) -> None:
    observe(fleet, 60.02, "21.34", 21.3468)
    observe(fleet, 90.02, "1200.00", 24.0, "spike")
    observe(fleet, 120.02, "26.68", 26.6851)
    verdict = judge(oracle, D("0.1"))
    assert verdict.outcome is Outcome.INCONCLUSIVE and "spike" in verdict.why


def test_a_register_the_meter_never_showed_cannot_be_traced(
    fleet: FleetRuntime, oracle: Oracle
) -> None:
    observe(fleet, 120.02, "26.68", 26.6851)
    verdict = judge(oracle, D("0.0030454020"))
    assert verdict.outcome is Outcome.INCONCLUSIVE and "never showed" in verdict.why


def test_a_hand_entry_is_judged_by_the_times_it_was_entered(oracle: Oracle) -> None:
    clinker = oracle.reads[("manual-clinker", "clinker_in.mass_t")]
    plant = oracle.fleet.plant
    t0 = plant.start + 3600.0
    t1 = t0 + 6 * 3600
    truth = D(repr(plant.value(clinker.quantity, t1))) - D(repr(plant.value(clinker.quantity, t0)))
    entered = truth.quantize(D("0.01"))
    right = oracle.judge_entry("entry", clinker, D("0.01"), t0=t0, t1=t1,
                               emission=entered * D("0.527"))  # fmt: skip
    wrong = oracle.judge_entry("entry", clinker, D("0.01"), t0=t0, t1=t1,
                               emission=(entered + 1) * D("0.527"))  # fmt: skip
    assert (right.outcome, wrong.outcome) == (Outcome.PASS, Outcome.FAIL)


def test_many_figures_make_one_verdict() -> None:
    ok = decide("a", D(1), D(1), D("0.1"), D(0))
    bad = decide("b", D(2), D(1), D("0.1"), D(0))
    unsure = decide("c", D("1.08"), D(1), D("0.1"), D("0.05"))
    assert overall([ok] * 10)[0] is Outcome.PASS
    assert overall([ok] * 9 + [bad])[0] is Outcome.FAIL
    assert overall([ok] * 19 + [unsure])[0] is Outcome.PASS  # 95 % conclusive
    assert overall([ok, unsure])[0] is Outcome.INCONCLUSIVE
    assert overall([])[0] is Outcome.INCONCLUSIVE


def test_minutes_must_chain_register_to_register() -> None:
    rows = [
        {"point": "p", "t": 0, "first": "1.00", "last": "2.00"},
        {"point": "p", "t": 60, "first": "2.00", "last": "3.50"},
        {"point": "p", "t": 120, "first": "3.60", "last": "4.00"},
    ]
    (gap,) = chain_breaks(rows)
    assert "starts at register 3.60" in gap and "ended at 3.5" in gap


# ---- intensities: a quotient of two figures the bench knows as intervals ----------------------


def test_the_bases_are_read_from_the_fleet_with_their_units(oracle: Oracle) -> None:
    bases = {(b.basis, b.meter, b.unit) for b in oracle.bases.values()}
    assert ("electricity", "em-grid", "kWh") in bases and ("heat", "hm-heat", "kWh") in bases
    assert ("product", "dcs", "t") in {(b.basis, b.meter, b.unit) for b in oracle.bases.values()}
    assert conversion("kWh", "MWh") == D("0.001") and conversion("kWh", "GJ") == D("0.0036")
    assert conversion("块", "块") == 1  # a product counted in its own unit
    with pytest.raises(OracleError, match="cannot count"):
        conversion("kWh", "t")


E = Interval(D("1.5"), D("0.001"), D("0.0001"))  # tCO2
A = Interval(D("3"), D("0.002"), D("0.0002"))  # MWh
I_TRUE = D("0.5")  # tCO2/MWh


def test_an_intensity_within_what_the_meters_allow_passes() -> None:
    # the worst a correct terminal can be off: (1.501 / 2.998) − 0.5 = 0.000667…, plus half a
    # unit of the fourth place it reports
    verdict = judge_intensity("day per electricity", D("0.5006"), E, A)
    assert verdict.outcome is Outcome.PASS, verdict.why
    assert verdict.expected == I_TRUE
    assert D("0.000717") < verdict.limit < D("0.000718")


def test_an_intensity_divided_by_the_wrong_basis_fails() -> None:
    # the total per kWh-as-MWh of only one of two electricity meters: far outside the limit
    verdict = judge_intensity("day per electricity", D("0.75"), E, A)
    assert verdict.outcome is Outcome.FAIL, verdict.why


def test_an_intensity_near_the_limit_with_the_bench_unsure_is_inconclusive() -> None:
    unsure = Interval(D("1.5"), D("0.001"), D("0.001"))
    verdict = judge_intensity("day per electricity", D("0.5006"), unsure, A)
    assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.why


def test_an_intensity_over_a_basis_indistinguishable_from_zero_is_not_judged() -> None:
    tiny = Interval(D("0.001"), D("0.001"), D(0))
    verdict = judge_intensity("hour per heat", D("1500"), E, tiny)
    assert verdict.outcome is Outcome.INCONCLUSIVE and "zero" in verdict.why


def test_a_negative_total_is_bounded_on_both_sides() -> None:
    exporting = Interval(D("-1.5"), D("0.001"), D(0))
    assert judge_intensity("x", D("-0.5006"), exporting, A).outcome is Outcome.PASS
    assert judge_intensity("x", D("0.5"), exporting, A).outcome is Outcome.FAIL


def test_a_span_activity_is_the_truth_between_the_registers(
    fleet: FleetRuntime, oracle: Oracle
) -> None:
    observe(fleet, 60.02, "21.34", 21.3468)
    observe(fleet, 120.02, "26.68", 26.6851)
    oracle.refresh()
    span = oracle.span_activity("em-grid", "grid.energy_import_kwh", D("21.34"), D("26.68"), 0, 200)
    assert not isinstance(span, str)
    assert (span.activity, span.spread, span.faults) == (D("26.6851") - D("21.3468"), D(0), ())
    missing = oracle.span_activity("em-grid", "grid.energy_import_kwh", D("1"), D("26.68"), 0, 200)
    assert isinstance(missing, str) and "never showed the register 1" in missing

"""The wire judgement of uploaded emissions (``conformance.wire_emissions``) and the rates it
holds each source to (``conformance.emission_plan``): a figure within the rounding passes, one
off fails, one that never came fails, one the bench cannot know is not judged, one no terminal
can have (a meter never asked) fails; a published source takes the library the terminal
downloaded, and a minute booked as it changed is not judged."""

from __future__ import annotations

from decimal import Decimal

import yaml

from conformance.accounting_oracle import Outcome
from conformance.emission_plan import (
    SWITCH_MARGIN_S,
    Plan,
    PlannedSource,
    Rates,
    activity_digits,
    published_library,
)
from conformance.target import EmissionCode, Emissions, EmissionSource, MeterRead
from conformance.wire_emissions import Known, Unknown, judge_figure

VINTAGE = "2015 guidelines / GB/T 32150"


def _plan() -> Plan:
    heat = EmissionSource(
        id="heat",
        unit="utilities",
        kind="heat",
        factor="purchased_heat",
        published=True,
        reads=[MeterRead(meter="hm", quantity="hot_water.heat_kwh")],
    )
    grid = EmissionSource(
        id="grid",
        unit="utilities",
        kind="electricity",
        factor="0.5703 tCO2/MWh",
        reads=[MeterRead(meter="em", quantity="grid.energy_import_kwh")],
    )
    emissions = Emissions(
        vintage=VINTAGE,
        sources=[heat, grid],
        codes=[EmissionCode(code="C301104001co201", of="source", id="heat")],
    )
    return Plan(
        emissions,
        {
            "heat": PlannedSource(heat, "heat", 2, (("hm", "q", "kWh"),), manual=False),
            "grid": PlannedSource(grid, "electricity", 2, (("em", "q", "kWh"),), manual=False),
        },
    )


def test_a_codes_activity_digits() -> None:
    assert activity_digits("C301104001co201") == "04"
    assert activity_digits("a05001") is None


def test_figures_are_judged_within_the_rounding_of_what_is_reported() -> None:
    known = Known(Decimal("0.00304540201"), Decimal(0), 1)
    (ok,) = judge_figure("f", known, [Decimal("0.0030454020")])
    (off,) = judge_figure("f", known, [Decimal("0.0031141600")])
    (lost,) = judge_figure("f", known, [])
    assert (ok.outcome, off.outcome, lost.outcome) == (Outcome.PASS, Outcome.FAIL, Outcome.FAIL)
    (unknown,) = judge_figure("f", Unknown("excused"), [Decimal("1.0")])
    assert unknown.outcome is Outcome.INCONCLUSIVE
    assert judge_figure("f", Unknown("excused"), []) == []
    (never,) = judge_figure("f", Unknown("never asked", blame=True), [])
    assert never.outcome is Outcome.FAIL


def test_a_published_source_takes_the_library_downloaded() -> None:
    plan = _plan()
    heat, grid = plan.sources["heat"], plan.sources["grid"]
    base = published_library(2)
    changed = published_library(3, {"purchased_heat": Decimal("1.25")})
    entry = yaml.safe_load(changed)["vintages"]
    factors = [f for v in entry for f in v["factors"] if f["name"] == "purchased_heat"]
    assert factors[0]["factor"] == "0.1375 tCO2/GJ"
    rates = Rates(plan, [(1000.0, base), (5000.0, changed)])
    assert isinstance(rates.at(heat, 0, 500.0), str)  # before any library was taken
    before = rates.at(heat, 0, 2000.0)
    after = rates.at(heat, 0, 5000.0)
    assert isinstance(before, Decimal) and isinstance(after, Decimal)
    assert before == Decimal("0.11") * Decimal("0.0036")  # tCO2/GJ × GJ/kWh
    assert after == before * Decimal("1.25")
    assert isinstance(rates.at(heat, 0, 5000.0 - SWITCH_MARGIN_S), str)  # booked as it changed
    # a source with its own factor does not follow publications
    assert rates.at(grid, 0, 500.0) == rates.at(grid, 0, 5000.0) == Decimal("0.0005703")

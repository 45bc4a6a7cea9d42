"""The black-box oracle: which minute windows a terminal owes, from the meters' logs alone,
and how what a centre received is judged against them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.data_time import local
from conformance.oracle import MeterLog, Owed, Tolerances, judge, owed_windows
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.loader import load_fleet
from simulators.fleet.runtime import FaultEvent
from simulators.platform import ReadingRow

SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"
T0 = 1_800_000_000.0  # on a minute boundary
MN = "010000A8900016F000100000"


@pytest.fixture(scope="module")
def fleet() -> FleetRuntime:
    return FleetRuntime(load_fleet(SMALL))


def log_of(fleet: FleetRuntime, *series: tuple[str, str, list[tuple[float, str]]]) -> MeterLog:
    fleet.fault_events.clear()
    log = MeterLog(fleet)
    for meter, quantity, values in series:
        for t, value in values:
            log.add(Observation(t, meter, quantity, Decimal(value), 0.0))
    return log


def polled(values: list[str], *, every: float = 60.0, lag: float = 0.05) -> list[tuple[float, str]]:
    """A poll on the grid (a little after each boundary) answered with ``values``."""
    return [(T0 + i * every + lag, v) for i, v in enumerate(values)]


def test_a_gauge_read_once_a_minute_owes_each_window_its_reading(fleet: FleetRuntime) -> None:
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", polled(["8.10", "8.20", "8.15"])))
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 180
    )
    assert {w: (o.value, o.low, o.high) for w, o in windows.owed.items()} == {
        T0: (Decimal("8.10"), Decimal("8.10"), Decimal("8.10")),
        T0 + 60: (Decimal("8.20"), Decimal("8.20"), Decimal("8.20")),
        T0 + 120: (Decimal("8.15"), Decimal("8.15"), Decimal("8.15")),
    }


def test_a_counter_owes_the_window_of_each_intervals_middle_its_increment(
    fleet: FleetRuntime,
) -> None:
    reads = polled(["100.00", "101.50", "103.25", "103.25"])
    log = log_of(fleet, ("em-grid", "grid.energy_import_kwh", reads))
    windows = owed_windows(
        log, meter="em-grid", quantity="grid.energy_import_kwh", kind="counter",
        start=T0, end=T0 + 180,
    )  # fmt: skip
    # a poll just after the minute measures the minute before it
    assert {w: o.value for w, o in windows.owed.items()} == {
        T0: Decimal("1.50"),
        T0 + 60: Decimal("1.75"),
        T0 + 120: Decimal("0.00"),
    }


def test_a_counter_that_rolls_over_owes_the_increment_past_full_scale(
    fleet: FleetRuntime,
) -> None:
    # em-grid's register rolls over at 1 000 000 kWh (CSMT §8.2.2)
    log = log_of(fleet, ("em-grid", "grid.energy_import_kwh", polled(["999999.50", "1.25"])))
    windows = owed_windows(
        log, meter="em-grid", quantity="grid.energy_import_kwh", kind="counter",
        start=T0, end=T0 + 60,
    )  # fmt: skip
    assert windows.owed[T0].value == Decimal("1.75")


def test_an_answer_near_a_communication_fault_excuses_its_windows(fleet: FleetRuntime) -> None:
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", polled(["8.10", "8.20", "8.15"])))
    fleet.fault_events.append(FaultEvent(T0 + 60.02, "plc-cems", "garbled"))
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 180
    )
    assert sorted(windows.owed) == [T0, T0 + 120]
    assert windows.excused == {T0 + 60}


def test_a_reading_just_before_a_power_cut_is_owed_only_beyond_the_tolerance(
    fleet: FleetRuntime,
) -> None:
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", polled(["8.10", "8.20"])))
    log.power_cut(T0 + 63.0)  # 2.95 s after the second read
    log.power_on(T0 + 600.0)
    near = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 120,
        tolerances=Tolerances(cut_loss_s=5.0),
    )  # fmt: skip
    strict = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 120,
        tolerances=Tolerances(cut_loss_s=1.0),
    )  # fmt: skip
    assert sorted(near.owed) == [T0] and near.excused == {T0 + 60}
    assert sorted(strict.owed) == [T0, T0 + 60]


def test_windows_its_meter_was_never_asked_for_within_the_period_are_unpolled(
    fleet: FleetRuntime,
) -> None:
    # read at 0 and 1 min, then nothing for 5 minutes, then again
    reads = [(T0 + 0.05, "8.1"), (T0 + 60.05, "8.2"), (T0 + 420.05, "8.3")]
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", reads))
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 480,
        period=60.0,
    )  # fmt: skip
    assert sorted(windows.unpolled) == [T0 + 60 * k for k in range(2, 7)]


def test_no_window_is_unpolled_while_the_terminal_was_off_or_booting(fleet: FleetRuntime) -> None:
    reads = [(T0 + 0.05, "8.1"), (T0 + 1800.05, "8.3")]
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", reads))
    log.power_cut(T0 + 30)
    log.power_on(T0 + 1700)
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0, end=T0 + 1860,
        period=60.0,
    )  # fmt: skip
    assert not windows.unpolled


def test_an_offered_source_is_owed_within_what_was_on_offer(fleet: FleetRuntime) -> None:
    # the historian records every 10 s; the terminal read some state in each window
    offers = [(T0 - 5 + 10 * i, f"{60 + (i % 3) / 10:.1f}") for i in range(20)]
    log = log_of(fleet, ("mes-historian", "hot_water.return_temp_c", offers))
    windows = owed_windows(
        log, meter="mes-historian", quantity="hot_water.return_temp_c", kind="gauge",
        start=T0, end=T0 + 120,
    )  # fmt: skip
    first = windows.owed[T0]
    assert first.bounded
    assert (first.low, first.high) == (Decimal("60.0"), Decimal("60.2"))


# ---- judging what a centre received --------------------------------------------------------


def row(frame: int, when: float, code: str, value: str | None, **fields: str) -> ReadingRow:
    shown = dict(fields)
    if value is not None:
        shown["Avg"] = value
    return ReadingRow(
        frame, when, "provincial", MN, 2051, f"QN{frame}", local(when), code, None
        if value is None else Decimal(value), shown.get("Flag", "N"), shown,
    )  # fmt: skip


def owed_gauge(fleet: FleetRuntime, values: list[str]) -> Owed:
    log = log_of(fleet, ("plc-cems", "stack.co2_pct", polled(values)))
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0,
        end=T0 + 60 * len(values), period=60.0,
    )  # fmt: skip
    return Owed(MN, {"CO2": windows}, {"CO2": "Avg"})


def test_every_owed_window_with_its_value_is_complete(fleet: FleetRuntime) -> None:
    owed = owed_gauge(fleet, ["8.1", "8.2"])
    rows = [row(1, T0, "CO2", "8.1"), row(2, T0 + 60, "CO2", "8.2")]
    assert judge(owed, rows).complete


def test_a_window_without_its_value_where_the_meter_answered_is_wrong(
    fleet: FleetRuntime,
) -> None:
    """A terminal that says "no data" (flag B) for a minute its meter surely answered."""
    owed = owed_gauge(fleet, ["8.1", "8.2"])
    rows = [row(1, T0, "CO2", "8.1"), row(2, T0 + 60, "CO2", None, Flag="B")]
    result = judge(owed, rows)
    assert not result.complete
    assert [(w.key.data_time, w.received) for w in result.wrong_value] == [(local(T0 + 60), None)]


def test_a_flag_alone_for_a_minute_nothing_was_measured_is_no_fault(fleet: FleetRuntime) -> None:
    owed = owed_gauge(fleet, ["8.1"])
    rows = [row(1, T0, "CO2", "8.1"), row(2, T0 - 60, "CO2", None, Flag="B")]
    assert judge(owed, rows).complete


def test_a_value_for_a_minute_nothing_was_measured_is_unexpected(fleet: FleetRuntime) -> None:
    owed = owed_gauge(fleet, ["8.1"])
    rows = [row(1, T0, "CO2", "8.1"), row(2, T0 - 60, "CO2", "8.0")]
    assert [k.data_time for k in judge(owed, rows).unexpected] == [local(T0 - 60)]


def test_a_fill_flagged_as_not_measured_is_left_to_the_processing_suite(
    fleet: FleetRuntime,
) -> None:
    owed = owed_gauge(fleet, ["8.1"])
    rows = [row(1, T0, "CO2", "8.1"), row(2, T0 - 60, "CO2", "8.0", Flag="D")]
    assert judge(owed, rows).complete


def test_a_terminal_that_never_asks_its_meter_loses_every_window(fleet: FleetRuntime) -> None:
    """The worst defect a bench can have is passing a terminal that measures nothing."""
    log = log_of(fleet)
    windows = owed_windows(
        log, meter="plc-cems", quantity="stack.co2_pct", kind="gauge", start=T0,
        end=T0 + 600, period=60.0,
    )  # fmt: skip
    owed = Owed(MN, {"CO2": windows}, {"CO2": "Avg"})
    rows = [row(i, T0 + 60 * i, "CO2", None, Flag="B") for i in range(10)]
    result = judge(owed, rows)
    assert len(result.lost) >= 8
    assert not result.complete


def test_figures_are_judged_min_max_and_flag(fleet: FleetRuntime) -> None:
    owed = owed_gauge(fleet, ["8.1"])
    good = [row(1, T0, "CO2", "8.1", Min="8.1", Max="8.1", Flag="N")]
    bare = [row(1, T0, "CO2", "8.1", Flag="N")]
    assert judge(owed, good, figures=True).complete
    assert {w.field for w in judge(owed, bare, figures=True).wrong_value} == {"Min", "Max"}
    assert judge(owed, bare).complete  # delivery alone judges the main figure


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.decimals(min_value=0, max_value=500, places=2, allow_nan=False), min_size=3, max_size=60
    ),
    rule=st.sampled_from(["middle", "end", "start"]),
)
def test_a_counters_owed_increments_add_up_to_what_its_register_moved(
    fleet: FleetRuntime, steps: list[Decimal], rule: str
) -> None:
    """Whatever the attribution rule, nothing is counted twice or lost between the windows."""
    register = Decimal("1000.00")
    values = [register]
    for step in steps:
        register = (register + step) % Decimal(1_000_000)
        values.append(register)
    log = log_of(fleet, ("em-grid", "grid.energy_import_kwh", polled([str(v) for v in values])))
    windows = owed_windows(
        log, meter="em-grid", quantity="grid.energy_import_kwh", kind="counter",
        start=T0 - 600, end=T0 + 60 * (len(values) + 10),
        tolerances=Tolerances(counter_window=rule),
    )  # fmt: skip
    assert not windows.excused
    assert sum((o.value for o in windows.owed.values()), Decimal(0)) == sum(steps, Decimal(0))


def test_datetime_of_a_window_is_plant_local() -> None:
    assert local(T0) == datetime(2027, 1, 15, 16, 0)

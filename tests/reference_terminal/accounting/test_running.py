"""Accounting inside the running terminal: each closed minute of an accounted point becomes its
emission and cumulative emission, periods close with their totals, a value entered by hand is
converted at once (CSMT §11.6), alarms go to the event log, and after a restart the figures
carry on from the store as if nothing had happened."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from reference_terminal.accounting.records import Figure
from reference_terminal.accounting.running import Booked, RunningAccounting
from reference_terminal.app import window_rows
from reference_terminal.config import TerminalConfig
from reference_terminal.model import RawValue
from reference_terminal.processing.pipeline import Output, Processor
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url
from tests.reference_terminal.accounting.terminal_config import make_config

T0 = 1_767_581_400.0  # 2026-01-05 10:50 +08:00
GRID = Decimal("0.0005703")  # tCO2/kWh


class Plant:
    """A terminal's processing and accounting fed minute by minute: the grid meter advances
    ``kwh`` per minute, the gas meter 5 Nm³, the product scale 1 t; each is read at :01."""

    def __init__(self, config: TerminalConfig) -> None:
        self.processor = Processor.from_config(config)
        accounting = RunningAccounting.from_config(config)
        assert accounting is not None
        self.accounting = accounting
        self.registers = {"em.ep": Decimal("1000.00"), "gm.vol": Decimal("50.00")}
        self.registers["scale.t"] = Decimal("7.00")
        self.rows: list[Derived] = []
        self.events: list[str] = []

    def feed(self, t: float, raws: list[RawValue]) -> Booked:
        booked = self.accounting.book(self.processor.process_many(raws), t)
        self.rows += booked.now + booked.behind
        self.events += [e.kind for e in booked.events]
        return booked

    def minute(self, t: float, kwh: str = "10.00") -> Booked:
        steps = {"em.ep": Decimal(kwh), "gm.vol": Decimal("5.00"), "scale.t": Decimal("1.00")}
        raws = []
        for point, step in steps.items():
            self.registers[point] += step
            value = self.registers[point]
            raws.append(RawValue(point, value, str(value), t, point.split(".")[0]))
        return self.feed(t, raws)

    def figures(self, point: str, kind: str) -> list[Figure]:
        return [Figure.of(r) for r in self.rows if r.point == point and r.kind == kind]


def test_each_closed_minute_becomes_its_emission_and_cumulative(tmp_path: Path) -> None:
    plant = Plant(make_config(tmp_path))
    for k in range(4):
        plant.minute(T0 + 60 * k + 1)
    minutes = plant.figures("em.ep", "co2")
    # the first reading is a baseline; an increment counts in the minute of its middle, and
    # the next one closes that minute
    assert [f.start for f in minutes] == [T0, T0 + 60]
    assert all(
        f.activity == Decimal("10.00") and f.value == Decimal("0.0057030000") for f in minutes
    )
    assert [f.first for f in minutes] == [Decimal("1010.00"), Decimal("1020.00")]
    assert [f.last for f in minutes] == [Decimal("1020.00"), Decimal("1030.00")]
    cumulative = [f.value for f in plant.figures("em.ep", "co2_cum")]
    assert cumulative == [Decimal("0.0057030000"), Decimal("0.0114060000")]
    gas = plant.figures("gm.vol", "co2")[0]
    assert gas.factor is not None and gas.activity == Decimal("5.00")
    assert gas.value == (Decimal("5.00") * gas.factor).quantize(Decimal("1e-10"))
    # the product scale only feeds a basis: its activity is kept, it has no emission
    assert plant.figures("scale.t", "basis")[0].value == Decimal("1.00")
    assert not plant.figures("scale.t", "co2")


def test_a_minute_that_comes_again_is_not_counted_twice(tmp_path: Path) -> None:
    """Processing emits a window again when it resumes from a store that did not hold the
    window's rows yet; accounting that booked it already says so and books nothing."""
    plant = Plant(make_config(tmp_path))
    for k in range(3):
        plant.minute(T0 + 60 * k + 1)
    output = plant.processor.process_many(
        [RawValue("em.ep", Decimal("1040.00"), "1040.00", T0 + 60 * 3 + 1, "em")]
    )
    (closed,) = [a for a in output.aggregates if a.point == "em.ep" and a.period == "minute"]
    first = plant.accounting.book(output, T0 + 200)
    again = plant.accounting.book(Output(aggregates=(closed,)), T0 + 201)
    assert [r.kind for r in again.behind] == []
    assert [e.kind for e in again.events] == ["accounting_late"]
    (cumulative,) = [r.value for r in first.behind if r.kind == "co2_cum" and r.point == "em.ep"]
    assert cumulative == Decimal("0.0114060000")  # two minutes of 10 kWh, each once


def test_an_hour_closes_with_its_total_and_registers(tmp_path: Path) -> None:
    plant = Plant(make_config(tmp_path))
    for k in range(16):  # 10:50 … 11:05
        plant.minute(T0 + 60 * k + 1)
    (hour,) = plant.figures("em.ep", "co2_hour")
    assert hour.start == T0 - 50 * 60  # 10:00
    # the increments read at 10:51:01 … 11:00:01 have their middles in 10:50 … 10:59
    assert (hour.activity, hour.minutes) == (Decimal("100.00"), 10)
    assert hour.value == Decimal("100.00") * GRID
    assert (hour.first, hour.last) == (Decimal("1010.00"), Decimal("1110.00"))
    (basis,) = plant.figures("scale.t", "basis_hour")
    assert basis.value == Decimal("10.00")


def test_a_value_entered_by_hand_is_converted_at_once(tmp_path: Path) -> None:
    plant = Plant(make_config(tmp_path))
    plant.feed(T0, [RawValue("ticket.clinker", Decimal("1000.00"), "1000.00", T0, "ticket")])
    booked = plant.feed(
        T0 + 600, [RawValue("ticket.clinker", Decimal("1032.00"), "1032.00", T0 + 600, "ticket")]
    )
    (entry,) = [Figure.of(r) for r in booked.now if r.kind == "co2_entry"]
    assert (entry.start, entry.end, entry.activity) == (T0, T0 + 600, Decimal("32.00"))
    assert entry.value == Decimal("16.864")  # 32 t × 0.527 tCO2/t
    assert not booked.behind  # durable with the reading, not behind it
    # its window closing later is not counted again
    plant.accounting.book(plant.processor.close_until(T0 + 7200), T0 + 7200)
    assert len(plant.figures("ticket.clinker", "co2_entry")) == 1


def test_a_jump_raises_an_alarm_in_the_event_log(tmp_path: Path) -> None:
    plant = Plant(make_config(tmp_path))
    for k in range(6):
        plant.minute(T0 + 60 * k + 1)
    assert "alarm" not in plant.events
    plant.minute(T0 + 361, kwh="500.00")
    booked = plant.minute(T0 + 421)
    (alarm,) = [e for e in booked.events if e.kind == "alarm"]
    assert alarm.point == "em.ep" and alarm.details["state"] == "raised"
    assert alarm.details["subject"] == "source:em.ep" and alarm.details["meters"] == "em"


def test_a_point_that_only_feeds_a_basis_is_watched_on_its_activity(tmp_path: Path) -> None:
    """The product scale has no emission, yet its output may be watched (a mill that stops
    producing): per minute and per period, in its own unit."""
    rules = [
        {"id": "scale-minute", "type": "threshold", "point": "scale.t", "of": "activity",
         "period": "minute", "below": "2"},
        {"id": "scale-hour", "type": "threshold", "point": "scale.t", "of": "activity",
         "period": "hour", "below": "20"},
    ]  # fmt: skip
    plant = Plant(make_config(tmp_path, alarms=rules))
    events = []
    for k in range(16):  # 10:50 … 11:05, one tonne a minute
        events += plant.minute(T0 + 60 * k + 1).events
    raised = {e.details["rule"]: e.details for e in events if e.kind == "alarm"}
    assert raised["scale-minute"]["subject"] == "activity:scale.t"
    assert Decimal(raised["scale-minute"]["value"]) == Decimal("1.00")
    assert Decimal(raised["scale-hour"]["value"]) == Decimal("10.00")  # 10:50 … 10:59


def test_after_a_restart_the_figures_carry_on_as_without_one(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path)
        straight = Plant(config)
        for k in range(16):
            straight.minute(T0 + 60 * k + 1)

        async with await Store.open(sqlite_url(tmp_path / "cut.db")) as store:
            before = Plant(config)
            for k in range(6):
                before.minute(T0 + 60 * k + 1)
            await store.write(derived=before.rows)
            # the terminal restarts: processing picks up its baselines, accounting its figures
            after = Plant(config)
            after.processor = before.processor
            after.registers = before.registers
            assert await after.accounting.resume(store, T0 + 400) == 3
            for k in range(6, 16):
                after.minute(T0 + 60 * k + 1)
        (hour,) = after.figures("em.ep", "co2_hour")
        (expected,) = straight.figures("em.ep", "co2_hour")
        assert (hour.value, hour.activity, hour.minutes) == (
            expected.value,
            expected.activity,
            expected.minutes,
        )
        assert (hour.first, hour.last) == (expected.first, expected.last)
        assert after.figures("em.ep", "co2_cum")[-1].value == (
            straight.figures("em.ep", "co2_cum")[-1].value
        )

    asyncio.run(main())


def test_minutes_stored_without_their_emission_are_caught_up(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path)
        async with await Store.open(sqlite_url(tmp_path / "cut.db")) as store:
            before = Plant(config)
            windows = []
            for k in range(6):
                output = before.processor.process_many(
                    [
                        RawValue(
                            "em.ep",
                            Decimal(1000 + 10 * k),
                            str(1000 + 10 * k),
                            T0 + 60 * k + 1,
                            "em",
                        )
                    ]
                )
                windows += window_rows(output, 0.0)
                if k < 3:  # booked and stored
                    b = before.accounting.book(output, T0)
                    await store.write(derived=b.behind)
            await store.write(derived=windows)  # the cut came between the two writes
            after = RunningAccounting.from_config(config)
            assert after is not None
            await after.resume(store, T0 + 400)
            rows = await store.derived("em.ep", "co2")
        # the window of 10:50 was booked before the cut; 10:51 … 10:53 are caught up
        assert [r.start for r in rows] == [T0 + 60 * k for k in range(4)]

    asyncio.run(main())

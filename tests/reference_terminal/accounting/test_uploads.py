"""The emission figures the terminal uploads (``accounting.uploads``): each code's minute goes up
once every metered point it adds up has booked it (the sum of their emissions), a point fallen
behind is not waited for long, hand entries go up at once, periods are the sums of their minutes,
the uplink files them under their codes as totals, and after a restart each code carries on
from the store."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.accounting.uploads import STALE_MINUTES, upload_point
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, RawValue
from reference_terminal.processing.pipeline import Processor
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink.codes import ItemCode
from reference_terminal.uplink.service import coding_for
from tests.reference_terminal.accounting.terminal_config import make_config

T0 = 1_767_581_400.0  # 2026-01-05 10:50 +08:00
GRID = upload_point("C301103001co201")
GAS = upload_point("C301101002co201")
UNIT = upload_point("C301100101co201")
BOUNDARY = upload_point("C301100000co201")
CLINKER = upload_point("C301102003co201")
UPLOADS = [
    {"code": "C301103001co201", "of": "source", "id": "grid"},
    {"code": "C301101002co201", "of": "source", "id": "boiler"},
    {"code": "C301100101co201", "of": "unit", "id": "utilities"},
    {"code": "C301100000co201", "of": "boundary"},
    {"code": "C301102003co201", "of": "source", "id": "clinker"},
]


def config(tmp_path: Path) -> TerminalConfig:
    return make_config(tmp_path, uploads=UPLOADS)


class Plant:
    """Processing and accounting fed reads: the grid meter 10 kWh a minute, the gas meter 5 Nm³
    (each read at :01 unless told otherwise)."""

    def __init__(self, config: TerminalConfig) -> None:
        self.processor = Processor.from_config(config)
        accounting = RunningAccounting.from_config(config)
        assert accounting is not None
        self.accounting = accounting
        self.registers = {"em.ep": Decimal("1000.00"), "gm.vol": Decimal("50.00")}
        self.rows: list[Derived] = []

    def read(self, point: str, t: float) -> None:
        step = Decimal("10.00") if point == "em.ep" else Decimal("5.00")
        self.registers[point] += step
        value = self.registers[point]
        raw = RawValue(point, value, str(value), t, point.split(".", maxsplit=1)[0])
        booked = self.accounting.book(self.processor.process_many([raw]), t)
        self.rows += booked.now + booked.behind

    def minute(self, t: float, points: tuple[str, ...] = ("em.ep", "gm.vol")) -> None:
        for point in points:
            self.read(point, t)

    def figures(self, point: str, kind: str = "minute") -> list[Derived]:
        return [r for r in self.rows if r.point == point and r.kind == kind]

    def emission(self, point: str, start: float) -> Decimal:
        (row,) = [r for r in self.figures(point, "co2") if r.start == start]
        assert row.value is not None
        return row.value


def test_a_codes_minute_is_the_sum_of_its_points_once_all_booked_it(tmp_path: Path) -> None:
    plant = Plant(config(tmp_path))
    for k in range(4):
        plant.minute(T0 + 60 * k + 1)
    grid, gas = plant.figures(GRID), plant.figures(GAS)
    assert [r.start for r in grid] == [T0, T0 + 60] == [r.start for r in gas]
    assert grid[0].value == plant.emission("em.ep", T0) == Decimal("0.0057030000")
    both = [plant.emission("em.ep", T0 + 60 * k) + plant.emission("gm.vol", T0 + 60 * k)
            for k in range(2)]  # fmt: skip
    assert [r.value for r in plant.figures(UNIT)] == both
    # the boundary is scope 1 + 2 (the clinker, entered by hand, had no entry)
    assert [r.value for r in plant.figures(BOUNDARY)] == both
    assert all(r.quality is Quality.GOOD for r in plant.figures(BOUNDARY))


def test_a_point_fallen_behind_is_not_waited_for_long(tmp_path: Path) -> None:
    plant = Plant(config(tmp_path))
    plant.minute(T0 + 1)
    plant.minute(T0 + 61)
    for k in range(2, 4 + STALE_MINUTES):  # the gas meter stops answering
        plant.minute(T0 + 60 * k + 1, ("em.ep",))
    stale = [r for r in plant.figures(UNIT) if r.quality is Quality.COMM_FAULT]
    assert stale, "the unit's minutes waited for the silent gas meter for ever"
    assert stale[0].value == plant.emission("em.ep", stale[0].start)
    assert [r.start for r in plant.figures(GRID)] == sorted({r.start for r in plant.figures(GRID)})


def test_periods_are_the_sums_of_their_minutes(tmp_path: Path) -> None:
    plant = Plant(config(tmp_path))
    for k in range(16):  # 10:50 … 11:05: the hour of 10:00 closes
        plant.minute(T0 + 60 * k + 1)
    (hour,) = plant.figures(UNIT, "hour")
    minutes = [r.value for r in plant.figures(UNIT) if r.start < T0 + 600]
    assert hour.start == T0 - 3000 and hour.end == T0 + 600
    assert hour.value == sum((m for m in minutes if m is not None), Decimal(0))


def test_a_hand_entry_goes_up_at_once_and_its_hour_closes(tmp_path: Path) -> None:
    plant = Plant(config(tmp_path))
    for t, value in ((T0 + 30, "1000.00"), (T0 + 90, "1012.00")):
        raw = RawValue("ticket.clinker", Decimal(value), value, t, "ticket")
        booked = plant.accounting.book(plant.processor.process_many([raw]), t)
        plant.rows += booked.now + booked.behind
    (entry,) = plant.figures(CLINKER)  # 12 t × 0.527 tCO2/t, in the minute of the entry
    assert (entry.start, entry.value) == (T0 + 60, Decimal("6.3240000000"))
    for k in range(10, 18):  # the metered points go on past 11:00
        plant.minute(T0 + 60 * k + 1)
    (hour,) = plant.figures(CLINKER, "hour")
    assert hour.value == entry.value


def test_the_uplink_files_them_as_totals_under_their_codes(tmp_path: Path) -> None:
    data = config(tmp_path).model_dump(mode="json")
    data["uplink"] = {
        "centres": [
            {"name": "p", "protocol": "hj212", "host": "127.0.0.1", "port": 1,
             "mn": "010000A8900016F000100000"}
        ],
        "codes": [{"point": "em.ep", "code": ItemCode.parse("C301103001e0101").model_dump()}],
    }  # fmt: skip
    terminal = TerminalConfig.model_validate(data)
    coding = coding_for(terminal, terminal.uplink.centres[0])
    assert coding.codes[GRID] == "C301103001co201" and GRID in coding.counters
    # the same code as an upload's
    data["uplink"]["codes"][0]["code"] = ItemCode.parse("C301103001co201").model_dump()
    clash = TerminalConfig.model_validate(data)
    with pytest.raises(ValueError, match="also a point's code"):
        coding_for(clash, clash.uplink.centres[0])


def test_after_a_restart_a_codes_minute_still_adds_every_point(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = config(tmp_path)
        async with await Store.open(sqlite_url(tmp_path / "cut.db")) as store:
            before = Plant(cfg)
            for k in range(3):
                before.minute(T0 + 60 * k + 1)
            before.read("em.ep", T0 + 181)  # closes the grid's 10:51; the gas's not yet
            await store.write(derived=before.rows)
            after = Plant(cfg)
            after.processor, after.registers = before.processor, before.registers
            await after.accounting.resume(store, T0 + 200)
            after.read("gm.vol", T0 + 181)
        (minute,) = [r for r in after.figures(UNIT) if r.start == T0 + 60]
        grid = before.emission("em.ep", T0 + 60)
        assert minute.value == grid + after.emission("gm.vol", T0 + 60)

    asyncio.run(main())

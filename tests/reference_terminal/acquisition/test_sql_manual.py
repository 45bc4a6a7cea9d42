"""SQL pull from a SQLite file, manual entry and the CSV import of the bench's files."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest

from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.manual import ManualEntryError, enter_value, import_csv
from reference_terminal.acquisition.sql import SqlDriver, sql_value
from reference_terminal.config import Point, Source, SqlDevice
from simulators.fleet import FleetRuntime
from simulators.meters.manual import COLUMNS, write_manual_entries

from .fleets import CLOCK, fleet, good, requests

# ---- SQL -------------------------------------------------------------------------------------


def make_db(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE plant (tag TEXT, reading)")  # no affinity: values as stored
        db.executemany(
            "INSERT INTO plant VALUES (?, ?)",
            [
                ("coal_t", "1234.560"),  # text keeps its digits
                ("flow", 0.1),  # a REAL
                ("trucks", 42),
                ("empty", None),
                ("word", "n/a"),
                ("twice", "1.0"),
                ("twice", "2.0"),
                ("same", "5"),
                ("same", "5"),
            ],
        )


def test_sql_pull_picks_rows_by_name(tmp_path: Path) -> None:
    make_db(tmp_path / "plant.db")
    device = SqlDevice(
        id="db",
        protocol="sql",
        url=f"sqlite:///{tmp_path / 'plant.db'}",
        query="SELECT tag, reading FROM plant",
    )
    names = ["coal_t", "flow", "trucks", "empty", "word", "twice", "same", "absent"]
    reqs = requests("db", [{"name": n} for n in names])
    driver = SqlDriver(device, CLOCK)
    raws = asyncio.run(driver.read(reqs))
    asyncio.run(driver.close())
    values = dict(zip(names, raws, strict=True))
    assert good(values["coal_t"]) == Decimal("1234.560")
    assert str(values["coal_t"].value) == "1234.560" and values["coal_t"].raw == "1234.560"
    assert str(good(values["flow"])) == "0.10"  # a double at the point's decimals (2)
    assert values["flow"].raw == "0.1"
    assert good(values["trucks"]) == 42
    assert values["empty"].error == "value: NULL"
    assert "not a number" in (values["word"].error or "")
    assert "disagree" in (values["twice"].error or "")
    assert good(values["same"]) == 5
    assert values["absent"].error == "no row named 'absent'"


def test_sql_failures_are_retried_then_raised(tmp_path: Path) -> None:
    device = SqlDevice(
        id="db",
        protocol="sql",
        url=f"sqlite:///{tmp_path}/x.db",
        query="SELECT name, value FROM missing_table",
        retries=1,
    )
    with pytest.raises(DriverError, match="2 attempt") as caught:
        asyncio.run(SqlDriver(device, CLOCK).read(requests("db", [{"name": "a"}])))
    assert caught.value.kind == "database" and "missing_table" in str(caught.value)

    slow = SqlDriver(device.model_copy(update={"timeout_s": 0.1, "retries": 0}), CLOCK)

    def stuck() -> list[tuple[object, object]]:
        time.sleep(0.5)  # a query that hangs on its thread
        return []

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(DriverError) as caught:
            await slow.read(requests("db", [{"name": "a"}]))
        assert caught.value.kind == "timeout"
        return time.monotonic() - started

    with mock.patch.object(slow, "_query", stuck):
        assert asyncio.run(main()) < 0.3


def test_sql_values() -> None:
    assert sql_value(Decimal("1.50")) == (Decimal("1.50"), "1.50")
    assert sql_value(2.675) == (Decimal("2.675"), "2.675")
    for bad in (None, True, float("inf"), "abc", b"1", Decimal("NaN")):
        with pytest.raises(ValueError):
            sql_value(bad)


# ---- manual entry --------------------------------------------------------------------------


def point(point_id: str, name: str, unit: str = "t", device: str = "manual") -> Point:
    return Point(id=point_id, group="g", unit=unit, source=Source(device=device, name=name))


def test_entered_values_keep_their_text() -> None:
    p = point("clinker", "clinker_received")
    entry = enter_value(p, " 1234.50 ", t=1.8e9, operator="li.wei", clock=CLOCK, note="ticket 7")
    assert str(entry.reading.value) == "1234.50" and entry.reading.raw == "1234.50"
    assert entry.reading.t == 1.8e9 and entry.entered_by == "li.wei" and entry.unit == "t"
    assert entry.reading.device == "manual"
    for text in ("1,234.5", "", "abc", "Infinity"):
        with pytest.raises(ManualEntryError, match="not a number"):
            enter_value(p, text, t=0, operator="x", clock=CLOCK)
    with pytest.raises(ManualEntryError, match="operator"):
        enter_value(p, "1", t=0, operator=" ", clock=CLOCK)
    with pytest.raises(ManualEntryError, match="unit"):
        enter_value(p, "1", t=0, operator="x", clock=CLOCK, unit="kg")


def test_csv_import_of_the_bench_files(tmp_path: Path) -> None:
    spec = fleet(
        [
            {
                "id": "manual-coal",
                "protocol": "manual",
                "period": "daily",
                "points": [
                    {"name": "water_in", "quantity": "water.volume_m3", "decimals": 2},
                    {"name": "gas_in", "quantity": "gas.volume_nm3", "decimals": 3},
                ],
            }
        ],
        hours_ago=24 * 3 + 1,
    )
    fl = FleetRuntime(spec)
    (path,) = write_manual_entries(fl, tmp_path, until=fl.now())
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 6
    points = [
        point("water", "water_in", "m³"),
        point("gas", "gas_in", "Nm³"),
        point("elsewhere", "water_in", "m³", device="other"),
    ]
    result = import_csv(path, points, clock=CLOCK, device="manual")
    assert not result.rejected
    assert len(result.values) == len(rows)
    for row, value in zip(rows, result.values, strict=True):
        reading = value.reading
        assert reading.point == {"water_in": "water", "gas_in": "gas"}[row["point"]]
        assert reading.raw == row["value"] and str(reading.value) == row["value"]
        assert value.period_end == reading.t
        assert value.entered_by == "carbench" and value.quantity == row["quantity"]
        assert value.note == row["source"] and value.unit == row["unit"]
        assert value.line is not None and value.line >= 2


def test_csv_rows_with_problems_are_refused_with_their_line() -> None:
    header = ",".join(COLUMNS)
    good_row = "2026-01-01T00:00:00+08:00,2026-01-02T00:00:00+08:00,coal,q,12.30,t,li,ticket"
    text = "\r\n".join(
        [
            "\ufeff" + header,
            good_row,
            good_row,  # the same point and period again
            "2026-01-01T00:00:00,2026-01-02T00:00:00+08:00,coal,q,1,t,li,s",
            "2026-01-02T00:00:00+08:00,2026-01-01T00:00:00+08:00,coal,q,1,t,li,s",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,coal,q,1;5,t,li,s",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,coal,q,1,kg,li,s",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,coal,q,1,t,,s",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,unknown,q,1,t,li,s",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,coal",
            "",
            "2026-01-02T00:00:00+08:00,2026-01-03T00:00:00+08:00,coal,q,7,t,li,s",
        ]
    )
    result = import_csv(io.StringIO(text, newline=""), [point("coal", "coal")], clock=CLOCK)
    assert [str(v.reading.value) for v in result.values] == ["12.30", "7"]
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "already given on line 2" in reasons[3]
    assert "no UTC offset" in reasons[4]
    assert "must end after" in reasons[5]
    assert "not a number" in reasons[6]
    assert "unit 'kg'" in reasons[7]
    assert "entered_by" in reasons[8]
    assert "no terminal point" in reasons[9]
    assert "columns" in reasons[10]
    with pytest.raises(ManualEntryError, match="missing column"):
        import_csv(io.StringIO("point,value\r\n"), [], clock=CLOCK)

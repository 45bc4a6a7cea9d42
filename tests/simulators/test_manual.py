"""Manual-entry CSV files, read back with the csv module and checked against the plant."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.schema import Fleet, ManualEntry, NamedPoint
from simulators.meters.manual import COLUMNS, write_manual_entries

PLANT = {
    "sources": [
        {"id": "grid", "kind": "electricity", "rated_kw": 500},
        {"id": "boiler_gas", "kind": "gas", "rated_nm3_h": 300},
    ]
}


def fleet(start: str, meters: list[dict[str, Any]]) -> FleetRuntime:
    spec = Fleet.model_validate(
        {"name": "manual", "start": start, "plant": PLANT, "meters": meters}
    )
    return FleetRuntime(spec)


MONTHLY = {
    "id": "monthly",
    "protocol": "manual",
    "period": "monthly",
    "points": [
        {
            "name": "power_in",
            "quantity": "grid.energy_import_kwh",
            "decimals": 1,
            "rounding": "floor",
        },
        {"name": "gas", "quantity": "boiler_gas.volume_nm3", "decimals": 2},
    ],
}
DAILY = {
    "id": "daily",
    "protocol": "manual",
    "period": "daily",
    "points": [{"name": "power_in", "quantity": "grid.energy_import_kwh", "decimals": 0}],
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.DictReader(source)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def point_of(runtime: FleetRuntime, meter: str, name: str) -> NamedPoint:
    spec = runtime.spec.meter(meter)
    assert isinstance(spec, ManualEntry)
    return next(p for p in spec.points if p.name == name)


def shown(runtime: FleetRuntime, point: NamedPoint, t: float) -> Decimal:
    """What the meter showed at t (its plant total at its resolution; nothing before the start)."""
    return quantize(runtime.plant.value(point.quantity, max(t, runtime.plant.start)), point)


def check_rows(runtime: FleetRuntime, meter: str, rows: list[dict[str, str]]) -> None:
    for row in rows:
        point = point_of(runtime, meter, row["point"])
        begin = datetime.fromisoformat(row["period_start"])
        end = datetime.fromisoformat(row["period_end"])
        assert begin.utcoffset() == end.utcoffset() == timedelta(hours=8)
        value = Decimal(row["value"])
        assert value.as_tuple().exponent == -point.decimals
        increment = shown(runtime, point, end.timestamp()) - shown(
            runtime, point, begin.timestamp()
        )
        assert value == increment
        assert value > 0
        assert row["quantity"] == point.quantity
        assert row["unit"] == runtime.plant.quantity(point.quantity).unit
        assert row["entered_by"] == "carbench"
        assert row["source"]


def test_monthly_and_daily_files_hold_each_period_s_increment(tmp_path: Path) -> None:
    runtime = fleet("2026-01-01T00:00:00+08:00", [MONTHLY, DAILY])
    until = runtime.at(timedelta(days=75, hours=5))  # 2026-03-17 05:00 local
    paths = write_manual_entries(runtime, tmp_path / "entries", until)
    assert paths == [tmp_path / "entries" / "monthly.csv", tmp_path / "entries" / "daily.csv"]

    monthly = read_csv(paths[0])
    assert [(r["period_start"], r["period_end"], r["point"]) for r in monthly] == [
        ("2026-01-01T00:00:00+08:00", "2026-02-01T00:00:00+08:00", "power_in"),
        ("2026-01-01T00:00:00+08:00", "2026-02-01T00:00:00+08:00", "gas"),
        ("2026-02-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00", "power_in"),
        ("2026-02-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00", "gas"),
    ]
    check_rows(runtime, "monthly", monthly)
    assert {r["unit"] for r in monthly} == {"kWh", "Nm³"}  # UTF-8 units survive

    daily = read_csv(paths[1])
    assert len(daily) == 75  # 17 March has not ended
    assert daily[0]["period_start"] == "2026-01-01T00:00:00+08:00"
    assert daily[-1]["period_end"] == "2026-03-17T00:00:00+08:00"
    for previous, row in itertools.pairwise(daily):
        assert row["period_start"] == previous["period_end"]
    check_rows(runtime, "daily", daily)
    # The days add up to the reading at the end: nothing lost or counted twice.
    point = point_of(runtime, "daily", "power_in")
    end = datetime.fromisoformat(daily[-1]["period_end"]).timestamp()
    assert sum(Decimal(r["value"]) for r in daily) == shown(runtime, point, end)


def test_values_are_what_the_meter_read_and_are_recorded(tmp_path: Path) -> None:
    runtime = fleet("2026-01-01T00:00:00+08:00", [DAILY])
    until = runtime.at(timedelta(days=3))
    write_manual_entries(runtime, tmp_path, until)
    seen = sorted((o.t, o.value) for o in runtime.observations if o.meter == "daily")
    assert [t for t, _ in seen] == [runtime.at(timedelta(days=d)) for d in range(4)]
    rows = read_csv(tmp_path / "daily.csv")
    assert [Decimal(r["value"]) for r in rows] == [
        b - a for (_, a), (_, b) in itertools.pairwise(seen)
    ]


def test_a_start_within_a_period_counts_from_the_start(tmp_path: Path) -> None:
    runtime = fleet("2026-01-15T10:30:00+08:00", [MONTHLY])
    until = datetime(2026, 3, 1, tzinfo=UTC).timestamp()  # 08:00 local on 1 March
    rows = read_csv(write_manual_entries(runtime, tmp_path, until)[0])
    assert [r["period_start"] for r in rows[::2]] == [
        "2026-01-01T00:00:00+08:00",  # the calendar month, though counting began on the 15th
        "2026-02-01T00:00:00+08:00",
    ]
    check_rows(runtime, "monthly", rows)


def test_no_period_over_yet_writes_only_the_header(tmp_path: Path) -> None:
    runtime = fleet("2026-01-01T00:00:00+08:00", [MONTHLY])
    (path,) = write_manual_entries(runtime, tmp_path, runtime.at(timedelta(days=30)))
    assert read_csv(path) == []
    assert path.read_bytes() == (",".join(COLUMNS) + "\r\n").encode()


def test_a_rate_cannot_be_entered_by_hand(tmp_path: Path) -> None:
    rate = {**DAILY, "points": [{"name": "kw", "quantity": "grid.power_kw"}]}
    runtime = fleet("2026-01-01T00:00:00+08:00", [rate])
    with pytest.raises(ValueError, match=r"manual entry daily, point kw: grid.power_kw is a rate"):
        write_manual_entries(runtime, tmp_path, runtime.at(timedelta(days=2)))

"""Manual entry: data with no online source, as the CSV files a person would import.

For each :class:`~simulators.fleet.schema.ManualEntry` meter, ``write_manual_entries`` writes
``<directory>/<meter id>.csv``: UTF-8 (no BOM), comma-separated, ``\\r\\n`` line ends (Python's
``csv`` default, what spreadsheets write), one header line, then one row per period and point::

    period_start,period_end,point,quantity,value,unit,entered_by,source
    2026-01-01T00:00:00+08:00,2026-02-01T00:00:00+08:00,clinker_received,clinker_in.mass_t,
        1234.56,t,carbench,manual-clinker readings: end minus start        (one line in the file)

* Periods are plant-local calendar days or months (``period``), in order, from the one holding
  the fleet's start to the last one that has ended by ``until`` — a figure is entered once its
  period is over, so a period still running has no row. Times are ISO 8601 with the plant's
  UTC offset; ``period_end`` is the next period's start (half-open ``[start, end)``).
* ``value`` is the point's increment over the period at the point's resolution: the meter's
  reading (``MeterRuntime.read``, so value faults and resolution apply) at the period's end
  minus that at its start, or at the fleet's start for the first period, since nothing was
  counted before it. A reading on a shared boundary is taken once and serves both periods.
* Only totals (energy, volume, mass …) can be entered this way: a point on a rate or state
  quantity is an error naming the meter and point.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import ManualEntry, NamedPoint

COLUMNS: Final = (
    "period_start",
    "period_end",
    "point",
    "quantity",
    "value",
    "unit",
    "entered_by",
    "source",
)
ENTERED_BY: Final = "carbench"


def write_manual_entries(fleet: FleetRuntime, directory: Path, until: float) -> list[Path]:
    """Write one CSV per manual-entry meter into ``directory``; the files written, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for meter in fleet.meters.values():
        if isinstance(meter.spec, ManualEntry):
            path = directory / f"{meter.id}.csv"
            rows = list(_rows(fleet, meter, meter.spec, until))
            with path.open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                writer.writerows(rows)
            written.append(path)
    return written


def periods(
    fleet: FleetRuntime, period: Literal["daily", "monthly"], until: float
) -> Iterator[tuple[datetime, datetime]]:
    """Plant-local ``[start, end)`` days or months from the fleet's start, ended by ``until``."""
    zone = timezone(timedelta(hours=fleet.spec.plant.utc_offset_hours))
    first = datetime.fromtimestamp(fleet.plant.start, zone).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if period == "monthly":
        first = first.replace(day=1)
    begin = first
    while True:
        end = _next(begin, period)
        if end.timestamp() > until:
            return
        yield begin, end
        begin = end


def _next(begin: datetime, period: Literal["daily", "monthly"]) -> datetime:
    if period == "daily":
        # Fixed offset, no DST: a plant-local day is always 24 h.
        return begin + timedelta(days=1)
    if begin.month == 12:
        return begin.replace(year=begin.year + 1, month=1)
    return begin.replace(month=begin.month + 1)


def _rows(
    fleet: FleetRuntime, meter: MeterRuntime, spec: ManualEntry, until: float
) -> Iterator[list[str]]:
    for point in spec.points:
        kind = fleet.plant.quantity(point.quantity).kind
        if kind != "total":
            raise ValueError(
                f"manual entry {meter.id}, point {point.name}: {point.quantity} is a {kind}, "
                "but manual entry records a period's increment, so it needs a total "
                "(energy, volume, mass …)"
            )
    readings: dict[tuple[str, float], Decimal] = {}

    def reading(point: NamedPoint, t: float) -> Decimal:
        t = max(t, fleet.plant.start)  # the first period began before anything was counted
        if (point.name, t) not in readings:
            readings[point.name, t] = meter.read(point, t)
        return readings[point.name, t]

    note = f"{meter.id} readings: end minus start"
    for begin, end in periods(fleet, spec.period, until):
        for point in spec.points:
            increment = reading(point, end.timestamp()) - reading(point, begin.timestamp())
            yield [
                begin.isoformat(),
                end.isoformat(),
                point.name,
                point.quantity,
                format(increment, "f"),
                fleet.plant.quantity(point.quantity).unit,
                ENTERED_BY,
                note,
            ]

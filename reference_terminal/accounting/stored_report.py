"""The GB/T 32150 inventory report of a running terminal (ISC-2 §7.2.7, CSMT §11.11), made by
:mod:`.report.build` from what the terminal stored: its configuration gives the plant file
(enterprise, boundary, sources, bases, the meter ledger of its devices) and the booked minutes
(:mod:`.records`) the per-minute activity of every point, so the report adds up to the same
figures as the terminal's per-minute emissions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from reference_terminal.accounting.bindings import Bindings
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.records import (
    BASIS,
    BASIS_ENTRY,
    ENTRY,
    MINUTE,
    select_figures,
)
from reference_terminal.accounting.report.build import InventoryReport, build_report
from reference_terminal.accounting.report.plant import Plant, plant_from_data
from reference_terminal.accounting.statistics import EXACT, MinuteSeries, Span
from reference_terminal.config import TerminalConfig
from reference_terminal.storage.store import Store


def ledger_due(calibrated: dt.date | None, interval_days: int | None) -> dt.date | None:
    """The next calibration due date (CSMT §11.10) from the last one and the interval."""
    if calibrated is None or interval_days is None:
        return None
    return calibrated + dt.timedelta(days=interval_days)


def plant_of(config: TerminalConfig, bindings: Bindings, utc_offset_s: int) -> Plant:
    """The plant file of the report, from the terminal's configuration."""
    acc = bindings.config
    points = {p.id: p for p in config.points}
    sources = []
    for _unit, source in acc.sources():
        first = bindings.points[source.points[0]]
        entry: dict[str, Any] = {
            "name": source.id,
            "label": source.name,
            "kind": source.kind,
            "unit": first.activity_unit,
            "meters": list(source.points),
        }
        for key in ("fuel", "factor", "ncv", "carbon_content", "oxidation", "purity"):
            value = getattr(source, key)
            if value is not None:
                entry[key] = value
        if source.data_year is not None:
            entry["data_year"] = source.data_year
        sources.append(entry)
    meters = []
    for point_id in bindings.tracked:
        point = points.get(point_id)
        device = config.device(point.source.device) if point is not None else None
        due = None
        calibrated = None
        if device is not None:
            calibrated = device.calibrated_on
            due = ledger_due(calibrated, device.calibration_interval_days)
        unit = (
            bindings.points[point_id].activity_unit
            if point_id in bindings.points
            else (bindings.basis_points[point_id][0][1])
        )
        meters.append(
            {
                "id": point_id,
                "name": point.name if point is not None else point_id,
                "model": device.model if device is not None else "",
                "location": device.location if device is not None else "",
                "accuracy": device.accuracy if device is not None else "",
                "level": device.level if device is not None else None,
                "serial": device.id if device is not None else "",
                "unit": unit,
                "resolution": str(Decimal(1).scaleb(-(point.decimals if point else 2))),
                "frequency": "1 min",
                "calibrated": calibrated,
                "calibration_due": due,
            }
        )
    hours, minutes = divmod(abs(utc_offset_s) // 60, 60)
    data = {
        "enterprise": acc.enterprise.model_dump(),
        "vintage": bindings.vintage,
        "timezone": f"{'-' if utc_offset_s < 0 else '+'}{hours:02d}:{minutes:02d}",
        "boundary": {
            "description": acc.description,
            "units": [
                {"id": u.id, "name": u.name or u.id, "sources": [s.id for s in u.sources]}
                for u in acc.units
            ],
        },
        "sources": sources,
        "bases": {
            basis.value: {"meters": list(b.points), "name": b.name, "unit": b.unit}
            for basis, b in bindings.bases.items()
        },
        "meters": meters,
    }
    return plant_from_data(data, "the terminal's accounting configuration")


def minute_series(
    conn: Connection,
    bindings: Bindings,
    decimals: dict[str, int],
    start: float,
    end: float,
) -> dict[str, MinuteSeries]:
    """Each tracked point's booked activity per minute in [start, end)."""
    kinds: Sequence[str] = (MINUTE, ENTRY, BASIS, BASIS_ENTRY)
    figures = select_figures(conn, bindings.tracked, kinds, start, end)
    per_point: dict[str, dict[int, Decimal]] = {p: {} for p in bindings.tracked}
    for f in figures:
        if f.activity is None or (f.kind in (BASIS, BASIS_ENTRY) and f.point in bindings.points):
            continue
        minute = int(f.t // 60)
        got = per_point[f.point]
        got[minute] = EXACT.add(got.get(minute, Decimal(0)), f.activity)
    out = {}
    for point, values in per_point.items():
        unit = (
            bindings.points[point].activity_unit
            if point in bindings.points
            else bindings.basis_points[point][0][1]
        )
        resolution = Decimal(1).scaleb(-decimals.get(point, 2))
        try:
            out[point] = MinuteSeries.from_values(point, unit, values.items(), resolution)
        except AccountingError:  # finer than the meter's digits (a computed point)
            out[point] = MinuteSeries.from_values(point, unit, values.items())
    return out


async def inventory_report(
    store: Store,
    config: TerminalConfig,
    bindings: Bindings,
    span: Span,
    *,
    utc_offset_s: int,
    issued: dt.date | None = None,
) -> InventoryReport:
    """The inventory report of ``span`` (a month, a quarter or a year), with the same period a
    year before and the period before as the bases of YoY and MoM when the store has them."""
    plant = plant_of(config, bindings, utc_offset_s)
    earliest = span.start_minute
    for base in (span.year_before(), span.previous()):
        if base is not None:
            earliest = min(earliest, base.start_minute)
    decimals = {p.id: p.decimals for p in config.points}
    data = await store.run_in_reader(
        lambda c: minute_series(c, bindings, decimals, earliest * 60.0, span.end_minute * 60.0)
    )
    return build_report(plant, data, bindings.library, span, issued=issued)

"""``/meters``: the meter ledger (CSMT §11.1) with calibration due dates and reminders
(§11.10), each meter traced to the points it yields and the emission sources they feed (§11.8),
and the activity-data source list of CSMT §12.2 (name and model, location, frequency, accuracy,
calibration interval, the activity it measures). Filters: ``level``, ``status``, ``device``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from reference_terminal.accounting.stored_report import ledger_due
from reference_terminal.api.context import ApiContext
from reference_terminal.api.security import CanRead

#: A calibration due within this many days is a reminder (CSMT §11.10).
DUE_SOON_DAYS = 30
COLUMNS = (
    "id",
    "protocol",
    "model",
    "location",
    "accuracy",
    "level",
    "frequency",
    "calibration_interval_days",
    "calibrated_on",
    "calibration_due",
    "status",
    "days_to_due",
    "points",
    "sources",
)


def ledger(ctx: ApiContext) -> list[dict[str, Any]]:
    config = ctx.config
    today = dt.datetime.fromtimestamp(ctx.now(), dt.timezone(dt.timedelta(seconds=ctx.offset_s)))
    periods = {g.id: g.period_s for g in config.groups}
    feeds: dict[str, list[str]] = {}
    accounting = ctx.terminal.accounting
    if accounting is not None:
        for point, b in accounting.bindings.points.items():
            feeds.setdefault(point, []).append(b.source.id)
        for point, bases in accounting.bindings.basis_points.items():
            feeds.setdefault(point, []).extend(f"basis:{basis.value}" for basis, _ in bases)
    out = []
    for device in config.devices:
        points = [
            p
            for p in config.points
            if device.id in (p.source.device, getattr(p.backup, "device", None))
        ]
        due = ledger_due(device.calibrated_on, device.calibration_interval_days)
        days = None if due is None else (due - today.date()).days
        status = (
            "unknown"
            if days is None
            else "overdue"
            if days < 0
            else "due soon"
            if days <= DUE_SOON_DAYS
            else "ok"
        )
        seconds = sorted({periods[p.group] for p in points if p.group in periods})
        frequency = (
            "manual"
            if device.protocol == "manual"
            else ", ".join(f"{s:g} s" for s in seconds) or "—"
        )
        out.append(
            {
                "id": device.id,
                "protocol": device.protocol,
                "model": device.model,
                "location": device.location,
                "accuracy": device.accuracy,
                "level": device.level,
                "frequency": frequency,
                "calibration_interval_days": device.calibration_interval_days,
                "calibrated_on": None
                if device.calibrated_on is None
                else device.calibrated_on.isoformat(),
                "calibration_due": None if due is None else due.isoformat(),
                "status": status,
                "days_to_due": days,
                "points": [
                    {
                        "point": p.id,
                        "activity": p.activity,
                        "unit": p.unit,
                        "sources": feeds.get(p.id, []),
                    }
                    for p in points
                ],
                "sources": sorted({s for p in points for s in feeds.get(p.id, [])}),
            }
        )
    return out


def ledger_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["accounting"])

    def filtered(level: int | None, status: str | None, device: str | None) -> list[dict[str, Any]]:
        return [
            m
            for m in ledger(ctx)
            if (level is None or m["level"] == level)
            and (status is None or m["status"] == status)
            and (device is None or m["id"] == device)
        ]

    @router.get(
        "/meters",
        summary="The meter ledger: every device with model, location, accuracy, level, "
        "frequency, calibration due date and status, its points and the sources they feed "
        "(CSMT §11.1, §11.8, §11.10, §12.2)",
    )
    async def get_meters(
        _: CanRead,
        level: Annotated[int | None, Query(ge=1, le=3)] = None,
        status: Annotated[str | None, Query(pattern="^(ok|due soon|overdue|unknown)$")] = None,
        device: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[dict[str, Any]]:
        return filtered(level, status, device)

    @router.get("/meters/export", summary="The meter ledger as CSV", response_class=Response)
    async def export_meters(
        _: CanRead,
        level: Annotated[int | None, Query(ge=1, le=3)] = None,
        status: Annotated[str | None, Query(pattern="^(ok|due soon|overdue|unknown)$")] = None,
    ) -> Response:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for m in filtered(level, status, None):
            row = dict(m)
            row["points"] = " ".join(p["point"] for p in m["points"])
            row["sources"] = " ".join(m["sources"])
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="meter-ledger.csv"'},
        )

    return router

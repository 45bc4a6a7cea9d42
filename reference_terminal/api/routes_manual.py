"""Manual data (ISC-2 §7.2.2, CSMT §11.6): one value typed in, or a CSV file of them.

Values go through the terminal's own path (``accept``: processing marks them MANUAL, HJ 212
flag S, and stores them), so a manual value is converted at once like any other. Only points of
a *manual* device take them: a value typed into a polled point would be stored as measured.

Who entered what is kept as a ``manual_entry`` event per value (operator, exact text, unit,
note, the period for a CSV row, the API user): the reading itself has no room for it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from reference_terminal.acquisition.manual import (
    ManualEntryError,
    ManualValue,
    Rejected,
    enter_value,
    import_csv,
)
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanOperate, Principal
from reference_terminal.api.wire import ReadingOut, iso, iso_or_none, parse_time
from reference_terminal.config import Point
from reference_terminal.model import Event

#: A manual-entry CSV holds a month of period figures; anything this size is a mistake.
MAX_CSV_BYTES = 8 * 1024 * 1024


class ManualIn(BaseModel):
    """One value entered by hand."""

    model_config = ConfigDict(extra="forbid")

    point: str
    #: The value exactly as read off the meter or the document: text, so its digits are kept
    #: ("1234.50" stays 1234.50); a JSON number is refused.
    value: str = Field(examples=["1234.50"])
    #: When the value holds: ISO 8601 with offset, or POSIX seconds; absent: now.
    time: str | float | None = Field(None, examples=["2026-02-01T00:00:00+08:00"])
    operator: str = Field(min_length=1, description="who entered it")
    unit: str = ""  # when given, must be the point's unit
    note: str = ""  # where the figure comes from: a ticket, a delivery note …


class ManualOut(BaseModel):
    point: str
    value: str
    t: float
    time: str
    operator: str
    #: The reading as stored (quality ``manual``; ``out_of_range`` if it failed the range check).
    reading: ReadingOut | None


class AcceptedRow(BaseModel):
    line: int | None
    point: str
    value: str
    t: float
    time: str
    period_start: float | None
    period_start_time: str | None


class RejectedRow(BaseModel):
    line: int
    reason: str
    row: list[str]


class ImportOut(BaseModel):
    accepted: list[AcceptedRow]
    rejected: list[RejectedRow]


def _event(value: ManualValue, principal: Principal, now: float) -> Event:
    raw = value.reading
    details = {
        "operator": value.entered_by,
        "value": raw.raw,
        "unit": value.unit,
        "user": principal.user,
    }
    if value.note:
        details["note"] = value.note
    if value.quantity:
        details["quantity"] = value.quantity
    if value.line is not None:
        details["line"] = str(value.line)
    return Event(
        now,
        "manual_entry",
        raw.point,
        raw.device,
        start=value.period_start,
        end=value.period_end,
        details=details,
    )


def manual_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["manual data"])

    def manual_points() -> list[Point]:
        return [p for p in ctx.config.points if ctx.device_of(p).protocol == "manual"]

    async def take(values: Sequence[ManualValue], principal: Principal) -> None:
        ctx.store()  # refuse before anything is processed if the terminal cannot store it yet
        # Processing wants each point's values in time order; a file need not be sorted.
        ordered = sorted(values, key=lambda v: v.reading.t)
        await ctx.terminal.accept([v.reading for v in ordered])
        now = ctx.now()
        await ctx.terminal.record([_event(v, principal, now) for v in ordered])

    @router.post(
        "/manual",
        summary="Enter one value by hand",
        responses={
            404: {"description": "unknown point"},
            422: {"description": "not a number, wrong unit, no operator, not a manual point"},
        },
    )
    async def enter(entry: ManualIn, principal: CanOperate) -> ManualOut:
        point = ctx.configured_point(entry.point)
        device = ctx.device_of(point)
        if device.protocol != "manual":
            raise ApiError(
                422,
                "not_manual",
                f"point {point.id!r} is read from device {device.id} ({device.protocol}): "
                "only points of a manual device take values entered by hand",
            )
        t = ctx.now() if entry.time is None else parse_time(entry.time, "time")
        try:
            value = enter_value(
                point,
                entry.value,
                t=t,
                operator=entry.operator,
                clock=ctx.terminal.clock,
                unit=entry.unit,
                note=entry.note,
            )
        except ManualEntryError as exc:
            raise ApiError(422, "invalid_manual_value", str(exc)) from None
        await take([value], principal)
        stored = await ctx.store().readings(point.id, t, math.nextafter(t, math.inf))
        return ManualOut(
            point=point.id,
            value=value.reading.raw,
            t=t,
            time=iso(t, ctx.offset_s),
            operator=value.entered_by,
            reading=ReadingOut.of(stored[-1], ctx.offset_s) if stored else None,
        )

    @router.post(
        "/manual/csv",
        summary="Import a manual-entry CSV (the body, text/csv, UTF-8)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
        responses={
            413: {"description": f"over {MAX_CSV_BYTES} bytes"},
            422: {"description": "not UTF-8, or a header without the columns"},
        },
    )
    async def import_file(
        request: Request,
        principal: CanOperate,
        device: Annotated[
            str | None, Query(description="only points of this manual device")
        ] = None,
    ) -> ImportOut:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CSV_BYTES:
                raise ApiError(413, "too_large", f"a manual-entry CSV over {MAX_CSV_BYTES} bytes")
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApiError(
                422, "invalid_csv", f"not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
        if device is not None and device not in {p.source.device for p in manual_points()}:
            raise ApiError(404, "unknown_device", f"no manual device {device!r} with points")
        try:
            result = import_csv(
                io.StringIO(text, newline=""),
                manual_points(),
                clock=ctx.terminal.clock,
                device=device,
            )
        except ManualEntryError as exc:
            raise ApiError(422, "invalid_csv", str(exc)) from None
        if result.values:
            await take(result.values, principal)
        return ImportOut(
            accepted=[_accepted(v, ctx.offset_s) for v in result.values],
            rejected=[_rejected(r, ctx) for r in result.rejected],
        )

    return router


def _accepted(v: ManualValue, offset_s: int) -> AcceptedRow:
    raw = v.reading
    return AcceptedRow(
        line=v.line,
        point=raw.point,
        value=raw.raw,
        t=raw.t,
        time=iso(raw.t, offset_s),
        period_start=v.period_start,
        period_start_time=iso_or_none(v.period_start, offset_s),
    )


def _rejected(r: Rejected, ctx: ApiContext) -> RejectedRow:
    reason = r.reason
    # import_csv only saw the manual points: a row naming a polled point's value is told why it
    # cannot be taken, not merely that the name is unknown.
    if "no terminal point has" in reason:
        for cell in r.row:
            taken = [p for p in ctx.config.points if p.source.name == cell.strip()]
            if taken and reason.startswith(f"point {cell.strip()!r}:"):
                p = taken[0]
                reason = (
                    f"point {cell.strip()!r}: terminal point {p.id} is read from device "
                    f"{p.source.device} ({ctx.device_of(p).protocol}), not entered by hand"
                )
                break
    return RejectedRow(line=r.line, reason=reason, row=list(r.row))

"""``/monitor`` (remote monitoring, ISC-2 §8.2, CSMT §10.6.2) and ``/logs`` (the operations
logs, CSMT §11.12).

Both are reads (``Action.READ``: the administrator and the security operator; the auditor
reads the audit trail instead, which records every call to these routes too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from reference_terminal.api.context import ApiContext
from reference_terminal.api.security import CanRead
from reference_terminal.api.wire import iso, iso_or_none, optional_range
from reference_terminal.operations.journal import Category, message_of, read_logs
from reference_terminal.operations.monitoring import Monitor, monitor
from reference_terminal.operations.system import SystemSampler

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000


class LogOut(BaseModel):
    t: float
    time: str
    category: Category
    kind: str
    point: str | None
    device: str | None
    start: float | None
    start_time: str | None
    end: float | None
    end_time: str | None
    message: str
    details: dict[str, str]


class LogPage(BaseModel):
    items: list[LogOut]
    count: int
    truncated: bool


def monitor_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["operations"])
    sampler = SystemSampler()

    @router.get(
        "/monitor",
        summary="Remote monitoring: CPU, memory, disks, OS, application state, acquisition per "
        "point, upload per centre, error log (ISC-2 §8.2, CSMT §10.6.2)",
    )
    async def get_monitor(_: CanRead) -> Monitor:
        return await monitor(ctx.terminal, sampler)

    @router.get(
        "/logs",
        summary="Logs of acquisition, upload, method download, configuration and applications "
        "(CSMT §11.12), oldest first",
    )
    async def get_logs(
        _: CanRead,
        category: Category | None = None,
        point: Annotated[str | None, Query(max_length=64)] = None,
        start: Annotated[
            str | None, Query(description="inclusive; ISO 8601 with offset or POSIX seconds")
        ] = None,
        end: Annotated[
            str | None, Query(description="exclusive; ISO 8601 with offset or POSIX seconds")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> LogPage:
        lo, hi = optional_range(start, end)
        found = await read_logs(
            ctx.store(), category=category, start=lo, end=hi, point=point, limit=limit + 1
        )
        items = [
            LogOut(
                t=e.event.t,
                time=iso(e.event.t, ctx.offset_s),
                category=e.category,
                kind=e.event.kind,
                point=e.event.point,
                device=e.event.device,
                start=e.event.start,
                start_time=iso_or_none(e.event.start, ctx.offset_s),
                end=e.event.end,
                end_time=iso_or_none(e.event.end, ctx.offset_s),
                message=message_of(e.event),
                details=dict(e.event.details),
            )
            for e in found[:limit]
        ]
        return LogPage(items=items, count=len(items), truncated=len(found) > limit)

    return router

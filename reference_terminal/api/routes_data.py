"""Points, their readings and derived values, events, and on-command reads.

Queries take ``start`` (inclusive) and ``end`` (exclusive) as ISO 8601 with an offset or POSIX
seconds, both optional, and give at most ``limit`` items oldest first with ``truncated`` set
when more match (for bulk data, ``/export`` streams a file instead).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from reference_terminal.acquisition.drivers import is_polled
from reference_terminal.api.context import ApiContext
from reference_terminal.api.derived_pages import derived_page_json
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanOperate, CanRead
from reference_terminal.api.wire import (
    DerivedOut,
    EventOut,
    Page,
    RawOut,
    ReadingOut,
    optional_range,
    time_range,
)
from reference_terminal.config import HttpsDevice, Point, virtual_outputs
from reference_terminal.processing.virtual import inputs_of, plan
from reference_terminal.storage.store import select_readings

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most items answered")]
Start = Annotated[str | None, Query(description="inclusive; ISO 8601 with offset or POSIX seconds")]
End = Annotated[str | None, Query(description="exclusive; ISO 8601 with offset or POSIX seconds")]


class PointOut(BaseModel):
    id: str
    configured: bool  # false: readings are stored, but the point is no longer configured
    name: str = ""
    unit: str = ""
    kind: str | None = None
    group: str | None = None
    period_s: float | None = None
    device: str | None = None
    protocol: str | None = None
    decimals: int | None = None
    min: str | None = None
    max: str | None = None
    full_scale: str | None = None
    #: How values arrive: ``polled`` (on schedule; on command too), ``pushed`` (MQTT, HTTPS
    #: intake) or ``manual`` (entered by hand or imported). None for a virtual point.
    acquisition: Literal["polled", "pushed", "manual"] | None = None
    #: A virtual point's rule (CSMT §8.3.2): ``add``, ``subtract``, ``multiply``, ``divide``,
    #: ``allocate`` or ``integrate``, and the points it is made from; its values are derived
    #: values (windows), it has no readings.
    virtual: str | None = None
    inputs: list[str] = []
    # The activity-data source list (ISC-2 §7.3.1): what the point measures, and its
    # instrument as the meter ledger has it.
    activity: str = ""
    model: str = ""
    location: str = ""
    accuracy: str = ""
    calibration_interval_days: int | None = None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _json(page: Page[ReadingOut] | Page[DerivedOut]) -> bytes | None:
    """A page as JSON, None when it is empty (the point may be unknown: the caller checks).

    Pages of readings and derived values are made into JSON by the store's reader thread, not
    the event loop: a year of hours is 8 760 items, a few hundred milliseconds of work that
    would hold every other request of the API up."""
    return page.model_dump_json().encode() if page.items else None


def data_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["data"])

    def describe(point: Point) -> PointOut:
        device = ctx.device_of(point)
        periods = {g.id: g.period_s for g in ctx.config.groups}
        if device.protocol == "manual":
            acquisition: Literal["polled", "pushed", "manual"] = "manual"
        elif is_polled(device):
            acquisition = "polled"
        else:
            acquisition = "pushed"
        return PointOut(
            id=point.id,
            configured=True,
            name=point.name,
            unit=point.unit,
            kind=point.kind,
            group=point.group,
            period_s=periods.get(point.group),
            device=device.id,
            protocol=device.protocol,
            decimals=point.decimals,
            min=_text(point.min),
            max=_text(point.max),
            full_scale=_text(point.full_scale),
            acquisition=acquisition,
            activity=point.activity,
            model=device.model,
            location=device.location,
            accuracy=device.accuracy,
            calibration_interval_days=device.calibration_interval_days,
        )

    async def known(point_id: str) -> bool:
        """Configured, or with stored readings (a point removed from the configuration)."""
        return ctx.point(point_id) is not None or point_id in await ctx.store().points()

    async def must_know(point_id: str) -> None:
        if not await known(point_id):
            raise ApiError(
                404, "unknown_point", f"no point {point_id!r}: not configured, nothing stored"
            )

    @router.get("/points", summary="Configured points, and stored ones no longer configured")
    async def list_points(_: CanRead) -> list[PointOut]:
        out = [describe(p) for p in ctx.config.points]
        virtual = plan(ctx.config.points, ctx.config.virtual_points)
        out += [
            PointOut(
                id=made,
                configured=True,
                name=rule.name,
                unit=rule.unit or virtual.units.get(made, ""),
                kind=virtual.kinds.get(made),
                decimals=rule.decimals,
                virtual=rule.op,
                inputs=inputs_of(rule),
            )
            for rule in ctx.config.virtual_points
            for made in virtual_outputs(rule)
        ]
        configured = {p.id for p in ctx.config.points}
        stored = await ctx.store().points()
        out += [PointOut(id=p, configured=False) for p in stored if p not in configured]
        return out

    @router.get(
        "/points/{point_id}/latest",
        summary="A point's latest stored reading",
        responses={404: {"description": "unknown point, or no reading yet"}},
    )
    async def latest(point_id: str, _: CanRead) -> ReadingOut:
        found = (await ctx.store().latest([point_id])).get(point_id)
        if found is None:
            await must_know(point_id)
            raise ApiError(404, "no_reading", f"point {point_id!r} has no reading yet")
        return ReadingOut.of(found, ctx.offset_s)

    @router.get(
        "/points/{point_id}/readings",
        summary="A point's stored readings",
        response_model=Page[ReadingOut],
    )
    async def readings(
        point_id: str,
        _: CanRead,
        start: Start = None,
        end: End = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Response:
        lo, hi = time_range(start, end)
        offset = ctx.offset_s

        def page(conn: Connection) -> bytes | None:
            found = select_readings(conn, point_id, lo, hi, limit + 1)
            return _json(Page[ReadingOut].of([ReadingOut.of(r, offset) for r in found], limit))

        body = await ctx.store().run_in_reader(page)
        if body is None:
            await must_know(point_id)
            body = Page[ReadingOut].of([], limit).model_dump_json().encode()
        return Response(body, media_type="application/json")

    @router.get(
        "/points/{point_id}/derived",
        summary="A point's derived values (increments, settlements) by period start",
        response_model=Page[DerivedOut],
    )
    async def derived(
        point_id: str,
        _: CanRead,
        kind: Annotated[
            str | None, Query(description="increment, hour, day, day_max, month, year …")
        ] = None,
        start: Start = None,
        end: End = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Response:
        lo, hi = optional_range(start, end)
        offset = ctx.offset_s

        def page(conn: Connection) -> bytes | None:
            return derived_page_json(conn, point_id, kind, lo, hi, limit, offset)

        body = await ctx.store().run_in_reader(page)
        if body is None:
            await must_know(point_id)
            body = Page[DerivedOut].of([], limit).model_dump_json().encode()
        return Response(body, media_type="application/json")

    @router.get("/events", summary="Events: gaps, switch-overs, rejected values, manual entries …")
    async def events(
        _: CanRead,
        kind: str | None = None,
        point: str | None = None,
        start: Start = None,
        end: End = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[EventOut]:
        lo, hi = optional_range(start, end)
        found = await ctx.store().events(kind=kind, point=point, start=lo, end=hi, limit=limit + 1)
        return Page[EventOut].of([EventOut.of(e, ctx.offset_s) for e in found], limit)

    @router.post(
        "/points/{point_id}/read",
        summary="Read a point now, outside its schedule (on-command acquisition, ISC-2 §9.1)",
        responses={409: {"description": "the point is not polled (pushed or entered by hand)"}},
    )
    async def read_now(point_id: str, _: CanOperate) -> list[RawOut]:
        point = ctx.configured_point(point_id)
        device = ctx.device_of(point)
        if not is_polled(device):
            how = (
                "its values are entered by hand (POST /manual)"
                if device.protocol == "manual"
                else "its device pushes values"
                + (" to /intake" if isinstance(device, HttpsDevice) else "")
            )
            raise ApiError(
                409,
                "not_polled",
                f"point {point_id!r} cannot be read on command: device {device.id} "
                f"({device.protocol}) is not polled, {how}",
            )
        try:
            raws = await ctx.scheduler().read_now([point_id])
        except KeyError as exc:  # configured, but the running scheduler does not poll it
            raise ApiError(409, "not_polled", f"point {point_id!r}: {exc.args[0]}") from None
        return [RawOut.of(r, ctx.offset_s) for r in raws]

    return router

"""``/uplink``: the data centres the terminal uploads to (ISC-2 §7.2.4) and the operator's manual
uploads (CSMT §7.5): "send now", resending a time range, and the backfill of corrected data
(ISC-2 §7.2.4(5)), audited with its reason.

A range covers the periods *starting* in ``[start, end]``, both ends included (as HJ 212's
BeginTime/EndTime are). Frames carry new QNs and their periods' original DataTime; the centre's
client sends them beside its live frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanOperate, CanRead
from reference_terminal.api.wire import iso, iso_or_none, parse_time
from reference_terminal.config import WEEK_S
from reference_terminal.uplink.frames import Stream
from reference_terminal.uplink.outbox import OutboxFull
from reference_terminal.uplink.service import CentreStatus, UnknownCentre

MANUAL = "CSMT §7.5 manual upload"


class LinkOut(BaseModel):
    connected: bool
    connects: int
    connect_failures: int
    last_error: str
    sent: int  # uploads started (a frame sent again on a new connection counts again)
    resent: int
    acknowledged: int
    in_flight: int
    backlog_left: bool
    history_requests: int
    protocol_errors: int
    restarts: int  # the centre's producer or client run again after an unexpected failure
    last_ack_at: float | None
    last_ack_time: str | None
    events: list[str]  # recent link events, newest last


class CentreOut(BaseModel):
    name: str
    protocol: str
    outbox: int  # frames not yet acknowledged
    outbox_full: bool
    link: LinkOut

    @classmethod
    def of(cls, s: CentreStatus, offset_s: int) -> CentreOut:
        link = s.link
        return cls(
            name=s.name,
            protocol=s.protocol,
            outbox=s.outbox,
            outbox_full=s.outbox_full,
            link=LinkOut(**asdict(link), last_ack_time=iso_or_none(link.last_ack_at, offset_s)),
        )


class UplinkOut(BaseModel):
    centres: list[CentreOut]


class RangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: Stream
    #: ISO 8601 with offset, or POSIX seconds: the first period start included.
    start: str | float = Field(examples=["2027-01-15T00:00:00+08:00"])
    #: The last period start included.
    end: str | float = Field(examples=["2027-01-15T23:59:00+08:00"])

    def range(self) -> tuple[float, float]:
        lo, hi = parse_time(self.start, "start"), parse_time(self.end, "end")
        if hi < lo:
            raise ApiError(
                422,
                "invalid_time",
                f"end ({self.end}) is before start ({self.start}): {MANUAL} covers the "
                "periods starting in [start, end]",
            )
        if self.stream is Stream.REALTIME and hi - lo > WEEK_S:
            raise ApiError(
                422,
                "range_too_long",
                f"{MANUAL} of real-time data covers at most a week (what a centre's outbox "
                "holds; it is rebuilt one interval at a time): split the range",
            )
        return lo, hi


class BackfillIn(RangeIn):
    #: Default: every enabled centre.
    centres: list[str] | None = Field(None, min_length=1)
    #: Why the data was corrected: kept in the audit event (ISC-2 §7.2.4(5)).
    reason: str = Field(examples=["flow meter recalibrated, ticket 4711"])

    @field_validator("reason")
    @classmethod
    def _audited(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("say why: a backfill of corrected data is audited (ISC-2 §7.2.4(5))")
        return reason.strip()


class UploadOut(BaseModel):
    stream: Stream
    start: float
    start_time: str
    end: float
    end_time: str
    #: Frames queued per centre.
    frames: dict[str, int]


@contextmanager
def _answers() -> Iterator[None]:
    """The service's refusals as API errors."""
    try:
        yield
    except UnknownCentre as exc:
        raise ApiError(404, "unknown_centre", f"{MANUAL}: {exc.args[0]}") from None
    except OutboxFull as exc:
        raise ApiError(409, "outbox_full", f"{MANUAL}: {exc}") from None


def uplink_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/uplink", tags=["uplink"])

    def out(body: RangeIn, lo: float, hi: float, frames: dict[str, int]) -> UploadOut:
        return UploadOut(
            stream=body.stream,
            start=lo,
            start_time=iso(lo, ctx.offset_s),
            end=hi,
            end_time=iso(hi, ctx.offset_s),
            frames=frames,
        )

    @router.get("", summary="Every centre: outbox, link state (ISC-2 §7.2.4, §8.2)")
    async def status(_: CanRead) -> UplinkOut:
        centres = await ctx.uplink().status()
        return UplinkOut(centres=[CentreOut.of(s, ctx.offset_s) for s in centres.values()])

    @router.post(
        "/{centre}/send-now",
        summary='Build what is due for a centre now (CSMT §7.5 "send now")',
        responses={404: {"description": "unknown centre"}},
    )
    async def send_now(centre: str, _: CanOperate) -> CentreOut:
        uplink = ctx.uplink()
        with _answers():
            await uplink.send_now(centre)
        return CentreOut.of((await uplink.status())[centre], ctx.offset_s)

    @router.post(
        "/{centre}/resend",
        summary="Send a stream's data for a time range to a centre again (CSMT §7.5)",
        responses={
            404: {"description": "unknown centre"},
            409: {"description": "the centre's outbox has no room"},
            422: {"description": "unknown stream, bad time, end before start"},
        },
    )
    async def resend(centre: str, body: RangeIn, _: CanOperate) -> UploadOut:
        uplink = ctx.uplink()
        lo, hi = body.range()
        with _answers():
            frames = await uplink.resend(centre, body.stream, lo, hi)
        return out(body, lo, hi, {centre: frames})

    @router.post(
        "/backfill",
        summary="Upload corrected data to centres, audited (CSMT §7.5, ISC-2 §7.2.4(5))",
        responses={
            404: {"description": "unknown centre"},
            409: {"description": "a centre's outbox has no room (`queued`: what was)"},
            422: {"description": "unknown stream, bad time, end before start, no reason"},
        },
    )
    async def backfill(body: BackfillIn, _: CanOperate) -> UploadOut:
        uplink = ctx.uplink()
        lo, hi = body.range()
        names = list(dict.fromkeys(uplink.centres if body.centres is None else body.centres))
        for name in names:  # every name known before anything is queued
            if name not in uplink.centres:
                raise ApiError(
                    404,
                    "unknown_centre",
                    f"{MANUAL}: no enabled centre {name!r} "
                    f"(configured: {', '.join(uplink.centres) or 'none'})",
                )
        # One centre at a time: when an outbox is full, the answer says what was queued.
        queued: dict[str, int] = {}
        for name in names:
            try:
                queued |= await uplink.backfill_corrected(
                    body.stream, lo, hi, centres=[name], reason=body.reason
                )
            except OutboxFull as exc:
                raise ApiError(409, "outbox_full", f"{MANUAL}: {exc}", queued=queued) from None
        return out(body, lo, hi, queued)

    return router

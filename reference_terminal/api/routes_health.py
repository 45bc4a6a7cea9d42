"""``/health``: the terminal at a glance (ISC-2 §8.1 local status, §8.2 remote monitoring).

200 while the terminal runs, 503 otherwise (starting, stopped), with the same body: a monitor
can alert on the status and a person read why.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reference_terminal.acquisition.https import HttpsIntake
from reference_terminal.api.context import ApiContext
from reference_terminal.api.security import CanRead
from reference_terminal.api.wire import iso
from reference_terminal.config import HttpsDevice
from reference_terminal.storage.store import StoreClosed


class Gap(BaseModel):
    point: str
    since: float
    since_time: str
    seconds: float


class SchedulerHealth(BaseModel):
    ticks: int
    reads: int
    failures: int
    overruns: int
    per_device_failures: dict[str, int]


class StoreHealth(BaseModel):
    backend: str
    #: What makes a commit durable, e.g. ``sqlite journal_mode=wal synchronous=2``.
    durability: str | None
    transactions: int
    rows: int
    writes: int


class IntakeHealth(BaseModel):
    messages: int
    delivered: int
    malformed: int
    collector_errors: int
    last_problem: str


class Health(BaseModel):
    state: str
    name: str
    t: float
    time: str
    uptime_s: float
    scheduler: SchedulerHealth | None
    open_gaps: list[Gap]
    store: StoreHealth | None
    intake: dict[str, IntakeHealth]


def health_routes(ctx: ApiContext, intake: HttpsIntake) -> APIRouter:
    router = APIRouter(tags=["status"])

    async def store_health() -> tuple[StoreHealth | None, bool]:
        """The store's figures, and whether it is closed."""
        store = ctx.terminal.store
        if store is None:
            return None, False
        stats = store.stats
        try:
            durability: str | None = await store.durability()
        except StoreClosed:
            durability, closed = None, True
        else:
            closed = False
        health = StoreHealth(
            backend=store.backend,
            durability=durability,
            transactions=stats.transactions,
            rows=stats.rows,
            writes=stats.writes,
        )
        return health, closed

    def intake_health() -> dict[str, IntakeHealth]:
        out = {}
        for device in ctx.config.devices:
            if isinstance(device, HttpsDevice) and device.mode == "push":
                try:
                    s = intake.stats(device.id)
                except KeyError:
                    continue  # configured, but the intake was not told about it
                out[device.id] = IntakeHealth(
                    messages=s.messages,
                    delivered=s.delivered,
                    malformed=s.malformed,
                    collector_errors=s.collector_errors,
                    last_problem=s.last_problem,
                )
        return out

    @router.get(
        "/health",
        summary="State, uptime, acquisition counters, open gaps, store durability",
        responses={
            200: {"model": Health, "description": "running"},
            503: {"model": Health, "description": "not running (starting, stopped)"},
        },
    )
    async def health(_: CanRead) -> JSONResponse:
        terminal = ctx.terminal
        now = ctx.now()
        store, _closed = await store_health()
        state = terminal.state
        scheduler = terminal.scheduler
        counters = None
        gaps: list[Gap] = []
        if scheduler is not None:
            c = scheduler.counters
            counters = SchedulerHealth(
                ticks=c.ticks,
                reads=c.reads,
                failures=c.failures,
                overruns=c.overruns,
                per_device_failures=dict(c.per_device_failures),
            )
            gaps = [
                Gap(point=p, since=s, since_time=iso(s, ctx.offset_s), seconds=now - s)
                for p, s in sorted(scheduler.watchdog.open_gaps().items())
            ]
        body = Health(
            state=state,
            name=ctx.config.name,
            t=now,
            time=iso(now, ctx.offset_s),
            uptime_s=max(0.0, now - terminal.started_at),
            scheduler=counters,
            open_gaps=gaps,
            store=store,
            intake=intake_health(),
        )
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if state == "running" else 503
        )

    return router

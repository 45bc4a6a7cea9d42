"""The remote monitoring document (ISC-2 §8.2, CSMT §10.6.2 「远程监测终端的 CPU、内存、磁盘使用
情况，应用运行状态，操作系统类型及版本，错误日志等」), served as ``GET /monitor``:

- ``system`` — CPU, memory, disks (the store's and the applications'), OS type and version
  (:mod:`.system`);
- ``application`` — the terminal's state, version, uptime, the tasks of its process, the
  acquisition counters, the store, the installed applications;
- ``acquisition`` — per point: its last reading (time, value, quality, age), whether it is
  overdue or silent now, its gaps and problems over the last day, its device's read failures;
- ``upload`` — per centre: link up or down, backlog (frames not yet acknowledged), the last
  acknowledgement, frames sent and resent, the last error;
- ``error_log`` — recent problems, newest first: the terminal's own warnings and errors
  (:mod:`.errorlog`) and the problem events of the store (gaps, alarms, rejected values …).

Reading it never writes anything and takes no store lock beyond the reads.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, func, select

from reference_terminal.acquisition.drivers import is_polled
from reference_terminal.config import HttpsDevice
from reference_terminal.model import Event
from reference_terminal.operations.journal import PROBLEM_KINDS, message_of
from reference_terminal.operations.system import SystemInfo, SystemSampler
from reference_terminal.storage.schema import events, row_event
from reference_terminal.storage.store import Store, StoreClosed

if TYPE_CHECKING:
    from reference_terminal.app import Terminal

#: The window of the per-point problem counts and of the error log.
WINDOW_S = 86400.0
ERRORS_SHOWN = 50
#: A polled point is overdue when its last reading is older than this many periods.
OVERDUE_PERIODS = 2.5
PUSHED = ("mqtt",)


class AppBrief(BaseModel):
    name: str
    version: str
    state: str


class Application(BaseModel):
    name: str
    version: str
    state: str
    started_at: float
    uptime_s: float
    #: Tasks of the terminal's process (named ones; ``count`` counts all).
    tasks: list[str]
    task_count: int
    reads: int | None
    read_failures: int | None
    overruns: int | None
    store_backend: str | None
    store_durability: str | None
    apps: list[AppBrief]


class PointHealth(BaseModel):
    point: str
    device: str
    protocol: str
    group: str
    period_s: float | None
    acquisition: Literal["polled", "pushed", "manual"]
    last_t: float | None
    last_value: str | None
    last_quality: str | None
    age_s: float | None
    #: Polled and its last reading older than 2.5 periods (or none at all).
    overdue: bool
    #: Silent now (the gap watchdog's open gap): since when.
    silent_since: float | None
    gaps_24h: int
    problems_24h: int
    device_failures: int


class CentreHealth(BaseModel):
    name: str
    protocol: str
    enabled: bool
    connected: bool
    #: Frames not yet acknowledged (the backlog).
    backlog: int | None
    backlog_full: bool
    sent: int
    acknowledged: int
    resent: int
    last_ack_at: float | None
    last_ack_age_s: float | None
    connect_failures: int
    last_error: str


class Acquisition(BaseModel):
    points: list[PointHealth]


class Upload(BaseModel):
    centres: list[CentreHealth]


class ErrorEntry(BaseModel):
    t: float
    source: Literal["log", "event"]
    level: str
    kind: str
    point: str | None = None
    device: str | None = None
    message: str


class ErrorLogOut(BaseModel):
    #: Entries shown (newest first) out of ``total`` in the window.
    items: list[ErrorEntry]
    total: int
    since: float


class Monitor(BaseModel):
    t: float
    system: SystemInfo
    application: Application
    acquisition: Acquisition
    upload: Upload
    error_log: ErrorLogOut


def terminal_version() -> str:
    try:
        return metadata.version("carbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _store_dir(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent
    return None


def disks(terminal: Terminal) -> dict[str, Path]:
    out: dict[str, Path] = {}
    store = _store_dir(terminal.config.storage.url)
    if store is not None:
        out["store"] = store
    if terminal.config.apps.enabled:
        out["apps"] = Path(terminal.config.apps.dir)
    if terminal.config_path is not None:
        out["configuration"] = terminal.config_path.parent
    if not out:
        out["working directory"] = Path.cwd()
    return out


def _counts(store_conn: Connection, since: float) -> tuple[Counter[str], Counter[str]]:
    c = events.c
    query = (
        select(c.point, c.kind, func.count())
        .where(c.t >= since, c.point.is_not(None), c.kind.in_(sorted(PROBLEM_KINDS)))
        .group_by(c.point, c.kind)
    )
    gaps: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for point, kind, n in store_conn.execute(query):
        problems[point] += n
        if kind == "gap":
            gaps[point] += n
    return gaps, problems


def _recent_problems(conn: Connection, since: float, limit: int) -> tuple[list[Event], int]:
    c = events.c
    where = (c.t >= since, c.kind.in_(sorted(PROBLEM_KINDS)))
    total = conn.execute(select(func.count()).select_from(events).where(*where)).scalar_one()
    query = select(events).where(*where).order_by(c.t.desc(), c.id.desc()).limit(limit)
    return [row_event(r) for r in conn.execute(query).mappings()], int(total)


async def _from_store(
    store: Store | None, since: float
) -> tuple[dict[str, object], Counter[str], Counter[str], list[Event], int]:
    if store is None:
        return {}, Counter(), Counter(), [], 0
    try:
        latest = await store.latest()
        gaps, problems = await store.run_in_reader(lambda c: _counts(c, since))
        recent, total = await store.run_in_reader(
            lambda c: _recent_problems(c, since, ERRORS_SHOWN)
        )
    except StoreClosed:
        return {}, Counter(), Counter(), [], 0
    return dict(latest), gaps, problems, recent, total


async def monitor(terminal: Terminal, sampler: SystemSampler) -> Monitor:
    now = terminal.clock.time()
    since = now - WINDOW_S
    config = terminal.config
    store = terminal.store
    latest, gaps, problems, recent, total = await _from_store(store, since)
    scheduler = terminal.scheduler
    open_gaps = scheduler.watchdog.open_gaps() if scheduler is not None else {}
    failures = dict(scheduler.counters.per_device_failures) if scheduler is not None else {}
    periods = {g.id: g.period_s for g in config.groups}

    points = []
    for p in config.points:
        device = config.device(p.source.device)
        acquisition: Literal["polled", "pushed", "manual"]
        if device.protocol == "manual":
            acquisition = "manual"
        elif device.protocol in PUSHED or (
            isinstance(device, HttpsDevice) and device.mode == "push"
        ):
            acquisition = "pushed"
        else:
            acquisition = "polled" if is_polled(device) else "pushed"
        reading = latest.get(p.id)
        last_t = getattr(reading, "t", None)
        value = getattr(reading, "value", None)
        quality = getattr(reading, "quality", None)
        age = None if last_t is None else max(0.0, now - float(last_t))
        period = periods.get(p.group)
        overdue = acquisition == "polled" and (
            (age is None and now - terminal.started_at > OVERDUE_PERIODS * (period or 0))
            or (age is not None and period is not None and age > OVERDUE_PERIODS * period)
        )
        points.append(
            PointHealth(
                point=p.id,
                device=device.id,
                protocol=device.protocol,
                group=p.group,
                period_s=period,
                acquisition=acquisition,
                last_t=last_t,
                last_value=None if value is None else str(value),
                last_quality=None if quality is None else str(getattr(quality, "value", quality)),
                age_s=age,
                overdue=overdue,
                silent_since=open_gaps.get(p.id),
                gaps_24h=gaps.get(p.id, 0),
                problems_24h=problems.get(p.id, 0),
                device_failures=failures.get(device.id, 0),
            )
        )

    centres = []
    statuses = {}
    if terminal.uplink is not None:
        try:
            statuses = await terminal.uplink.status()
        except StoreClosed:
            statuses = {}
    for centre in config.uplink.centres:
        s = statuses.get(centre.name)
        link = None if s is None else s.link
        last_ack = None if link is None else link.last_ack_at
        centres.append(
            CentreHealth(
                name=centre.name,
                protocol=centre.protocol,
                enabled=centre.enabled,
                connected=bool(link and link.connected),
                backlog=None if s is None else s.outbox,
                backlog_full=bool(s and s.outbox_full),
                sent=0 if link is None else link.sent,
                acknowledged=0 if link is None else link.acknowledged,
                resent=0 if link is None else link.resent,
                last_ack_at=last_ack,
                last_ack_age_s=None if last_ack is None else max(0.0, now - last_ack),
                connect_failures=0 if link is None else link.connect_failures,
                last_error="" if link is None else link.last_error,
            )
        )

    errors = [
        ErrorEntry(
            t=e.t,
            source="event",
            level="error" if e.kind in ("alarm", "app_failed", "uplink_link_down") else "warning",
            kind=e.kind,
            point=e.point,
            device=e.device,
            message=message_of(e),
        )
        for e in recent
    ]
    logged = terminal.errors.records(since)
    errors += [
        ErrorEntry(t=r.t, source="log", level=r.level.lower(), kind=r.logger, message=r.message)
        for r in logged
    ]
    errors.sort(key=lambda e: e.t, reverse=True)

    durability = None
    if store is not None:
        try:
            durability = await store.durability()
        except StoreClosed:
            durability = None
    tasks = [t.get_name() for t in asyncio.all_tasks()]
    counters = None if scheduler is None else scheduler.counters
    return Monitor(
        t=now,
        system=sampler.sample(disks(terminal)),  # /proc reads: microseconds
        application=Application(
            name=config.name,
            version=terminal_version(),
            state=terminal.state,
            started_at=terminal.started_at,
            uptime_s=max(0.0, now - terminal.started_at),
            tasks=sorted(n for n in tasks if not n.startswith("Task-")),
            task_count=len(tasks),
            reads=None if counters is None else counters.reads,
            read_failures=None if counters is None else counters.failures,
            overruns=None if counters is None else counters.overruns,
            store_backend=None if store is None else store.backend,
            store_durability=durability,
            apps=[
                AppBrief(name=a.name, version=a.version, state=a.state)
                for a in terminal.apps.statuses()
            ],
        ),
        acquisition=Acquisition(points=points),
        upload=Upload(centres=centres),
        error_log=ErrorLogOut(items=errors[:ERRORS_SHOWN], total=total + len(logged), since=since),
    )

"""The operations logs (CSMT §11.12 「应具有数据采集、数据上传、核算方法下载以及配置等日志」).

Every log entry is an event in the store (the ``events`` table: durable, kept for the retention
period, exported with the data), so the logs survive a restart and a power cut like the data
they describe. A category is a view over event kinds:

================  ==================================================================
category          events
================  ==================================================================
``acquisition``   gaps, switch-overs, silent-point notifications, interpolations,
                  rejected and suspect values, rollovers, manual entries …
``upload``        the link to each centre going up and down, what was uploaded and
                  acknowledged (:func:`watch_uplink`), platform commands answered, manual
                  resends and backfills, outbox alarms
``method``        accounting methods and factor libraries downloaded (``method_*``)
``configuration`` every configuration applied: by whom, how, which fields changed
``apps``          applications installed, upgraded, rolled back, uninstalled, refused
================  ==================================================================

The upload log is written by :func:`watch_uplink`, a task of the running terminal sampling
its centres' links: a line when a link comes up or goes down, and every ``every_s`` a line per
centre that uploaded something (frames sent, acknowledged, resent, outbox left).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, or_, select

from common.clock import Clock, sleep_to_grid
from reference_terminal.model import Event
from reference_terminal.storage.schema import events, row_event
from reference_terminal.storage.store import Store
from reference_terminal.uplink.service import Uplink

log = logging.getLogger(__name__)

Category = Literal["acquisition", "upload", "method", "configuration", "apps"]
CATEGORIES: tuple[Category, ...] = ("acquisition", "upload", "method", "configuration", "apps")

#: Event kinds of acquisition and processing (watchdog, pipeline, manual entry).
ACQUISITION_KINDS = frozenset(
    {
        "gap",
        "gap_not_filled",
        "switch_to_backup",
        "switch_to_primary",
        "notification",
        "interpolated",
        "integration_gap",
        "out_of_range",
        "out_of_order",
        "counter_backwards",
        "counter_source_changed",
        "meter_replaced",
        "rollover",
        "suspect_increment",
        "suspect_level_kept",
        "late_value",
        "late_increment",
        "manual_entry",
    }
)
#: Kinds that are problems, not just facts: the error log of remote monitoring shows them.
PROBLEM_KINDS = frozenset(
    {
        "gap",
        "gap_not_filled",
        "switch_to_backup",
        "notification",
        "integration_gap",
        "out_of_range",
        "out_of_order",
        "counter_backwards",
        "suspect_increment",
        "alarm",
        "uplink_link_down",
        "app_failed",
        "app_rolled_back",
        "app_refused",
    }
)
CONFIGURATION_KIND = "configuration"
#: Kinds whose details name what they are about (``alarm``, ``audit``): upload when it is the
#: uplink's.
_TAGGED = ("alarm", "alarm_cleared", "audit")


def category_of(event: Event) -> Category | None:
    kind = event.kind
    if kind in ACQUISITION_KINDS:
        return "acquisition"
    if kind.startswith("uplink"):
        return "upload"
    if kind in _TAGGED:
        tag = event.details.get("alarm") or event.details.get("action") or ""
        return "upload" if tag.startswith("uplink") else None
    if kind == CONFIGURATION_KIND:
        return "configuration"
    if kind.startswith("method"):
        return "method"
    if kind.startswith("app_"):
        return "apps"
    return None


def _selector(category: Category | None) -> Any:
    c = events.c
    match category:
        case "acquisition":
            return c.kind.in_(sorted(ACQUISITION_KINDS))
        case "upload":
            return or_(c.kind.like("uplink%"), c.kind.in_(_TAGGED))
        case "method":
            return c.kind.like("method%")
        case "configuration":
            return c.kind == CONFIGURATION_KIND
        case "apps":
            return c.kind.like("app\\_%", escape="\\")
    return or_(
        c.kind.in_(sorted(ACQUISITION_KINDS | {CONFIGURATION_KIND, *_TAGGED})),
        c.kind.like("uplink%"),
        c.kind.like("method%"),
        c.kind.like("app\\_%", escape="\\"),
    )


@dataclass(frozen=True, slots=True)
class LogEntry:
    category: Category
    event: Event


async def read_logs(
    store: Store,
    *,
    category: Category | None = None,
    start: float | None = None,
    end: float | None = None,
    point: str | None = None,
    limit: int = 1000,
) -> list[LogEntry]:
    """Log entries with ``start <= t < end``, oldest first; at most ``limit`` (+1 to tell a
    truncated page: ask for one more than you show)."""

    def query(conn: Connection) -> list[Event]:
        c = events.c
        statement = select(events).where(_selector(category)).order_by(c.t, c.id)
        if start is not None:
            statement = statement.where(c.t >= start)
        if end is not None:
            statement = statement.where(c.t < end)
        if point is not None:
            statement = statement.where(c.point == point)
        # tagged kinds (alarm, audit) that are not the uplink's are dropped after the query:
        # ask for enough rows to fill the page anyway
        statement = statement.limit(limit * 4 + 16 if category in (None, "upload") else limit)
        return [row_event(row) for row in conn.execute(statement).mappings()]

    found = await store.run_in_reader(query)
    out = []
    for event in found:
        kind = category_of(event)
        if kind is not None and (category is None or kind == category):
            out.append(LogEntry(kind, event))
            if len(out) >= limit:
                break
    return out


def message_of(event: Event) -> str:
    """One line a person reads."""
    d = event.details
    subject = " ".join(x for x in (event.point, event.device) if x)
    text = d.get("message") or d.get("changed") or d.get("reason") or d.get("alarm") or ""
    if not text:
        text = ", ".join(f"{k}={v}" for k, v in sorted(d.items()))[:300]
    return f"{event.kind}{' ' + subject if subject else ''}: {text}" if text else event.kind


# ---- the upload log ------------------------------------------------------------------------------

Recorder = Callable[[Sequence[Event]], Awaitable[None]]
#: How often the links are looked at (a link going down is logged within this).
LOOK_EVERY_S = 60.0
#: How often a centre's upload figures are logged (when it uploaded something).
SUMMARY_EVERY_S = 300.0


@dataclass
class _Seen:
    connected: bool = False
    sent: int = 0
    acknowledged: int = 0
    resent: int = 0
    logged_at: float = 0.0


async def watch_uplink(
    uplink: Uplink,
    record: Recorder,
    clock: Clock,
    *,
    look_every_s: float = LOOK_EVERY_S,
    summary_every_s: float = SUMMARY_EVERY_S,
) -> None:
    """Write the upload log of ``uplink``'s centres until cancelled."""
    seen: dict[str, _Seen] = {}
    while True:
        await sleep_to_grid(clock, look_every_s)
        now = clock.time()
        out: list[Event] = []
        for name, link in uplink.links().items():
            was = seen.setdefault(name, _Seen(logged_at=now))
            if link.connected != was.connected:
                kind = "uplink_link_up" if link.connected else "uplink_link_down"
                details = {"centre": name, "protocol": uplink.protocol(name)}
                if not link.connected and link.last_error:
                    details["message"] = link.last_error[:300]
                out.append(Event(now, kind, details=details))
                was.connected = link.connected
            due = now - was.logged_at >= summary_every_s
            moved = (link.sent, link.acknowledged, link.resent) != (
                was.sent,
                was.acknowledged,
                was.resent,
            )
            if due and moved:
                try:
                    outbox = await uplink.outbox_size(name)
                except Exception as exc:  # the store closing under a shutdown: the next look tells
                    log.debug("upload log: no outbox size now: %s", exc)
                    continue
                out.append(
                    Event(
                        now,
                        "uplink_uploaded",
                        start=was.logged_at,
                        end=now,
                        details={
                            "centre": name,
                            "sent": str(link.sent - was.sent),
                            "acknowledged": str(link.acknowledged - was.acknowledged),
                            "resent": str(link.resent - was.resent),
                            "outbox": str(outbox),
                            "last_ack": "" if link.last_ack_at is None else repr(link.last_ack_at),
                        },
                    )
                )
                was.sent, was.acknowledged, was.resent = link.sent, link.acknowledged, link.resent
                was.logged_at = now
            elif due:
                was.logged_at = now
        if out:
            try:
                await record(out)
            except Exception as exc:
                log.warning("upload log not written: %s", exc)


# ---- the configuration log -----------------------------------------------------------------------


def configuration_event(
    t: float, changes: Iterable[str], *, user: str, how: str, restart: Sequence[str] = ()
) -> Event:
    """The configuration log's entry for a configuration applied."""
    listed = list(changes)
    text = "; ".join(listed) or "no field changed"
    details = {
        "user": user,
        "how": how,
        "fields": str(len(listed)),
        "changed": text[:2000],
    }
    if restart:
        details["restart_required"] = ", ".join(restart)
    return Event(t, CONFIGURATION_KIND, details=details)

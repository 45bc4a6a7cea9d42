"""The alarm state of the accounting carried across a restart (ISC-2 §7.2.6; SSEA §5.4.6).

An alarm monitor keeps two things in memory: which alarms are raised and not yet cleared, and,
for an anomaly rule, the recent figures the next one is judged against. Both are rebuilt at
start from what the store already holds — nothing more is written for them:

- *raised alarms*: every raise and clear is an ``alarm`` event row; the latest one of each
  (point, rule, subject) says whether it is still raised. Without this a restart forgets them,
  so an alarm still in force is raised a second time and one that ended is never cleared.
- *anomaly history*: a rule on a point's emission or activity judged that point's stored
  figures — each minute's (``co2``, ``co2_entry``) or each closed period's (``co2_<period>``) —
  so the last ``window`` of them, up to the point's last booked minute, are its history again.
  Without it the rule is blind for ``min_history`` figures after every restart.

Enterprise measures (total, scopes, intensities of a period) are rolled up from every point and
only their raised alarms are restored; their anomaly history fills again as periods close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from reference_terminal.accounting.alarms import MINUTE, AlarmMonitor, AnomalyRule
from reference_terminal.accounting.records import ENTRY, Figure, period_kind
from reference_terminal.accounting.records import MINUTE as MINUTE_KIND
from reference_terminal.accounting.statistics import Period
from reference_terminal.storage.store import Store

#: How far back (in the rule's own periods, times its window) figures are looked for: minutes
#: without data (a stopped plant, a broken link) leave gaps between the ones judged.
LOOKBACK: Final = 4
_SECONDS: Final = {
    Period.HOUR: 3600,
    Period.DAY: 86_400,
    Period.WEEK: 7 * 86_400,
    Period.MONTH: 31 * 86_400,
    Period.QUARTER: 92 * 86_400,
    Period.YEAR: 366 * 86_400,
}


@dataclass(frozen=True, slots=True)
class RestoredAlarms:
    """What was carried on: (point or None, rule, subject) still raised; figures per rule."""

    active: tuple[tuple[str | None, str, str], ...]
    history: Mapping[str, int]


async def restore_alarms(
    store: Store,
    monitors: Mapping[str | None, AlarmMonitor],
    last_booked: Mapping[str, float],
) -> RestoredAlarms:
    """Put ``monitors`` (point → its monitor; None → the enterprise's) back as they were when
    the figures up to ``last_booked`` (point → POSIX time of its last booked minute) were
    judged (see the module text)."""
    active = await _still_raised(store, monitors)
    for owner, rule_id, subject in active:
        monitors[owner].restore(rule_id, active=[subject])
    counts: dict[str, int] = {}
    for point, monitor in monitors.items():
        if point is None or point not in last_booked:
            continue
        for rule in monitor.rules:
            if isinstance(rule, AnomalyRule) and rule.measure.endswith(f":{point}"):
                figures = await _judged(store, point, rule, last_booked[point])
                monitor.restore(rule.id, history=figures)
                counts[rule.id] = len(figures)
    return RestoredAlarms(tuple(active), counts)


async def _still_raised(
    store: Store, monitors: Mapping[str | None, AlarmMonitor]
) -> list[tuple[str | None, str, str]]:
    rules = {p: {r.id for r in m.rules} for p, m in monitors.items()}
    latest: dict[tuple[str | None, str, str], str] = {}
    for event in await store.events(kind="alarm"):  # oldest first: the last one wins
        rule, subject = event.details.get("rule"), event.details.get("subject")
        if rule is None or subject is None or rule not in rules.get(event.point, ()):
            continue  # a rule since removed from the configuration, or moved to another point
        latest[(event.point, rule, subject)] = event.details.get("state", "")
    return sorted(
        (k for k, state in latest.items() if state == "raised"), key=lambda k: (k[0] or "", k[1:])
    )


async def _judged(store: Store, point: str, rule: AnomalyRule, until: float) -> list[Decimal]:
    """The last ``window`` figures of ``point`` that ``rule`` judged, oldest first."""
    kinds: tuple[str, ...]
    if rule.period == MINUTE:
        kinds, seconds = (MINUTE_KIND, ENTRY), 60
    else:
        kinds, seconds = (period_kind(rule.period),), _SECONDS[rule.period]
    since = until - LOOKBACK * rule.window * seconds
    figures: list[Figure] = []
    for kind in kinds:
        # an entry's span starts at the entry before it, however long ago that was
        start = None if kind == ENTRY else since
        rows = await store.derived(point, kind, start=start, end=until + seconds)
        figures += [Figure.of(d) for d in rows if d.end >= since]
    figures.sort(key=lambda f: f.t)
    emission = rule.measure.startswith("source:")
    values = [f.value if emission else f.activity for f in figures if f.t <= until]
    return [v for v in values if v is not None][-rule.window :]

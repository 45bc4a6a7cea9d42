"""The gap watchdog (ISC-2 §7.2.3(1)): a point silent for its gap threshold switches to its
backup device and the operator is told; every missing segment is recorded.

Pure state, no I/O: the scheduler reports each point's outcome with :meth:`observe` and asks
:meth:`source_of` which device to read; what happened comes back as :class:`Event`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reference_terminal.config import Point, Source
from reference_terminal.model import Event

#: While on backup, the primary is tried again every this many periods.
PROBE_EVERY = 10


@dataclass
class _State:
    last_good: float | None = None  # time of the last usable value
    gap_since: float | None = None  # start of the current missing segment
    on_backup: bool = False
    since_probe: int = 0
    notified: bool = False  # the operator has been told about the current gap


@dataclass
class GapWatchdog:
    threshold_s: float
    periods: dict[str, float]  # point id → acquisition period
    _states: dict[str, _State] = field(default_factory=dict)
    #: Points read from their backup now. While none is, every point's source is its primary
    #: and :meth:`source_of` changes nothing (the scheduler then reuses a tick's requests).
    on_backup: int = 0

    def source_of(self, point: Point) -> tuple[Source, bool]:
        """The source to read now, and whether it is the backup."""
        state = self._states.get(point.id)
        if state is None or not state.on_backup or point.backup is None:
            return point.source, False
        state.since_probe += 1
        if state.since_probe >= PROBE_EVERY:  # give the primary a chance to come back
            state.since_probe = 0
            return point.source, False
        return point.backup, True

    def observe(self, point: Point, t: float, good: bool, *, from_backup: bool) -> list[Event]:
        """Record one acquisition outcome of ``point`` at ``t``; return what it caused."""
        state = self._states.setdefault(point.id, _State())
        events: list[Event] = []
        if good:
            if state.gap_since is not None:
                events.append(
                    Event(
                        t,
                        "gap",
                        point.id,
                        start=state.gap_since,
                        end=t,
                        details={"seconds": f"{t - state.gap_since:.3f}"},
                    )
                )
                state.gap_since = None
                state.notified = False
            if state.on_backup and not from_backup:
                state.on_backup = False
                self.on_backup -= 1
                events.append(Event(t, "switch_to_primary", point.id, point.source.device))
            state.last_good = t
            return events
        if state.gap_since is None:
            state.gap_since = state.last_good if state.last_good is not None else t
        silent = t - state.gap_since
        threshold = max(self.threshold_s, self.periods.get(point.id, 0.0))
        if silent >= threshold and not state.notified:
            state.notified = True
            if point.backup is not None and not state.on_backup:
                state.on_backup = True
                self.on_backup += 1
                state.since_probe = 0
                events.append(
                    Event(
                        t,
                        "switch_to_backup",
                        point.id,
                        point.backup.device,
                        details={"silent_s": f"{silent:.3f}", "from": point.source.device},
                    )
                )
            events.append(
                Event(
                    t,
                    "notification",
                    point.id,
                    point.source.device,
                    details={
                        "message": f"{point.id} silent for {silent:.0f} s "
                        f"(ISC-2 §7.2.3(1): 10 s or more switches to the backup device)"
                    },
                )
            )
        return events

    def open_gaps(self) -> dict[str, float]:
        """Points silent now, with the start of their missing segment."""
        return {p: s.gap_since for p, s in self._states.items() if s.gap_since is not None}

"""The acquisition scheduler: each point group read every period, on absolute times so that
nothing drifts over long runs (ISC-2 §9.1, CSMT §11.2), plus reads on command.

Per tick, each device's due points are read in one call to its driver; devices are read
concurrently (a serial bus's own arbiter puts its meters one after another). A device still
busy with the last tick's read is skipped for this one and the overrun counted, rather than
letting requests pile up. Every outcome goes to the gap watchdog, then the results to ``sink``.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from reference_terminal.acquisition.driver import Driver, DriverError
from reference_terminal.acquisition.watchdog import GapWatchdog
from reference_terminal.clock import Clock
from reference_terminal.config import Point, Source, TerminalConfig
from reference_terminal.model import Event, RawValue

Sink = Callable[[Sequence[RawValue]], Awaitable[None]]
EventSink = Callable[[Sequence[Event]], Awaitable[None]]


@dataclass
class Counters:
    ticks: int = 0
    reads: int = 0
    failures: int = 0
    overruns: int = 0
    per_device_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Scheduler:
    def __init__(
        self,
        config: TerminalConfig,
        drivers: Mapping[str, Driver],
        clock: Clock,
        sink: Sink,
        events: EventSink,
    ) -> None:
        self.config = config
        self.drivers = drivers
        self.clock = clock
        self.sink = sink
        self.events = events
        periods = {g.id: g.period_s for g in config.groups}
        polled = [p for p in config.points if p.source.device in drivers]
        self.groups: dict[str, list[Point]] = defaultdict(list)
        for point in polled:
            self.groups[point.group].append(point)
        self.periods = periods
        self.watchdog = GapWatchdog(
            config.processing.gap_threshold_s, {p.id: periods[p.group] for p in polled}
        )
        self.counters = Counters()
        self._busy: set[str] = set()

    async def run(self) -> None:
        """Tick every group on its period until cancelled."""
        # Reads run in the same task group as the tickers: cancelling the scheduler stops
        # every read in flight too.
        async with asyncio.TaskGroup() as group:
            for group_id, points in self.groups.items():
                group.create_task(self._tick_forever(group, self.periods[group_id], points))

    async def read_now(self, point_ids: Sequence[str]) -> list[RawValue]:
        """An on-command read (a platform's request, an operator's button): read these points
        at once, outside their schedule, and return what came back (also sent to the sink)."""
        wanted = set(point_ids)
        points = [p for ps in self.groups.values() for p in ps if p.id in wanted]
        unknown = wanted - {p.id for p in points}
        if unknown:
            raise KeyError(f"no polled points {sorted(unknown)}")
        results = await asyncio.gather(
            *(
                self._read_device(d, reqs, self.clock.time())
                for d, reqs in self._by_device(points).items()
            )
        )
        return [raw for batch in results for raw in batch]

    async def _tick_forever(
        self, group: asyncio.TaskGroup, period: float, points: list[Point]
    ) -> None:
        # Ticks fall on multiples of the period since the epoch: absolute, so sleeps that run
        # late never accumulate, and a restart keeps the same phase.
        next_t = math.floor(self.clock.time() / period) * period + period
        while True:
            await self.clock.sleep(max(0.0, next_t - self.clock.time()))
            self.counters.ticks += 1
            for device, requests in self._by_device(points).items():
                if device in self._busy:
                    self.counters.overruns += 1
                    continue
                self._busy.add(device)  # before the task starts: the next tick must see it
                group.create_task(self._read_device(device, requests, next_t))
            now = self.clock.time()
            next_t += period
            if next_t <= now:  # far behind (a stalled loop, a suspended machine): skip ahead
                next_t = math.floor(now / period) * period + period

    def _by_device(self, points: Sequence[Point]) -> dict[str, list[tuple[Point, Source, bool]]]:
        out: dict[str, list[tuple[Point, Source, bool]]] = defaultdict(list)
        for point in points:
            source, backup = self.watchdog.source_of(point)
            out[source.device].append((point, source, backup))
        return out

    async def _read_device(
        self, device: str, requests: list[tuple[Point, Source, bool]], due: float
    ) -> list[RawValue]:
        self._busy.add(device)
        try:
            driver = self.drivers[device]
            try:
                raws = await driver.read([(p, s) for p, s, _ in requests])
            except DriverError as exc:
                self.counters.failures += 1
                self.counters.per_device_failures[device] += 1
                t = self.clock.time()
                raws = [RawValue(p.id, None, "", t, device, str(exc)) for p, _, _ in requests]
            self.counters.reads += 1
            events: list[Event] = []
            for raw, (point, _, backup) in zip(raws, requests, strict=True):
                good = raw.value is not None and raw.error is None
                events += self.watchdog.observe(point, raw.t, good, from_backup=backup)
            await self.sink(raws)
            if events:
                await self.events(events)
            return raws
        finally:
            self._busy.discard(device)

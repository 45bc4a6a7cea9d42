"""The acquisition scheduler: each point group read every period, on absolute times so that
nothing drifts over long runs (ISC-2 §9.1, CSMT §11.2), plus reads on command.

Per tick, each device's due points are read in one call to its driver; devices are read
concurrently (a serial bus's own arbiter puts its meters one after another). A device still
busy with the last tick's read is skipped for this one and the overrun counted, rather than
letting requests pile up. Every outcome goes to the gap watchdog, then the results to ``sink``.

Reads that answer in the same turn of the event loop go to ``sink`` in one call, in the order
they answered (and their watchdog events to ``events`` in one call after it), handed over at
the end of that turn as ``Store._submit`` hands over writes: in virtual time every device of a
tick answers in one turn, and processing, locking and the store's write are then paid once per
tick instead of once per device. A device stays busy until its values are stored.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from common.clock import Clock
from reference_terminal.acquisition.driver import Driver, DriverError
from reference_terminal.acquisition.watchdog import GapWatchdog
from reference_terminal.config import Point, Source, TerminalConfig
from reference_terminal.model import Event, RawValue

Sink = Callable[[Sequence[RawValue]], Awaitable[None]]
EventSink = Callable[[Sequence[Event]], Awaitable[None]]
Requests = list[tuple[Point, Source, bool]]  # (point, the source read, whether the backup)

log = logging.getLogger(__name__)


class SchedulerStopped(RuntimeError):
    """Values read on command could not be handed over: the scheduler stopped meanwhile."""


@dataclass
class Counters:
    ticks: int = 0
    reads: int = 0
    failures: int = 0
    overruns: int = 0
    per_device_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class _DeviceRead:
    """One device's part of a read: each point with the source read and whether it is the
    backup, and the (point, source) pairs its driver is asked."""

    __slots__ = ("asks", "device", "requests")

    def __init__(self, device: str, requests: Requests) -> None:
        self.device = device
        self.requests = requests
        self.asks = [(p, s) for p, s, _ in requests]


class _Batch:
    """The reads answered in one turn of the event loop, on their way to the sinks."""

    __slots__ = ("devices", "events", "raws", "waiters")

    def __init__(self) -> None:
        self.raws: list[RawValue] = []
        self.events: list[Event] = []
        self.devices: list[str] = []  # busy until the batch is stored
        self.waiters: list[asyncio.Future[None]] = []  # reads on command waiting for it


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
        self._batch: _Batch | None = None
        #: Per group (by its point list, kept with it): its reads while every point is read from
        #: its primary, the same each tick; drivers plan their requests once by them.
        self._primaries: dict[int, tuple[list[Point], list[_DeviceRead]]] = {}
        self._group: asyncio.TaskGroup | None = None  # run()'s, while it runs
        self._loose: set[asyncio.Task[None]] = set()  # hand-overs outside it (kept referenced)

    async def run(self) -> None:
        """Tick every group on its period until cancelled."""
        # Reads and their hand-overs run in the same task group as the tickers: cancelling the
        # scheduler stops every read in flight too.
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for group_id, points in self.groups.items():
                    group.create_task(self._tick_forever(group, self.periods[group_id], points))
        finally:
            self._group = None

    async def read_now(self, point_ids: Sequence[str]) -> list[RawValue]:
        """An on-command read (a platform's request, an operator's button): read these points
        at once, outside their schedule, and return what came back once the sink has taken it
        (SchedulerStopped if the scheduler stopped before it could)."""
        wanted = set(point_ids)
        points = [p for ps in self.groups.values() for p in ps if p.id in wanted]
        unknown = wanted - {p.id for p in points}
        if unknown:
            raise KeyError(f"no polled points {sorted(unknown)}")
        loop = asyncio.get_running_loop()
        # Futures of their own, not the batches': a caller that gives up must not cancel the
        # hand-over of the values read with its own.
        reads = self._by_device(points)
        waiters: list[asyncio.Future[None]] = [loop.create_future() for _ in reads]
        results = await asyncio.gather(
            *(
                self._read_device(read, self.clock.time(), waiter)
                for read, waiter in zip(reads, waiters, strict=True)
            )
        )
        for waiter in waiters:
            await waiter
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
            for read in self._tick_reads(points):
                if read.device in self._busy:
                    self.counters.overruns += 1
                    continue
                self._busy.add(read.device)  # before the task starts: the next tick must see it
                group.create_task(self._read_device(read, next_t))
            now = self.clock.time()
            next_t += period
            if next_t <= now:  # far behind (a stalled loop, a suspended machine): skip ahead
                next_t = math.floor(now / period) * period + period

    def _tick_reads(self, points: list[Point]) -> list[_DeviceRead]:
        """:meth:`_by_device` for a group's tick, the same reads again while no point is on its
        backup (then ``source_of`` gives every point its primary and changes nothing)."""
        if self.watchdog.on_backup:
            return self._by_device(points)
        cached = self._primaries.get(id(points))
        if cached is None or cached[0] is not points:
            cached = self._primaries[id(points)] = (points, self._by_device(points))
        return cached[1]

    def _by_device(self, points: Sequence[Point]) -> list[_DeviceRead]:
        out: dict[str, Requests] = defaultdict(list)
        for point in points:
            source, backup = self.watchdog.source_of(point)
            out[source.device].append((point, source, backup))
        return [_DeviceRead(device, requests) for device, requests in out.items()]

    async def _read_device(
        self, read: _DeviceRead, due: float, waiter: asyncio.Future[None] | None = None
    ) -> list[RawValue]:
        """Read one device and hand its values over (``waiter`` is told once they are stored);
        the device stays busy until then."""
        device, requests = read.device, read.requests
        self._busy.add(device)
        try:
            driver = self.drivers[device]
            try:
                raws = await driver.read(read.asks)
            except DriverError as exc:
                self.counters.failures += 1
                self.counters.per_device_failures[device] += 1
                t = self.clock.time()
                raws = [RawValue(p.id, None, "", t, device, str(exc)) for p, _, _ in requests]
            self.counters.reads += 1
            events: list[Event] = []
            observe = self.watchdog.observe
            for raw, (point, _, backup) in zip(raws, requests, strict=True):
                good = raw.value is not None and raw.error is None
                found = observe(point, raw.t, good, from_backup=backup)
                if found:
                    events += found
        except BaseException:
            self._busy.discard(device)
            raise
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            asyncio.get_running_loop().call_soon(self._flush)
        batch.raws += raws
        batch.events += events
        batch.devices.append(device)
        if waiter is not None:
            batch.waiters.append(waiter)
        return raws

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None
        group = self._group
        if group is not None:
            delivery = self._deliver(batch)
            try:
                group.create_task(delivery)
                return
            except RuntimeError:  # refused: the scheduler is stopping
                delivery.close()  # never started
                if not batch.waiters:
                    # Only scheduled reads, which are being cancelled: dropped with them, as a
                    # read cancelled just after its answer came is.
                    self._busy.difference_update(batch.devices)
                    return
        # Reads on command (not cancelled with the scheduler) are handed over all the same.
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._loose.add(task)
        task.add_done_callback(self._loose_done)

    def _loose_done(self, task: asyncio.Task[None]) -> None:
        self._loose.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:  # its readers on command heard it; nobody else would
            log.error("values read could not be handed over: %r", error)

    async def _deliver(self, batch: _Batch) -> None:
        try:
            await self.sink(batch.raws)
            if batch.events:
                await self.events(batch.events)
        except asyncio.CancelledError:
            _tell(
                batch.waiters,
                SchedulerStopped("the scheduler stopped before the values were stored"),
            )
            raise
        except BaseException as exc:
            _tell(batch.waiters, exc)
            raise
        else:
            _tell(batch.waiters, None)
        finally:
            self._busy.difference_update(batch.devices)


def _tell(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """Tell the reads on command waiting for a batch how its hand-over ended."""
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

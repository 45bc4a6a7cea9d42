"""One direction of one proxied connection: read, pass through the toxics, write on time.

The reader stamps each chunk with the clock's monotonic time and runs it through the link's
stages (:mod:`.stages`), which say what to deliver and when; the writer sleeps on the clock
until the first item is due and delivers it. Reading pauses while more than ``HIGH_WATER``
bytes wait to be written, so a slow or stalled destination slows the source down as it would
without the proxy.

Toxics can come and go while the connection lives (as in Toxiproxy): a new one acts on data
read from then on; one removed or updated releases at once what it was holding back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from common.clock import Clock
from simulators.network.stages import Item, Kind, Stage
from simulators.network.toxics import Stream

if TYPE_CHECKING:
    from simulators.network.connection import Connection

log = logging.getLogger(__name__)

#: Bytes read but not yet written at which the link stops reading from its source.
HIGH_WATER: Final = 1 << 20
#: Bytes asked for per read (Toxiproxy's io.Copy uses 32 KiB).
CHUNK: Final = 32 * 1024


@dataclass
class StreamCounters:
    """Bytes of one stream: read from its source, written to its destination."""

    bytes_received: int = 0
    bytes_sent: int = 0


class Link:
    def __init__(
        self,
        connection: Connection,
        stream: Stream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stages: list[Stage],
        counters: StreamCounters,
    ) -> None:
        self.connection = connection
        self.stream = stream
        self.clock: Clock = connection.clock
        self.reader = reader
        self.writer = writer
        self.stages = stages
        self.counters = counters
        self.finished = False  # the source's close was passed on
        self._pending: deque[Item] = deque()
        self._pending_bytes = 0
        self._ended = False  # the end of the stream is scheduled: nothing more goes in
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[int, asyncio.Task[None]] = {}

    # ---- life --------------------------------------------------------------------------------
    def start(self) -> None:
        for stage in self.stages:
            self._arm(stage)
        name = f"{self.connection.name} {self.stream}"
        self._tasks = [
            self._spawn(self._read_loop, f"{name} reader"),
            self._spawn(self._write_loop, f"{name} writer"),
        ]

    def stop(self) -> None:
        """Stop reading, writing and every timer (the connection is closing)."""
        current = asyncio.current_task()
        for task in [*self._tasks, *self._timers.values()]:
            if task is not current:
                task.cancel()
        self._timers.clear()

    # ---- toxics changing under a live connection ---------------------------------------------
    def add_stage(self, stage: Stage) -> None:
        self.stages.append(stage)
        self._arm(stage)

    def remove_stage(self, name: str) -> None:
        stage = self._find(name)
        if stage is None:
            return
        self.stages.remove(stage)
        self._disarm(stage)
        if stage.applies and stage.closes_when_removed:
            self.connection.close()
            return
        self._release(stage)

    def replace_stage(self, new: Stage) -> None:
        old = self._find(new.toxic.name)
        if old is None:
            self.add_stage(new)
            return
        new.carry_over(old)
        self.stages[self.stages.index(old)] = new
        self._disarm(old)
        self._release(old)
        self._arm(new)

    def _find(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.toxic.name == name), None)

    def _release(self, stage: Stage) -> None:
        """What ``stage`` held back goes now (Toxiproxy: an interrupted toxic lets its data
        through undelayed). A reset it armed still comes: Toxiproxy's waits out its timeout."""
        now = self.clock.monotonic()
        for item in self._pending:
            if stage.uid in item.held_by and item.kind is not Kind.RESET and item.due > now:
                item.due = now
        # The stages' FIFO bounds may lie in the future because of what ``stage`` did; leaving
        # them there would delay new data behind data that has just been released.
        for other in self.stages:
            other.clamp(now)
        self._wake.set()

    def _arm(self, stage: Stage) -> None:
        if stage.applies and stage.close_after is not None:
            self._timers[stage.uid] = self._spawn(
                functools.partial(self._close_later, stage, stage.close_after),
                f"{self.connection.name} timeout",
            )

    def _disarm(self, stage: Stage) -> None:
        timer = self._timers.pop(stage.uid, None)
        if timer is not None:
            timer.cancel()

    async def _close_later(self, stage: Stage, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self._timers.pop(stage.uid, None)
        if stage in self.stages:
            # The close starts at the stage, so toxics after it (slow_close) still act on it.
            after = self.stages.index(stage) + 1
            self._feed(Item(self.clock.monotonic(), Kind.CLOSE), after)

    # ---- the two loops ---------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            await self._room.wait()
            try:
                data = await self.reader.read(CHUNK)
            except OSError:
                # The source reset its connection (or the socket failed): the stream is
                # broken, so the other side is told the same way.
                self.connection.close(reset=True)
                return
            now = self.clock.monotonic()
            if not data:
                self._feed(Item(now, Kind.EOF))
                return
            self.counters.bytes_received += len(data)
            self._feed(Item(now, Kind.DATA, data))

    def _feed(self, item: Item, start: int = 0) -> None:
        if self._ended:
            return
        items = [item]
        for stage in self.stages[start:]:
            if stage.applies:
                items = [out for each in items for out in stage.process(each)]
        for each in items:
            self._pending.append(each)
            self._pending_bytes += len(each.data)
            if each.kind is not Kind.DATA:
                self._ended = True
                break
        if self._pending_bytes >= HIGH_WATER:
            self._room.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._pending[0]
            wait = item.due - self.clock.monotonic()
            if wait > 0:
                self._wake.clear()
                await sleep_or_wake(self.clock, wait, self._wake)
                continue
            self._pending.popleft()
            self._pending_bytes -= len(item.data)
            if self._pending_bytes < HIGH_WATER:
                self._room.set()
            if not await self._deliver(item):
                return

    async def _deliver(self, item: Item) -> bool:
        """Carry out ``item``; False when the link is done."""
        if item.kind is Kind.DATA:
            try:
                self.writer.write(item.data)
                await self.writer.drain()
            except OSError:
                self.connection.close(reset=True)
                return False
            self.counters.bytes_sent += len(item.data)
            return True
        if item.kind is Kind.EOF:
            # Half-close: the destination sees the FIN, the other direction goes on.
            if self.writer.can_write_eof() and not self.writer.transport.is_closing():
                try:
                    self.writer.write_eof()
                except OSError:
                    self.connection.close(reset=True)
                    return False
            self.finished = True
            self.connection.link_finished()
            return False
        self.connection.close(reset=item.kind is Kind.RESET)
        return False

    def _spawn(
        self, work: Callable[[], Coroutine[Any, Any, None]], name: str
    ) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._guarded(work), name=name)

    async def _guarded(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # A bug here must cost one connection (reset, logged), never the proxy or a hang.
        try:
            await work()
        except Exception:
            log.exception("fault proxy %s (%s): link failed", self.connection.name, self.stream)
            self.connection.close(reset=True)


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock``, or less if ``wake`` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()

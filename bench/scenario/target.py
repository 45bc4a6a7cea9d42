"""The reference terminal as a scenario's target: run in the bench's event loop on the bench's
clock, its store on a disk whose power the bench controls.

A power cut looks as it would on a gateway: the disk drops every write not yet fsynced and
fails everything after (the volatile-cache file system of ``simulators.power``), then the
terminal stops dead mid-operation; whatever it does while dying cannot reach the disk. Power
on starts a new terminal from the same configuration, which finds its store as the disk kept
it and the clock where a real RTC would be."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from common.clock import Clock
from common.clock_follower import Quiescence
from reference_terminal.acquisition.drivers import WIRE, Wiring
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.storage.store import OnDurable
from reference_terminal.tasks import first_of
from simulators.power.mount import VolatileMount
from simulators.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BOOT_TIMEOUT_S = 120.0  # wall seconds: a terminal that does not come up is the bench's error
#: A torn cut: how long (virtual s) the terminal may run on to make the writes it lands among
#: (its next period's work, at the periods scenarios use), and in real time how often the
#: bench looks whether it has landed.
TORN_WAIT_S = 120.0
TORN_POLL_S = 0.01


class TargetError(RuntimeError):
    """The bench could not drive the terminal (not the terminal failing a clause)."""


class Rtc:
    """The terminal's real-time clock: the bench's time plus whatever it was set wrong by.
    Kept across power cuts, as a battery-backed RTC keeps time while the terminal is off."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.offset = 0.0

    def jump(self, seconds: float) -> None:
        self.offset += seconds

    def time(self) -> float:
        return self.clock.time() + self.offset

    def monotonic(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


class ReferenceTarget:
    def __init__(
        self,
        config: TerminalConfig,
        clock: Clock,
        disk: VolatileMount | None,
        wiring: Wiring = WIRE,
    ) -> None:
        self.config = config
        self.wiring = wiring
        self.rtc = Rtc(clock)
        self.disk = disk
        self.terminal: Terminal | None = None
        #: Told of every write each terminal booted here acknowledges (``Store.on_durable``).
        self.on_durable: OnDurable | None = None
        self._task: asyncio.Task[None] | None = None
        #: Why a terminal that was not switched off stopped (None: it has not).
        self.stopped_by_itself: str | None = None
        self._torn = False  # a torn cut is armed: its disk dies inside a write
        self.boots = 0
        self.cuts = 0
        self.bytes_dropped = 0
        #: The store writer's wall seconds by kind of work (``StoreStats.busy_s``), summed
        #: over the terminal's boots: in virtual time a step waits while the writer is busy.
        self.store_busy_s: dict[str, float] = {}
        if isinstance(clock, Quiescence):
            clock.watch(self._store_work_untaken)

    def _store_work_untaken(self) -> bool:
        """Time stands still while the store has work no thread took up (the clock bounds the
        wait: a broken terminal whose writer never takes its queue, a mutant the suites must
        fail, does not stop it for ever)."""
        store = self.terminal.store if self.terminal is not None else None
        return store is not None and store.work_untaken()

    @property
    def powered(self) -> bool:
        return self._task is not None

    async def power_on(self, prepare: Callable[[Terminal], Any] | None = None) -> Any:
        """Boot; returns once the terminal is ready. ``prepare`` builds what its process builds
        before the terminal runs (the management API): whatever it raises, nothing was started
        (a terminal refusing its stored credentials does not start). Returns what it built."""
        if self._task is not None:
            raise TargetError("power on: the terminal is already on")
        terminal = Terminal(self.config, clock=self.rtc, wiring=self.wiring)
        terminal.on_durable = self.on_durable
        prepared = None if prepare is None else prepare(terminal)
        self.terminal = terminal
        self._task = asyncio.create_task(terminal.run(), name=f"terminal boot {self.boots}")
        self.boots += 1
        ready = asyncio.create_task(terminal.ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._task}, timeout=BOOT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self._task in done:
                error = self._task.exception()
                self._task = None
                raise TargetError(f"the terminal stopped while booting: {error!r}") from error
            raise TargetError(f"the terminal was not ready after {BOOT_TIMEOUT_S:g} s")
        self._task.add_done_callback(self._stopped_by_itself)
        return prepared

    def _stopped_by_itself(self, task: asyncio.Task[None]) -> None:
        """Say why a terminal stopped that was not switched off: otherwise the first sign is
        the next request it refuses, with the cause gone."""
        # Switched off (a power cut or the end of the run cancel it), or its disk died under
        # it (a torn cut): dying of that is what a terminal does.
        if task is not self._task or task.cancelled() or self._torn:
            return
        error = task.exception()
        self.stopped_by_itself = (
            f"{task.get_name()}: {'returned' if error is None else repr(error)}"
        )
        log.error("the reference terminal stopped by itself (%s)", task.get_name(), exc_info=error)

    async def tear(self, after: int) -> bool:
        """Let the terminal run on until its disk dies inside its next writes: a cut inside a
        commit (in virtual time a cut at a set instant always finds the terminal idle, every
        write of that instant done). In real time, before its ``after``-th write or fsync
        from now. In virtual time, inside its next acknowledgement: before the write of the
        record (odd ``after``) or before its sync (even); the terminal writes from several
        threads at once, and a count over all their writes would tear a different
        acknowledgement in every run of a seed (its other writes of that instant are torn
        wherever they happen to be). False when it made no such write within
        ``TORN_WAIT_S``; the disk is then still powered. ``power_off`` follows."""
        disk = self.disk
        if disk is None:
            raise TargetError("a torn cut needs the volatile disk (power mode fuse)")
        self._torn = True
        clock = self.rtc.clock
        store = self.terminal.store if self.terminal is not None else None
        acknowledging = store.acknowledging_file if store is not None else None
        if not isinstance(clock, Quiescence) or acknowledging is None:
            # real time, or each commit acknowledges, from one thread
            return await tear_disk(disk, clock, after)
        return await tear_disk(disk, clock, 2 - after % 2, name=acknowledging.name)

    async def power_off(self) -> None:
        """The power cut: disk first (nothing after this instant is written), then the CPU."""
        if self._task is None:
            raise TargetError("power off: the terminal is already off")
        if self.disk is not None:
            # an armed cut may have gone off since tear looked
            stats = await self.disk.stats() if self._torn else None
            if stats is None or stats.powered:
                self.bytes_dropped += (await self.disk.cut()).bytes_dropped
            else:  # the disk died by itself, inside a write (an armed, torn cut)
                self.bytes_dropped += stats.bytes_dropped
        task, self._task = self._task, None
        self._torn = False
        task.cancel()
        # Its dying words fail against a dead disk: that is the point, not an error.
        with contextlib.suppress(BaseException):
            await task
        self._count_store()
        self.terminal = None
        self.cuts += 1
        if self.disk is not None:
            await self.disk.restore()  # powered again only at power_on: nothing runs meanwhile

    async def stop(self) -> None:
        """End of the run: an orderly shutdown (not a cut), so the store is left tidy."""
        if self._task is not None:
            task, self._task = self._task, None
            await cancel_and_wait(task)
            self._count_store()

    def _count_store(self) -> None:
        store = self.terminal.store if self.terminal is not None else None
        if store is not None:
            for kind, seconds in store.stats.busy_s.items():
                self.store_busy_s[kind] = self.store_busy_s.get(kind, 0.0) + seconds


async def tear_disk(
    disk: VolatileMount, clock: Clock, after: int, *, name: str | None = None
) -> bool:
    """Let whatever writes to ``disk`` run on until the disk dies before its ``after``-th write
    or fsync from now (of files named ``name`` only, when given): a cut inside a commit. False
    when no such write came within ``TORN_WAIT_S`` (the disk is then still powered).

    In real time the bench looks now and then. Under a virtual clock the disk is asked, not
    polled: at every step, once everything waits and before time moves (every write of the
    instant made). A round trip awaited instead would let time move while it is under way, by
    however long it took: the cut would land at another instant in every run of one seed."""
    if not isinstance(clock, Quiescence):
        await disk.arm(after, name)
        waited = 0.0
        while (await disk.stats()).powered and waited < TORN_WAIT_S:
            await clock.sleep(TORN_POLL_S)
            waited += TORN_POLL_S
        return not disk.powered
    with clock.hold():
        await disk.arm(after, name)
    died = asyncio.Event()

    def dead() -> bool:  # while True, time stands still: the cut is at this instant
        if not died.is_set() and not disk.powered_now():
            died.set()
        return died.is_set()

    unwatch = clock.watch(dead)
    try:
        await first_of(died.wait(), clock.sleep(TORN_WAIT_S))
    finally:
        unwatch()
    return died.is_set()

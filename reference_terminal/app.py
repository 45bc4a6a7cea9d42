"""The terminal, put together: acquisition → processing → durable storage.

``Terminal(config)`` is the one public entry point the bench uses (besides the configuration
schema); ``python -m reference_terminal --config FILE`` runs the same on a gateway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from common.clock import Clock, RealClock, sleep_to_grid
from reference_terminal.accounting.running import Booked, RunningAccounting
from reference_terminal.acquisition.driver import Driver
from reference_terminal.acquisition.drivers import WIRE, Wiring, make_buses, requests_for
from reference_terminal.acquisition.https import HttpsIntake
from reference_terminal.acquisition.mqtt import MqttIntake
from reference_terminal.acquisition.scheduler import Scheduler
from reference_terminal.config import HttpsDevice, MqttDevice, TerminalConfig
from reference_terminal.construct import frozen
from reference_terminal.model import Event, RawValue, counted
from reference_terminal.operations.apps import AppHost
from reference_terminal.operations.errorlog import ErrorLog
from reference_terminal.operations.journal import watch_uplink
from reference_terminal.processing.pipeline import Output, Processor
from reference_terminal.processing.validation import USABLE
from reference_terminal.resume import resume
from reference_terminal.storage.backup import (
    RestoreInfo,
    install_restored,
    sqlite_file,
    stage_restore,
)
from reference_terminal.storage.retention import purge
from reference_terminal.storage.schema import Derived, WindowFigures
from reference_terminal.storage.store import OnDurable, Store
from reference_terminal.tasks import cancel_and_wait, first_of
from reference_terminal.uplink.service import Uplink

log = logging.getLogger(__name__)

#: How often open real-time and settlement windows are closed when no value arrives.
CLOSE_WINDOWS_EVERY_S = 60.0
#: How long the windows closed on that grid wait for the next write (the readings polled at
#: the same instant, as a rule) to be written in its transaction: one commit a minute instead
#: of two, and no transaction of their own beside the readings being processed. Well inside
#: an uplink's grace (``Uplink.grace_s``), after which frames are built from them.
WINDOWS_HELD_S = 1.0
RETENTION_EVERY_S = 6 * 3600.0

if TYPE_CHECKING:
    new_derived = Derived
    new_window_figures = WindowFigures
else:  # a row or two per reading: without the per-field setattr calls
    new_derived = frozen(Derived)
    new_window_figures = frozen(WindowFigures)


def increment_rows(output: Output, now: float) -> list[Derived]:
    """Processing's increments as the store's one-value rows."""
    return [
        new_derived(
            inc.point,
            "increment" if inc.quality in USABLE else f"increment_{inc.quality.value}",
            inc.t0,
            inc.t,
            inc.value,
            inc.quality,
            inc.note,
            now,
        )
        for inc in output.increments
    ]


def window_rows(output: Output, now: float) -> list[Derived]:
    """Processing's closed windows (real-time figures, settlements) as the store's rows: one
    per window, its main figure with the others beside it (an hour's or longer with its
    count: a restart merges it back into the open day or month, and a mean needs its count)."""
    rows: list[Derived] = []
    add = rows.append
    for agg in output.aggregates:
        count = Decimal(agg.count) if counted(agg.period) else None
        figures = new_window_figures(agg.max, agg.min, agg.first, agg.last, count)
        value = agg.increment if agg.kind == "counter" else agg.mean
        add(
            new_derived(
                agg.point,
                agg.period,
                agg.start,
                agg.end,
                value,
                agg.quality,
                agg.note,
                now,
                figures,
            )
        )
    return rows


def _report_failure(future: concurrent.futures.Future[None]) -> None:
    error = None if future.cancelled() else future.exception()
    if error is not None:
        log.error("window figures not stored: %s", error)


class TerminalNotReady(RuntimeError):
    """Values offered before the store is open (starting, or restarting for a new
    configuration): nothing was processed, the sender should try again."""


class TerminalStopped(TerminalNotReady):
    """The terminal stopped before a configuration or a restore it was given took effect."""


class RestoreRefused(RuntimeError):
    """A restore this terminal cannot do while running (ISC-2 §4.4): the reason says why."""


@dataclass(frozen=True)
class _Swap:
    """A restored store file waiting to replace the store's (see ``Terminal.restore``)."""

    staged: Path
    target: Path
    on_swap: Callable[[Path], None] | None  # called once in place, before the store reopens
    done: asyncio.Future[None]


class Terminal:
    """A running terminal: ``await Terminal(config).run()`` until cancelled.

    ``apply_config`` replaces the configuration while it runs: acquisition and processing are
    rebuilt for the new one (the store stays open unless its URL changed). ``wiring`` says how
    it reaches its devices: over their protocols unless a bench says otherwise. ``restore`` puts a
    backup in the store's place the same way.
    """

    def __init__(
        self,
        config: TerminalConfig,
        *,
        clock: Clock | None = None,
        config_path: Path | None = None,
        wiring: Wiring = WIRE,
    ) -> None:
        self.config = config
        self.wiring = wiring
        self.config_path = config_path
        self.clock = clock or RealClock()
        self.processor = Processor.from_config(config)
        self.store: Store | None = None
        #: Given to every store it opens (``Store.on_durable``): a bench told of each write
        #: the terminal acknowledges, from its first.
        self.on_durable: OnDurable | None = None
        self.scheduler: Scheduler | None = None
        #: Upload to the configured data centres (ISC-2 §7.2.4); set while the terminal runs.
        self.uplink: Uplink | None = None
        self.intake = HttpsIntake()  # mounted by the management API before run()
        self._wire_intake()
        self.ready = asyncio.Event()
        self.state = "stopped"
        self.started_at = self.clock.time()
        self._lock = asyncio.Lock()  # processing is sequential per call; values stay in order
        self._reload: asyncio.Queue[TerminalConfig | _Swap] = asyncio.Queue()
        #: Set when ``run`` ends: what waits for a change to take effect stops waiting.
        self._stopped = asyncio.Event()
        #: Remote operations (ISC-2 §8): recent warnings and errors, application modules.
        self.errors = ErrorLog(self.clock)
        self.apps = AppHost(config.apps, self.clock, self.record)
        #: Carbon accounting (CSMT §9), when configured; rebuilt with each configuration.
        self.accounting: RunningAccounting | None = None
        #: Closed windows' rows waiting for the next write (``WINDOWS_HELD_S``), and the event
        #: set when a write takes them.
        self._held: list[Derived] = []
        self._held_taken = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled, restarting acquisition whenever a new configuration arrives."""
        self.started_at = self.clock.time()
        self.state = "starting"
        self._stopped.clear()
        store_url = None
        self.errors.attach()
        try:
            async with contextlib.AsyncExitStack() as stores:
                stores.push_async_callback(self._close_store)
                # applications run beside acquisition, never inside it (ISC-2 §4.3)
                stores.push_async_callback(self.apps.stop)
                await self.apps.start()
                while True:
                    if self.store is None or store_url != self.config.storage.url:
                        if self.store is not None:
                            await self.store.close()
                        self.store = await Store.from_config(self.config.storage)
                        self.store.on_durable = self.on_durable
                        store_url = self.config.storage.url
                    running = asyncio.create_task(self._acquire(), name="acquisition")
                    changed = asyncio.create_task(self._reload.get(), name="reload")
                    try:
                        await asyncio.wait({running, changed}, return_when=asyncio.FIRST_COMPLETED)
                    except asyncio.CancelledError:
                        # Stop acquisition before the store closes under it.
                        self.state = "stopping"
                        for task in (running, changed):
                            task.cancel()
                        await asyncio.gather(running, changed, return_exceptions=True)
                        if changed.done() and not changed.cancelled():
                            self._reload.put_nowait(changed.result())  # refused below
                        raise
                    if running.done():
                        changed.cancel()
                        running.result()  # acquisition ended: raise why
                        return
                    self.state = "starting"
                    self.ready.clear()
                    await cancel_and_wait(running)
                    change = changed.result()
                    if isinstance(change, _Swap):
                        await self._swap_store(change)
                    else:
                        self.config = change
                    self.processor = Processor.from_config(self.config)
        finally:
            self.state = "stopped"
            self.ready.clear()
            self.errors.detach()
            self._stopped.set()
            while not self._reload.empty():  # never to be taken: their callers hear at once
                change = self._reload.get_nowait()
                if isinstance(change, _Swap):
                    change.staged.unlink(missing_ok=True)
                    if not change.done.done():
                        change.done.set_exception(
                            TerminalStopped("the terminal stopped before the restore took place")
                        )

    async def rewire(self, wiring: Wiring) -> None:
        """Reach the devices through ``wiring`` from now on (acquisition is rebuilt, as for a
        new configuration)."""
        self.wiring = wiring
        await self.apply_config(self.config)

    async def apply_config(self, config: TerminalConfig) -> None:
        """Run ``config`` from now on. Refused (ValueError) if its devices cannot be built;
        the running configuration is then untouched."""
        buses = make_buses(config.buses, self.clock)
        try:
            for device in config.devices:
                if self.wiring.polled(device):
                    self.wiring.driver(device, buses=buses, clock=self.clock)
        finally:
            for arbiter in buses.values():
                arbiter.close()
        self._queue(config)
        self.ready.clear()  # set again once acquisition runs the new configuration
        await self._until_ready("the configuration")

    async def restore(
        self, backup: Path, *, on_swap: Callable[[Path], None] | None = None
    ) -> RestoreInfo:
        """Replace everything stored with the backup ``backup`` while running (ISC-2 §4.4): the
        backup is checked and restored beside the store first (a damaged or foreign file
        changes nothing), then acquisition stops, the restored file takes the store's place and
        the terminal starts again from it (processing, accounting and the outboxes resume from
        what it holds). What was stored after the backup was made is gone: the caller audits
        it. SQLite stores only; a server database is restored with the offline tool."""
        target = sqlite_file(self.config.storage.url)
        if target is None:
            raise RestoreRefused(
                "only a SQLite store is restored while running; restore a server database with "
                "the offline tool (reference_terminal.storage.backup.restore) into a fresh one"
            )
        staged, info = await asyncio.to_thread(stage_restore, backup, target)
        swap = _Swap(staged, target, on_swap, asyncio.get_running_loop().create_future())
        try:
            self._queue(swap)
        except TerminalStopped:
            staged.unlink(missing_ok=True)
            raise
        await swap.done
        await self._until_ready("the restored store")
        return info

    def _queue(self, change: TerminalConfig | _Swap) -> None:
        """Hand ``change`` to the run loop (TerminalStopped once it has ended: nobody would
        take it)."""
        if self._stopped.is_set():
            raise TerminalStopped("the terminal has stopped: it takes no change")
        self._reload.put_nowait(change)

    async def _until_ready(self, what: str) -> None:
        """Wait until acquisition runs again (after a change); TerminalStopped if the terminal
        stops first (a caller would otherwise wait until its own connection is dropped)."""
        await first_of(self.ready.wait(), self._stopped.wait())
        if not self.ready.is_set():
            raise TerminalStopped(f"the terminal stopped before {what} took effect")

    async def _swap_store(self, swap: _Swap) -> None:
        """Close the store and put the restored file in its place; the run loop opens it. A
        failure leaves the old file, which the loop opens again."""
        try:
            if self.store is not None:
                await self.store.close()
                self.store = None
            await asyncio.to_thread(install_restored, swap.staged, swap.target)
        except Exception as exc:
            log.error("restore: the restored store could not take the store's place: %s", exc)
            swap.staged.unlink(missing_ok=True)
            swap.done.set_exception(exc)
            return
        except BaseException as exc:
            swap.done.set_exception(exc)
            raise
        try:
            if swap.on_swap is not None:
                swap.on_swap(swap.target)
        except Exception:  # the store is restored all the same: say so, and what went wrong
            log.exception("restore: done, but what follows it in place failed")
        swap.done.set_result(None)

    async def _close_store(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def _acquire(self) -> None:
        buses = make_buses(self.config.buses, self.clock)
        drivers: dict[str, Driver] = {
            d.id: self.wiring.driver(d, buses=buses, clock=self.clock)
            for d in self.config.devices
            if self.wiring.polled(d)
        }
        self._wire_intake()
        # Before acquisition writes anything: a new centre's cursors start here, so nothing
        # stored from now on can be missed by its outbox.
        assert self.store is not None
        async with self._lock:  # before any value is processed (pushed ones included)
            # What the last configuration booked is stored first: processing and accounting
            # must resume from the same state (a window recovered by one and booked by the
            # other is counted twice).
            await self.store.flush_behind()
            async with self.store.indexed_by_point():  # both read each point's history
                resumed = await resume(self.processor, self.store)
                self.accounting = await self._resume_accounting()
        if resumed.recovered:
            await self._store(Output(aggregates=resumed.recovered))
        uplink = Uplink(self.config, self.store, self.clock)
        await uplink.prepare()
        self.uplink = uplink
        async with contextlib.AsyncExitStack() as stack:
            for driver in drivers.values():
                stack.push_async_callback(driver.close)
            for arbiter in buses.values():
                stack.callback(arbiter.close)
            self.scheduler = Scheduler(self.config, drivers, self.clock, self.accept, self.record)
            async with asyncio.TaskGroup() as group:
                group.create_task(self.scheduler.run(), name="scheduler")
                for device in self.config.devices:
                    if isinstance(device, MqttDevice) and device.id not in drivers:
                        intake = MqttIntake(
                            device, requests_for(self.config, device.id), self.accept, self.clock
                        )
                        group.create_task(intake.run(), name=f"mqtt {device.id}")
                group.create_task(self._close_windows(), name="windows")
                group.create_task(self._keep_retention(), name="retention")
                group.create_task(uplink.run(), name="uplink")
                group.create_task(watch_uplink(uplink, self.record, self.clock), name="upload log")
                self.state = "running"
                self.ready.set()

    def _wire_intake(self) -> None:
        self.intake.clear()
        for device in self.config.devices:
            if (
                isinstance(device, HttpsDevice)
                and device.mode == "push"
                and not self.wiring.polled(device)
            ):
                self.intake.add(device, requests_for(self.config, device.id), self.accept)

    async def accept(self, raws: Sequence[RawValue]) -> None:
        """Process values and store everything they produced; returns once it is durable."""
        if self.store is None:
            raise TerminalNotReady("the terminal's store is not open yet")
        async with self._lock:
            output = self.processor.process_many(raws)
        await self._store(output)

    async def record(self, events: Sequence[Event]) -> None:
        assert self.store is not None
        await self.store.write_events(events)

    async def _store(self, output: Output, *, hold: bool = False) -> None:
        """Readings, their increments and events: durable when this returns. Closed windows'
        figures follow behind (computed from rows already durable, and a minute's close of
        every point at once must not hold up the readings arriving meanwhile), with any held
        before them; ``hold``: with nothing to write now, they are held for the next write."""
        store = self.store
        if store is None:
            raise TerminalNotReady("the terminal's store is not open")
        now = self.clock.time()
        # booked before the first await: in processing's order, whoever processes next
        booked = self.accounting.book(output, now) if self.accounting is not None else Booked()
        rows: list[Derived] = []
        if output.aggregates or booked.behind:
            rows = window_rows(output, now) + booked.behind  # windows first: a cut keeps them
        writes = output.readings or output.events or output.increments or booked.events
        if hold and not writes:
            self._held += rows
            return
        rows = self._take_held() + rows
        if rows:  # handed over in the write's turn of the loop: the writer joins them to it
            store.write_behind(rows).add_done_callback(_report_failure)
        if writes:
            await store.write(
                output.readings,
                events=[*output.events, *booked.events],
                derived=increment_rows(output, now) + booked.now,
            )

    async def _resume_accounting(self) -> RunningAccounting | None:
        """The accounting of the configuration, continued from the store (CSMT §9)."""
        assert self.store is not None
        offset = self.processor.settings.utc_offset_s
        accounting = RunningAccounting.from_config(self.config, offset)
        if accounting is not None:
            await accounting.resume(self.store, self.clock.time())
        return accounting

    async def reload_accounting(self) -> None:
        """Rebuild the accounting (a new factor library) and continue it from the store."""
        async with self._lock:  # nothing is booked meanwhile; what was is stored first
            if self.store is not None and self.accounting is not None:
                await self.settled()
                async with self.store.indexed_by_point():
                    self.accounting = await self._resume_accounting()

    async def settled(self) -> None:
        """Wait until the figures of every window closed so far are stored too."""
        if self.store is not None:
            self._write_held()
            await self.store.flush_behind()

    def _take_held(self) -> list[Derived]:
        held, self._held = self._held, []
        if held:
            self._held_taken.set()
        return held

    def _write_held(self) -> None:
        held = self._take_held()
        if held and self.store is not None:
            self.store.write_behind(held).add_done_callback(_report_failure)

    async def _keep_retention(self) -> None:
        """Drop what is older than the retention period (≥ 6 months, ISC-2 §7.2.3(4))."""
        assert self.store is not None
        while True:
            purged = await purge(
                self.store, self.config.storage.retention_days, now=self.clock.time()
            )
            log.info("retention: %s", purged)
            await self.clock.sleep(RETENTION_EVERY_S)

    async def _close_windows(self) -> None:
        try:
            while True:
                await sleep_to_grid(self.clock, CLOSE_WINDOWS_EVERY_S)
                lag = self.config.processing.window_lag_s
                async with self._lock:
                    output = self.processor.close_until(self.clock.time() - lag)
                await self._store(output, hold=True)
                if self._held:
                    self._held_taken.clear()
                    await first_of(self.clock.sleep(WINDOWS_HELD_S), self._held_taken.wait())
                    self._write_held()  # no write came for them
        finally:
            self._write_held()  # before the store closes (a new configuration, a stop)

"""The terminal, put together: acquisition → processing → durable storage.

``Terminal(config)`` is the one public entry point the bench uses (besides the configuration
schema); ``python -m reference_terminal --config FILE`` runs the same on a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from reference_terminal.acquisition.driver import Driver
from reference_terminal.acquisition.drivers import is_polled, make_buses, make_driver, requests_for
from reference_terminal.acquisition.mqtt import MqttIntake
from reference_terminal.acquisition.scheduler import Scheduler
from reference_terminal.clock import Clock, RealClock
from reference_terminal.config import MqttDevice, TerminalConfig
from reference_terminal.model import Event, RawValue
from reference_terminal.processing.pipeline import Output, Processor
from reference_terminal.storage.retention import purge
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store

log = logging.getLogger(__name__)

#: How often open real-time and settlement windows are closed when no value arrives.
CLOSE_WINDOWS_EVERY_S = 60.0
RETENTION_EVERY_S = 6 * 3600.0


def derived_rows(output: Output, now: float) -> list[Derived]:
    """Processing's increments and window figures as the store's one-value rows."""
    rows = [
        Derived(
            inc.point,
            "increment" if inc.quality.usable else f"increment_{inc.quality.value}",
            inc.t0,
            inc.t,
            inc.value,
            inc.quality,
            inc.note,
            now,
        )
        for inc in output.increments
    ]
    for agg in output.aggregates:
        for kind, value in agg.figures():
            rows.append(
                Derived(agg.point, kind, agg.start, agg.end, value, agg.quality, agg.note, now)
            )
    return rows


class Terminal:
    """A running terminal: ``await Terminal(config).run()`` until cancelled."""

    def __init__(self, config: TerminalConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or RealClock()
        self.processor = Processor.from_config(config)
        self.store: Store | None = None
        self.scheduler: Scheduler | None = None
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()  # processing is sequential per call; values stay in order

    async def run(self) -> None:
        buses = make_buses(self.config.buses, self.clock)
        drivers: dict[str, Driver] = {
            d.id: make_driver(d, buses=buses, clock=self.clock)
            for d in self.config.devices
            if is_polled(d)
        }
        async with contextlib.AsyncExitStack() as stack:
            self.store = await stack.enter_async_context(
                await Store.from_config(self.config.storage)
            )
            for driver in drivers.values():
                stack.push_async_callback(driver.close)
            for arbiter in buses.values():
                stack.callback(arbiter.close)
            self.scheduler = Scheduler(self.config, drivers, self.clock, self.accept, self.record)
            async with asyncio.TaskGroup() as group:
                group.create_task(self.scheduler.run(), name="scheduler")
                for device in self.config.devices:
                    if isinstance(device, MqttDevice):
                        intake = MqttIntake(
                            device, requests_for(self.config, device.id), self.accept, self.clock
                        )
                        group.create_task(intake.run(), name=f"mqtt {device.id}")
                group.create_task(self._close_windows(), name="windows")
                group.create_task(self._keep_retention(), name="retention")
                self.ready.set()

    async def accept(self, raws: Sequence[RawValue]) -> None:
        """Process values and store everything they produced; returns once it is durable."""
        async with self._lock:
            output = self.processor.process_many(raws)
        await self._store(output)

    async def record(self, events: Sequence[Event]) -> None:
        assert self.store is not None
        await self.store.write_events(events)

    async def _store(self, output: Output) -> None:
        assert self.store is not None
        if output:
            await self.store.write(
                output.readings,
                events=output.events,
                derived=derived_rows(output, self.clock.time()),
            )

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
        while True:
            await self.clock.sleep(CLOSE_WINDOWS_EVERY_S)
            async with self._lock:
                output = self.processor.close_until(self.clock.time())
            await self._store(output)

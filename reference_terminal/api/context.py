"""What every route reaches the terminal through.

The terminal's parts are looked up on each request, never kept: ``run`` opens the store and
makes the scheduler after the app exists, and applying a configuration may replace them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from reference_terminal.acquisition.scheduler import Scheduler
from reference_terminal.api.errors import ApiError, NotReady
from reference_terminal.app import Terminal
from reference_terminal.config import Device, Point, TerminalConfig
from reference_terminal.model import RawValue
from reference_terminal.processing.settlement import CHINA_OFFSET_S
from reference_terminal.storage.store import Store
from reference_terminal.uplink.service import Uplink


@dataclass
class ApiContext:
    terminal: Terminal
    #: Terminal clock when the app was made: the uptime's origin while Terminal has no
    #: ``started_at``.
    created_at: float
    #: One configuration change at a time (write the file, apply, rename).
    config_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def config(self) -> TerminalConfig:
        return self.terminal.config

    @property
    def offset_s(self) -> int:
        """The plant's UTC offset, as processing uses it for days and months."""
        settings = getattr(self.terminal.processor, "settings", None)
        return int(getattr(settings, "utc_offset_s", CHINA_OFFSET_S))

    def now(self) -> float:
        return self.terminal.clock.time()

    def store(self) -> Store:
        store = self.terminal.store
        if store is None:
            raise NotReady("the terminal is starting: its store is not open yet")
        return store

    def scheduler(self) -> Scheduler:
        scheduler = self.terminal.scheduler
        if scheduler is None:
            raise NotReady("the terminal is starting: its scheduler is not running yet")
        return scheduler

    def uplink(self) -> Uplink:
        uplink = self.terminal.uplink
        if uplink is None:
            raise NotReady("the terminal is starting: its uplink is not running yet (ISC-2 §7.2.4)")
        return uplink

    def point(self, point_id: str) -> Point | None:
        for point in self.config.points:
            if point.id == point_id:
                return point
        return None

    def configured_point(self, point_id: str) -> Point:
        point = self.point(point_id)
        if point is None:
            raise ApiError(404, "unknown_point", f"no point {point_id!r} in the configuration")
        return point

    def device_of(self, point: Point) -> Device:
        return self.config.device(point.source.device)

    async def deliver(self, raws: Sequence[RawValue]) -> None:
        """Hand values to the terminal (processing, then the store), once it can take them."""
        self.store()
        await self.terminal.accept(raws)

"""The scheduler: periods on absolute times (no drift), devices read concurrently, overruns
skipped, reads on command, and the switch to a backup device when a point falls silent."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from decimal import Decimal

from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.scheduler import Scheduler
from reference_terminal.config import Point, Source, TerminalConfig
from reference_terminal.model import Event, RawValue
from tests.reference_terminal.clocks import SteppingClock


class ScriptedDevice:
    """A device for scheduling tests: answers after ``delay`` s, or fails while ``down``."""

    def __init__(self, device_id: str, clock: SteppingClock, delay: float = 0.0) -> None:
        self.device_id = device_id
        self.clock = clock
        self.delay = delay
        self.down = False
        self.calls: list[float] = []

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        self.calls.append(self.clock.time())
        if self.delay:
            await self.clock.sleep(self.delay)
        if self.down:
            raise DriverError(self.device_id, "no answer", kind="timeout")
        t = self.clock.time()
        return [RawValue(p.id, Decimal("1.50"), "1.50", t, self.device_id) for p, _ in requests]

    async def close(self) -> None:
        pass


def config(period: float = 1.0) -> TerminalConfig:
    return TerminalConfig.model_validate(
        {
            "devices": [
                {"id": "main", "protocol": "manual"},
                {"id": "spare", "protocol": "manual"},
                {"id": "slow", "protocol": "manual"},
            ],
            "groups": [{"id": "fast", "period_s": period}],
            "points": [
                {
                    "id": "p",
                    "group": "fast",
                    "source": {"device": "main"},
                    "backup": {"device": "spare"},
                },
                {"id": "s", "group": "fast", "source": {"device": "slow"}},
            ],
        }
    )


def run_for(
    seconds: float, *, slow_delay: float = 0.0, main_down_after: float | None = None
) -> tuple[dict[str, ScriptedDevice], list[RawValue], list[Event], Scheduler]:
    clock = SteppingClock()
    devices = {
        "main": ScriptedDevice("main", clock),
        "spare": ScriptedDevice("spare", clock),
        "slow": ScriptedDevice("slow", clock, delay=slow_delay),
    }
    raws: list[RawValue] = []
    events: list[Event] = []

    async def sink(batch: Sequence[RawValue]) -> None:
        raws.extend(batch)

    async def on_events(batch: Sequence[Event]) -> None:
        events.extend(batch)

    scheduler = Scheduler(config(), devices, clock, sink, on_events)

    async def main() -> None:
        start = clock.time()
        task = asyncio.create_task(scheduler.run())
        while clock.time() < start + seconds:
            if main_down_after is not None and clock.time() >= start + main_down_after:
                devices["main"].down = True
            await clock.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return devices, raws, events, scheduler


def test_reads_fall_on_whole_periods_without_drift() -> None:
    devices, _, _, _ = run_for(3600)
    calls = devices["main"].calls
    assert len(calls) >= 3598
    assert all(t == int(t) for t in calls)  # every tick on a whole second, after an hour
    assert all(b - a == 1.0 for a, b in itertools.pairwise(calls))


def test_a_device_still_busy_is_skipped_not_piled_up() -> None:
    devices, _, _, scheduler = run_for(60, slow_delay=2.5)
    assert 15 <= len(devices["slow"].calls) <= 21  # one read every 3 ticks
    assert scheduler.counters.overruns >= 35
    assert len(devices["main"].calls) >= 58  # the others are not held up


def test_a_silent_point_moves_to_its_backup_and_the_gap_is_on_record() -> None:
    devices, raws, events, _ = run_for(60, main_down_after=20)
    kinds = [e.kind for e in events]
    assert kinds.count("switch_to_backup") == 1 and kinds.count("notification") == 1
    switch = next(e for e in events if e.kind == "switch_to_backup")
    assert 29 <= switch.t - devices["main"].calls[0] <= 32  # 10 s after the last good value
    from_spare = [r for r in raws if r.point == "p" and r.device == "spare"]
    assert len(from_spare) >= 25
    assert len(devices["main"].calls) > 20  # the primary is still probed now and then


def test_an_on_command_read_happens_at_once() -> None:
    clock = SteppingClock()
    devices = {name: ScriptedDevice(name, clock) for name in ("main", "spare", "slow")}
    got: list[RawValue] = []

    async def sink(batch: Sequence[RawValue]) -> None:
        got.extend(batch)

    async def ignore(batch: Sequence[Event]) -> None:
        pass

    scheduler = Scheduler(config(period=3600), devices, clock, sink, ignore)
    raws = asyncio.run(scheduler.read_now(["p", "s"]))
    assert sorted(r.point for r in raws) == ["p", "s"] and got == raws
    assert all(r.t == clock.time() for r in raws)

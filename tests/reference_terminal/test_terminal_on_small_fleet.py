"""Acceptance: the reference terminal against the small fleet — every point read, stored, and
equal to what its meter showed (the plant's value at the meter's resolution, digits kept)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bench.terminal_for_fleet import terminal_config
from reference_terminal.app import Terminal
from reference_terminal.model import Quality
from simulators.fleet.runner import running_fleet

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"


def test_every_point_of_the_small_fleet_is_read_stored_and_true(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_fleet(SMALL) as fleet:
            config = terminal_config(
                fleet, storage_url=f"sqlite:///{tmp_path / 'terminal.db'}", serial=3.0
            )
            polled = [
                p for p in config.points if config.device(p.source.device).protocol != "manual"
            ]
            terminal = Terminal(config)
            task = asyncio.create_task(terminal.run())
            try:
                await asyncio.wait_for(terminal.ready.wait(), 30)
                store = terminal.store
                assert store is not None
                for _ in range(60):  # until every polled point has a stored reading
                    latest = await store.latest()
                    if all(p.id in latest for p in polled):
                        break
                    await asyncio.sleep(0.5)
                missing = [p.id for p in polled if p.id not in latest]
                assert not missing, f"never stored: {missing}"
                for point in polled:
                    reading = latest[point.id]
                    assert reading.quality is Quality.GOOD, (point.id, reading)
                    assert reading.value is not None
                    # The stored value is one the meter sent, digit for digit.
                    meter_id = point.source.device
                    sent = {
                        o.value
                        for o in fleet.observations
                        if o.meter == meter_id and o.quantity == point.name
                    }
                    assert reading.value in sent, (point.id, reading.value)
                    assert -reading.value.as_tuple().exponent == point.decimals  # type: ignore[operator]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())

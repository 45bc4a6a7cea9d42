"""Acceptance: every meter fault ends in the terminal's documented behaviour.

The small fleet runs with faults opened a few seconds into the test: a flaky checksum is
retried away, a silent meter leaves a recorded gap that is interpolated (flagged, never passed
off as measured) once it answers again, a feeder meter silent past 10 s is replaced by its
backup (ISC-2 §7.2.3(1)) with an operator notification, and a spike out of range is flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench.terminal_for_fleet import terminal_config
from common.clock import RealClock
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.storage.store import Store
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import Fault

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"
MIN_RUN_S = 24.0
MAX_WAIT_S = 60.0


def with_backup_and_ranges(config: TerminalConfig) -> TerminalConfig:
    """The grid feeder's energy falls back to the energy-management system's figure; the CEMS
    oxygen reading has its instrument range."""
    data = config.model_dump(mode="json")
    for point in data["points"]:
        if point["id"] == "em-grid.00010000":
            point["backup"] = {"device": "collector-https", "name": "grid_energy"}
        if point["id"] == "plc-cems.2":
            point["min"], point["max"] = "0", "25"
    data["processing"]["gap_threshold_s"] = 10
    for device in data["devices"]:
        if device["id"] == "em-grid":  # give up quickly, so silence is seen every period
            device["timeout_s"], device["retries"] = 0.5, 1
    return TerminalConfig.model_validate(data)


async def behaviour_seen(store: Store, fleet: FleetRuntime) -> None:
    """Raises AssertionError until every fault has ended in its documented behaviour."""
    t0, t1 = fleet.now() - 3600, fleet.now() + 60
    # Retried: most of the water meter's damaged answers are retried into good
    # readings; a read that failed every retry is stored as a fault, then filled.
    water = await store.readings("wm-process.current_total", t0, t1)
    damaged = sum(e.meter == "wm-process" for e in fleet.fault_events)
    failed = sum(r.quality is Quality.COMM_FAULT for r in water)
    assert damaged > failed
    assert sum(r.quality is Quality.GOOD for r in water) > failed
    # A silent gas meter: its gap is on record and filled, flagged interpolated.
    gas = await store.readings("gm-boiler.current_total", t0, t1)
    kinds = {r.quality for r in gas}
    assert Quality.COMM_FAULT in kinds and Quality.INTERPOLATED in kinds, kinds
    gaps = await store.events(kind="gap", start=t0, end=t1)
    assert any(e.point == "gm-boiler.current_total" for e in gaps)
    filled = [r for r in gas if r.quality is Quality.INTERPOLATED]
    good = [r.value for r in gas if r.quality is Quality.GOOD and r.value is not None]
    assert all(min(good) <= (r.value or Decimal(0)) <= max(good) for r in filled)
    # The feeder's energy switched to its backup after 10 s, and the operator knew.
    switches = await store.events(kind="switch_to_backup", start=t0, end=t1)
    notes = await store.events(kind="notification", start=t0, end=t1)
    assert [e.point for e in switches] == ["em-grid.00010000"]
    assert any(e.point == "em-grid.00010000" for e in notes)
    grid = await store.readings("em-grid.00010000", t0, t1)
    assert any(r.quality is Quality.BACKUP for r in grid)
    # A spike beyond the instrument's range is kept but flagged.
    oxygen = await store.readings("plc-cems.2", t0, t1)
    assert any(r.quality is Quality.OUT_OF_RANGE for r in oxygen)


def test_meter_faults_end_in_the_documented_behaviour(tmp_path: Path) -> None:
    spec = load_fleet(SMALL)
    since_start = RealClock().time() - spec.start.timestamp()

    def window(begin: float, end: float | None = None) -> dict[str, timedelta | None]:
        return {
            "start": timedelta(seconds=since_start + begin),
            "end": None if end is None else timedelta(seconds=since_start + end),
        }

    faults = [
        {"meter": "wm-process", "kind": "bad_checksum", "probability": 0.5, **window(0)},
        {
            "meter": "plc-cems",
            "kind": "spike",
            "factor": 10,
            "quantities": ["stack.o2_pct"],
            **window(3),
        },
    ]
    faulty = spec.model_copy(update={"faults": [Fault.model_validate(f) for f in faults]})

    async def main() -> None:
        async with running_fleet(faulty) as fleet:
            config = with_backup_and_ranges(
                terminal_config(fleet, storage_url=f"sqlite:///{tmp_path / 't.db'}", serial=2.0)
            )
            terminal = Terminal(config)
            task = asyncio.create_task(terminal.run())
            try:
                await asyncio.wait_for(terminal.ready.wait(), 30)
                store = terminal.store
                assert store is not None
                # Silence begins only once the terminal has read both meters (a gap is filled
                # between good readings, so it needs one before it).
                for _ in range(120):
                    latest = await store.latest(["gm-boiler.current_total", "em-grid.00010000"])
                    if len(latest) == 2:
                        break
                    await asyncio.sleep(0.5)
                now = fleet.now() - spec.start.timestamp()
                for meter, seconds in (("gm-boiler", 10), ("em-grid", 20)):
                    fleet.meters[meter].faults.append(
                        Fault.model_validate(
                            {
                                "meter": meter,
                                "kind": "no_answer",
                                "start": timedelta(seconds=now),
                                "end": timedelta(seconds=now + seconds),
                            }
                        )
                    )
                await asyncio.sleep(MIN_RUN_S)
                deadline = fleet.now() + MAX_WAIT_S
                while True:
                    try:
                        await behaviour_seen(store, fleet)
                        break
                    except AssertionError:
                        if fleet.now() > deadline:
                            raise
                    await asyncio.sleep(1.0)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())

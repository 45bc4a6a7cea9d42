"""Emission alarms carry across a restart (ISC-2 §7.2.6): an alarm raised before it is cleared
once after it and not raised again, an anomaly rule judges the first minutes after it against
the history it had (not blind for ``min_history`` minutes), and the events after a restart are
those a terminal that never stopped gives."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from reference_terminal.accounting.alarm_state import restore_alarms
from reference_terminal.accounting.alarms import AlarmMonitor
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Event
from reference_terminal.storage.store import Store, sqlite_url
from tests.reference_terminal.accounting.terminal_config import make_config
from tests.reference_terminal.accounting.test_running import T0, Plant

NORMAL, JUMP = "10.00", "500.00"  # kWh per minute; the grid rule alarms above 5 × the median


def alarms(events: list[Event]) -> list[tuple[str, str, float]]:
    return [(e.details["state"], e.details["rule"], e.t) for e in events if e.kind == "alarm"]


def run_straight(config: TerminalConfig, steps: list[str]) -> list[Event]:
    plant, events = Plant(config), []
    for k, kwh in enumerate(steps):
        events += plant.minute(T0 + 60 * k + 1, kwh=kwh).events
    return events


async def run_with_restart(
    config: TerminalConfig, store: Store, steps: list[str], cut: int
) -> tuple[list[Event], list[Event]]:
    """``steps`` minute by minute, the terminal restarting before step ``cut``; the events
    before and after the restart."""
    before, stored = Plant(config), []
    for k, kwh in enumerate(steps[:cut]):
        stored += before.minute(T0 + 60 * k + 1, kwh=kwh).events
    await store.write(derived=before.rows, events=stored)
    after = Plant(config)
    after.processor, after.registers = before.processor, before.registers
    await after.accounting.resume(store, T0 + 60 * cut)
    events = []
    for k, kwh in enumerate(steps[cut:], start=cut):
        events += after.minute(T0 + 60 * k + 1, kwh=kwh).events
    return stored, events


def test_an_alarm_raised_before_a_restart_clears_once_after_it(tmp_path: Path) -> None:
    steps = [NORMAL] * 6 + [JUMP] + [NORMAL] * 4
    config = make_config(tmp_path)

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            stored, after = await run_with_restart(config, store, steps, cut=8)
        assert [s for s, _, _ in alarms(stored)] == ["raised"]
        assert [s for s, _, _ in alarms(after)] == ["cleared"]
        straight = run_straight(config, steps)
        assert alarms(stored) + alarms(after) == alarms(straight)

    asyncio.run(main())


def test_an_anomaly_just_after_a_restart_is_judged_against_the_history_before_it(
    tmp_path: Path,
) -> None:
    steps = [NORMAL] * 6 + [JUMP] + [NORMAL]
    config = make_config(tmp_path)

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            # restarted just before the jump: min_history (3) minutes would pass unwatched
            stored, after = await run_with_restart(config, store, steps, cut=6)
        assert alarms(stored) == []
        assert [s for s, _, _ in alarms(after)] == ["raised"]
        assert alarms(after) == alarms(run_straight(config, steps))

    asyncio.run(main())


def test_the_history_is_the_last_window_of_stored_minute_emissions(tmp_path: Path) -> None:
    config = make_config(tmp_path, alarms=[ANOMALY | {"window": 4}])

    async def main() -> None:
        plant = Plant(config)
        for k in range(8):
            plant.minute(T0 + 60 * k + 1, kwh=str(10 + k))
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            await store.write(derived=plant.rows)
            last = max(f.start for f in plant.figures("em.ep", "co2"))
            monitor = Plant(config).accounting.live["em.ep"].monitor
            assert isinstance(monitor, AlarmMonitor)
            restored = await restore_alarms(store, {"em.ep": monitor}, {"em.ep": last})
        # minutes closed: 10:50 … 10:55 with 11 … 16 kWh; the window keeps the last four
        expected = [Decimal(kwh) * Decimal("0.0005703") for kwh in (13, 14, 15, 16)]
        assert monitor.history("grid-jump") == expected
        assert restored.history == {"grid-jump": 4} and restored.active == ()

    asyncio.run(main())


def test_alarms_of_rules_no_longer_configured_are_not_restored(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            old = {"state": "raised", "rule": "retired", "subject": "source:em.ep"}
            live = {"state": "raised", "rule": "grid-jump", "subject": "source:em.ep"}
            await store.write(
                events=[
                    Event(T0, "alarm", point="em.ep", details=old),
                    Event(T0, "alarm", point="gm.vol", details=live),  # not that point's rule
                    Event(T0 + 60, "alarm", point="em.ep", details=live),
                ]
            )
            monitor = Plant(config).accounting.live["em.ep"].monitor
            assert isinstance(monitor, AlarmMonitor)
            restored = await restore_alarms(store, {"em.ep": monitor}, {})
        assert restored.active == (("em.ep", "grid-jump", "source:em.ep"),)
        assert monitor.active() == [("grid-jump", "source:em.ep")]

    asyncio.run(main())


ANOMALY = {
    "id": "grid-jump",
    "type": "anomaly",
    "point": "em.ep",
    "period": "minute",
    "ratio": "5",
    "min_history": 3,
}

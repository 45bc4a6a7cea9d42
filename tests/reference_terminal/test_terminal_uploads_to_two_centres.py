"""Acceptance (issue 5): the reference terminal reads the small fleet and uploads minute data to
two platform centres (the bench's simulators). Every reading the terminal derived arrives at
both exactly once after de-duplication; while one centre refuses connections for an hour of
compressed time, the other is never delayed, and afterwards the refused one receives the whole
backlog, oldest first. Every frame the terminal sent decodes with the platform's codec."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.terminal_for_fleet import item_codes, terminal_config
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from simulators.fleet.runner import running_fleet
from simulators.platform import (
    CheckResult,
    Expected,
    PlatformFile,
    Platforms,
    check,
    running_platforms,
)
from tests.reference_terminal.uplink.helpers import ScaledClock

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "fleets" / "small.yaml"
SPEED = 240.0  # a virtual minute in a quarter of a wall second
MN = {"provincial": "010000A8900016F000169DC0", "group": "010000A8900016F000169DC1"}
MINUTE_DATA = 2051
TERMINAL_STAMPED = {"modbus-tcp", "modbus-rtu", "dlt645-2007", "dlt645-1997", "cjt188"}


def with_uplink(config: TerminalConfig, ports: dict[str, int]) -> TerminalConfig:
    """``config`` uploading minute data to both centres, of every point whose readings the
    terminal stamps itself. (A collector stamps its values with its own, real, clock; against
    this test's compressed clock those would fall into windows long closed.)"""
    polled = [
        p for p in config.points if config.device(p.source.device).protocol in TERMINAL_STAMPED
    ]
    codes = item_codes(polled)
    centres = [
        {
            "name": name,
            "protocol": "hj212",
            "host": "127.0.0.1",
            "port": port,
            "mn": MN[name],
            "over_time_s": 60,  # a quarter of a wall second at this speed
            "streams": {"realtime": False, "minute": True, "hourly": False, "daily": False},
            "backoff": {"initial_s": 30, "max_s": 120},
        }
        for name, port in ports.items()
    ]
    data = config.model_dump(mode="json")
    data["uplink"] = {"codes": codes, "centres": centres}
    return TerminalConfig.model_validate(data)


def local(t: float) -> datetime:
    """DataTime as it goes on the wire: plant-local (UTC+8) and naive."""
    return (datetime.fromtimestamp(t, UTC) + timedelta(hours=8)).replace(tzinfo=None)


def posix(data_time: datetime) -> float:
    return data_time.replace(tzinfo=UTC).timestamp() - 8 * 3600


@dataclass(frozen=True)
class Stored:
    data_time: datetime
    code: str
    value: Decimal | None  # None: the window has only a flag (no usable value)
    field: str  # the CP field it travels in
    computed_at: float  # when the terminal stored it

    def expected(self, mn: str) -> Expected:
        return Expected(mn, MINUTE_DATA, self.data_time, self.code, self.value, self.field)


async def stored_minutes(terminal: Terminal, config: TerminalConfig, until: float) -> list[Stored]:
    """Every minute window the terminal stored for a coded point, starting before ``until``."""
    assert terminal.store is not None
    codes = {c.point: str(c.code) for c in config.uplink.codes}
    out = []
    for point in config.points:
        if point.id in codes:
            field = "Cou" if point.kind == "counter" else "Avg"
            for d in await terminal.store.derived(point.id, "minute", end=until):
                out.append(Stored(local(d.start), codes[point.id], d.value, field, d.computed_at))
    return out


async def arrived(
    platforms: Platforms, centre: str, expected: list[Expected], before: datetime
) -> CheckResult:
    """The check of ``centre``'s minute data before ``before``, once nothing is missing (or
    after 30 s, with what is)."""
    result = None
    for _ in range(300):
        rows = platforms.record.readings(centre=centre, cn=MINUTE_DATA)
        result = check(expected, [r for r in rows if r.data_time < before])
        if result.complete:
            break
        await asyncio.sleep(0.1)
    assert result is not None
    return result


def test_minute_data_reaches_both_centres_exactly_once_through_an_hour_of_refusal(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        clock = ScaledClock(SPEED)
        spec = PlatformFile.model_validate(
            {
                "centres": [
                    {"name": name, "protocol": "hj212", "port": 0, "passwords": "any"}
                    for name in MN
                ]
            }
        )
        async with (
            running_fleet(SMALL) as fleet,
            running_platforms(spec, clock=clock) as platforms,
        ):
            provincial, group = platforms.hj212("provincial"), platforms.hj212("group")
            config = with_uplink(
                terminal_config(
                    fleet,
                    storage_url=f"sqlite:///{tmp_path / 'terminal.db'}",
                    serial=120.0,
                    network=60.0,
                    push=600.0,
                ),
                {"provincial": provincial.address[1], "group": group.address[1]},
            )
            terminal = Terminal(config, clock=clock)
            task = asyncio.create_task(terminal.run())
            try:
                await asyncio.wait_for(terminal.ready.wait(), 30)
                await provincial.wait_connected(MN["provincial"], 900)  # virtual s
                await group.wait_connected(MN["group"], 900)
                await clock.sleep(5 * 60)

                refused_at = clock.time()
                await group.set_behaviour("refuse")
                await clock.sleep(3600)
                await group.set_behaviour("ack")
                back_at = clock.time()
                await clock.sleep(3 * 60)

                cutoff = back_at - 120  # windows long closed and taken by both producers
                stored = await stored_minutes(terminal, config, cutoff)
                results = {
                    name: await arrived(
                        platforms,
                        name,
                        [row.expected(MN[name]) for row in stored],
                        local(cutoff),
                    )
                    for name in MN
                }
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            codes = {row.code for row in stored}
            # serial meters are read every 2 minutes: a window with values every other minute
            assert len(codes) >= 5 and len(stored) >= 30 * len(codes), (codes, len(stored))
            for name, result in results.items():
                assert result.complete and result.exactly_once, (name, result.summary())
                assert not result.unexpected and not result.wrong_value, (name, result.summary())
                # every frame the terminal sent decodes with the platform's codec
                assert platforms.record.frames(centre=name, ok=False) == []

            # the healthy centre got each minute as soon as the terminal had stored it (a scan
            # a minute) while the other refused: within a few minutes, never the hour of the
            # refusal (at 240× a loaded suite stretches a virtual minute: 159 s seen)
            stored_at = {(row.data_time, row.code): row.computed_at for row in stored}
            during = [
                r.at - stored_at[r.data_time, r.code]
                for r in platforms.record.readings(centre="provincial", cn=MINUTE_DATA)
                if refused_at <= posix(r.data_time) < back_at - 120
            ]
            assert during and max(during) < 240, max(during)
            # … and the refused one got that hour only once it came back
            backlog = [
                r
                for r in platforms.record.readings(centre="group", cn=MINUTE_DATA)
                if refused_at + 60 <= posix(r.data_time) < back_at - 120
            ]
            assert backlog and min(r.at for r in backlog) >= back_at - 1
            # … oldest first. Frames made once it is reachable again are live and may go ahead
            # (ISC-2 §7.2.4(5): backfill without starving live data), and a window closes when
            # its point's next reading comes (later on a busy machine): the backlog is what
            # the terminal had stored (and its producer queued, once a minute) before then.
            old = [r for r in backlog if stored_at[r.data_time, r.code] < back_at - 120]
            assert len(old) > len(backlog) / 2, (len(old), len(backlog))
            for code in {r.code for r in old}:
                times = [r.data_time for r in sorted(old, key=lambda r: r.at) if r.code == code]
                assert times == sorted(times), code

    asyncio.run(main())

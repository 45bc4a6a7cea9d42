"""Platform commands answered as in HJ 212-2017 Appendix C: 9011, the data, then 9012 — OverTime/
ReCount (1000), time (1011/1012), intervals (1061–1064) and history requests (2031/2051/2061)
served from the terminal's store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from protocols.hj212 import Cp, ExeRtn, QnRtn
from protocols.hj212 import events as ev
from reference_terminal.app import Terminal
from reference_terminal.model import Event
from reference_terminal.storage.schema import StoreError
from reference_terminal.uplink.frames import local_time

from .helpers import MN_A, Centre, ScaledClock, config, hj212_centre, minute_rows, posix, running


def _completed(events: list[ev.Event]) -> int:
    (done,) = [e for e in events if isinstance(e, ev.RequestCompleted)]
    return done.exe_rtn


def _data(events: list[ev.Event]) -> Cp:
    (data,) = [e for e in events if isinstance(e, ev.RequestData)]
    return data.packet.cp


class SettableClock(ScaledClock):
    def set_time(self, t: float) -> None:
        self.start += t - self.time()


def test_commands_follow_the_appendix_c_flows(tmp_path: Path) -> None:
    async def main() -> None:
        platform = Centre(MN_A)
        await platform.start()
        cfg = config(tmp_path, [hj212_centre("a", MN_A, platform.port)])
        clock = ScaledClock(1.0)
        terminal = Terminal(cfg, clock=clock)
        async with running(terminal):
            await platform.wait_for(lambda: bool(platform._conns))
            assert terminal.uplink is not None
            centre = terminal.uplink.centres["a"]

            # C.1: OverTime/ReCount, applied and kept
            seen = await platform.request(1000, Cp.build(OverTime=5, ReCount=2))
            assert isinstance(seen[0], ev.RequestAccepted) and _completed(seen) == ExeRtn.OK
            assert (centre.settings.over_time_s, centre.settings.re_count) == (5, 2)
            seen = await platform.request(1000, Cp.build(OverTime=0, ReCount=2))
            assert _completed(seen) == ExeRtn.CONDITION_ERROR

            # C.2: the device's time, with the PolId echoed
            seen = await platform.request(1011, Cp.build(PolId="w01018"))
            answer = _data(seen)
            assert answer.get("PolId") == "w01018"
            shown = answer.system_time
            assert shown is not None
            assert abs(shown - local_time(clock.time(), 8 * 3600)) < timedelta(seconds=2)

            # C.3: this clock is not the platform's to set: refused, and why is recorded
            seen = await platform.request(1012, Cp.build(SystemTime=datetime(2030, 1, 1)))
            assert _completed(seen) == ExeRtn.CONDITION_ERROR
            assert terminal.store is not None
            logged = await terminal.store.events(kind="uplink_command")
            assert "not set by platforms" in logged[-1].details["outcome"]

            # C.5–C.8: intervals read and set; values outside 表 4 refused
            assert _data(await platform.request(1061)).rtd_interval == 900
            assert _completed(await platform.request(1062, Cp.build(RtdInterval=300))) == 1
            assert _data(await platform.request(1061)).rtd_interval == 300
            assert _completed(await platform.request(1062, Cp.build(RtdInterval=10))) == 3
            assert _data(await platform.request(1063)).min_interval == 1
            assert _completed(await platform.request(1064, Cp.build(MinInterval=10))) == 1
            assert _data(await platform.request(1063)).min_interval == 10
            assert _completed(await platform.request(1064, Cp.build(MinInterval=7))) == 3

            # a command the terminal does not run: 9011 QnRtn=2
            (refused,) = await platform.request(3011)
            assert isinstance(refused, ev.RequestRejected) and refused.qn_rtn == QnRtn.REJECTED

        # what the platform set survives a restart
        async with running(Terminal(cfg, clock=clock)):
            await platform.wait_for(lambda: len(platform._conns) == 2)
            assert _data(await platform.request(1061)).rtd_interval == 300
        await platform.stop()

    asyncio.run(main())


def test_a_settable_clock_is_set_by_1012(tmp_path: Path) -> None:
    async def main() -> None:
        platform = Centre(MN_A)
        await platform.start()
        clock = SettableClock(1.0)
        terminal = Terminal(config(tmp_path, [hj212_centre("a", MN_A, platform.port)]), clock=clock)
        async with running(terminal):
            await platform.wait_for(lambda: bool(platform._conns))
            wanted = datetime(2030, 1, 1, 12, 0, 0)
            seen = await platform.request(1012, Cp.build(SystemTime=wanted))
            assert _completed(seen) == ExeRtn.OK
            assert abs(clock.time() - posix(wanted)) < 2
        await platform.stop()

    asyncio.run(main())


def test_history_requests_are_answered_from_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        platform = Centre(MN_A)
        await platform.start()
        clock = ScaledClock(1.0)
        streams = {"realtime": False, "minute": False, "hourly": False, "daily": False}
        cfg = config(tmp_path, [hj212_centre("a", MN_A, platform.port, streams=streams)])
        async with running(Terminal(cfg, clock=clock)) as store:
            now = clock.time()
            start = now - now % 3600 - 3600
            await store.write_derived(minute_rows(start, 30))
            await platform.wait_for(lambda: bool(platform._conns))
            begin = local_time(start + 600, 8 * 3600)
            end = local_time(start + 900, 8 * 3600)  # EndTime is inclusive (flow C.20)
            before = len(platform.uploads)
            seen = await platform.request(2051, Cp.build(BeginTime=begin, EndTime=end))
            assert isinstance(seen[0], ev.RequestAccepted) and _completed(seen) == ExeRtn.OK
            records = platform.history_records(before)
            assert [r.data_time for r in records] == [
                begin + timedelta(minutes=m) for m in range(6)
            ]
            assert len({r.qn for r in records}) == 6  # each record its own QN
            first = records[0].packet.cp.pollutants
            counter = {"Cou": Decimal("11.25"), "Min": Decimal("10.25"), "Max": Decimal("12.25")}
            assert dict(first["C301103001e0101"].values) == counter
            assert first["a05001"].avg is not None and first["a05001"].flag == "N"

            # nothing stored for that day: ExeRtn=100
            day = local_time(start - 30 * 86400, 8 * 3600)
            seen = await platform.request(2031, Cp.build(BeginTime=day, EndTime=day))
            assert _completed(seen) == ExeRtn.NO_DATA
        await platform.stop()

    asyncio.run(main())


def test_a_command_the_store_cannot_log_still_gets_its_result(tmp_path: Path) -> None:
    """9012 goes even when the command log cannot be written (a full disk): a request left
    open would swallow the platform's retries of it for the rest of the connection."""

    async def main() -> None:
        platform = Centre(MN_A)
        await platform.start()
        terminal = Terminal(config(tmp_path, [hj212_centre("a", MN_A, platform.port)]))
        async with running(terminal):
            await platform.wait_for(lambda: bool(platform._conns))
            assert terminal.store is not None
            store = terminal.store

            async def disk_full(events: Iterable[Event]) -> None:
                raise StoreError("could not commit 1 row(s): database or disk is full")

            store.write_events = disk_full  # type: ignore[method-assign]
            seen = await platform.request(1061, Cp.build())
            assert _completed(seen) == ExeRtn.OK
        await platform.stop()

    asyncio.run(main())

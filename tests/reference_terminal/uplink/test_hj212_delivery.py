"""Delivery to HJ 212 centres over loopback sockets: every frame acknowledged exactly once at
every centre, a refusing centre delaying no other, restarts resending under the same QN, the
backlog oldest-first beside live frames on time, and a full outbox raising an alarm without
dropping anything (ISC-2 §7.2.4(3)–(5), CPCIF §8.3)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.app import Terminal
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store
from reference_terminal.uplink.producer import UNLINKED_SCAN_EVERY_S

from .helpers import (
    MN_A,
    MN_B,
    T0,
    Centre,
    ScaledClock,
    config,
    hj212_centre,
    local_midnight,
    minute_rows,
    posix,
    running,
)

SPEED = 60.0  # one virtual minute per wall second


async def _free_port() -> int:
    probe = Centre(MN_B)
    port = await probe.start()
    await probe.stop()
    return port


async def _minutes_closing(store: Store, clock: ScaledClock, minutes: int) -> list[float]:
    """Write each minute's window as processing would when it closes; the minutes' starts."""
    starts = []
    for _ in range(minutes):
        now = clock.time()
        start = now - now % 60
        await clock.sleep(start + 60 - now + 0.5)
        await store.write_derived(minute_rows(start, 1))
        starts.append(start)
    return starts


def _times(centre: Centre, cn: int = 2051) -> list[float]:
    return [posix(u.data_time) for u in centre.uploads if u.cn == cn and u.data_time]


def test_two_centres_at_once_one_refusing_the_other_on_time(tmp_path: Path) -> None:
    async def main() -> None:
        a = Centre(MN_A)
        await a.start()
        b_port = await _free_port()  # nobody listens: centre b refuses connections
        # b waits a whole minute between attempts: were a held up by b's retries, a's uploads
        # would drift by that much, far beyond the bound below, which leaves room for the
        # scheduling stalls of a loaded machine (21 s once, at 60 virtual seconds a second).
        b_backoff = {"initial_s": 60, "max_s": 60, "jitter": 0}
        cfg = config(
            tmp_path,
            [hj212_centre("a", MN_A, a.port), hj212_centre("b", MN_B, b_port, backoff=b_backoff)],
        )
        clock = ScaledClock(SPEED)
        terminal = Terminal(cfg, clock=clock)
        async with running(terminal) as store:
            starts = await _minutes_closing(store, clock, 4)
            await a.wait_for(lambda: len(_times(a)) == 4)
            # a: every minute once, each within its period's end + grace + a few seconds
            loop_at = {u.qn: u.at for u in a.uploads}
            assert len(loop_at) == 4
            lateness = [
                (u.at - a.uploads[0].at) * SPEED - (start - starts[0])
                for u, start in zip(a.uploads, starts, strict=True)
            ]
            assert max(lateness) - min(lateness) < 40, lateness
            for upload in a.uploads:
                assert upload.codes == ("C301103001e0101", "a05001")
                assert upload.packet.flag is not None and upload.packet.flag.ack

            assert terminal.uplink is not None
            outbox_a = terminal.uplink.centres["a"].outbox
            # a has the 4th frame once it arrives; the terminal, once a's answer arrives back
            await a.wait_for(lambda: outbox_a.stats.acknowledged >= 4)
            await outbox_a.flush()
            status = await terminal.uplink.status()
            assert status["b"].link.connect_failures >= 1
            # b, unreachable, has built nothing yet: its frames wait in the store for the
            # link, or for the scan every ten minutes (unless a stalled machine got there)
            if clock.time() < T0 + UNLINKED_SCAN_EVERY_S:
                assert status["b"].outbox == 0
            assert status["a"].outbox == 0

            # b comes up: it gets the whole backlog, oldest first, each frame once
            b = Centre(MN_B, port=b_port)
            await b.start()
            await b.wait_for(lambda: len(b.uploads) >= 4, timeout=15)
            more = await _minutes_closing(store, clock, 1)
            await b.wait_for(lambda: len(b.uploads) == 5)
            await a.wait_for(lambda: len(a.uploads) == 5)
            assert _times(b) == sorted(_times(b))
            assert len({u.qn for u in b.uploads}) == 5
            assert _times(b) == [*starts, *more]
            await b.stop()
        await a.stop()

    asyncio.run(main())


def test_a_centres_client_that_fails_runs_again_and_the_terminal_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected fault in one centre's upload (here its reconnection delay raising, as a
    week of refusals once made it) stops neither the terminal nor the other centre: the
    failed client runs again a minute later and delivers once its centre is up."""

    async def main() -> None:
        a = Centre(MN_A)
        await a.start()
        b_port = await _free_port()
        cfg = config(tmp_path, [hj212_centre("a", MN_A, a.port), hj212_centre("b", MN_B, b_port)])
        clock = ScaledClock(SPEED)
        terminal = Terminal(cfg, clock=clock)
        async with running(terminal) as store:
            assert terminal.uplink is not None
            client_b = terminal.uplink.centres["b"].client
            assert client_b is not None
            delay = client_b.backoff.next
            failures = iter([OverflowError(34, "Numerical result out of range")])

            def next_delay() -> float:
                if (failure := next(failures, None)) is not None:
                    raise failure
                return delay()

            monkeypatch.setattr(client_b.backoff, "next", next_delay)
            status = client_b.status
            await a.wait_for(lambda: status.restarts == 1)
            assert "client failed: OverflowError" in status.last_error
            refused = status.connect_failures
            starts = await _minutes_closing(store, clock, 2)
            await a.wait_for(lambda: len(_times(a)) == 2)
            assert status.connect_failures > refused  # running again, still refused

            b = Centre(MN_B, port=b_port)
            await b.start()
            await b.wait_for(lambda: _times(b) == starts, timeout=15)
            await b.stop()
        await a.stop()

    asyncio.run(main())


def test_restart_after_a_kill_resends_unacknowledged_frames_with_the_same_qn(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        silent = Centre(MN_A, ack=False)  # receives, never answers 9014
        await silent.start()
        cfg = config(tmp_path, [hj212_centre("a", MN_A, silent.port, over_time_s=30)])
        clock = ScaledClock(SPEED)
        async with running(Terminal(cfg, clock=clock)) as store:
            await _minutes_closing(store, clock, 3)
            await silent.wait_for(lambda: len({u.qn for u in silent.uploads}) == 3)
        first = {u.qn: u.data_time for u in silent.uploads}
        await silent.stop()

        healthy = Centre(MN_A, port=silent.port)
        await healthy.start()
        terminal = Terminal(cfg, clock=ScaledClock(SPEED, start=clock.time()))
        async with running(terminal) as store:
            await healthy.wait_for(lambda: len(healthy.uploads) >= 3)
            assert terminal.uplink is not None
            outbox = terminal.uplink.centres["a"].outbox
            await healthy.wait_for(lambda: outbox.stats.acknowledged >= 3)
            await outbox.flush()
            assert await outbox.size() == 0
        again = {u.qn: u.data_time for u in healthy.uploads[:3]}
        assert again == first  # same QN, same DataTime: the platform can de-duplicate
        await healthy.stop()

    asyncio.run(main())


def test_backlog_goes_oldest_first_while_live_frames_keep_their_schedule(tmp_path: Path) -> None:
    async def main() -> None:
        port = await _free_port()
        centre = {"outbox": {"window": 2}}
        cfg = config(tmp_path, [hj212_centre("a", MN_A, port, **centre)])
        clock = ScaledClock(SPEED)
        terminal = Terminal(cfg, clock=clock)
        async with running(terminal) as store:
            # an outage of two hours: 120 minutes stored, enqueued, not delivered
            now = clock.time()
            outage_start = now - now % 60 - 120 * 60
            await store.write_derived(minute_rows(outage_start, 120))
            assert terminal.uplink is not None
            outbox = terminal.uplink.centres["a"].outbox
            await terminal.uplink.send_now("a")
            assert await outbox.size() == 120

            # 2 in flight: ~3.6 s of backlog, while the two live minutes close within ~2 s
            slow = Centre(MN_A, port=port, ack_delay_s=0.06)
            await slow.start()
            live = await _minutes_closing(store, clock, 2)
            await slow.wait_for(lambda: len(slow.uploads) == 122, timeout=20)
            times = _times(slow)
            backlog = [t for t in times if t < outage_start + 120 * 60]
            assert backlog == sorted(backlog) and len(backlog) == 120
            # the live minutes went out while the backlog was still going, not after it
            arrived = {posix(u.data_time): u.at for u in slow.uploads if u.data_time}
            last_backlog_at = max(arrived[t] for t in backlog)
            for start in live:
                assert arrived[start] < last_backlog_at
            await slow.stop()

    asyncio.run(main())


def test_frames_built_as_the_link_returns_go_with_the_backlog_oldest_first(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        port = await _free_port()
        backoff = {"initial_s": 5, "max_s": 5, "jitter": 0}
        cfg = config(tmp_path, [hj212_centre("a", MN_A, port, backoff=backoff)])
        clock = ScaledClock(SPEED)
        terminal = Terminal(cfg, clock=clock)
        async with running(terminal) as store:
            assert terminal.uplink is not None
            outbox = terminal.uplink.centres["a"].outbox
            now = clock.time()
            first = now - now % 60 - 20 * 60
            await store.write_derived(minute_rows(first, 10))
            await terminal.uplink.send_now("a")
            assert await outbox.size() == 10  # the outage's first ten minutes: the backlog
            await store.write_derived(minute_rows(first + 600, 10))
            await clock.sleep(120)
            # the link is down: the later ten wait in the store, not built every minute
            assert await outbox.size() == 10

            centre = Centre(MN_A, port=port)
            await centre.start()
            await centre.wait_for(lambda: len(_times(centre)) == 20, timeout=20)
            # built when the link came back (not at the next ten-minute scan), before the
            # client took its backlog: all twenty in DataTime order, none sent ahead as live
            assert clock.time() < T0 + UNLINKED_SCAN_EVERY_S
            assert _times(centre) == [first + 60 * m for m in range(20)]
            await centre.stop()

    asyncio.run(main())


def test_a_full_outbox_raises_an_alarm_and_drops_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        port = await _free_port()
        daily = {"realtime": False, "hourly": False, "daily": True}
        # OverTime of a minute (a second of wall time): a busy machine must not turn late
        # answers into resends, which would be counted as uploads below
        centre = hj212_centre(
            "a", MN_A, port, streams=daily, outbox={"max_entries": 7}, over_time_s=60
        )
        clock = ScaledClock(SPEED)
        terminal = Terminal(config(tmp_path, [centre]), clock=clock)
        async with running(terminal) as store:
            day0 = local_midnight(clock.time()) - 10 * 86400
            days = [
                Derived(
                    p, "day", day0 + d * 86400, day0 + (d + 1) * 86400, Decimal(d), Quality.GOOD
                )
                for d in range(10)
                for p in ("P1", "P2")
            ]
            await store.write_derived(days)
            assert terminal.uplink is not None
            await terminal.uplink.send_now("a")
            outbox = terminal.uplink.centres["a"].outbox
            assert await outbox.size() == 7 and outbox.full
            (alarm,) = await store.events(kind="alarm")
            assert alarm.details["alarm"] == "uplink_outbox_full"
            assert alarm.details["clause"] == "CPCIF §8.3"
            (audit,) = await store.events(kind="audit")
            assert audit.details["action"] == "uplink_outbox_full"

            up = Centre(MN_A, port=port)
            await up.start()
            # the seven go out; as their acknowledgements make room, the producer may already
            # enqueue the rest (a loaded machine saw all ten before the test looked)
            await up.wait_for(lambda: len({u.qn for u in up.uploads}) >= 7, timeout=30)
            await outbox.flush()
            await terminal.uplink.send_now("a")  # room again: the rest follows
            await up.wait_for(lambda: len({u.qn for u in up.uploads}) == 10, timeout=30)
            assert sorted(_times(up, 2031)) == _times(up, 2031)
            assert len(set(_times(up, 2031))) == 10
            assert len(await store.events(kind="alarm_cleared")) == 1
            await up.stop()

    asyncio.run(main())


def test_minutes_settled_before_they_are_sent_keep_their_max_and_min(tmp_path: Path) -> None:
    async def main() -> None:
        port = await _free_port()
        clock = ScaledClock(SPEED)
        terminal = Terminal(config(tmp_path, [hj212_centre("a", MN_A, port)]), clock=clock)
        async with running(terminal) as store:
            now = clock.time()
            start = now - now % 60 - 10 * 60
            # the first five minutes move to the tables keyed by point before any scan (one
            # turn: the settle is queued before the write wakes the producer)
            await asyncio.gather(store.write_derived(minute_rows(start, 5)), store.settle())
            await store.write_derived(minute_rows(start + 5 * 60, 5))
            a = Centre(MN_A, port=port)
            await a.start()
            assert terminal.uplink is not None
            await terminal.uplink.send_now("a")
            await a.wait_for(lambda: len(_times(a)) >= 10, timeout=20)
            counters = {
                posix(u.data_time): u.packet.cp.pollutants["C301103001e0101"]
                for u in a.uploads
                if u.cn == 2051 and u.data_time
            }
            for m in range(10):
                value = Decimal("1.25") + m % 5  # minute_rows counts from its own start
                got = counters[start + 60 * m]
                assert (got.cou, got.min, got.max) == (value, value - 1, value + 1), m
            await a.stop()

    asyncio.run(main())

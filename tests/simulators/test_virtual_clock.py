"""The bench's virtual clock: hours pass in moments, but only while nothing has work to do."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from pathlib import Path

from simulators.clock import VirtualClock

T0 = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00


def test_sleepers_wake_at_their_deadlines_in_order_one_step_each() -> None:
    async def main() -> None:
        clock = VirtualClock(T0)
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append((name, clock.monotonic()))

        await asyncio.gather(sleeper("hour", 3600), sleeper("minute", 60), sleeper("second", 1))
        assert woke == [("second", 1.0), ("minute", 60.0), ("hour", 3600.0)]
        assert clock.time() == T0 + 3600
        assert clock.steps == 3  # time jumped from deadline to deadline, nothing in between

    asyncio.run(main())


def test_time_stands_still_while_a_worker_thread_is_busy() -> None:
    """A commit in a writer thread is work: a timer must not fire during it."""

    async def main() -> None:
        clock = VirtualClock(T0)

        def commit() -> float:
            time.sleep(0.3)  # a slow fsync
            return clock.monotonic()

        timer = asyncio.create_task(clock.sleep(5))
        during = await asyncio.to_thread(commit)
        assert during == 0.0 and not timer.done()
        await timer
        assert clock.monotonic() == 5.0

    asyncio.run(main())


def test_time_stands_still_while_bytes_are_in_flight_between_tasks() -> None:
    async def main() -> None:
        clock = VirtualClock(T0)
        seen: list[float] = []

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(4):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        deadline = asyncio.create_task(clock.sleep(30))  # a reply timeout in virtual time
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(50):
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"
            seen.append(clock.monotonic())
        writer.close()
        server.close()
        assert set(seen) == {0.0} and not deadline.done()
        deadline.cancel()

    asyncio.run(main())


def test_a_sleep_too_short_for_a_float_still_moves_the_clock() -> None:
    """Loops that wait until the clock passes a deadline must not find it standing still."""

    async def main() -> None:
        clock = VirtualClock(T0)
        await clock.sleep(1e6)
        before = clock.monotonic()
        await clock.sleep(1e-12)  # below one ULP of 1e6
        assert clock.monotonic() > before

    asyncio.run(main())


def test_a_cancelled_sleep_does_not_move_time() -> None:
    async def main() -> None:
        clock = VirtualClock(T0)
        far = asyncio.create_task(clock.sleep(3600))
        await asyncio.sleep(0)
        far.cancel()
        await clock.sleep(10)
        assert clock.monotonic() == 10.0

    asyncio.run(main())


def test_a_hold_keeps_time_still() -> None:
    async def main() -> None:
        clock = VirtualClock(T0)
        timer = asyncio.create_task(clock.sleep(1))
        with clock.hold():
            for _ in range(50):
                await asyncio.sleep(0)
            assert clock.monotonic() == 0.0 and not timer.done()
        await timer
        assert clock.monotonic() == 1.0

    asyncio.run(main())


def test_an_unknown_blocked_thread_delays_time_but_cannot_stop_it() -> None:
    async def main() -> None:
        clock = VirtualClock(T0, stuck_after_s=0.2)
        release = threading.Event()

        def stuck() -> None:
            while not release.is_set():  # looks busy: not a known waiting place
                time.sleep(0.01)

        worker = threading.Thread(target=stuck, daemon=True)
        worker.start()
        try:
            await clock.sleep(1)
            assert clock.monotonic() == 1.0 and clock.forced_steps >= 1
        finally:
            release.set()
            worker.join()

    asyncio.run(main())


def test_time_moves_on_whatever_a_bystander_thread_is_doing() -> None:
    """A thread that watches the simulated world (a record's writer) holds no time up."""

    async def main() -> None:
        clock = VirtualClock(T0, stuck_after_s=0.2)
        release = threading.Event()

        def watching() -> None:
            while not release.is_set():  # looks busy, as the thread above
                time.sleep(0.01)

        worker = threading.Thread(target=watching, daemon=True)
        worker.start()
        clock.bystander(worker)
        try:
            await clock.sleep(1)
            assert clock.monotonic() == 1.0 and clock.forced_steps == 0
        finally:
            release.set()
            worker.join()

    asyncio.run(main())


def test_time_stands_still_while_held_however_long_the_work_takes() -> None:
    """Setting up (a server starting in a thread, a child process) takes no scenario time."""

    async def main() -> None:
        clock = VirtualClock(T0)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                await clock.sleep(1.0)
                ticks.append(clock.monotonic())

        task = asyncio.create_task(ticker())
        with clock.hold():
            await asyncio.to_thread(time.sleep, 0.3)  # real work, longer than a few steps
            await asyncio.sleep(0.05)
        assert ticks == [] and clock.monotonic() == 0.0
        await clock.sleep(2.5)
        assert ticks == [1.0, 2.0]
        task.cancel()

    asyncio.run(main())


def test_time_stands_still_while_a_watch_sees_something_in_flight() -> None:
    """Bytes inside a pty reach the other end from a kernel worker a moment later: whoever
    can see them asks the clock to wait (simulators.meters.serial_line)."""

    async def main() -> None:
        clock = VirtualClock(T0)
        in_flight = [True, True, True]
        asked: list[float] = []

        def watch() -> bool:
            asked.append(clock.monotonic())
            return bool(in_flight) and in_flight.pop()

        stop = clock.watch(watch)
        await clock.sleep(1)
        assert clock.monotonic() == 1.0 and asked[:4] == [0.0] * 4  # three times no, then yes
        stop()
        seen = len(asked)
        await clock.sleep(1)
        assert len(asked) == seen  # no longer asked

    asyncio.run(main())


def test_a_watch_that_never_lets_go_holds_time_only_for_stuck_after_s() -> None:
    """Work that nothing will ever take up (a store whose writer died) must not stop the
    run for ever: time moves on after ``stuck_after_s`` of real time, counted as forced."""

    async def main() -> None:
        clock = VirtualClock(T0, stuck_after_s=0.05)
        clock.watch(lambda: True)
        started = time.monotonic()
        await clock.sleep(1)
        assert clock.monotonic() == 1.0 and clock.forced_steps == 1
        assert time.monotonic() - started >= 0.05

    asyncio.run(main())


def test_an_open_stores_idle_threads_let_time_pass(tmp_path: Path) -> None:
    """The reference terminal's store threads (writer, intake, checkpointer, readers) waiting
    for work are known as waiting: a day of hourly writes takes no forced step."""
    from reference_terminal.model import Quality, Reading
    from reference_terminal.storage.store import Store, sqlite_url

    async def main() -> None:
        clock = VirtualClock(T0, stuck_after_s=2.0)  # a thread taken for busy: 24 forced steps
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            for hour in range(24):
                value = Decimal(hour)
                await store.write(
                    [Reading("P", clock.time(), str(value), value, Quality.GOOD, 0, "d")]
                )
                await clock.sleep(3600)
            assert len(await store.readings("P", T0, clock.time())) == 24
        assert clock.forced_steps == 0 and clock.monotonic() == 24 * 3600

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 10

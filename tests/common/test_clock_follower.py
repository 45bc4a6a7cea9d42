"""The follower's side of virtual time: its clock reads the leader's time from a shared file,
its sleepers wake only when the leader says their time has come, it settles only once
everything in its process waits, and it answers the leader on a control line."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from common.clock_follower import (
    ControlServer,
    FollowDirectory,
    FollowerClock,
    FollowError,
    FollowSettings,
    SharedTime,
)

pytestmark = pytest.mark.anyio

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def shared(tmp_path: Path) -> SharedTime:
    return SharedTime(tmp_path / "time", create=True)


def test_shared_time_is_what_every_mapping_of_the_file_reads(tmp_path: Path) -> None:
    leader = SharedTime(tmp_path / "time", create=True)
    follower = SharedTime(tmp_path / "time")
    assert follower.read() == 0.0
    leader.write(86_400.25)
    assert follower.read() == 86_400.25
    leader.close()
    follower.close()


async def test_its_time_is_the_leaders_and_its_sleepers_wake_only_when_told(
    shared: SharedTime,
) -> None:
    clock = FollowerClock(T0, shared)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper("minute", 60)), asyncio.create_task(sleeper("s", 1))]
    assert await clock.settle() == 1.0  # what it tells the leader: its earliest deadline

    shared.write(1.0)  # the leader stepped there ...
    assert clock.time() == T0 + 1 and woke == []  # ... but only its word wakes a sleeper
    clock.advance()
    assert await clock.settle() == 60.0
    assert woke == [("s", 1.0)]

    shared.write(30.0)
    clock.advance()  # nothing due
    assert await clock.settle() == 60.0 and len(woke) == 1

    shared.write(60.0)
    clock.advance()
    assert await clock.settle() is None
    assert woke == [("s", 1.0), ("minute", 60.0)]
    await asyncio.gather(*tasks)


async def test_it_settles_only_once_a_busy_worker_thread_is_done(shared: SharedTime) -> None:
    """A commit in a writer thread is work: the leader must not move time during it."""
    clock = FollowerClock(T0, shared)
    committing = threading.Event()

    def commit() -> None:
        committing.set()
        time.sleep(0.3)  # a slow fsync

    worker = asyncio.create_task(asyncio.to_thread(commit))
    while not committing.is_set():
        await asyncio.sleep(0.001)
    await clock.settle()
    assert worker.done()


async def test_it_settles_only_once_its_watches_see_nothing_in_flight(shared: SharedTime) -> None:
    """Work handed to a thread that has not taken it up yet (its store's queue) looks like
    waiting to the threads' frames: a watch says otherwise."""
    clock = FollowerClock(T0, shared)
    untaken = [True, True, True]
    clock.watch(lambda: bool(untaken) and untaken.pop())
    await clock.settle()
    assert untaken == []


async def test_it_does_not_settle_while_held(shared: SharedTime) -> None:
    clock = FollowerClock(T0, shared)
    with clock.hold():
        settling = asyncio.create_task(clock.settle())
        for _ in range(50):
            await asyncio.sleep(0)
        assert not settling.done()
    assert await settling is None


def test_a_follow_directory_carries_the_leaders_settings(tmp_path: Path) -> None:
    directory = FollowDirectory(tmp_path)
    SharedTime(directory.time_file, create=True).write(120.0)
    directory.write_settings(FollowSettings(epoch=T0 + 3600, stuck_after_s=10.0))

    clock = directory.follower_clock()

    assert clock.time() == T0 + 3600 + 120 and clock.stuck_after_s == 10.0


def test_a_follow_directory_the_leader_did_not_make_is_named(tmp_path: Path) -> None:
    with pytest.raises(FollowError, match=r"clock\.json: cannot read"):
        FollowDirectory(tmp_path).follower_clock()
    (tmp_path / "clock.json").write_text('{"epoch": "soon"}')
    with pytest.raises(FollowError, match=r"not the clock settings of a leader"):
        FollowDirectory(tmp_path).follower_clock()
    FollowDirectory(tmp_path).write_settings(FollowSettings(epoch=T0))
    with pytest.raises(FollowError, match="no shared time file"):
        FollowDirectory(tmp_path).follower_clock()


async def test_the_control_line_settles_advances_refuses_and_says_when_the_leader_went(
    tmp_path: Path, shared: SharedTime
) -> None:
    clock = FollowerClock(T0, shared)
    gone = asyncio.Event()

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"no such request: {request!r}")

    woke = asyncio.create_task(clock.sleep(5))
    async with ControlServer(tmp_path / "control.sock", clock, handle, gone=gone.set):
        reader, writer = await asyncio.open_unix_connection(tmp_path / "control.sock")

        async def ask(request: dict[str, Any]) -> dict[str, Any]:
            writer.write(json.dumps(request).encode() + b"\n")
            answer: dict[str, Any] = json.loads(await reader.readline())
            return answer

        assert await ask({"op": "settle"}) == {"deadline": 5.0}
        shared.write(5.0)
        writer.write(b'{"op": "advance"}\n')  # no answer: the leader does not wait for one
        assert await ask({"op": "settle"}) == {"deadline": None}
        assert woke.done()
        assert "ValueError: no such request" in (await ask({"op": "jump"}))["error"]

        writer.close()
        await asyncio.wait_for(gone.wait(), 5)

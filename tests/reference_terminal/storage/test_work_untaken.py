"""What the store tells a virtual clock: work handed to its threads that none has taken up yet.

A thread blocked on its queue looks idle until it wakes; a clock that moved meanwhile let a
producer's transaction "take" the seconds to the next sleeper (seen in retention-6h: a
minute's scan handed over at :05 resumed at :41.965, and every later scan ran at that phase)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection

from reference_terminal.storage.store import Store, _Job

pytestmark = pytest.mark.anyio


def _blocked_until(
    release: threading.Event, started: threading.Event
) -> Callable[[Connection], None]:
    def call(conn: Connection) -> None:
        started.set()
        assert release.wait(10)

    return call


async def test_a_call_queued_behind_a_busy_writer_is_untaken_until_done(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'terminal.db'}") as store:
        assert not store.work_untaken()
        release, started = threading.Event(), threading.Event()
        first = asyncio.ensure_future(store.run_in_writer(_blocked_until(release, started)))
        await asyncio.to_thread(started.wait, 10)  # the writer holds the first call
        second = asyncio.ensure_future(store.run_in_writer(lambda conn: None))
        await asyncio.sleep(0.05)  # handed over at the end of the loop's turn
        assert store.work_untaken()  # queued behind the first, in no thread's hands
        release.set()
        await asyncio.gather(first, second)
        assert not store.work_untaken()


async def test_a_read_counts_until_its_result_is_back(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'terminal.db'}") as store:
        release, started = threading.Event(), threading.Event()
        read = asyncio.ensure_future(store.run_in_reader(_blocked_until(release, started)))
        await asyncio.to_thread(started.wait, 10)
        assert store.work_untaken()
        release.set()
        await read
        assert not store.work_untaken()


async def test_jobs_left_to_a_stopped_writer_hold_no_clock(tmp_path: Path) -> None:
    """Jobs left in the queue of a thread that is gone (a torn power cut killed the disk
    under it) will never be taken: a clock waiting for them would stand still for ever."""
    store = await Store.open(f"sqlite:///{tmp_path / 'terminal.db'}")
    await store.close()
    store._writer.submit(_Job(call=lambda conn: None))  # nobody will take it
    assert not store.work_untaken()

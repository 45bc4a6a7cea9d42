"""A link coming up splits the outbox in two: the backlog up to a boundary read from the store,
and the live entries enqueued past it. Every entry lies on exactly one side, whatever commits
while the boundary is read (ISC-2 §7.2.4(4): nothing stored may wait for the next reconnection).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection

from common.clock import RealClock
from reference_terminal.storage.store import Store
from reference_terminal.uplink.frames import Frame, Item
from reference_terminal.uplink.outbox import LIVE, Entry, Outbox, insert

T0 = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
OFFSET_S = 8 * 3600

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def frames(first_minute: int, count: int) -> list[Frame]:
    return [
        Frame(2051, T0 + 60 * m, (Item("a05001", (("Cou", Decimal(m)),), "N"),))
        for m in range(first_minute, first_minute + count)
    ]


async def open_outbox(tmp_path: Path) -> tuple[Store, Outbox]:
    store = await Store.open(f"sqlite:///{tmp_path / 'terminal.db'}")
    outbox = Outbox(store, "provincial", 10_000, RealClock(), OFFSET_S)
    await outbox.open()
    return store, outbox


def sides(boundary: int, live: list[Entry], enqueued: list[int]) -> tuple[set[int], set[int]]:
    """(entries on neither side, entries on both)."""
    backlog = {i for i in enqueued if i <= boundary}
    offered = {e.id for e in live}
    return set(enqueued) - backlog - offered, backlog & offered


async def test_a_scan_committing_while_the_boundary_is_read_is_behind_it(tmp_path: Path) -> None:
    # A producer stopped (a reconfiguration) while the store's writer commits its scan never
    # hands the entries on: the boundary read after it must count them as backlog.
    store, outbox = await open_outbox(tmp_path)
    try:

        def slow_scan(conn: Connection) -> list[Entry]:
            time.sleep(0.3)
            return insert(conn, outbox.centre, frames(0, 3), LIVE, T0)

        orphan = asyncio.ensure_future(store.run_in_writer(slow_scan))
        await asyncio.sleep(0.05)  # the writer is committing it
        feed = await outbox.open_feed()
        entries = await orphan  # handed on to no one
        assert all(e.id <= feed.boundary for e in entries)
        assert not feed.live
    finally:
        await store.close()


async def test_entries_enqueued_while_the_boundary_is_read_lie_on_one_side(tmp_path: Path) -> None:
    store, outbox = await open_outbox(tmp_path)
    try:
        await outbox.enqueue(frames(0, 5), LIVE)  # backlog before the link comes up
        enqueued: list[int] = []
        for round_ in range(20):
            feed_task = asyncio.ensure_future(outbox.open_feed())
            for k in range(3):  # enqueues racing with the boundary read
                made = await outbox.enqueue(frames(100 * round_ + 10 * k, 2), LIVE)
                enqueued += [e.id for e in made]
                await asyncio.sleep(0)
            feed = await feed_task
            made = await outbox.enqueue(frames(100 * round_ + 50, 1), LIVE)  # link up: live
            enqueued += [e.id for e in made]
            missed, twice = sides(feed.boundary, list(feed.live), enqueued)
            assert not missed and not twice, (round_, feed.boundary, missed, twice)
            assert made[0] in feed.live
            outbox.close_feed(feed)
            enqueued.clear()  # the next link's boundary covers these
    finally:
        await store.close()


async def test_a_closed_feed_is_offered_nothing(tmp_path: Path) -> None:
    store, outbox = await open_outbox(tmp_path)
    try:
        feed = await outbox.open_feed()
        outbox.close_feed(feed)
        await outbox.enqueue(frames(0, 2), LIVE)
        assert not feed.live
        assert not feed.wake.is_set()
    finally:
        await store.close()

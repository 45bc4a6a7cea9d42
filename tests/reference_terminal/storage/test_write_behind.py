"""Writes behind: derived values computed from rows already stored (closed windows) are written
in small chunks whenever the writer has nothing else to do, so the readings that keep
arriving never wait behind a minute's close of every point; closing the store writes them all."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.storage.schema import Derived, StoreError
from reference_terminal.storage.store import BEHIND_TRANSACTION_ROWS, BEHIND_WITH_WRITES, Store
from tests.reference_terminal.storage.helpers import T0, derived, reading, window

pytestmark = pytest.mark.anyio


def minute_figures(points: int, start: float = T0) -> list[Derived]:
    """A minute's windows of ``points`` points: five values each, as readers see them."""
    return [window(f"P{i:04d}", "minute", start, f"{i}.00") for i in range(points)]


async def test_written_behind_values_are_stored_once_flushed(url: str) -> None:
    async with await Store.open(url, behind_chunk=7) as store:
        store.write_behind(minute_figures(10))
        store.write_behind([derived("P0003", "minute", T0, "9.99", length=60.0)])  # replaces
        await store.flush_behind()
        got = await store.derived("P0003")
        assert {d.kind: d.value for d in got}["minute"] == Decimal("9.99")
        assert len(got) == 5
        assert len(await store.derived("P0009")) == 5


async def test_a_write_does_not_wait_for_the_backlog(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url, behind_chunk=50) as store:
        backlog = store.write_behind(minute_figures(25_000))  # 25 000 windows, 500 chunks
        await store.write([reading("LIVE", T0)])
        # a query sees a write once the database holds it: here after at most the chunk being
        # written when it arrived (and its commit), not after the backlog
        assert len(await store.readings("LIVE", 0, 5e9)) == 1
        assert not backlog.done()
        before = store.stats.transactions
        await asyncio.wrap_future(backlog)
        # with nothing else waiting, the chunks share transactions
        assert store.stats.transactions - before <= math.ceil(25_000 / BEHIND_TRANSACTION_ROWS)


async def test_closing_the_store_writes_the_whole_backlog(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        backlog = store.write_behind(minute_figures(300))
    assert backlog.done() and backlog.exception() is None
    async with await Store.open(sqlite_url) as store:
        assert len(await store.derived("P0299")) == 5


async def test_an_invalid_value_fails_its_own_write_behind_only(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        bad = store.write_behind([derived("P0001", "minute", T0, "1.00", length=-1.0)])
        good = store.write_behind(minute_figures(3))
        await store.flush_behind()
        with pytest.raises(ValueError, match=r"ends .* before it starts"):
            bad.result()
        assert good.result() is None
        assert len(await store.derived("P0002")) == 5


async def test_a_backlog_the_database_refuses_fails_and_the_store_still_closes(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = await Store.open(sqlite_url, busy_timeout_s=0.05)
    await store.write([reading("P", T0)])
    await store.readings("P", 0, 5e9)  # applied: the writer is idle
    other = sqlite3.connect(tmp_path / "store.db")
    other.execute("BEGIN EXCLUSIVE")  # no transaction of the writer's can begin
    try:
        backlog = store.write_behind(minute_figures(3))
        with pytest.raises(StoreError, match="locked"):
            await asyncio.wait_for(asyncio.wrap_future(backlog), 10)
    finally:
        other.rollback()
        other.close()
    async with asyncio.timeout(10):
        await store.close()


async def test_a_small_backlog_shares_the_transaction_of_the_writes_applied_next(
    sqlite_url: str,
) -> None:
    async with await Store.open(sqlite_url) as store:
        await store.write([reading("P", T0)])  # the store's first transaction behind it
        await store.readings("P", 0, 5e9)
        before = store.stats.transactions
        small = store.write_behind(minute_figures(3))  # a minute's windows of a small plant
        await store.write([reading("P", T0 + 60)])
        await asyncio.wrap_future(small)
        assert store.stats.transactions - before == 1
        big = store.write_behind(minute_figures(BEHIND_WITH_WRITES + 1))  # every point's, big
        await store.write([reading("P", T0 + 120)])
        await asyncio.wrap_future(big)
        # The write was acknowledged once its intake-log record was durable; a query has it
        # applied (written alone, the backlog can be done first).
        await store.readings("P", 0, 5e9)
        assert store.stats.transactions - before >= 3  # written behind, in its own
        assert len(await store.derived("P0002")) == 5

"""The writer's linger (SQLite beside the intake log): writes acknowledged one by one are applied
to the database together, for a while or up to a number of records, and nobody who needs them
waits for the linger: a query, a close, the intake log's rewind."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.storage.intake_log import REWIND_AT_BYTES
from reference_terminal.storage.store import Store
from tests.reference_terminal.storage.helpers import T0, derived, reading

pytestmark = pytest.mark.anyio

#: Far longer than any of these tests may take: a test that waited for it would fail its bound.
LONG_S = 60.0
#: A linger of time, and one of records with no time bound (as in virtual time), neither of
#: which these tests' writes come to the end of.
GATHERINGS = [
    pytest.param({"linger_s": LONG_S}, id="time"),
    pytest.param({"apply_records": 1_000}, id="records"),
]


def _rows(path: Path) -> int:
    db = sqlite3.connect(path)  # an independent connection, not the store's
    try:
        return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("gather", GATHERINGS)
async def test_writes_acknowledged_apart_are_applied_in_one_transaction(
    tmp_path: Path, gather: dict[str, Any]
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'store.db'}", **gather)
    before = store.stats
    for k in range(5):
        await store.write([reading("P0", T0 + k)])  # each its own intake-log record
    await store.close()
    after = store.stats
    assert after.groups - before.groups == 5
    assert after.transactions - before.transactions == 1
    assert _rows(tmp_path / "store.db") == 5


@pytest.mark.parametrize("gather", GATHERINGS)
async def test_a_query_sees_acknowledged_writes_without_waiting_for_the_linger(
    tmp_path: Path, gather: dict[str, Any]
) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'store.db'}", **gather) as store:
        for k in range(3):
            await store.write([reading("P0", T0 + k)])
            started = time.monotonic()
            got = await store.readings("P0", 0, 5e9)
            assert time.monotonic() - started < LONG_S / 10
            assert [r.t for r in got] == [T0 + i for i in range(k + 1)]


@pytest.mark.parametrize("gather", GATHERINGS)
async def test_closing_applies_what_the_writer_holds_at_once(
    tmp_path: Path, gather: dict[str, Any]
) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'store.db'}", **gather)
    await store.write([reading("P0", T0)])
    started = time.monotonic()
    await store.close()
    assert time.monotonic() - started < LONG_S / 10
    assert _rows(tmp_path / "store.db") == 1


@pytest.mark.parametrize("gather", GATHERINGS)
async def test_the_intake_log_starts_afresh_while_the_writer_lingers(
    tmp_path: Path, gather: dict[str, Any]
) -> None:
    # Rewinding needs every record applied: a writer lingering on would let the log grow on.
    # (Writes come a few milliseconds apart, as from acquisition: a writer saturated by
    # back-to-back writes stays a record or two behind, linger or not, and the log grows
    # until it waits at LOG_MAX_BYTES.)
    async with await Store.open(f"sqlite:///{tmp_path / 'store.db'}", **gather) as store:
        intake_log = store._log
        assert intake_log is not None
        t = T0
        while not intake_log.rewind_due:
            await store.write([reading(f"P{k}", t, raw="33" * 40) for k in range(1000)])
            t += 1
        started = time.monotonic()
        while intake_log.offset >= REWIND_AT_BYTES:
            assert time.monotonic() - started < LONG_S / 10, "the log never started afresh"
            await store.write([reading("P0", t)])
            t += 1
            await asyncio.sleep(0.005)


async def test_a_writer_gathering_records_applies_each_time_it_has_that_many(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    store = await Store.open(f"sqlite:///{path}", apply_records=3)
    try:
        for k in range(7):
            await store.write([reading("P0", T0 + k)])  # each its own intake-log record ...
            await asyncio.sleep(0.02)  # ... taken alone (those queued already go together)
        started = time.monotonic()
        while _rows(path) < 6:
            assert time.monotonic() - started < LONG_S / 10, "six records never applied"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert _rows(path) == 6  # the seventh waits for two more, a query or the close
    finally:
        await store.close()
    assert _rows(path) == 7


async def test_waiting_for_writes_behind_does_not_wait_for_records_to_come(tmp_path: Path) -> None:
    # A restart waits here before acquisition runs again: no record comes meanwhile.
    async with await Store.open(f"sqlite:///{tmp_path / 'store.db'}", apply_records=1_000) as store:
        await store.write([reading("P0", T0)])
        store.write_behind([derived("P0", start=T0)])
        await asyncio.wait_for(store.flush_behind(), LONG_S / 10)
        assert _rows(tmp_path / "store.db") == 1


async def test_records_waiting_for_the_writer_give_the_cyclic_collector_nothing_to_walk(
    tmp_path: Path,
) -> None:
    # A second of readings waiting out a settle, held as tuples, made a young-generation pass
    # of 60 000 objects that stopped the event loop for 30–70 ms (bench_edge_latency).
    rows, writes = 2_000, 20
    async with await Store.open(f"sqlite:///{tmp_path / 'store.db'}", linger_s=LONG_S) as store:
        await store.write([reading("P0", T0 - 1)])  # the writer's first linger starts
        gc.collect()
        gc.disable()  # a pass would untrack the tuples it looked at: count them first
        try:
            before = len(gc.get_objects())
            for k in range(writes):
                await store.write([reading(f"P{i}", T0 + k) for i in range(rows // writes)])
            waiting = len(gc.get_objects()) - before
        finally:
            gc.enable()
        assert _rows(tmp_path / "store.db") < rows  # they were waiting, not applied
    assert waiting < rows // 4, f"{waiting} objects tracked for {rows} rows waiting"

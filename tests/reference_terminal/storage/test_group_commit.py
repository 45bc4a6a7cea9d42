"""Group commit: many small concurrent writers share one sync (an intake-log record, or a
transaction without the log), every acknowledged write is durable and visible to the store's
queries (to another connection too, once applied), a write is atomic, batch_max bounds a
group, and closing flushes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from reference_terminal.storage.schema import StoreError
from reference_terminal.storage.store import Store, StoreClosed
from tests.reference_terminal.storage.conftest import drop_connections
from tests.reference_terminal.storage.helpers import T0, derived, event, reading

pytestmark = pytest.mark.anyio


def _count(path: Path, sql: str = "SELECT COUNT(*) FROM readings") -> int:
    db = sqlite3.connect(path)  # an independent connection, not the store's
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


async def test_concurrent_writers_share_transactions(url: str) -> None:
    async with await Store.open(url) as store:
        writers, per_writer = 300, 3

        async def writer(k: int) -> None:
            await store.write(
                [
                    reading(f"P{k % 10}", T0 + k * per_writer + i, f"{k}.{i}0")
                    for i in range(per_writer)
                ]
            )

        await asyncio.gather(*(writer(k) for k in range(writers)))
        stats = store.stats
        assert stats.writes == writers
        assert stats.rows == writers * per_writer
        assert stats.groups < writers / 5, stats  # grouped, not one fsync per write
        got = {
            (r.point, r.t, str(r.value))
            for p in await store.points()
            for r in await store.readings(p, 0, 5e9)
        }
        want = {
            (f"P{k % 10}", T0 + k * per_writer + i, f"{k}.{i}0")
            for k in range(writers)
            for i in range(per_writer)
        }
        assert got == want


async def test_writes_made_in_one_turn_of_the_event_loop_share_one_commit(url: str) -> None:
    # four devices answering at the same instant: their writes go to the writer together
    async with await Store.open(url) as store:
        await store.write([reading("P0", T0)])
        before = store.stats.groups
        await asyncio.gather(*(store.write([reading(f"P{k}", T0 + 1)]) for k in range(4)))
        assert store.stats.groups == before + 1


async def test_writes_behind_made_among_writes_in_one_turn_do_not_split_their_commit(
    url: str,
) -> None:
    # a minute's close: each device's closed windows go behind, its readings in line
    async with await Store.open(url) as store:
        await store.write([reading("P0", T0)])
        before = store.stats.groups

        async def device(k: int) -> None:
            store.write_behind([derived(f"P{k}", start=T0)])
            await store.write([reading(f"P{k}", T0 + 60)])

        await asyncio.gather(*(device(k) for k in range(4)))
        assert store.stats.groups == before + 1
        await store.flush_behind()
        for k in range(4):
            assert [d.start for d in await store.derived(f"P{k}")] == [T0]
            assert len(await store.readings(f"P{k}", 0, 5e9)) == 1 + (k == 0)


async def test_acknowledged_means_visible_to_the_stores_queries(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        for i in range(20):
            await store.write([reading(t=T0 + i)])
            assert len(await store.readings("EM01.ep", 0, 5e9)) == i + 1


async def test_without_the_intake_log_acknowledged_means_visible_to_another_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    async with await Store.open(f"sqlite:///{path}", intake_log=False) as store:
        for i in range(20):
            await store.write([reading(t=T0 + i)])
            assert _count(path) == i + 1


async def test_the_database_holds_every_acknowledged_write_once_the_store_is_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    async with await Store.open(f"sqlite:///{path}") as store:
        await asyncio.gather(*(store.write([reading(f"P{k}", T0 + k)]) for k in range(300)))
    assert _count(path) == 300
    assert Path(f"{path}-intake").stat().st_size == 0  # nothing left to apply


async def test_batch_max_bounds_a_transaction_and_a_write_stays_atomic(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url, batch_max=10) as store:
        await asyncio.gather(
            *(store.write([reading(f"P{k}", T0 + i) for i in range(3)]) for k in range(100))
        )
        assert store.stats.largest <= 10
        assert store.stats.groups >= 300 / 10
        # one write larger than batch_max is one group of its own, not split
        before = store.stats.groups
        await store.write([reading("BIG", T0 + i) for i in range(25)])
        assert store.stats.groups == before + 1
        assert store.stats.largest == 25


async def test_writes_commit_in_the_order_they_were_made(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url, batch_max=7) as store:
        tasks = [asyncio.ensure_future(store.write([reading("P", T0 + i)])) for i in range(200)]
        await asyncio.gather(*tasks)
        ids = await store.run_in_reader(
            lambda c: [
                tuple(r) for r in c.exec_driver_sql("SELECT id, t FROM readings ORDER BY id")
            ]
        )
        assert [t for _, t in ids] == [T0 + i for i in range(200)]


async def test_readings_events_and_derived_commit_together(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        await store.write([reading()], events=[event("interpolated", reason="linear")])
        assert len(await store.events(kind="interpolated")) == 1
        assert store.stats.groups == 1
        assert store.stats.transactions == 1


async def test_database_error_fails_only_the_write_at_fault(sqlite_url: str) -> None:
    # Without an intake log the database's commit is the acknowledgement (a server always).
    async with await Store.open(sqlite_url, intake_log=False) as store:
        # a trigger makes the database itself refuse one value (validation cannot see it)
        await store.run_in_writer(
            lambda c: c.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON readings_recent WHEN NEW.note = 'refuse' "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
        )
        results = await asyncio.gather(
            *(
                store.write([reading("P", T0 + k, note="refuse" if k == 5 else "")])
                for k in range(10)
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if r is not None]
        assert len(failures) == 1
        assert "could not commit 1 row(s)" in str(failures[0])
        assert "refused by trigger" in str(failures[0])
        assert len(await store.readings("P", 0, 5e9)) == 9
        with pytest.raises(StoreError, match="could not commit 1 row"):  # alone in its group
            await store.write([reading("P", T0 + 99, note="refuse")])


async def test_a_database_refusing_logged_writes_holds_them_until_it_takes_them(
    tmp_path: Path,
) -> None:
    # With the intake log a write is acknowledged before the database has it: a database that
    # then refuses it (here a trigger; in the field a full disk) delays it, never loses it.
    path = tmp_path / "store.db"
    store = await Store.open(f"sqlite:///{path}", read_wait_s=0.5)
    try:
        await store.run_in_writer(
            lambda c: c.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON readings_recent WHEN NEW.note = 'refuse' "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
        )
        await store.write([reading("P", T0, note="refuse")])  # durable in the log
        with pytest.raises(StoreError, match="has not taken in acknowledged writes"):
            await store.readings("P", 0, 5e9)
        db = sqlite3.connect(path, timeout=10)  # the operator mends the database
        try:
            db.execute("DROP TRIGGER refuse")
            db.commit()
        finally:
            db.close()
        assert [r.note for r in await store.readings("P", 0, 5e9)] == ["refuse"]
    finally:
        await store.close()
    assert _count(path) == 1


async def test_a_read_waiting_for_refused_writes_ends_when_the_store_closes(
    tmp_path: Path,
) -> None:
    # A reader waits for acknowledged writes the database has not taken in yet; should the
    # store close meanwhile (a power cut tearing it down), the wait ends at once rather than
    # holding the close for the whole read wait.
    path = tmp_path / "store.db"
    store = await Store.open(f"sqlite:///{path}", read_wait_s=60)
    await store.run_in_writer(
        lambda c: c.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON readings_recent "
            "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
    )
    await store.write([reading("P", T0)])  # durable in the log, refused by the database
    read = asyncio.ensure_future(store.readings("P", 0, 5e9))
    await asyncio.sleep(0.2)
    assert not read.done()
    started = time.monotonic()
    await store.close()
    with pytest.raises(StoreClosed, match="closed before the database took in"):
        await read
    assert time.monotonic() - started < 10
    assert _count(path) == 0
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER refuse")
        db.commit()
    finally:
        db.close()
    reopened = await Store.open(f"sqlite:///{path}")  # the log still holds the write
    try:
        assert len(await reopened.readings("P", 0, 5e9)) == 1
    finally:
        await reopened.close()


async def test_a_failing_writer_call_fails_alone(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:

        def broken(conn: Connection) -> None:
            conn.exec_driver_sql("DELETE FROM readings_recent")
            raise RuntimeError("maintenance step failed")

        await store.write([reading()])
        with pytest.raises(RuntimeError, match="maintenance step failed"):
            await store.run_in_writer(broken)
        assert len(await store.readings("EM01.ep", 0, 5e9)) == 1  # rolled back
        await store.write([reading(t=T0 + 1)])
        assert len(await store.readings("EM01.ep", 0, 5e9)) == 2


async def test_calls_queued_together_share_a_transaction_and_one_failing_fails_alone(
    url: str,
) -> None:
    import threading

    async with await Store.open(url) as store:
        await store.write([reading("KEEP"), reading("GONE"), reading("ALSO_GONE")])
        gate = threading.Event()
        busy = asyncio.ensure_future(store.run_in_writer(lambda _c: gate.wait(5)))
        await asyncio.sleep(0.05)  # the writer is inside that call: the next ones queue up

        def delete(point: str) -> Any:
            def call(conn: Connection) -> int:
                return int(
                    conn.exec_driver_sql(
                        f"DELETE FROM readings_recent WHERE point = '{point}'"
                    ).rowcount
                )

            return call

        def broken(conn: Connection) -> None:
            conn.exec_driver_sql("DELETE FROM readings_recent")  # undone with its savepoint
            raise RuntimeError("maintenance step failed")

        before = store.stats.transactions
        first = asyncio.ensure_future(store.run_in_writer(delete("GONE")))
        failing = asyncio.ensure_future(store.run_in_writer(broken))
        second = asyncio.ensure_future(store.run_in_writer(delete("ALSO_GONE")))
        await asyncio.sleep(0.05)
        gate.set()
        assert await busy is True
        assert (await first, await second) == (1, 1)
        with pytest.raises(RuntimeError, match="maintenance step failed"):
            await failing
        assert store.stats.transactions - before == 2  # the gate's call, then the three together
        assert await store.points() == ["KEEP"]


async def test_writes_go_on_after_the_server_dropped_the_connections(server_url: str) -> None:
    async with await Store.open(server_url) as store:
        await store.write([reading(t=T0)])
        assert await store.readings("EM01.ep", 0, 5e9)
        assert drop_connections(server_url) >= 1  # the writer's and the reader's sessions
        await store.write([reading(t=T0 + 1)])  # a fresh connection, transparently
        assert len(await store.readings("EM01.ep", 0, 5e9)) == 2


async def test_close_flushes_pending_writes(sqlite_url: str, tmp_path: Path) -> None:
    store = await Store.open(sqlite_url)
    tasks = [asyncio.ensure_future(store.write([reading("P", T0 + i)])) for i in range(50)]
    await asyncio.sleep(0)  # the writes are queued, most not yet committed
    await store.close()
    await asyncio.gather(*tasks)
    assert _count(tmp_path / "store.db") == 50
    with pytest.raises(StoreClosed):
        await store.write([reading()])
    with pytest.raises(StoreClosed):
        await store.readings("P", 0, 1)
    await store.close()  # twice is harmless


async def test_the_event_loop_keeps_running_during_a_large_write(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.001)

        # ~0.2 s of writer work; the loop gets the GIL back every 5 ms (sys.getswitchinterval),
        # so ~20 ticks, and a loop blocked by the write would tick once.
        rows = [reading(f"P{i % 50}", T0 + i) for i in range(100_000)]
        task = asyncio.ensure_future(ticker())
        await store.write(rows)
        done = True
        await task
        assert ticks >= 5


async def test_a_write_cancelled_before_the_writer_took_it_is_not_stored(sqlite_url: str) -> None:
    import threading

    # Without the intake log, writes wait for the writer's transaction. (With it, a small
    # write is logged at the end of the turn it was made in: no cancellation can come first.)
    async with await Store.open(sqlite_url, intake_log=False) as store:
        gate = threading.Event()
        busy = asyncio.ensure_future(store.run_in_writer(lambda _c: gate.wait(5)))
        await asyncio.sleep(0.05)  # the writer is now inside the call
        cancelled = asyncio.ensure_future(store.write([reading("GONE")]))
        kept = asyncio.ensure_future(store.write([reading("KEPT")]))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0.01)  # the cancellation reaches the queued job
        gate.set()
        assert await busy is True
        await kept
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await store.points() == ["KEPT"]


async def test_stats_count_the_writers_busy_time_by_kind_of_work(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        assert store.stats.busy_s == {"apply": 0.0, "behind": 0.0, "calls": 0.0, "settle": 0.0}
        await store.write([reading("P0", T0)])
        await store.points()  # waits for the writer to apply the write
        store.write_behind([derived("P0")])
        await store.flush_behind()
        await store.settle()
        await store.run_in_writer(lambda _conn: time.sleep(0.05))
    busy = store.stats.busy_s  # once closed: the writer counts a job's time after answering it
    assert all(busy[kind] > 0 for kind in ("apply", "behind", "settle")), busy
    # the call's 50 ms are its own (how long the other jobs took depends on the host's load)
    assert 0.05 <= busy["calls"] < 1.0, busy


async def test_writes_behind_made_with_a_write_share_its_transaction(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write([reading("P", T0)])
        await store.points()  # applied: a query waits for it
        before = store.stats.transactions
        # The writer kept busy while both are handed over: an idle one may write the first
        # behind before the write comes (seen once in a full run of the suite on two cores).
        busy = asyncio.ensure_future(store.run_in_writer(lambda _conn: time.sleep(0.3)))
        await asyncio.sleep(0.05)
        behind = store.write_behind([derived("P", "hour", T0 - 3600)])  # handed over first
        await store.write([reading("P", T0 + 60)])
        await busy
        await asyncio.wrap_future(behind)
        assert store.stats.transactions - before == 2  # the call's, and one for both
        assert [d.start for d in await store.derived("P", "hour")] == [T0 - 3600]

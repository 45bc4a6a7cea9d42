"""Recent rows settle: new readings and derived values go to the recent tables (time first),
and once they hold ``settle_rows`` the writer moves them, in its idle time and in one
transaction, to the settled tables (point first). Readers see the views ``readings`` and
``derived_values``, in which nothing moves: the same rows, the same ids, before and after; a
derived value rewritten for a settled period is updated where it is and keeps its id."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, inspect, select

from reference_terminal.storage.backup import backup, restore
from reference_terminal.storage.migrations import migrate
from reference_terminal.storage.schema import (
    Derived,
    derived_extent,
    derived_recent,
    derived_settled,
    derived_top_id,
    derived_values,
    readings_recent,
    readings_settled,
)
from reference_terminal.storage.store import Store, _create_boot_indexes, make_engine
from tests.reference_terminal.storage.helpers import T0, derived, reading

pytestmark = pytest.mark.anyio


def minutes(points: int, first: int, count: int) -> list[Derived]:
    return [
        derived(f"P{p:03d}", kind, T0 + 60 * m, f"{p}.{m:02d}", length=60.0)
        for m in range(first, first + count)
        for p in range(points)
        for kind in ("minute", "increment")
    ]


async def settles(store: Store, n: int, timeout_s: float = 10.0) -> None:
    """Wait until the writer has settled ``n`` times (it does so in its idle time)."""
    deadline = time.monotonic() + timeout_s
    while store.stats.settles < n:
        assert time.monotonic() < deadline, f"{store.stats.settles} settles, expected {n}"
        await asyncio.sleep(0.01)


def where(conn: Connection) -> dict[str, int]:
    return {
        t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
        for t in (derived_recent, derived_settled)
    }


def where_readings(conn: Connection) -> dict[str, int]:
    return {
        t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
        for t in (readings_recent, readings_settled)
    }


def by_key(conn: Connection) -> dict[tuple[str, str, float], tuple[int, str | None]]:
    c = derived_values.c
    rows = conn.execute(select(c.point, c.kind, c.period_start, c.id, c.value))
    return {(p, k, s): (i, v) for p, k, s, i, v in rows}


async def ids_of_minute(store: Store, start: float) -> list[int]:
    """Ids of the derived values of the minute starting at ``start``."""
    return await store.run_in_reader(
        lambda c: [i for (_, _, s), (i, _) in by_key(c).items() if s == start]
    )


async def test_settling_moves_rows_without_readers_seeing_a_change(url: str) -> None:
    async with await Store.open(url, settle_rows=100) as store:
        await store.write_derived(minutes(10, 0, 4))  # 80 rows: not yet
        await store.run_in_writer(lambda c: None)
        assert store.stats.settles == 0
        before = await store.run_in_reader(by_key)
        assert await store.run_in_reader(where) == {"derived_recent": 80, "derived_settled": 0}

        await store.write_derived(minutes(10, 4, 2))  # 120 rows: settled when idle
        await settles(store, 1)
        assert await store.run_in_reader(where) == {"derived_recent": 0, "derived_settled": 120}
        after = await store.run_in_reader(by_key)
        assert {k: v for k, v in after.items() if k in before} == before
        assert len(after) == 120
        assert await store.run_in_reader(derived_top_id) == max(i for i, _ in after.values())
        extent = await store.run_in_reader(lambda c: c.execute(select(derived_extent)).all())
        assert dict(extent) == {"minute": T0 + 5 * 60, "increment": T0 + 5 * 60}

        # a point's history reads the same from either table
        history = await store.derived("P003", "minute")
        assert [d.value for d in history] == [Decimal(f"3.{m:02d}") for m in range(6)]


async def test_ids_keep_growing_in_commit_order_across_settles_and_reopening(url: str) -> None:
    async with await Store.open(url, settle_rows=20) as store:
        await store.write_derived(minutes(5, 0, 3))
        await settles(store, 1)
        top = await store.run_in_reader(derived_top_id)
        await store.write_derived(minutes(5, 3, 1))
        new = await ids_of_minute(store, T0 + 180)
        assert min(new) > top
    async with await Store.open(url, settle_rows=20) as store:
        top = await store.run_in_reader(derived_top_id)
        await store.write_derived(minutes(5, 4, 1))
        newest = await ids_of_minute(store, T0 + 240)
        assert min(newest) > top


async def test_a_settled_period_written_again_is_updated_in_place(url: str) -> None:
    async with await Store.open(url, settle_rows=10) as store:
        await store.write_derived(minutes(5, 0, 2))
        await settles(store, 1)
        (old_id, _) = (await store.run_in_reader(by_key))[("P002", "minute", T0 + 60)]
        # a recomputation (a backfill) of a settled period, and a new period beside it
        await store.write_derived(
            [derived("P002", "minute", T0 + 60, "99.00", length=60.0), *minutes(1, 2, 1)]
        )
        got = await store.run_in_reader(by_key)
        assert got[("P002", "minute", T0 + 60)] == (old_id, "99.00")
        assert len(got) == 22  # nothing twice
        assert await store.run_in_reader(where) == {"derived_recent": 2, "derived_settled": 20}


async def test_a_recent_period_written_again_is_replaced_in_place(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        await store.write_derived(minutes(2, 0, 1))
        (old_id, _) = (await store.run_in_reader(by_key))[("P001", "minute", T0)]
        await store.write_derived([derived("P001", "minute", T0, "7.00", length=60.0)])
        got = await store.run_in_reader(by_key)
        assert got[("P001", "minute", T0)] == (old_id, "7.00")
        assert len(got) == 4


async def test_a_store_of_schema_5_keeps_its_values_and_ids(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine, target=5)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO derived_values (point, kind, period_start, period_end, value, "
                "quality, note, computed_at) VALUES "
                f"('P000', 'hour', {T0}, {T0 + 3600}, '1.00', 'good', '', {T0 + 3601}), "
                f"('P001', 'hour', {T0}, {T0 + 3600}, '2.00', 'good', '', {T0 + 3601})"
            )
            conn.exec_driver_sql(
                "INSERT INTO readings (point, t, raw, value, quality, digits, device, note) "
                f"VALUES ('P000', {T0}, 'r', '1.00', 'good', 2, 'm', '')"
            )
    finally:
        engine.dispose()
    async with await Store.open(url) as store:
        old = await store.run_in_reader(by_key)
        assert sorted(i for i, _ in old.values()) == [1, 2]
        assert await store.run_in_reader(where) == {"derived_recent": 0, "derived_settled": 2}
        assert await store.run_in_reader(where_readings) == {
            "readings_recent": 0,
            "readings_settled": 1,
        }
        await store.write([reading("P000", T0 + 60, "2.00")])
        ids = await store.run_in_reader(lambda c: c.scalars(select(readings_recent.c.id)).all())
        assert ids == [2]
        # the old period, written again, stays where it is; a new one gets a new id
        await store.write_derived(
            [derived("P000", "hour", T0, "1.50"), derived("P000", "hour", T0 + 3600, "3.00")]
        )
        got = await store.run_in_reader(by_key)
        assert got[("P000", "hour", T0)] == (1, "1.50")
        assert got[("P000", "hour", T0 + 3600)][0] > 2


async def test_backup_and_restore_carry_both_tables(url: str, tmp_path: Path) -> None:
    async with await Store.open(url, settle_rows=30) as store:
        await store.write_derived(minutes(5, 0, 4))  # settled
        await settles(store, 1)
        await store.write_derived(minutes(5, 4, 1))  # recent
        expected = await store.run_in_reader(by_key)
        await backup(store, tmp_path / "b.db")
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restore(tmp_path / "b.db", target)
    async with await Store.open(target) as restored:
        assert await restored.run_in_reader(by_key) == expected
        top = await restored.run_in_reader(derived_top_id)
        await restored.write_derived(minutes(1, 9, 1))
        newest = await ids_of_minute(restored, T0 + 540)
        assert min(newest) > top


async def test_readings_settle_too_and_read_the_same(url: str) -> None:
    points = [f"P{p:03d}" for p in range(8)]
    async with await Store.open(url, settle_rows=40) as store:
        for m in range(4):
            await store.write([reading(p, T0 + 60 * m, f"{m}.00") for p in points])
        await store.run_in_writer(lambda c: None)
        assert store.stats.settles == 0
        before = (await store.points(), await store.latest(), await store.readings("P005", 0, 5e9))
        await store.write([reading(p, T0 + 240, "4.00") for p in points])  # 40 rows: settled
        await settles(store, 1)
        assert await store.run_in_reader(where_readings) == {
            "readings_recent": 0,
            "readings_settled": 40,
        }
        await store.write([reading("P999", T0 + 300, "5.00")])  # a point only recent knows
        assert await store.points() == [*before[0], "P999"]
        latest = await store.latest()
        assert latest["P005"].t == T0 + 240 and latest["P999"].t == T0 + 300
        history = await store.readings("P005", 0, 5e9)
        assert history[:4] == before[2]
        assert [r.value for r in history] == [Decimal(f"{m}.00") for m in range(5)]


async def test_opening_leaves_the_recent_rows_where_they_are(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_derived(minutes(3, 0, 2))
        await store.write([reading("P000", T0)])
        expected = await store.run_in_reader(by_key)
    async with await Store.open(url) as store:
        # a boot does not pay for a move: the writer settles in its own time, as ever
        assert await store.run_in_reader(where) == {"derived_recent": 12, "derived_settled": 0}
        assert await store.run_in_reader(by_key) == expected


def boot_indexes(conn: Connection) -> set[str]:
    tables = (derived_recent.name, readings_recent.name)
    found = {i["name"] for t in tables for i in inspect(conn).get_indexes(t)}
    return {name for name in found if name and name.startswith("ix_boot_")}


async def test_a_restart_reads_the_recent_rows_by_point_and_leaves_no_index_behind(
    url: str,
) -> None:
    async with await Store.open(url) as store:
        await store.write_derived(minutes(3, 0, 2))
        await store.write([reading("P000", T0)])
        assert await store.run_in_reader(boot_indexes) == set()
        async with store.indexed_by_point():
            assert await store.run_in_reader(boot_indexes) == {
                "ix_boot_derived_recent_point",
                "ix_boot_readings_recent_point",
            }
            if url.startswith("sqlite"):  # what a restart's per-point query is answered by
                plan = await store.run_in_reader(
                    lambda c: " ".join(
                        str(row[-1])
                        for row in c.exec_driver_sql(
                            "EXPLAIN QUERY PLAN SELECT period_end FROM derived_recent "
                            "WHERE point = 'P001' AND kind = 'minute' "
                            "ORDER BY period_start DESC LIMIT 1"
                        )
                    )
                )
                assert "ix_boot_derived_recent_point" in plan
        assert await store.run_in_reader(boot_indexes) == set()


async def test_indexes_left_by_a_restart_that_died_are_taken_over_and_removed(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write([reading("P000", T0)])
        async with store.indexed_by_point():
            pass
        await store.run_in_writer(_create_boot_indexes)  # as a restart dying on the way
    async with await Store.open(url) as store:
        async with store.indexed_by_point():  # no "already exists"
            await store.write([reading("P000", T0 + 60)])
        assert await store.run_in_reader(boot_indexes) == set()

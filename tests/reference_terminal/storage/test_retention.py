"""Retention keeps at least 6 months (ISC-2 §7.2.3(4)) and deletes in small batches; sizing
estimates 5 years of storage (ISC-2 §9.2) from the measured row size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reference_terminal.storage.retention import (
    DAY_S,
    DERIVED_PER_POINT_DAY,
    MIN_RETENTION_DAYS,
    YEAR_DAYS,
    measured_row_sizes,
    purge,
    purge_engine,
    sample_reading,
    sizing,
)
from reference_terminal.storage.store import Store, checkpoint, make_engine
from tests.reference_terminal.storage.helpers import T0, derived, event, reading

pytestmark = pytest.mark.anyio

NOW = T0 + 400 * DAY_S


async def _fill(store: Store) -> None:
    days = [0, 100, 216, 217, 218, 300, 399]  # 400 days ago … yesterday
    await store.write(
        [
            reading(p, T0 + d * DAY_S + i, f"{d}.{i}")
            for p in ("A", "B", "C")
            for d in days
            for i in range(5)
        ],
        events=[event("gap", T0 + d * DAY_S) for d in days],
        derived=[derived("A", "day", T0 + d * DAY_S, f"{d}.00", length=DAY_S) for d in days],
    )


async def test_purge_deletes_only_what_is_older_than_retention(url: str) -> None:
    async with await Store.open(url) as store:
        await _fill(store)
        result = await purge(store, 183, now=NOW, batch_rows=4)
        cutoff = NOW - 183 * DAY_S  # = day 217
        assert result.cutoff == cutoff
        assert (result.readings, result.events, result.derived) == (3 * 3 * 5, 3, 3)
        for point in ("A", "B", "C"):
            kept = await store.readings(point, 0, 5e9)
            assert min(r.t for r in kept) == cutoff
            assert len(kept) == 4 * 5
        assert (await store.events())[0].t == cutoff
        assert (await store.derived("A"))[0].start == cutoff
        again = await purge(store, 183, now=NOW)
        assert (again.readings, again.events, again.derived) == (0, 0, 0)


async def test_purge_finds_old_readings_settled_and_recent_alike(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write([reading(p, T0 + i, f"0.{i}") for p in ("A", "B") for i in range(3)])
        await store.settle()  # day 0's readings settled, day 1's and day 300's recent
        await store.write([reading("A", T0 + DAY_S, "1.0"), reading("B", T0 + 300 * DAY_S)])
        result = await purge(store, 183, now=NOW, batch_rows=2)
        assert result.readings == 2 * 3 + 1
        assert [r.t for r in await store.readings("A", 0, 5e9)] == []
        assert [r.t for r in await store.readings("B", 0, 5e9)] == [T0 + 300 * DAY_S]


async def test_purge_runs_while_writes_go_on(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        await store.write([reading(f"P{i % 20}", T0 + i * 60) for i in range(4000)])
        fresh = [reading("NEW", NOW + i) for i in range(200)]
        purging = asyncio.ensure_future(
            purge(store, 183, now=T0 + 183 * DAY_S + 2000 * 60, batch_rows=50)
        )
        await asyncio.gather(*(store.write([r]) for r in fresh))
        result = await purging
        assert result.readings == 2000
        assert len(await store.readings("NEW", 0, 5e9)) == 200


async def test_a_purge_with_nothing_to_delete_is_three_transactions_however_many_points(
    sqlite_url: str,
) -> None:
    async with await Store.open(sqlite_url) as store:
        await store.write([reading(f"P{i}", NOW - 60) for i in range(300)])
        assert len(await store.points()) == 300  # a query waits until the write is applied
        before = store.stats.transactions
        result = await purge(store, 183, now=NOW)
        assert (result.readings, result.events, result.derived) == (0, 0, 0)
        assert store.stats.transactions - before == 3  # readings, events, derived values


def test_purge_engine_without_a_running_store(sqlite_url: str) -> None:
    async def fill() -> None:
        async with await Store.open(sqlite_url) as store:
            await _fill(store)

    asyncio.run(fill())
    engine = make_engine(sqlite_url)
    try:
        result = purge_engine(engine, 200, now=NOW, batch_rows=3)  # days 0 and 100 go
        assert (result.readings, result.events, result.derived) == (3 * 2 * 5, 2, 2)
    finally:
        engine.dispose()


@pytest.mark.parametrize("days", [0, 30, 182, 182.9])
async def test_retention_below_six_months_is_refused(sqlite_url: str, days: float) -> None:
    async with await Store.open(sqlite_url) as store:
        with pytest.raises(ValueError, match=r"ISC-2 §7\.2\.3\(4\)"):
            await purge(store, days, now=NOW)
    assert MIN_RETENTION_DAYS == 183


def test_measured_row_size_is_plausible() -> None:
    sizes = measured_row_sizes()
    assert 40 < sizes.reading < 250
    assert 40 < sizes.derived < 300


def test_sizing_is_linear_and_matches_a_real_store(tmp_path: Path) -> None:
    one = sizing(1, 60, 1)
    assert sizing(10, 60, 1) == pytest.approx(10 * one, rel=1e-6)
    assert sizing(1, 30, 1) > 1.9 * one
    assert sizing(1, 60, 5) == pytest.approx(5 * one, rel=1e-6)
    with pytest.raises(ValueError):
        sizing(1, 0)

    points, period, n = 50, 60.0, 30_000
    url = f"sqlite:///{tmp_path / 'real.db'}"

    async def fill() -> None:
        async with await Store.open(url) as store:
            await store.write([sample_reading(i, points, period) for i in range(n)])

    engine = make_engine(url)
    try:
        checkpoint(engine)
        empty = (tmp_path / "real.db").stat().st_size
        asyncio.run(fill())
        used = (tmp_path / "real.db").stat().st_size - empty
    finally:
        engine.dispose()
    years = n / points * period / (YEAR_DAYS * DAY_S)
    readings_only = sizing(points, period, years) - (
        points * years * YEAR_DAYS * DERIVED_PER_POINT_DAY * measured_row_sizes().derived
    )
    assert used == pytest.approx(readings_only, rel=0.25)


def test_five_year_figure_for_the_docs() -> None:
    # 100 points every minute for 5 years (ISC-2 §9.2): tens of GB, within a gateway's SSD
    gb = sizing(100, 60, 5) / 1e9
    assert 5 < gb < 60

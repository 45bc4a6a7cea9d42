"""Queries: readings of a point between times, latest per point, events, derived values."""

from __future__ import annotations

import pytest

from reference_terminal.model import Quality
from reference_terminal.storage.store import Store
from tests.reference_terminal.storage.helpers import T0, derived, event, reading

pytestmark = pytest.mark.anyio


async def test_readings_between_times_half_open_and_in_order(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write([reading("A", T0 + i, f"{i}.0") for i in (5, 1, 3, 2, 4, 0)])
        await store.write([reading("B", T0 + 2, "9.9")])
        got = await store.readings("A", T0 + 1, T0 + 4)
        assert [(r.t, str(r.value)) for r in got] == [
            (T0 + 1, "1.0"),
            (T0 + 2, "2.0"),
            (T0 + 3, "3.0"),
        ]
        assert len(await store.readings("A", T0, T0 + 100, limit=2)) == 2
        assert await store.readings("C", 0, 5e9) == []


async def test_latest_reading_per_point(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write([reading("A", T0 + i, f"{i}") for i in range(5)])
        await store.write([reading("B", T0 + 10, "7", quality=Quality.BACKUP)])
        await store.write([reading("B", T0 + 1, "1")])  # late backfill is not the latest
        # same instant twice (a corrected value): the one stored last wins
        await store.write([reading("C", T0, "1.0")])
        await store.write([reading("C", T0, "1.5", quality=Quality.MANUAL)])
        latest = await store.latest()
        assert {p: str(r.value) for p, r in latest.items()} == {"A": "4", "B": "7", "C": "1.5"}
        assert latest["B"].quality is Quality.BACKUP
        assert set(await store.latest(["A", "missing"])) == {"A"}
        assert await store.points() == ["A", "B", "C"]


async def test_point_ids_are_case_and_byte_exact(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write(
            [reading("EM1", T0, "1"), reading("em1", T0, "2"), reading("Em1", T0, "3")]
        )
        assert sorted(await store.points()) == ["EM1", "Em1", "em1"]
        assert [str(r.value) for r in await store.readings("em1", 0, 5e9)] == ["2"]
        assert {p: str(r.value) for p, r in (await store.latest()).items()} == {
            "EM1": "1",
            "em1": "2",
            "Em1": "3",
        }


async def test_events_by_kind_point_and_time(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_events(
            [
                event("gap", T0, "A"),
                event("switch_over", T0 + 10, "A", to="backup"),
                event("gap", T0 + 20, "B"),
                event("rejected", T0 + 30, "A", value="99999"),
                event("gap", T0 + 40, None),
            ]
        )
        assert [e.t for e in await store.events(kind="gap")] == [T0, T0 + 20, T0 + 40]
        assert [e.kind for e in await store.events(point="A")] == ["gap", "switch_over", "rejected"]
        assert [e.t for e in await store.events(start=T0 + 10, end=T0 + 30)] == [T0 + 10, T0 + 20]
        assert [e.t for e in await store.events(kind="gap", start=T0 + 1)] == [T0 + 20, T0 + 40]
        assert len(await store.events(limit=2)) == 2
        (switch,) = await store.events(kind="switch_over")
        assert switch.details == {"to": "backup"} and switch.start == T0 + 10 - 60


async def test_derived_values_by_point_kind_and_period(url: str) -> None:
    async with await Store.open(url) as store:
        hours = [derived("A", "hour", T0 + h * 3600, f"{h}.00") for h in range(24)]
        day = derived("A", "day", T0, "276.00", length=86400)
        await store.write_derived([*hours, day, derived("B", "hour", T0, "1.00")])
        assert len(await store.derived("A", "hour")) == 24
        got = await store.derived("A", "hour", T0 + 3600, T0 + 3 * 3600)
        assert [str(d.value) for d in got] == ["1.00", "2.00"]
        assert await store.derived("A", "day") == [day]
        assert len(await store.derived("A")) == 25
        assert await store.derived("missing") == []

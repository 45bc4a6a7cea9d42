"""A point's newest stored value of a kind (where a restart picks up: the last stored window,
the last booked emission) is found in either table, recent or settled, and costs the same
however long the point's history is: a terminal keeps months of minutes (ISC-2 §7.2.3(4)),
and its boot asks this of every point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reference_terminal.storage.store import Store, select_newest, sqlite_url
from tests.reference_terminal.storage.helpers import T0, derived, steps, window

pytestmark = pytest.mark.anyio

MINUTE = 60.0


def minutes(point: str, count: int, *, first: float = T0) -> list[Any]:
    return [window(point, "minute", first + i * MINUTE, str(i % 90 + 5)) for i in range(count)]


async def test_the_newest_value_is_found_in_whichever_table_holds_it(url: str) -> None:
    async with await Store.open(url, settle_rows=1_000) as store:
        await store.write_derived(minutes("P", 3))
        await store.settle()
        settled = await store.run_in_reader(lambda c: select_newest(c, "P", "minute"))
        assert settled is not None and settled.start == T0 + 2 * MINUTE
        assert settled.figures is not None  # a window comes with its figures

        await store.write_derived(minutes("P", 2, first=T0 + 3 * MINUTE))
        recent = await store.run_in_reader(lambda c: select_newest(c, "P", "minute"))
        assert recent is not None and recent.start == T0 + 4 * MINUTE

        # a value rewritten for a settled period is the one found for that period
        await store.write_derived([derived("P", "hour", T0, "1.00")])
        await store.settle()
        await store.write_derived([derived("P", "hour", T0, "2.00")])
        hour = await store.run_in_reader(lambda c: select_newest(c, "P", "hour"))
        assert hour is not None and str(hour.value) == "2.00"


async def test_a_point_or_kind_with_nothing_stored_has_no_newest_value(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_derived(minutes("P", 2))
        assert await store.run_in_reader(lambda c: select_newest(c, "Q", "minute")) is None
        assert await store.run_in_reader(lambda c: select_newest(c, "P", "hour")) is None


async def test_a_figure_kind_is_refused_it_is_never_stored_under_its_own_kind(url: str) -> None:
    async with await Store.open(url) as store:
        with pytest.raises(ValueError, match="minute_max"):
            await store.run_in_reader(lambda c: select_newest(c, "P", "minute_max"))


async def test_the_newest_value_costs_the_same_after_a_day_as_after_an_hour(
    tmp_path: Path,
) -> None:
    async with await Store.open(sqlite_url(tmp_path / "t.db"), settle_rows=1_000) as store:

        async def cost_with(history: int) -> int:
            await store.write_derived(minutes("P", history))
            await store.write_derived(minutes("other", history))  # a neighbour's rows too
            await store.settle()
            await store.write_derived(minutes("P", 10, first=T0 + history * MINUTE))
            return await store.run_in_reader(
                lambda c: steps(c, lambda conn: select_newest(conn, "P", "minute"))
            )

        hour = await cost_with(60)
        day = await cost_with(1_440)  # the same minutes rewritten, and 23 hours more
    assert day <= hour + 2, (hour, day)

"""A point's last stored reading (the API's latest value, a counter's baseline at a restart) is
found in either table, recent or settled, the last by time and then by storing order, through
indexes, however long the point's history is: a terminal keeps months of readings (ISC-2
§7.2.3(4)), the management API is asked for latest values while readings arrive, and a boot
asks for every point's baseline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from reference_terminal.model import Quality, Reading
from reference_terminal.storage.store import Store, select_last_reading, sqlite_url
from tests.reference_terminal.storage.helpers import T0, reading

pytestmark = pytest.mark.anyio


def seconds(point: str, count: int, *, first: float = T0) -> list[Reading]:
    return [reading(point, first + i, f"{i % 90 + 5}.00") for i in range(count)]


async def test_the_last_reading_is_found_in_whichever_table_holds_it(url: str) -> None:
    async with await Store.open(url, settle_rows=1_000) as store:
        await store.write(seconds("P", 3))
        await store.settle()
        settled = await store.run_in_reader(lambda c: select_last_reading(c, "P"))
        assert settled is not None and settled.t == T0 + 2

        await store.write(seconds("P", 2, first=T0 + 3))
        recent = await store.run_in_reader(lambda c: select_last_reading(c, "P"))
        assert recent is not None and recent.t == T0 + 4

        # of two readings at one instant, the one stored last, even across the tables
        await store.write([reading("Q", T0, "1.00")])
        await store.settle()
        await store.write([reading("Q", T0, "2.00")])
        same = await store.run_in_reader(lambda c: select_last_reading(c, "Q"))
        assert same is not None and str(same.value) == "2.00"
        assert (await store.latest(["P", "Q", "R"])) == {"P": recent, "Q": same}


async def test_before_and_usable_narrow_the_search(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write(
            [
                reading("P", T0, "1.00"),
                reading("P", T0 + 1, "9.00", quality=Quality.OUT_OF_RANGE),
                reading("P", T0 + 2, None, quality=Quality.COMM_FAULT),
                reading("P", T0 + 3, "3.00"),
            ]
        )

        async def ask(**narrow: object) -> tuple[float, str | None] | None:
            found = await store.run_in_reader(
                lambda c: select_last_reading(c, "P", **narrow)  # type: ignore[arg-type]
            )
            return None if found is None else (found.t, str(found.value))

        assert await ask() == (T0 + 3, "3.00")
        assert await ask(before=T0 + 3) == (T0 + 2, "None")
        assert await ask(before=T0 + 3, usable=True) == (T0, "1.00")
        assert await ask(before=T0, usable=True) is None


@pytest.mark.parametrize("booting", [False, True], ids=["running", "booting"])
@pytest.mark.parametrize("usable", [False, True], ids=["any", "usable"])
async def test_the_last_reading_is_found_through_an_index_never_by_sorting_history(
    tmp_path: Path, booting: bool, usable: bool
) -> None:
    """Every statement it runs reads an index in order: none sorts (a sort gathers every
    reading of the point first: 1 ms a point at a boot on six hours of the works fleet,
    growing with the store), running and while a boot has the recent rows indexed by point."""
    async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
        await store.write(both(T0, 600))
        await store.settle()
        await store.write(both(T0 + 600, 600))
        async with store.indexed_by_point() if booting else contextlib.nullcontext():
            plans = await store.run_in_reader(
                lambda c: query_plans(
                    c, lambda: select_last_reading(c, "P", before=T0 + 900, usable=usable)
                )
            )
    assert plans and not [p for p in plans if "TEMP B-TREE" in p or "SCAN " in p], plans


def query_plans(conn: Connection, ask: Callable[[], object]) -> list[str]:
    """SQLite's plan of every statement ``ask`` runs on ``conn``."""
    run: list[str] = []
    dbapi: Any = conn.connection.dbapi_connection
    dbapi.set_trace_callback(run.append)
    try:
        ask()
    finally:
        dbapi.set_trace_callback(None)
    return [
        " / ".join(row[3] for row in dbapi.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in run
        if sql.lstrip().upper().startswith("SELECT")
    ]


def both(first: float, count: int) -> list[Reading]:
    """P's and another point's readings, second by second, as acquisition stores them."""
    return sorted(
        seconds("P", count, first=first) + seconds("other", count, first=first),
        key=lambda r: r.t,
    )

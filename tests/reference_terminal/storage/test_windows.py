"""A closed window is one row of the store: its main figure, and beside it its max, min, first
and last (and an hour's or longer window's count). Readers see each figure as a value of its
own kind, as they always did (``minute_max`` …): in either table, after a settle, after the
window is written again. A figure is never written as a value of its own. A store from before
(a row per figure) is folded into one row per window by migration 7, on every backend."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Connection, func, select, text

from reference_terminal.model import Quality
from reference_terminal.storage.migrations import migrate
from reference_terminal.storage.schema import (
    Derived,
    derived_recent,
    derived_settled,
    derived_values,
)
from reference_terminal.storage.store import Store, make_engine, select_windows
from tests.reference_terminal.storage.helpers import T0, derived, window

pytestmark = pytest.mark.anyio

MINUTE_FIGURES = ("minute", "minute_max", "minute_min", "minute_first", "minute_last")
HOUR_FIGURES = ("hour", "hour_max", "hour_min", "hour_first", "hour_last", "hour_count")


def shown(values: list[Derived]) -> dict[tuple[str, float], str | None]:
    return {(d.kind, d.start): None if d.value is None else str(d.value) for d in values}


def rows_stored(conn: Connection) -> int:
    return sum(
        int(conn.scalar(select(func.count()).select_from(t)) or 0)
        for t in (derived_recent, derived_settled)
    )


async def test_readers_see_each_figure_of_a_window_as_a_value_of_its_own(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_derived(
            [window("P", "minute", T0, "5"), window("P", "hour", T0, "7", length=3600, count=60)]
        )
        assert shown(await store.derived("P")) == {
            **{(k, T0): v for k, v in zip(MINUTE_FIGURES, ("5", "6", "4", "4", "6"), strict=True)},
            **{
                (k, T0): v
                for k, v in zip(HOUR_FIGURES, ("7", "8", "6", "6", "8", "60"), strict=True)
            },
        }
        (low,) = await store.derived("P", "minute_min")
        assert (low.kind, low.value, low.end, low.quality) == (
            "minute_min",
            Decimal(4),
            T0 + 60,
            Quality.GOOD,
        )
        assert await store.run_in_reader(rows_stored) == 2  # one row a window


async def test_a_window_keeps_showing_its_figures_when_settled_and_when_written_again(
    url: str,
) -> None:
    async with await Store.open(url) as store:
        await store.write_derived([window("P", "minute", T0 + 60 * m, str(m)) for m in range(3)])
        await store.settle()
        await store.write_derived(
            [window("P", "minute", T0, "50"), window("P", "minute", T0 + 180, "53")]
        )  # the first settled, the last recent
        got = shown(await store.derived("P"))
        assert [got[(k, T0)] for k in MINUTE_FIGURES] == ["50", "51", "49", "49", "51"]
        assert [got[(k, T0 + 60)] for k in MINUTE_FIGURES] == ["1", "2", "0", "0", "2"]
        assert [got[(k, T0 + 180)] for k in MINUTE_FIGURES] == ["53", "54", "52", "52", "54"]
        assert await store.run_in_reader(rows_stored) == 4


async def test_a_figure_written_as_a_value_of_its_own_is_refused(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store:
        with pytest.raises(ValueError, match="the max of a minute window is stored with the"):
            await store.write_derived([derived("P", "minute_max", T0, "1", length=60)])
        with pytest.raises(ValueError, match=r"only a window .* has figures"):
            await store.write_derived([replace(window("P", "minute", T0, "1"), kind="increment")])
        assert await store.derived("P") == []


#: A window of each kind as a store before migration 7 held it: a row per figure (the hour's
#: count too), and a figure whose window was never stored.
LEGACY = [
    *(
        ("P", k, T0, T0 + 60, v)
        for k, v in zip(MINUTE_FIGURES, ("5", "6", "4", "4", "6"), strict=True)
    ),
    *(
        ("P", k, T0, T0 + 3600, v)
        for k, v in zip(HOUR_FIGURES, ("7", "8", "6", None, "8", "60"), strict=True)
    ),
    ("Q", "minute_max", T0, T0 + 60, "9"),
    ("Q", "increment", T0, T0 + 60, "0.5"),
]


async def test_a_store_with_a_row_per_figure_is_folded_into_a_row_per_window(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine, target=6)
        with engine.begin() as conn:
            for n, (point, kind, start, end, value) in enumerate(LEGACY):
                table = "derived_settled" if n % 2 else "derived_recent"  # either table
                conn.execute(
                    text(
                        f"INSERT INTO {table} (point, kind, period_start, period_end, value, "
                        "quality, note, computed_at) VALUES (:p, :k, :s, :e, :v, 'good', '', :e)"
                    ),
                    {"p": point, "k": kind, "s": start, "e": end, "v": value},
                )
            conn.exec_driver_sql(
                "INSERT INTO derived_extent (kind, max_start) "
                "SELECT kind, MAX(period_start) FROM derived_settled GROUP BY kind"
            )
        with engine.connect() as conn:
            before = set(conn.execute(select(derived_values)).all())
        migrate(engine)
        with engine.connect() as conn:
            after = set(conn.execute(select(derived_values)).all())
            assert rows_stored(conn) == 4  # two windows, the lone figure, the increment
    finally:
        engine.dispose()
    assert {r[1:] for r in after} == {r[1:] for r in before}  # ids: a window's figures share its
    async with await Store.open(url) as store:
        await store.write_derived([window("P", "minute", T0, "15")])  # written again
        got = shown(await store.derived("P"))
        assert [got[(k, T0)] for k in MINUTE_FIGURES] == ["15", "16", "14", "14", "16"]
        assert got[("hour_first", T0)] is None
        assert shown(await store.derived("Q")) == {
            ("minute_max", T0): "9",
            ("increment", T0): "0.5",
        }


async def test_a_points_windows_are_read_with_their_figures_from_either_table(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_derived([window("P", "minute", T0 + 60 * m, str(m)) for m in range(3)])
        await store.settle()
        await store.write_derived(
            [
                window("P", "minute", T0 + 180, "3"),
                window("P", "hour", T0, "7", length=3600, count=60),
                window("Q", "minute", T0, "9"),
                derived("P", "increment", T0, "0.5", length=60),
            ]
        )
        got = await store.run_in_reader(lambda c: select_windows(c, "P", "minute", T0 + 60))
        hours = await store.run_in_reader(
            lambda c: select_windows(c, "P", "hour", T0, T0 + 1, end_after=T0 + 60)
        )
    assert got == [window("P", "minute", T0 + 60 * m, str(m)) for m in (1, 2, 3)]
    assert hours == [window("P", "hour", T0, "7", length=3600, count=60)]

"""What the bench reads back from the terminal's store to know what it owes: the windows of
the points asked for, whichever table (recent or settled) holds them, in the range asked, and
each window's Min and Max from its row."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bench.scenario.expected import _WINDOWS, _derived
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, WindowFigures
from reference_terminal.storage.store import Store, sqlite_url

T0 = 1_767_578_400.0  # a minute boundary
POINTS = ["p1", "p2", "p3"]


def value(point: str, kind: str, minute: int) -> Derived:
    """The minute's window (max one more, min one less) or another value of ``kind``."""
    start = T0 + 60 * minute
    main = Decimal(minute).scaleb(-1)
    figures = WindowFigures(main + 1, main - 1, main, main) if kind == "minute" else None
    return Derived(point, kind, start, start + 60, main, Quality.GOOD, "", start + 61, figures)


async def stored(tmp_path: Path) -> Store:
    store = await Store.open(sqlite_url(tmp_path / "terminal.db"))
    for first in (0, 30):  # the first half settled, the second still recent
        await store.write_derived(
            value(p, kind, m)
            for m in range(first, first + 30)
            for p in POINTS
            for kind in ("minute", "increment")
        )
        if first == 0:
            await store.settle()
    return store


def test_windows_are_read_by_range_for_the_points_asked_in_both_tables(tmp_path: Path) -> None:
    async def scenario() -> tuple[set[tuple[str, float]], set[tuple[str, float, str]]]:
        async with await stored(tmp_path) as store:
            everything = await store.run_in_reader(
                lambda c: _derived(c, ["p1", "p3"], ("minute",), None, T0 + 60 * 50)
            )
            ranged = await store.run_in_reader(
                lambda c: _derived(c, ["p2"], ("minute", "increment"), T0 + 60 * 20, T0 + 60 * 40)
            )
        return {(r[0], r[1]) for r in everything}, {(r[0], r[1], r[4]) for r in ranged}

    everything, ranged = asyncio.run(scenario())
    assert everything == {(p, T0 + 60 * m) for p in ("p1", "p3") for m in range(50)}
    assert ranged == {
        ("p2", T0 + 60 * m, kind) for m in range(20, 40) for kind in ("minute", "increment")
    }


def test_each_window_comes_back_once_with_its_min_and_max_from_either_table(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[tuple[str, float, str, str, str, str]]:
        async with await stored(tmp_path) as store:
            return await store.run_in_reader(
                lambda c: [tuple(r) for r in _WINDOWS.run(c, T0 + 60 * 45).fetchall()]
            )

    rows = asyncio.run(scenario())
    assert sorted(rows) == sorted(
        (p, T0 + 60 * m, str(main), "good", str(main - 1), str(main + 1))
        for m in range(45)
        for p in POINTS
        for main in [Decimal(m).scaleb(-1)]
    )

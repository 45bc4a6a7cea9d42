"""What the bench owes the centres: the minute of every usable sample the terminal's store
acknowledges (its ``on_durable`` hook), the windows it holds, whichever table (recent or
settled) holds them, in the range asked, and each window's Min and Max from its row."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench.scenario.expected import _STORED_WINDOWS, _WINDOWS, Acknowledged
from reference_terminal.model import Quality, Reading
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


def test_stored_windows_are_read_by_range_from_both_tables(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, float]]:
        async with await stored(tmp_path) as store:
            return await store.run_in_reader(
                lambda c: [
                    tuple(r)
                    for r in _STORED_WINDOWS.run(c, "minute", T0 + 1200, T0 + 2400).fetchall()
                ]
            )

    rows = asyncio.run(scenario())  # minutes 20-29 settled, 30-39 recent
    assert sorted(rows) == sorted((p, T0 + 60 * m) for m in range(20, 40) for p in POINTS)


def reading(
    point: str, t: float, quality: Quality = Quality.GOOD, value: str | None = "1"
) -> Reading:
    return Reading(point, t, "1", None if value is None else Decimal(value), quality, 0, "d")


def increment(point: str, start: float, end: float) -> Derived:
    return Derived(point, "increment", start, end, Decimal(1), Quality.GOOD, "", end)


def test_an_acknowledged_write_owes_the_minutes_of_its_usable_samples() -> None:
    acknowledged = Acknowledged(
        {"gauge": "a01", "counter": "e01"}, frozenset({"counter"}), timedelta(hours=8), T0 + 3600
    )
    acknowledged.note(
        [
            reading("gauge", T0 + 5),  # owed: 2026-01-05 10:00 plant time
            reading("gauge", T0 + 65, Quality.COMM_FAULT, None),  # nothing measured
            reading("gauge", T0 + 125, Quality.OUT_OF_RANGE),  # not usable
            reading("gauge", T0 + 3600),  # after the scenario
            reading("uncoded", T0 + 5),  # not sent
            reading("counter", T0 + 5),  # a counter owes its increments
        ],
        [increment("counter", T0 + 30, T0 + 150), increment("gauge", T0, T0 + 60)],
    )
    assert acknowledged.windows == {("a01", "20260105100000"), ("e01", "20260105100100")}


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

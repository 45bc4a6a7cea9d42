"""What the bench reads back from the terminal's store to know what it owes: the windows of
the points asked for, whichever table (recent or settled) holds them, in the range asked."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bench.scenario.expected import WINDOW_KINDS, _derived
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url

T0 = 1_767_578_400.0  # a minute boundary
POINTS = ["p1", "p2", "p3"]


def window(point: str, kind: str, minute: int) -> Derived:
    start = T0 + 60 * minute
    value = Decimal(minute).scaleb(-1)
    return Derived(point, kind, start, start + 60, value, Quality.GOOD, "", start + 61)


def test_windows_are_read_by_range_for_the_points_asked_in_both_tables(tmp_path: Path) -> None:
    async def scenario() -> tuple[set[tuple[str, float]], set[tuple[str, float, str]]]:
        async with await Store.open(sqlite_url(tmp_path / "terminal.db")) as store:
            for first in (0, 30):  # the first half settled, the second still recent
                await store.write_derived(
                    window(p, kind, m)
                    for m in range(first, first + 30)
                    for p in POINTS
                    for kind in ("minute", "minute_max", "increment")
                )
                if first == 0:
                    await store.settle()
            everything = await store.run_in_reader(
                lambda c: _derived(c, ["p1", "p3"], ("minute",), None, T0 + 60 * 50)
            )
            ranged = await store.run_in_reader(
                lambda c: _derived(c, ["p2"], WINDOW_KINDS, T0 + 60 * 20, T0 + 60 * 40)
            )
        return {(r[0], r[1]) for r in everything}, {(r[0], r[1], r[4]) for r in ranged}

    everything, ranged = asyncio.run(scenario())
    assert everything == {(p, T0 + 60 * m) for p in ("p1", "p3") for m in range(50)}
    # a window's figure and its extremes (the store has no minute_min here), in one read
    assert ranged == {
        ("p2", T0 + 60 * m, kind) for m in range(20, 40) for kind in ("minute", "minute_max")
    }

"""A reading that closes a window is acknowledged once it is durable, and the closed window's
rows are written behind it (ISC-2 §9.4: they are not the reading's own figures): nothing waiting
for the stored windows misses them, even when the reading's caller gives up. Windows closed on
the minute grid wait for the write of the same instant (the readings polled then) and are
committed in its transaction; with no write within ``WINDOWS_HELD_S`` they are written alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

from reference_terminal.app import WINDOWS_HELD_S, Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import RawValue
from reference_terminal.storage.store import Store, sqlite_url
from simulators.clock import VirtualClock

T0 = 1_767_578_400.0  # 2026-01-05 10:00 +08:00


def config(tmp_path: Path, *, window_lag_s: float = 30.0) -> TerminalConfig:
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "desk", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [
                {"id": "T", "kind": "gauge", "group": "g", "source": {"device": "desk"}},
            ],
            "processing": {"window_lag_s": window_lag_s},
            "storage": {"url": sqlite_url(tmp_path / "t.db")},
        }
    )


def value(t: float, v: str) -> list[RawValue]:
    return [RawValue("T", Decimal(v), v, t, "desk")]


async def minute_means(store: Store) -> list[tuple[float, Decimal | None]]:
    return [(d.start - T0, d.value) for d in await store.derived("T", "minute")]


@contextlib.asynccontextmanager
async def closing_a_window(
    tmp_path: Path,
) -> AsyncIterator[tuple[Terminal, Store, asyncio.Task[None]]]:
    """A terminal whose second reading closes the first's minute, caught while that reading's
    write is under way (processed, not yet durable)."""
    terminal = Terminal(config(tmp_path))
    async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
        terminal.store = store
        await terminal.accept(value(T0 + 10, "20.0"))
        closing = asyncio.create_task(terminal.accept(value(T0 + 70, "21.0")))
        await asyncio.sleep(0)
        yield terminal, store, closing


def test_settled_waits_for_windows_whose_closing_reading_is_still_being_stored(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with closing_a_window(tmp_path) as (terminal, store, closing):
            await terminal.settled()
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]
            await closing

    asyncio.run(main())


def test_a_closed_window_is_stored_even_when_its_readings_caller_gives_up(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with closing_a_window(tmp_path) as (terminal, store, closing):
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            await terminal.settled()
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]

    asyncio.run(main())


@contextlib.asynccontextmanager
async def closing_on_the_grid(
    tmp_path: Path,
) -> AsyncIterator[tuple[Terminal, Store, VirtualClock]]:
    """A terminal with a reading in its first minute, at the instant the grid closes it."""
    clock = VirtualClock(T0)
    terminal = Terminal(config(tmp_path, window_lag_s=0), clock=clock)
    async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
        terminal.store = store
        # as a scenario's target does: a read handed to a reader thread that has not woken
        # yet would otherwise let time run on to the held windows' deadline (seen under load)
        clock.watch(store.work_untaken)
        closer = asyncio.create_task(terminal._close_windows())
        await terminal.accept(value(T0 + 10, "20.0"))
        await clock.sleep_until(60.0)  # the closer, asleep first, has closed the minute
        try:
            yield terminal, store, clock
        finally:
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer


def test_windows_closed_on_the_grid_share_the_next_writes_transaction(tmp_path: Path) -> None:
    async def main() -> None:
        async with closing_on_the_grid(tmp_path) as (terminal, store, _):
            await store.flush_behind()
            assert await minute_means(store) == []  # held, not written
            before = store.stats.transactions
            await terminal.accept(value(T0 + 60, "21.0"))
            await store.flush_behind()
            assert store.stats.transactions - before == 1
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]

    asyncio.run(main())


def test_windows_no_write_comes_for_are_written_alone(tmp_path: Path) -> None:
    async def main() -> None:
        async with closing_on_the_grid(tmp_path) as (_, store, clock):
            await clock.sleep(WINDOWS_HELD_S + 1)  # the closer, asleep after this test, wakes first
            await store.flush_behind()
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]

    asyncio.run(main())


def test_settled_writes_the_windows_held(tmp_path: Path) -> None:
    async def main() -> None:
        async with closing_on_the_grid(tmp_path) as (terminal, store, _):
            await terminal.settled()
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]

    asyncio.run(main())


def test_stopping_writes_the_windows_held(tmp_path: Path) -> None:
    async def main() -> None:
        async with closing_on_the_grid(tmp_path):
            pass  # the closer is cancelled holding the minute: it hands it to the store
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            assert await minute_means(store) == [(0.0, Decimal("20.0"))]

    asyncio.run(main())

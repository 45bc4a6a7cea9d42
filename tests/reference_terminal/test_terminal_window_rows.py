"""A reading that closes a window is acknowledged once it is durable, and the closed window's
rows are written behind it (ISC-2 §9.4: they are not the reading's own figures): nothing waiting
for the stored windows misses them, even when the reading's caller gives up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import RawValue
from reference_terminal.storage.store import Store, sqlite_url

T0 = 1_767_578_400.0  # 2026-01-05 10:00 +08:00


def config(tmp_path: Path) -> TerminalConfig:
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "desk", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [
                {"id": "T", "kind": "gauge", "group": "g", "source": {"device": "desk"}},
            ],
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

"""A terminal that stops while a change waits to take effect tells the caller at once
(TerminalStopped, which the management API answers with 503) rather than leaving the caller
waiting until its own connection is dropped."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest

from reference_terminal.app import Terminal, TerminalStopped
from reference_terminal.config import TerminalConfig
from reference_terminal.storage.backup import backup
from reference_terminal.storage.store import sqlite_url
from tests.reference_terminal.api.harness import CONFIG


def config(tmp_path: Path) -> TerminalConfig:
    data = copy.deepcopy(CONFIG)
    data["storage"] = {"url": sqlite_url(tmp_path / "terminal.db")}
    return TerminalConfig.model_validate(data)


async def running(terminal: Terminal) -> asyncio.Task[None]:
    task = asyncio.create_task(terminal.run())
    async with asyncio.timeout(10):
        await terminal.ready.wait()
    return task


def test_a_configuration_given_as_the_terminal_stops_is_answered_at_once(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        terminal = Terminal(config(tmp_path))
        task = await running(terminal)
        task.cancel()  # the loop is stopping acquisition when the change arrives
        applying = asyncio.create_task(terminal.apply_config(config(tmp_path)))
        async with asyncio.timeout(5):
            with pytest.raises(TerminalStopped, match="before the configuration took effect"):
                await applying
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_restore_after_the_terminal_stopped_is_refused_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        terminal = Terminal(config(tmp_path))
        task = await running(terminal)
        assert terminal.store is not None
        await backup(terminal.store, tmp_path / "backup.db")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(5):
            with pytest.raises(TerminalStopped, match="has stopped"):
                await terminal.restore(tmp_path / "backup.db")
        assert sorted(p.name for p in tmp_path.iterdir() if "restor" in p.name) == []

    asyncio.run(main())

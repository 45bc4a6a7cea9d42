"""Paced write-back (``writeback.py``): a settle's WAL and the checkpoint of its pages reach
the disk a few megabytes at a time, so the intake log's fdatasync never queues behind one
large burst; the file is durable afterwards all the same."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.storage import writeback
from reference_terminal.storage.store import Store, sqlite_url
from tests.reference_terminal.storage.helpers import reading

needs_sync_file_range = pytest.mark.skipif(
    writeback._SYNC_FILE_RANGE is None, reason="sync_file_range is Linux's: not on this system"
)


def recording(synced: list[int]) -> Callable[[int], None]:
    """The real fdatasync, each descriptor it was called with kept in ``synced``."""
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    return fdatasync


@needs_sync_file_range
def test_a_file_is_written_out_in_steps_then_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(5 << 20))
    real = writeback._SYNC_FILE_RANGE
    assert real is not None
    steps: list[tuple[int, int]] = []
    synced: list[int] = []

    def sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> Any:
        steps.append((offset, nbytes))
        return real(fd, offset, nbytes, flags)

    monkeypatch.setattr(writeback, "_SYNC_FILE_RANGE", sync_file_range)
    monkeypatch.setattr(os, "fdatasync", recording(synced))
    writeback.push(path, step=1 << 20)
    assert steps == [(k << 20, 1 << 20) for k in range(5)]
    assert len(synced) == 1  # after the steps: durable, as an fdatasync alone makes it


def test_without_sync_file_range_the_file_is_synced_in_one_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10_000)
    synced: list[int] = []
    monkeypatch.setattr(writeback, "_SYNC_FILE_RANGE", None)
    monkeypatch.setattr(os, "fdatasync", recording(synced))
    writeback.push(path)
    writeback.push(tmp_path / "no-such-wal")  # a WAL not there (truncated): nothing to do
    assert len(synced) == 1


@pytest.mark.anyio
async def test_a_settle_writes_out_its_wal_and_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed: list[str] = []
    real_push_fd = writeback.push_fd

    def push_fd(fd: int, step: int = writeback.STEP_BYTES) -> None:
        pushed.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_push_fd(fd, step)

    monkeypatch.setattr(writeback, "push_fd", push_fd)
    db = tmp_path / "t.db"
    async with await Store.open(sqlite_url(db), settle_rows=1_000_000) as store:
        await store.write([reading(f"P{i:03d}", float(i)) for i in range(500)])
        pushed.clear()  # opening settled what an earlier run left (nothing)
        await store.settle()
        assert pushed == ["t.db-wal", "t.db"]
        assert store.stats.settles >= 1


@pytest.mark.anyio
async def test_a_store_without_sync_settles_unpaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``synchronous=OFF`` syncs nothing, so there is nothing to pace."""
    pushed: list[int] = []
    monkeypatch.setattr(writeback, "push_fd", lambda fd, step=0: pushed.append(fd))
    async with await Store.open(sqlite_url(tmp_path / "t.db"), synchronous="OFF") as store:
        await store.write([reading("P1", 1.0)])
        await store.settle()
    assert pushed == []

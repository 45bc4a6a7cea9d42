"""Backup while writes go on, restore into a fresh store: every write wholly in or wholly out,
everything acknowledged before the backup in it, ids kept, older backups upgraded, a store
holding data never overwritten."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from reference_terminal.model import Event
from reference_terminal.storage.backup import (
    backup,
    inspect_backup,
    native_dump,
    native_dump_command,
    restore,
)
from reference_terminal.storage.migrations import LATEST
from reference_terminal.storage.schema import StoreError
from reference_terminal.storage.store import Store
from tests.reference_terminal.storage.conftest import backend_url
from tests.reference_terminal.storage.helpers import T0, derived, reading
from tests.reference_terminal.storage.test_migrations import V1_SQLITE

pytestmark = pytest.mark.anyio


@pytest.fixture
def other_url(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh database on the same backend as ``url``."""
    yield from backend_url(request.node.callspec.params["url"], tmp_path / "other")


class Writers:
    """Eight writers of tagged batches (readings + one event giving the batch size)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.acked: set[str] = set()
        self.issued: set[str] = set()
        self.stop = False
        self.tasks = [asyncio.ensure_future(self._writer(w)) for w in range(8)]

    async def _writer(self, w: int) -> None:
        k = 0
        while not self.stop:
            k += 1
            tag, size = f"w{w}-{k}", 1 + k % 5
            self.issued.add(tag)
            await self.store.write(
                [reading(f"P{w}", T0 + k * 10 + i, f"{k}.{i}", note=tag) for i in range(size)],
                events=[Event(T0 + k, "batch", f"P{w}", details={"tag": tag, "size": str(size)})],
            )
            self.acked.add(tag)

    async def finish(self) -> None:
        self.stop = True
        await asyncio.gather(*self.tasks)


async def _check_consistent(url: str, before: set[str], issued: set[str]) -> int:
    async with await Store.open(url) as store:
        per_tag: Counter[str] = Counter()
        for point in await store.points():
            if point != "BULK":
                per_tag.update(r.note for r in await store.readings(point, 0, 5e9))
        sizes = {e.details["tag"]: int(e.details["size"]) for e in await store.events(kind="batch")}
    assert set(per_tag) == set(sizes), "a write's readings and its event were split"
    assert all(per_tag[tag] == sizes[tag] for tag in sizes), "a write was partly backed up"
    assert before <= set(sizes), "a write acknowledged before the backup is missing"
    assert set(sizes) <= issued
    return len(sizes)


async def test_backup_during_concurrent_writes_restores_consistently(
    url: str, other_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "backup.db"
    async with await Store.open(url) as store:
        # some bulk first, so that the backup takes a while and writes land during it
        bulk = 10_000 if store.backend == "sqlite" else 2_000  # a logical copy is slower
        await store.write([reading("BULK", T0 + i, "1.00") for i in range(bulk)])
        writers = Writers(store)
        await asyncio.sleep(0.05)
        before = set(writers.acked)
        info = await backup(store, path)
        during = len(writers.acked) - len(before)
        await writers.finish()
        issued = writers.issued
    print(f"writes acknowledged while the backup ran: {during}; backup took {info.seconds:.3f} s")
    assert info.schema_version == LATEST
    assert info.rows["readings"] > 0
    assert inspect_backup(path) == (LATEST, info.rows)
    # into a new SQLite file (a copy of the file) ...
    file_url = f"sqlite:///{tmp_path / 'restored' / 'store.db'}"
    result = restore(path, file_url)
    assert result.method == "sqlite-file-copy"
    assert result.rows == info.rows
    assert await _check_consistent(file_url, before, issued) > 0
    # ... and into an empty store on the source's backend (a logical copy)
    async with await Store.open(other_url):
        pass
    result = restore(path, other_url)
    assert result.method == "logical-copy"
    assert result.rows == info.rows
    assert await _check_consistent(other_url, before, issued) > 0


async def test_restore_keeps_ids_and_new_writes_follow(url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    async with await Store.open(source) as store:
        await store.write([reading("A", T0 + i) for i in range(10)], derived=[derived()])
        info = await backup(store, tmp_path / "b.db")
    restore(info.path, url)
    async with await Store.open(url) as store:
        await store.write([reading("A", T0 + 100)], derived=[derived(start=T0 + 3600)])
        ids = await store.run_in_reader(
            lambda c: list(c.execute(text("SELECT id FROM readings ORDER BY id")).scalars())
        )
        assert ids == list(range(1, 12))


async def test_restore_refuses_a_store_holding_data(url: str, tmp_path: Path) -> None:
    async with await Store.open(url) as store:
        await store.write([reading()])
        info = await backup(store, tmp_path / "b.db")
    with pytest.raises(StoreError, match=r"already holds data .*1 readings.*fresh store"):
        restore(info.path, url)
    file_target = tmp_path / "has-data.db"
    shutil.copy(info.path, file_target)
    with pytest.raises(StoreError, match="already holds data"):
        restore(info.path, f"sqlite:///{file_target}")


async def test_a_v1_backup_is_upgraded_on_restore(url: str, tmp_path: Path) -> None:
    old = tmp_path / "v1-backup.db"
    db = sqlite3.connect(old)
    db.executescript(V1_SQLITE)
    db.close()
    original = old.read_bytes()
    restored = url  # SQLite: a new file (file copy); servers: an empty database (logical copy)
    result = restore(old, restored)
    assert result.backup_version == 1
    assert result.rows == {"readings": 2, "events": 1, "derived_values": 0}
    assert old.read_bytes() == original  # the backup itself is never changed
    async with await Store.open(restored) as store:
        assert [str(r.value) for r in await store.readings("EM01.ep", 0, 5e9)] == ["0.00", "0.10"]
        await store.write_derived([derived()])


def test_damaged_or_missing_backup_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        inspect_backup(tmp_path / "nothing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite backup"):
        restore(junk, f"sqlite:///{tmp_path / 'x.db'}")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreError, match="not a carbench store backup"):
        inspect_backup(empty)
    assert not (tmp_path / "x.db").exists()


async def test_native_dump_of_a_server_store(url: str, tmp_path: Path) -> None:
    if url.startswith("sqlite"):
        with pytest.raises(StoreError, match="use backup"):
            native_dump_command(url, tmp_path / "x")
        return
    argv, _ = native_dump_command(url, tmp_path / "dump")
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    async with await Store.open(url) as store:
        await store.write([reading("EM01.ep", T0, "0.00")])
    dump = native_dump(url, tmp_path / "dump")
    assert dump.stat().st_size > 0
    if url.startswith("mariadb"):
        assert "'0.00'" in dump.read_text()

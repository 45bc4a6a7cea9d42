"""Restoring in place (``stage_restore`` then ``install_restored``, what ``POST /restore`` does)
across power cuts on the volatile file system: a cut before the swap leaves the old store whole,
a cut after it the restored one, and never a store the terminal cannot open."""

from __future__ import annotations

from pathlib import Path

from reference_terminal.storage.backup import backup, install_restored, stage_restore
from reference_terminal.storage.store import Store, sqlite_url
from simulators.power import VolatileMount
from tests.reference_terminal.storage.helpers import T0, reading
from tests.simulators.power.conftest import needs_fuse, on_mount


async def points_in(path: Path) -> list[str]:
    async with await Store.open(sqlite_url(path)) as store:
        return sorted(await store.points())


async def store_with(path: Path, points: list[str]) -> None:
    async with await Store.open(sqlite_url(path)) as store:
        await store.write([reading(p, T0 + i) for i, p in enumerate(points)])


@needs_fuse
def test_a_cut_before_the_swap_keeps_the_old_store_and_after_it_the_restored_one(
    tmp_path: Path,
) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        target = mnt / "data" / "terminal.db"
        target.parent.mkdir()
        await store_with(target, ["old.a", "old.b"])
        source = tmp_path / "source.db"
        await store_with(source, ["kept.a"])
        async with await Store.open(sqlite_url(source)) as store:
            await backup(store, tmp_path / "backup.db")

        staged, info = stage_restore(tmp_path / "backup.db", target)
        assert info.rows["readings"] == 1
        await mount.cut()  # staged, not swapped in
        await mount.restore()
        assert await points_in(target) == ["old.a", "old.b"]

        staged, _ = stage_restore(tmp_path / "backup.db", target)  # a leftover is replaced
        install_restored(staged, target)
        await mount.cut()
        await mount.restore()
        assert await points_in(target) == ["kept.a"]
        assert not staged.exists()

    on_mount(tmp_path, body)

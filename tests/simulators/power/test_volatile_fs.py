"""The volatile mount: what a program sees, what a cut takes away, what a restore gives back."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from simulators.power import (
    ControlError,
    FuseUnavailable,
    MountError,
    PowerCutMode,
    VolatileMount,
    fuse_available,
    power_cut_mode,
    volatile_mount,
)
from simulators.power.mount import FSNAME, mounted_fstype
from tests.simulators.power.conftest import assert_eio, needs_fuse, on_mount, run

pytestmark = needs_fuse


def write(path: Path, data: bytes, *, sync: bool) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def close_dead(fd: int) -> None:
    """Close a handle from before a cut: the descriptor goes, its flush fails with EIO."""
    assert_eio(lambda: os.close(fd), "close of a dead handle")


@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "libfuse-threads"])
def test_what_is_not_fsynced_is_gone_after_a_cut_and_what_is_stays(
    tmp_path: Path, threads: bool
) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "synced", b"kept", sync=True)
        write(mnt / "unsynced", b"lost", sync=False)
        with open(mnt / "synced", "ab") as f:
            f.write(b" and this lost")
        # the program reads back all it wrote; the disk holds only what was fsynced
        assert (mnt / "synced").read_bytes() == b"kept and this lost"
        assert (mnt / "unsynced").read_bytes() == b"lost"
        assert (mnt / "unsynced").stat().st_size == 4
        assert (backing / "synced").read_bytes() == b"kept"
        assert (backing / "unsynced").read_bytes() == b""

        report = await mount.cut()
        assert report.bytes_dropped == len(b"lost") + len(b" and this lost")
        assert report.files_dropped == 2
        await mount.restore()

        assert (mnt / "synced").read_bytes() == b"kept"
        # its name survives (metadata reaches the backing at once), its bytes do not
        assert (mnt / "unsynced").read_bytes() == b""
        stats = await mount.stats()
        assert (stats.cuts, stats.restores, stats.powered) == (1, 1, True)
        assert stats.fsyncs == 1

    on_mount(tmp_path, body, threads=threads)


def test_an_armed_cut_lands_just_before_the_nth_write_which_fails(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        fd = os.open(mnt / "f", os.O_RDWR | os.O_CREAT)
        try:
            os.write(fd, b"synced")
            os.fsync(fd)
            await mount.arm(3)  # write, write, then the fsync: the power dies before it
            os.write(fd, b" one")
            os.write(fd, b" two")
            assert (await mount.stats()).powered and mount.powered_now()
            assert_eio(lambda: os.fsync(fd), "the fsync the cut came before")
            assert not mount.powered_now()  # asked at once, without a turn of the loop
            stats = await mount.stats()
            assert (stats.powered, stats.cuts, stats.bytes_dropped) == (False, 1, 8)
        finally:
            close_dead(fd)
        await mount.restore()
        assert (mnt / "f").read_bytes() == b"synced"
        with pytest.raises(ControlError, match="at least 1"):
            await mount.arm(0)

    on_mount(tmp_path, body)


def test_an_armed_cut_can_count_the_writes_to_one_file_only(tmp_path: Path) -> None:
    """A program writing from several threads dies at the same point of one file's writes
    every time, however its other writes fall in between."""

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        log = os.open(mnt / "log", os.O_RDWR | os.O_CREAT)
        other = os.open(mnt / "other", os.O_RDWR | os.O_CREAT)
        try:
            await mount.arm(2, "log")  # the log's write, then its fsync: dies before that
            os.write(other, b"not counted")
            os.fsync(other)
            os.write(log, b"record")
            os.write(other, b" nor this")
            assert mount.powered_now()
            assert_eio(lambda: os.fsync(log), "the log's fsync the cut came before")
            assert not mount.powered_now()
        finally:
            close_dead(log)
            close_dead(other)
        await mount.restore()
        assert (mnt / "log").read_bytes() == b""
        assert (mnt / "other").read_bytes() == b"not counted"

    on_mount(tmp_path, body)


def test_closing_a_file_does_not_sync_it(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "f", b"written, closed, never fsynced", sync=False)
        assert (mnt / "f").read_bytes() == b"written, closed, never fsynced"
        assert (await mount.stats()).dirty_files == 1
        await mount.cut()
        await mount.restore()
        assert (mnt / "f").read_bytes() == b""

    on_mount(tmp_path, body)


def test_truncate_is_volatile_like_a_write(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "f", b"0123456789", sync=True)
        os.truncate(mnt / "f", 3)
        assert (mnt / "f").read_bytes() == b"012"
        assert (backing / "f").read_bytes() == b"0123456789"
        await mount.cut()
        await mount.restore()
        assert (mnt / "f").read_bytes() == b"0123456789"
        fd = os.open(mnt / "f", os.O_RDWR)
        try:
            os.ftruncate(fd, 5)
            os.fsync(fd)
        finally:
            os.close(fd)
        assert (backing / "f").read_bytes() == b"01234"

    on_mount(tmp_path, body)


def test_every_operation_fails_with_eio_while_the_power_is_off(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        (mnt / "dir").mkdir()
        write(mnt / "f", b"data", sync=True)
        fd = os.open(mnt / "f", os.O_RDWR)
        await mount.cut()
        try:
            assert_eio(lambda: os.stat(mnt / "f"), "stat")
            assert_eio(lambda: os.stat(mnt), "stat of the root")
            assert_eio(lambda: os.listdir(mnt), "listdir")
            assert_eio((mnt / "f").read_bytes, "open and read")
            assert_eio(lambda: os.open(mnt / "new", os.O_CREAT | os.O_WRONLY), "create")
            assert_eio(lambda: os.pread(fd, 4, 0), "read through an open handle")
            assert_eio(lambda: os.pwrite(fd, b"x", 0), "write through an open handle")
            assert_eio(lambda: os.fsync(fd), "fsync")
            assert_eio(lambda: os.ftruncate(fd, 0), "ftruncate")
            assert_eio(lambda: os.unlink(mnt / "f"), "unlink")
            assert_eio(lambda: os.rename(mnt / "f", mnt / "g"), "rename")
            assert_eio(lambda: os.mkdir(mnt / "d2"), "mkdir")
            assert_eio(lambda: os.rmdir(mnt / "dir"), "rmdir")
            assert_eio(lambda: os.chmod(mnt / "f", 0o600), "chmod")
            assert_eio(lambda: os.statvfs(mnt), "statfs")
        finally:
            close_dead(fd)
        # nothing the dying program tried reached the disk
        assert sorted(os.listdir(backing)) == ["dir", "f"]
        assert (backing / "f").read_bytes() == b"data"
        await mount.restore()
        assert sorted(os.listdir(mnt)) == ["dir", "f"]

    on_mount(tmp_path, body)


def test_handles_opened_before_a_cut_stay_dead_after_the_restore(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "f", b"data", sync=True)
        old = os.open(mnt / "f", os.O_RDWR)
        try:
            await mount.cut()
            await mount.restore()
            assert_eio(lambda: os.pread(old, 4, 0), "read through an old handle")
            assert_eio(lambda: os.pwrite(old, b"late", 0), "write through an old handle")
            assert_eio(lambda: os.fsync(old), "fsync through an old handle")
            # (an fstat reaches the file system as a stat of the file, without the handle)
            new = os.open(mnt / "f", os.O_RDWR)
            try:
                assert os.pread(new, 4, 0) == b"data"
                os.pwrite(new, b"DA", 0)
                os.fsync(new)
            finally:
                os.close(new)
            assert (backing / "f").read_bytes() == b"DAta"
            stats = await mount.stats()
            assert stats.dead_handles == 1
        finally:
            close_dead(old)
        # The kernel tells the file system of the release after close() has returned.
        async with asyncio.timeout(10):
            while (await mount.stats()).dead_handles:
                await asyncio.sleep(0.01)

    on_mount(tmp_path, body)


def test_metadata_reaches_the_backing_at_once(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        (mnt / "d").mkdir()
        write(mnt / "d" / "a", b"", sync=False)
        os.rename(mnt / "d" / "a", mnt / "d" / "b")
        write(mnt / "gone", b"", sync=False)
        os.unlink(mnt / "gone")
        assert sorted(os.listdir(backing / "d")) == ["b"]
        assert not (backing / "gone").exists()
        await mount.cut()
        await mount.restore()
        assert sorted(os.listdir(mnt / "d")) == ["b"]

    on_mount(tmp_path, body)


def test_unsynced_contents_follow_a_renamed_file(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "tmp", b"new", sync=False)
        os.rename(mnt / "tmp", mnt / "final")
        assert (mnt / "final").read_bytes() == b"new"
        fd = os.open(mnt / "final", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        assert (backing / "final").read_bytes() == b"new"

    on_mount(tmp_path, body)


def test_an_open_unlinked_file_keeps_working_and_leaves_nothing_behind(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        fd = os.open(mnt / "scratch", os.O_CREAT | os.O_RDWR)
        os.unlink(mnt / "scratch")
        os.pwrite(fd, b"still here", 0)
        assert os.pread(fd, 10, 0) == b"still here"
        os.close(fd)
        assert os.listdir(backing) == []  # no .fuse_hidden file

    on_mount(tmp_path, body)


def test_rename_noreplace_does_not_replace(tmp_path: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        write(mnt / "a", b"a", sync=True)
        write(mnt / "b", b"b", sync=True)
        at_fdcwd, rename_noreplace = -100, 1
        result = libc.renameat2(
            at_fdcwd, str(mnt / "a").encode(), at_fdcwd, str(mnt / "b").encode(), rename_noreplace
        )
        assert result == -1 and ctypes.get_errno() == 17  # EEXIST
        assert (backing / "b").read_bytes() == b"b"

    on_mount(tmp_path, body)


# ---- SQLite on the mount ------------------------------------------------------------------


def test_sqlite_wal_works_with_two_connections_sharing_memory(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        db = mnt / "store.sqlite"
        writer = sqlite3.connect(db, isolation_level=None)
        reader = sqlite3.connect(db, isolation_level=None)
        try:
            assert writer.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
            writer.execute("PRAGMA synchronous=FULL")
            writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            for k in range(200):
                writer.execute("INSERT INTO t (v) VALUES (?)", (f"row {k}" * 20,))
            # the reader learns of the writer's commits through the mapped -shm file
            assert reader.execute("SELECT count(*) FROM t").fetchone() == (200,)
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            reader.close()
            writer.close()
        assert sorted(os.listdir(backing)) == ["store.sqlite"]  # the WAL is gone on close

    on_mount(tmp_path, body)


def test_sqlite_in_this_process_dies_with_the_power_and_reopens_after(tmp_path: Path) -> None:
    """The bench's own case: the terminal's store open in the bench's process during a cut."""

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        db = mnt / "store.sqlite"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        for k in range(50):
            conn.execute("INSERT INTO t (id) VALUES (?)", (k,))
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (id) VALUES (1000)")  # in flight at the cut
        await mount.cut()
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            for k in range(1001, 1200):  # enough to make SQLite write to its files
                conn.execute("INSERT INTO t (id) VALUES (?)", (k,))
            conn.execute("COMMIT")
        conn.close()  # its checkpoint, WAL unlink and -shm unlink all fail with EIO
        assert "store.sqlite-wal" in os.listdir(backing)  # the dying close deleted nothing

        await mount.restore()
        again = sqlite3.connect(db, isolation_level=None)
        try:
            assert again.execute("SELECT count(*), max(id) FROM t").fetchone() == (50, 49)
            assert again.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            again.execute("INSERT INTO t (id) VALUES (50)")
        finally:
            again.close()

    on_mount(tmp_path, body)


def test_a_file_shows_a_new_inode_number_after_each_cut_and_keeps_it_meanwhile(
    tmp_path: Path,
) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        path = mnt / "store.sqlite"
        path.write_bytes(b"x")
        before = path.stat().st_ino
        assert path.stat().st_ino == before
        await mount.cut()
        await mount.restore()
        after = path.stat().st_ino
        assert after != before and path.stat().st_ino == after
        with open(path, "rb") as f:
            assert os.fstat(f.fileno()).st_ino == after

    on_mount(tmp_path, body)


def test_a_connection_the_cut_left_open_does_not_reach_the_next_one(tmp_path: Path) -> None:
    """The bench's own case: a dead SQLite connection in this process may keep its files open
    after ``close`` (a cursor still refers to it), and SQLite keeps another's descriptor beside
    it for reuse. With the same inode number after the restore, SQLite lent that descriptor,
    dead since the cut, to the next connection on the file ("disk I/O error")."""

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        db = mnt / "store.sqlite"
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        writer.executemany("INSERT INTO t (id) VALUES (?)", [(k,) for k in range(10)])
        reader = sqlite3.connect(db, isolation_level=None)
        cursor = reader.execute("SELECT id FROM t")
        cursor.fetchone()  # a read in progress: the reader holds a lock on the file
        await mount.cut()
        writer.close()  # beside a lock: SQLite keeps its descriptor to lend later
        reader.close()  # the cursor still refers to it: open in all but name
        await mount.restore()
        assert db in mount.held_open()

        again = sqlite3.connect(db, isolation_level=None)
        try:
            assert again.execute("SELECT count(*) FROM t").fetchone() == (10,)
            again.execute("INSERT INTO t (id) VALUES (10)")
            assert again.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            again.close()
        del cursor
        assert mount.held_open() == []

    on_mount(tmp_path, body)


# ---- the mount's own life ---------------------------------------------------------------------


def test_the_mount_is_gone_after_the_block_even_when_a_file_is_still_open(
    tmp_path: Path,
) -> None:
    held: list[int] = []

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        assert mounted_fstype(mnt) == f"fuse.{FSNAME}"
        held.append(os.open(mnt / "busy", os.O_CREAT | os.O_RDWR))

    try:
        on_mount(tmp_path, body)
        assert mounted_fstype(tmp_path / "mnt") is None
        assert os.listdir(tmp_path / "mnt") == []
    finally:
        with pytest.raises(OSError, match="not connected"):  # the mount went from under it
            os.close(held[0])


def test_a_file_system_that_died_leaves_no_mount_behind(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        mount.process.send_signal(signal.SIGKILL)
        await mount.process.wait()
        with pytest.raises(ControlError, match=r"gone|lost"):
            await mount.cut()

    on_mount(tmp_path, body)
    assert mounted_fstype(tmp_path / "mnt") is None


def test_the_file_system_can_be_pinned_to_a_cpu(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    (tmp_path / "b").mkdir()

    async def main() -> set[int]:
        async with volatile_mount(tmp_path / "b", tmp_path / "m", cpus={cpu}) as mount:
            return os.sched_getaffinity(mount.pid)

    assert run(main()) == {cpu}


def test_bad_directories_are_refused_with_the_reason(tmp_path: Path) -> None:
    async def mount_on(backing: Path, mountpoint: Path) -> None:
        async with volatile_mount(backing, mountpoint):
            pass

    with pytest.raises(MountError, match="does not exist"):
        run(mount_on(tmp_path / "missing", tmp_path / "mnt"))
    (tmp_path / "b").mkdir()
    with pytest.raises(MountError, match="inside the backing"):
        run(mount_on(tmp_path / "b", tmp_path / "b" / "mnt"))


#: Maps a -shm file (as SQLite does), waits for the cut, then faults every page in again.
MAPPER = """
import mmap, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, bytes(range(256)) * 128, 0)  # 32 KiB, as SQLite sizes its wal-index
m = mmap.mmap(fd, 32768)
assert m[:4] == bytes([0, 1, 2, 3])
print("mapped", flush=True)
sys.stdin.readline()  # the cut happens now
m.madvise(mmap.MADV_DONTNEED)  # unmap the pages ...
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # ... and evict them: the next touch reads
print("sum", sum(m[k * 4096 + k] for k in range(8)), flush=True)  # byte k of page k: k
"""


def test_a_dying_program_can_still_fault_in_its_mapped_shared_memory(tmp_path: Path) -> None:
    """A fault the file system cannot serve is SIGBUS: fatal to the bench if the terminal runs
    in its process. So a mapped -shm file stays readable through a cut."""

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MAPPER,
            str(mnt / "store.sqlite-shm"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None
        assert await child.stdout.readline() == b"mapped\n"
        await mount.cut()
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        answer = await child.stdout.readline()
        assert await child.wait() == 0, f"the mapping program died: {child.returncode}"
        assert answer == b"sum 28\n"  # what it wrote before the cut, 0 + 1 + ... + 7
        await mount.restore()

    on_mount(tmp_path, body)


def test_without_fuse_the_mode_is_sigkill_only_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    ok, reason = fuse_available()
    assert (ok, reason) == (False, "libfuse3 is not installed (Debian package fuse3)")
    capability = power_cut_mode()
    assert capability.mode == PowerCutMode.SIGKILL_ONLY
    assert capability.reason.startswith(reason)
    assert "never fsynced survive" in capability.reason

    async def mount_anyway() -> None:
        async with volatile_mount(Path("/tmp"), Path("/tmp/never")):
            pass

    with pytest.raises(FuseUnavailable, match="libfuse3"):
        run(mount_anyway())

"""A FUSE file system over a real directory that behaves like a disk with a volatile write cache.

``python -m simulators.power.volatile_fs BACKING MOUNTPOINT --control SOCKET``

- Writes and truncates go to an in-memory overlay of the file (:mod:`.overlay`), which is what
  the program reads back; ``fsync``/``fdatasync`` copy that file's overlay to the backing file.
  The backing file itself is not fsynced: the file-system process never loses power, only the
  program above it does.
- Metadata (create, unlink, rename, mkdir, rmdir, chmod, chown, utimens) reaches the backing
  directory at once. That is kinder than a real disk, where a new directory entry is durable
  only after the directory is fsynced: a cut here never loses a file name, only file contents
  and sizes. (SQLite fsyncs the directory where it matters, so it does not depend on this.)
- **cut** drops every unsynced byte; from that instant every operation fails with EIO, and every
  handle opened before the cut stays dead (EIO) forever. **restore** makes the mount usable
  again, showing only what was synced, every file under another inode number.
- Files named ``*-shm`` are SQLite's shared memory: a file only so processes can map it. They
  are not opened in direct-I/O mode (shared ``mmap`` needs the page cache) and their cache is
  kept across opens (every process maps the same pages). Their reads and writes never fail,
  even while the power is off or through a dead handle, because a failed page fault is SIGBUS
  and would kill the bench itself when the terminal under test runs in the bench's process.
  A cut drops the contents of those nobody has open, which is what power loss does to memory;
  one the dying program still has open (mapped) keeps its contents until its last handle
  closes, since a page it faults in again must be there: a short read would shrink the file
  under the mapping, and the next fault past the new end is SIGBUS. SQLite does not trust a
  -shm file it finds: the first connection after a restore rebuilds the wal-index from the WAL.
  (Within one process SQLite shares a file's locks and memory between connections, so the
  bench must close the dead terminal's connections before it opens the store again.)
- Other files are opened in direct-I/O mode, so every read reaches this process: after a cut
  nothing is served from the kernel's page cache.

The control socket takes one JSON object per line (``{"op": "cut"}``, ``{"op": "arm", "after":
N}``: cut just before the N-th write, truncate or fsync from now, which fails: a torn commit;
with ``"name": F``, only those on files named F count;
``restore``, ``stats``, ``quit``) and answers one per line (``{"ok": true, ...}`` or
``{"ok": false, "error": ...}``).
``ready`` and the negotiated parameters are printed on stdout once the kernel has mounted it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.power.overlay import FdBacking, FileOverlay

# mfusepy picks libfuse 2 when both are installed: this file speaks the libfuse 3 API.
os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")

import mfusepy  # type: ignore[import-untyped]

FSNAME = "carbench-volatile"
SHM_SUFFIX = "-shm"
MAX_WRITE = 1 << 20
_FUSE_CAP_WRITEBACK_CACHE = 1 << 16  # fuse_common.h: the kernel would hold writes back
_RENAME_NOREPLACE = 1
#: After each cut a file shows another inode number (the backing file's, shifted by this times
#: the power epoch), so SQLite's per-file table (keyed by device and inode) in a process that
#: outlived the cut does not lend a dead connection's descriptor to the next boot (README.md).
_EPOCH_INO_STRIDE = 0x9E3779B97F4A7C15


#: The overlay's page: SQLite's (the reference terminal's ``PAGE_SIZE``), so a checkpoint's page
#: is one of ours and a WAL frame spans two or three; with 4 KiB it spanned five or six (a sync
#: of WAL frames took 7.8 µs a frame against 3.2).
OVERLAY_PAGE = 16 * 1024


class _Node:
    """One backing file the program has open or has unsynced changes in."""

    __slots__ = ("fd", "handles", "key", "overlay", "shm", "survivor")

    def __init__(self, key: tuple[int, int], fd: int, shm: bool) -> None:
        self.key = key
        self.fd = fd
        self.overlay = FileOverlay(FdBacking(fd), page_size=OVERLAY_PAGE)
        self.handles = 0
        self.shm = shm
        #: shared memory a cut left to the dying program's handles (see the module docstring)
        self.survivor = False


class _Handle:
    __slots__ = ("epoch", "node", "path")

    def __init__(self, node: _Node | None, epoch: int, path: str) -> None:
        self.node = node  # None for a directory
        self.epoch = epoch
        self.path = path


def _eio() -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(errno.EIO)


class VolatileOperations(mfusepy.Operations):  # type: ignore[misc]
    """The file-system operations; thread-safe (the control thread cuts while libfuse calls)."""

    use_ns = True  # times in integer nanoseconds (mfusepy's float seconds are deprecated)

    def __init__(
        self, backing: str | Path, *, attr_timeout: float = 0.0, on_ready: Callable[[], None]
    ) -> None:
        self.root = os.path.realpath(backing)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(f"backing directory {backing} is not a directory")
        self.attr_timeout = attr_timeout
        self._on_ready = on_ready
        # One lock for everything: the GIL serialises the Python anyway, and a cut must be
        # atomic with respect to every operation (an fsync either happened before it or not).
        self._lock = threading.Lock()
        self.powered = True
        self._epoch = 0
        self._nodes: dict[tuple[int, int], _Node] = {}
        self._handles: dict[int, _Handle] = {}
        self._next_fh = 1
        self._fuse: int | None = None  # libfuse's struct fuse *, for cache invalidation
        self._armed: int | None = None  # write-like operations left before a cut (arm)
        self._armed_name: str | None = None  # ... counting only those on files of this name
        self.max_write = 0
        self.counters = {
            "writes": 0,
            "fsyncs": 0,
            "cuts": 0,
            "restores": 0,
            "bytes_dropped": 0,
            "shm_bytes_dropped": 0,
            "files_dropped": 0,
            "handles_killed": 0,
        }

    # ---- helpers (call with the lock held) ---------------------------------------------

    def _real(self, path: str) -> str:
        return self.root + path

    def _check_power(self) -> None:
        if not self.powered:
            raise _eio()

    def _live(self, fi: Any) -> _Handle:
        handle = self._handles.get(fi.fh)
        if handle is None or not self.powered or handle.epoch != self._epoch:
            raise _eio()
        return handle

    def _node(self, handle: _Handle) -> _Node:
        if handle.node is None:
            raise mfusepy.FuseOSError(errno.EISDIR)
        return handle.node

    def _node_for(self, real: str, flags: int, mode: int | None) -> _Node:
        """The node of the backing file at ``real`` (opened, or created when ``mode`` is given)."""
        base = os.O_RDWR | os.O_CLOEXEC
        if mode is not None:
            base |= os.O_CREAT | (flags & os.O_EXCL)
        try:
            fd = os.open(real, base, 0o600 if mode is None else mode)
        except PermissionError:  # a read-only backing file can still be read
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise mfusepy.FuseOSError(errno.EINVAL)
        key = (st.st_dev, st.st_ino)
        node = self._nodes.get(key)
        if node is not None:
            os.close(fd)  # one descriptor per file is enough: the node keeps it
            return node
        node = _Node(key, fd, real.endswith(SHM_SUFFIX))
        self._nodes[key] = node
        return node

    def _forget_if_idle(self, node: _Node) -> None:
        """Close a node nobody has open whose contents are all on the backing (or unreachable)."""
        if node.handles or self._nodes.get(node.key) is not node:
            return
        if node.survivor:  # the dying program let go of its shared memory: now it is lost
            self.counters["shm_bytes_dropped"] += node.overlay.drop()
        elif node.overlay.dirty and os.fstat(node.fd).st_nlink > 0:
            return  # closed but unsynced: the next open must still see it
        del self._nodes[node.key]
        os.close(node.fd)

    def _open_handle(self, node: _Node | None, path: str, fi: Any) -> None:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = _Handle(node, self._epoch, path)
        fi.fh = fh
        if node is not None:
            node.handles += 1
            node.survivor = False  # a program of the new epoch took it over
            if node.shm:
                fi.keep_cache = 1  # shared memory: every process maps the same pages
            else:
                fi.direct_io = 1

    def _ino(self, st: os.stat_result) -> int:
        return (st.st_ino + self._epoch * _EPOCH_INO_STRIDE) % (1 << 64)

    def _stat(self, st: os.stat_result, size: int | None) -> dict[str, int]:
        size = st.st_size if size is None else size
        return {
            "st_ino": self._ino(st),
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_uid": st.st_uid,
            "st_gid": st.st_gid,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": 4096,
            "st_atime": st.st_atime_ns,
            "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns,
        }

    # ---- lifecycle ----------------------------------------------------------------------

    def init_with_config(self, conn: Any, config: Any) -> None:
        if config is not None:
            config.entry_timeout = self.attr_timeout
            config.attr_timeout = self.attr_timeout
            config.negative_timeout = 0.0
            # unlink an open file at once (no .fuse_hidden renames left in the backing
            # directory by a cut); its handles keep working through their node
            config.hard_remove = 1
            config.use_ino = 1  # ours: a file's number changes with each power cut (_stat)
        if conn is not None:
            conn.max_write = MAX_WRITE
            conn.want &= ~_FUSE_CAP_WRITEBACK_CACHE
            self.max_write = conn.max_write
        self._fuse = mfusepy._libfuse.fuse_get_context().contents.fuse
        self._on_ready()

    def destroy(self, path: str) -> None:
        with self._lock:
            for node in self._nodes.values():
                with contextlib.suppress(OSError):
                    os.close(node.fd)
            self._nodes.clear()
            self._handles.clear()

    # ---- power ---------------------------------------------------------------------------

    def cut(self) -> dict[str, int]:
        """Power off: drop every unsynced byte and kill every handle."""
        with self._lock:
            report, stale = self._cut_locked()
        # Sizes the kernel cached from the overlay would outlive the cut: forget them. Done
        # without the lock, since the kernel may wait on requests our threads must answer.
        self._invalidate(stale)
        return report

    def arm(self, after: int, name: str | None = None) -> None:
        """Cut by itself just before the ``after``-th write, truncate or fsync from now, which
        fails: the power dies in the middle of whatever the program was writing (a torn
        commit), not between its writes. ``name``: count only those on files of that name
        (a program writing from several threads at once then dies at the same point of
        that file's writes every time, wherever its other writes are)."""
        if after < 1:
            raise ValueError(f"arm: after must be at least 1, got {after}")
        with self._lock:
            self._check_power()
            self._armed = after
            self._armed_name = name

    def _tick(self, path: str | None) -> None:
        """Count a write-like operation on ``path`` against an armed cut (lock held)."""
        if self._armed is None:
            return
        if self._armed_name is not None and os.path.basename(path or "") != self._armed_name:
            return
        self._armed -= 1
        if self._armed:
            return
        self._armed = None
        _, stale = self._cut_locked()
        # not from this thread: the kernel may wait for this very request to be answered
        threading.Thread(target=self._invalidate, args=(stale,), daemon=True).start()
        raise _eio()

    def _cut_locked(self) -> tuple[dict[str, int], list[str]]:
        stale: list[str] = []
        dropped = shm_dropped = files = 0
        for key, node in list(self._nodes.items()):
            if node.overlay.dirty and not node.shm:
                files += 1
                with contextlib.suppress(OSError):
                    stale.append(os.readlink(f"/proc/self/fd/{node.fd}"))
            if node.shm and node.handles:
                node.survivor = True  # mapped by the dying program: its memory, until it
                continue  # lets go (a fault it cannot serve would be a SIGBUS)
            if node.shm:
                shm_dropped += node.overlay.drop()
            else:
                dropped += node.overlay.drop()
            del self._nodes[key]
            os.close(node.fd)
        killed = sum(1 for h in self._handles.values() if h.epoch == self._epoch)
        self._epoch += 1
        self.powered = False
        self._armed = None
        c = self.counters
        c["cuts"] += 1
        c["bytes_dropped"] = dropped
        c["shm_bytes_dropped"] = shm_dropped
        c["files_dropped"] = files
        c["handles_killed"] = killed
        report = {
            "bytes_dropped": dropped,
            "shm_bytes_dropped": shm_dropped,
            "files_dropped": files,
            "handles_killed": killed,
        }
        return report, stale

    def _invalidate(self, backing_paths: list[str]) -> None:
        if self._fuse is None:
            return
        invalidate = mfusepy._libfuse.fuse_invalidate_path
        invalidate.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        invalidate.restype = ctypes.c_int
        for real in backing_paths:
            if real.endswith(" (deleted)") or not real.startswith(self.root + "/"):
                continue
            invalidate(self._fuse, real[len(self.root) :].encode("utf-8", "surrogateescape"))

    def restore(self) -> None:
        with self._lock:
            if not self.powered:
                self.powered = True
                self.counters["restores"] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            regular = [n for n in self._nodes.values() if not n.shm]
            return {
                "powered": self.powered,
                "files": len(self._nodes),
                "handles": sum(1 for h in self._handles.values() if h.epoch == self._epoch),
                "dead_handles": sum(1 for h in self._handles.values() if h.epoch != self._epoch),
                "dirty_files": sum(1 for n in regular if n.overlay.dirty),
                "dirty_bytes": sum(n.overlay.unsynced for n in regular),
                "max_write": self.max_write,
                **self.counters,
            }

    # ---- files ---------------------------------------------------------------------------

    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        with self._lock:
            if fh is not None and fh.fh in self._handles:
                handle = self._live(fh)
                if handle.node is not None:
                    return self._stat(os.fstat(handle.node.fd), handle.node.overlay.size)
                path = handle.path
            self._check_power()
            if path is None:  # an unlinked file, asked about without its handle
                raise mfusepy.FuseOSError(errno.ENOENT)
            st = os.lstat(self._real(path))
            found = self._nodes.get((st.st_dev, st.st_ino))
            return self._stat(st, None if found is None else found.overlay.size)

    def open(self, path: str, fi: Any) -> int:
        with self._lock:
            self._check_power()
            node = self._node_for(self._real(path), fi.flags, None)
            if fi.flags & os.O_TRUNC:
                node.overlay.truncate(0)
            self._open_handle(node, path, fi)
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        with self._lock:
            self._check_power()
            node = self._node_for(self._real(path), fi.flags, mode)
            if fi.flags & os.O_TRUNC:
                node.overlay.truncate(0)
            self._open_handle(node, path, fi)
        return 0

    def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
        with self._lock:
            handle = self._handles.get(fi.fh)
            if handle is not None and handle.node is not None and handle.node.shm:
                return handle.node.overlay.read(size, offset)  # memory: never a SIGBUS
            return self._node(self._live(fi)).overlay.read(size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        with self._lock:
            handle = self._handles.get(fi.fh)
            if handle is None or handle.node is None or not handle.node.shm:
                handle = self._live(fi)
            node = self._node(handle)
            self._tick(handle.path)
            self.counters["writes"] += 1
            return node.overlay.write(data, offset)

    def truncate(self, path: str | None, length: int, fh: Any = None) -> int:
        with self._lock:
            if fh is not None:
                handle = self._live(fh)
                node, path = self._node(handle), handle.path
            else:
                self._check_power()
                if path is None:
                    raise _eio()
                node = self._node_for(self._real(path), os.O_RDWR, None)
            self._tick(path)
            node.overlay.truncate(length)
            self._forget_if_idle(node)
        return 0

    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        with self._lock:
            handle = self._live(fi)
            node = self._node(handle)
            self._tick(handle.path)
            node.overlay.sync()
            self.counters["fsyncs"] += 1
        return 0

    def flush(self, path: str | None, fi: Any) -> int:
        with self._lock:
            self._live(fi)
        return 0

    def release(self, path: str | None, fi: Any) -> int:
        with self._lock:
            handle = self._handles.pop(fi.fh, None)
            if handle is not None and handle.node is not None:
                node = handle.node
                node.handles -= 1
                self._forget_if_idle(node)  # a node a cut took away is gone already
        return 0

    # ---- directories and metadata (applied to the backing at once) ----------------------

    def opendir(self, path: str) -> int:
        with self._lock:
            self._check_power()
            if not os.path.isdir(self._real(path)):
                raise mfusepy.FuseOSError(errno.ENOTDIR)
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = _Handle(None, self._epoch, path)
            return fh

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        with self._lock:
            handle = self._handles.get(fh)
            if handle is None or handle.epoch != self._epoch:
                raise _eio()
            self._check_power()
            real = self._real(handle.path)
            entries = []
            for name in (".", "..", *os.listdir(real)):
                try:
                    st = os.lstat(os.path.join(real, name))
                except FileNotFoundError:  # gone since the listing
                    continue
                # with use_ino an entry without its number would be hidden (d_ino 0)
                entries.append((name, {"st_ino": self._ino(st), "st_mode": st.st_mode}, 0))
            return entries

    def releasedir(self, path: str | None, fh: int) -> int:
        with self._lock:
            self._handles.pop(fh, None)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        with self._lock:
            handle = self._handles.get(fh)
            if handle is None or handle.epoch != self._epoch:
                raise _eio()
            self._check_power()
        return 0

    def access(self, path: str, amode: int) -> int:
        with self._lock:
            self._check_power()
            if not os.access(self._real(path), amode):
                raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        with self._lock:
            self._check_power()
            sv = os.statvfs(self.root)
        return {
            key: getattr(sv, key)
            for key in (
                "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                "f_files", "f_ffree", "f_favail", "f_namemax",
            )
        }  # fmt: skip

    def mkdir(self, path: str, mode: int) -> int:
        with self._lock:
            self._check_power()
            os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        with self._lock:
            self._check_power()
            os.rmdir(self._real(path))
        return 0

    def unlink(self, path: str) -> int:
        with self._lock:
            self._check_power()
            real = self._real(path)
            st = os.lstat(real)
            os.unlink(real)
            node = self._nodes.get((st.st_dev, st.st_ino))
            if node is not None:
                self._forget_if_idle(node)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        with self._lock:
            self._check_power()
            real_new = self._real(new)
            if flags & ~_RENAME_NOREPLACE:  # RENAME_EXCHANGE, RENAME_WHITEOUT
                raise mfusepy.FuseOSError(errno.EINVAL)
            if flags and os.path.lexists(real_new):
                raise mfusepy.FuseOSError(errno.EEXIST)
            try:
                replaced = os.lstat(real_new)
            except FileNotFoundError:
                replaced = None
            os.rename(self._real(old), real_new)
            if replaced is not None:
                node = self._nodes.get((replaced.st_dev, replaced.st_ino))
                if node is not None:
                    self._forget_if_idle(node)
        return 0

    def chmod(self, path: str | None, mode: int) -> int:
        with self._lock:
            self._check_power()
            if path is not None:  # fchmod of an unlinked file: nothing left to change
                os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str | None, uid: int, gid: int) -> int:
        with self._lock:
            self._check_power()
            if path is not None:
                os.chown(self._real(path), uid, gid, follow_symlinks=False)
        return 0

    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        with self._lock:
            self._check_power()
            if path is not None:
                if times is None:
                    os.utime(self._real(path))
                else:
                    os.utime(self._real(path), ns=times)
        return 0


class _Fuse(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE, but ``ftruncate`` keeps its file handle and ``rename`` its flags.

    mfusepy 3.1 drops the ``fuse_file_info`` of a libfuse 3 truncate, so an ``ftruncate`` of an
    open file would arrive as a path only, and not at all for an unlinked one; and it drops the
    flags of rename, so ``RENAME_NOREPLACE`` would replace.
    """

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        result: int = self.operations.rename(
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )
        return result

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        result: int = self.operations.truncate(decoded, length, fip.contents if fip else None)
        return result


# ---- the control socket -----------------------------------------------------------------


def _block_exit_signals() -> None:
    """Leave SIGTERM/SIGINT/SIGHUP to the main thread, where libfuse waits to end its loop."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class ControlServer:
    """Answers cut/restore/stats/quit on a Unix socket, one JSON object per line."""

    def __init__(self, ops: VolatileOperations, path: str) -> None:
        self.ops = ops
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _serve(self) -> None:
        _block_exit_signals()
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        _block_exit_signals()
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                answer, quit_after = self._answer(line)
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()
                if quit_after:
                    # libfuse's own handler ends the loop and unmounts (lazily, so a busy
                    # mount does not stop it); only the main thread takes the signal
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    def _answer(self, line: bytes) -> tuple[dict[str, Any], bool]:
        try:
            command = json.loads(line)
            op = command["op"]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": f"not a command: {line[:200]!r}"}, False
        started = time.perf_counter()
        if op == "cut":
            result: dict[str, Any] = self.ops.cut()
        elif op == "arm":
            try:
                self.ops.arm(int(command["after"]), command.get("name"))
            except (KeyError, TypeError, ValueError) as exc:
                return {"ok": False, "error": f"arm: {exc}"}, False
            except mfusepy.FuseOSError:
                return {"ok": False, "error": "arm: the power is off"}, False
            result = {}
        elif op == "restore":
            self.ops.restore()
            result = {}
        elif op == "stats":
            result = self.ops.stats()
        elif op == "quit":
            return {"ok": True}, True
        else:
            return {"ok": False, "error": f"unknown command {op!r}"}, False
        return {"ok": True, "seconds": time.perf_counter() - started, **result}, False


def _watch_parent(parent: int) -> None:
    """End the file system when the process that started it dies (no orphaned mounts)."""
    _block_exit_signals()
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.power.volatile_fs",
        description="Mount BACKING on MOUNTPOINT with a volatile write cache (power cuts).",
    )
    parser.add_argument("backing", type=Path)
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--control", required=True, help="Unix socket for cut/restore/stats/quit")
    parser.add_argument(
        "--attr-timeout",
        type=float,
        default=0.0,
        help="seconds the kernel may keep sizes and names (0: a stat while cut fails too)",
    )
    parser.add_argument("--debug", action="store_true", help="libfuse's request trace on stderr")
    parser.add_argument(
        "--threads",
        action="store_true",
        help="libfuse's multithreaded loop (slower here: see README.md)",
    )
    args = parser.parse_args(argv)

    if mfusepy.fuse_version_major != 3:
        print(f"{FSNAME}: needs libfuse 3, found {mfusepy._libfuse_path}", file=sys.stderr)
        return 2
    if not args.mountpoint.is_dir():
        print(f"{FSNAME}: mountpoint {args.mountpoint} is not a directory", file=sys.stderr)
        return 2

    def ready() -> None:
        hello = {"ready": True, "pid": os.getpid(), "max_write": ops.max_write}
        sys.stdout.write(json.dumps(hello) + "\n")
        sys.stdout.flush()

    try:
        ops = VolatileOperations(args.backing, attr_timeout=args.attr_timeout, on_ready=ready)
    except OSError as exc:
        print(f"{FSNAME}: {exc}", file=sys.stderr)
        return 2
    # A cut waits for the GIL behind the callbacks of a busy writer: ask for it sooner than
    # the default 5 ms, so a cut lands within a millisecond or so.
    sys.setswitchinterval(0.0005)
    control = ControlServer(ops, args.control)
    control.start()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    options: dict[str, Any] = {"fsname": FSNAME, "subtype": FSNAME, "default_permissions": True}
    if os.geteuid() == 0:
        options["allow_other"] = True  # a terminal that drops root can still use its store
    try:
        _Fuse(
            ops,
            str(args.mountpoint),
            raw_fi=True,
            foreground=True,
            nothreads=not args.threads,
            debug=args.debug,
            **options,
        )
    except RuntimeError as exc:
        print(f"{FSNAME}: libfuse failed ({exc}); see the messages above", file=sys.stderr)
        return 1
    finally:
        control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

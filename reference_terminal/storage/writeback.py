"""Paced write-back: a large database write reaches the disk a few megabytes at a time.

Why (ISC-2 §9.4, edge latency): a write is durable once its intake-log record is fdatasynced
(``intake_log.py``), and that sync waits for every write already queued on the same disk. A
settle of the recent rows put ~90 MB into the WAL (measured: 200 000 readings of 10 000
points), and its commit's fsync queued all of it at once, then the checkpoint's the same again:
each settle held an intake-log sync for 40–45 ms, and most readings over 2 ms in
``bench_edge_latency`` were in those stalls. Measured on this machine's disk: data already
written to the device is made durable by an fdatasync of ~0.1 ms, whatever its size (the time
is in the transfer), and a 4 MB transfer held a concurrent small sync for 0.3 ms at most,
160 MB for 15–25 ms. So the settle commits without
its own sync (``synchronous=NORMAL``: a cut may roll the settle back, never tear it, and the
rows are then still in the recent tables), then :func:`push` writes the WAL out in
``STEP_BYTES`` steps and syncs it (RocksDB's ``bytes_per_sync`` answers the same problem).
The checkpoint that copies those pages into the database file is the same burst again: the
writer runs it itself, unsynced, and pushes the database file the same way before its next
transaction (which is what could start the WAL afresh: until then the WAL still holds every
page the checkpoint copied, so a cut meanwhile loses nothing).

Linux only (``sync_file_range``); elsewhere :func:`push` is one fdatasync, the burst as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

#: The most the pusher has in flight at once: ~0.3 ms of this disk's transfer.
STEP_BYTES: Final = 2 << 20

_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


def _sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()


def push(path: Path, step: int = STEP_BYTES) -> None:
    """Make ``path`` durable, written out ``step`` bytes at a time first. Only for a file
    without POSIX locks of its own (a WAL: its locks are in its ``-shm``): closing any
    descriptor of a file drops every lock this process holds on it, SQLite's included."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # no WAL: nothing written since the last checkpoint truncated it
    try:
        push_fd(fd, step)
    finally:
        os.close(fd)


def push_fd(fd: int, step: int = STEP_BYTES) -> None:
    """Make the open file ``fd`` durable, written out ``step`` bytes at a time first."""
    if _SYNC_FILE_RANGE is not None:
        flags = _WAIT_BEFORE | _WRITE | _WAIT_AFTER
        for offset in range(0, os.fstat(fd).st_size, step):
            if _SYNC_FILE_RANGE(fd, offset, step, flags) != 0:
                log.debug("sync_file_range: %s", os.strerror(ctypes.get_errno()))
                break
    os.fdatasync(fd)

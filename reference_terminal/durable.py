"""Files that survive a power cut: written aside, fsynced, renamed over the old one, and the
directory fsynced so the rename itself is on disk. Renamed unsynced, a cut can leave the new
name on an empty or torn file; the rename unsynced, a cut can bring back the old version."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a create, a rename, an unlink) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(part: Path, path: Path, *, durable: bool = True) -> None:
    """Give the written file ``part`` the name ``path`` atomically, its data on disk first.
    ``durable=False`` skips the directory's fsync: a cut may then bring back the previous
    version, never a torn one."""
    fsync_file(part)
    part.replace(path)
    if durable:
        fsync_dir(path.parent)


def write_file(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` (through ``path.part``), as :func:`publish` does."""
    part = path.with_name(path.name + ".part")
    with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    part.replace(path)
    if durable:
        fsync_dir(path.parent)

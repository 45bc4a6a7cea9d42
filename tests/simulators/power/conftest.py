"""What the power tests share: FUSE or a skip that says why, and a mount in a fresh directory."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from simulators.power import VolatileMount, fuse_available, volatile_mount

FUSE_OK, FUSE_REASON = fuse_available()
needs_fuse = pytest.mark.skipif(not FUSE_OK, reason=FUSE_REASON)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def on_mount(
    tmp_path: Path,
    body: Callable[[VolatileMount, Path, Path], Awaitable[T]],
    *,
    threads: bool = False,
) -> T:
    """Run ``body(mount, mountpoint, backing)`` with a fresh volatile mount."""
    backing = tmp_path / "backing"
    backing.mkdir()
    mountpoint = tmp_path / "mnt"

    async def main() -> T:
        async with volatile_mount(backing, mountpoint, threads=threads) as mount:
            return await body(mount, mountpoint, backing)

    return run(main())


def assert_eio(action: Callable[[], object], what: str) -> None:
    with pytest.raises(OSError) as raised:
        action()
    assert raised.value.errno == errno.EIO, f"{what}: {raised.value!r}, not EIO"

"""One file as a disk with a volatile write cache holds it: synced bytes plus unsynced changes.

Pure logic, no FUSE: :class:`FileOverlay` sits over a :class:`Backing` (the bytes that reached
the platter, as of the last fsync) and keeps every write and truncate since then in memory,
page by page. Reads see the overlay (what the running program reads back), :meth:`sync` copies
it to the backing, and :meth:`drop` forgets it (a power cut).

The overlay needs memory only for the pages written since the last sync, not for the file:
a terminal's 500 MB store costs what its last transaction touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

PAGE_SIZE = 4096
#: Buffers in one ``pwritev`` call (the system's IOV_MAX: pwritev is POSIX, and so is this).
IOV_MAX = os.sysconf("SC_IOV_MAX")

Buffer = bytes | bytearray | memoryview


class Backing(Protocol):
    """The durable bytes of one file."""

    def pread(self, size: int, offset: int) -> bytes: ...

    def pwritev(self, buffers: Sequence[Buffer], offset: int) -> None:
        """Write ``buffers`` one after the other from ``offset``."""
        ...

    def truncate(self, size: int) -> None: ...

    def size(self) -> int: ...


class FdBacking:
    """A backing file by its descriptor (so renames and unlinks of the path do not matter)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def pwritev(self, buffers: Sequence[Buffer], offset: int) -> None:
        # A sync hands over its pages as they lie: joined into one bytes object first, a sync
        # of WAL frames took three times as long (24 µs a frame against 7.8).
        views = [memoryview(b) for b in buffers if len(b)]
        first = 0
        while first < len(views):  # a regular file takes all at once; the loop is for the rule
            done = os.pwritev(self.fd, views[first : first + IOV_MAX], offset)
            offset += done
            while done:
                size = len(views[first])
                if done < size:
                    views[first] = views[first][done:]
                    break
                done -= size
                first += 1

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def size(self) -> int:
        return os.fstat(self.fd).st_size


class MemoryBacking:
    """A backing file in memory: for tests and for reasoning about the overlay alone."""

    __slots__ = ("data",)

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)

    def pread(self, size: int, offset: int) -> bytes:
        return bytes(self.data[offset : offset + size])

    def pwritev(self, buffers: Sequence[Buffer], offset: int) -> None:
        data = b"".join(buffers)
        if offset > len(self.data):
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset : offset + len(data)] = data

    def truncate(self, size: int) -> None:
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))

    def size(self) -> int:
        return len(self.data)


class _Page:
    """The written part ``[lo, hi)`` of one page; the rest of ``data`` means nothing."""

    __slots__ = ("data", "hi", "lo")

    def __init__(self, size: int, lo: int, hi: int) -> None:
        self.data = bytearray(size)
        self.lo = lo
        self.hi = hi


class FileOverlay:
    """The unsynced state of one file over its backing.

    Invariants: ``floor <= size``; backing bytes at offsets ``>= floor`` are no longer part of
    the file (a truncate cut them off) and read as zeros unless a dirty page says otherwise;
    bytes of a dirty page past ``size`` are zeros (only a filled page's range reaches past it).

    A page remembers which contiguous range of it was written, so appending to a file (a WAL:
    a 24-byte frame header, then a page at an odd offset) never reads the backing: the page is
    filled from the backing only when a second write leaves a gap in it.
    """

    __slots__ = ("_floor", "_pages", "_synced_size", "backing", "page_size", "size", "unsynced")

    def __init__(self, backing: Backing, *, page_size: int = PAGE_SIZE) -> None:
        if page_size <= 0:
            raise ValueError(f"page_size must be positive, not {page_size}")
        self.backing = backing
        self.page_size = page_size
        self._synced_size = backing.size()
        self.size = self._synced_size  # as the program sees it
        self._floor = self._synced_size
        self._pages: dict[int, _Page] = {}
        #: bytes written since the last sync (an overwrite counts again): what a cut drops
        self.unsynced = 0

    @property
    def dirty(self) -> bool:
        """Whether the program sees anything the backing does not hold."""
        return bool(self._pages) or self.size != self._synced_size or self._floor != self.size

    @property
    def dirty_pages(self) -> int:
        return len(self._pages)

    def _clean(self, offset: int, size: int) -> bytearray:
        """Bytes ``[offset, offset + size)`` as the backing gives them (zeros past the floor)."""
        out = bytearray(size)
        if offset < self._floor:
            got = self.backing.pread(min(size, self._floor - offset), offset)
            out[: len(got)] = got
        return out

    def read(self, size: int, offset: int) -> bytes:
        end = min(offset + size, self.size)
        if end <= offset:
            return b""
        out = self._clean(offset, end - offset)
        if self._pages:
            ps = self.page_size
            for index in range(offset // ps, (end - 1) // ps + 1):
                page = self._pages.get(index)
                if page is None:
                    continue
                start = index * ps
                lo = max(offset, start + page.lo)
                hi = min(end, start + page.hi)
                if lo < hi:
                    out[lo - offset : hi - offset] = page.data[lo - start : hi - start]
        return bytes(out)

    def write(self, data: bytes, offset: int) -> int:
        ps = self.page_size
        pages = self._pages
        end = offset + len(data)
        view = memoryview(data)
        at = offset
        while at < end:
            index = at // ps
            start = index * ps
            hi = min(end, start + ps)
            a, b = at - start, hi - start
            page = pages.get(index)
            if page is None:
                page = pages[index] = _Page(ps, a, b)
            elif page.lo <= b and a <= page.hi:  # touches the written range: still one range
                page.lo = min(page.lo, a)
                page.hi = max(page.hi, b)
            else:  # a gap would open: fill the page from the backing, all of it is known now
                filled = self._clean(start, ps)
                filled[page.lo : page.hi] = page.data[page.lo : page.hi]
                page.data, page.lo, page.hi = filled, 0, ps
            page.data[a:b] = view[at - offset : hi - offset]
            at = hi
        self.size = max(self.size, end)
        self.unsynced += len(data)
        return len(data)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"negative size {size}")
        if size < self.size:
            ps = self.page_size
            keep = -(-size // ps)  # pages at or past this index lie wholly beyond the new end
            for index in [i for i in self._pages if i >= keep]:
                del self._pages[index]
            tail = self._pages.get(size // ps)
            if tail is not None and size % ps:
                tail.hi = min(tail.hi, size % ps)
                if tail.lo >= tail.hi:
                    del self._pages[size // ps]
            self._floor = min(self._floor, size)
        self.size = size

    def sync(self) -> int:
        """Make the backing hold what the program sees; the bytes written to it."""
        if not self.dirty:
            return 0
        backing = self.backing
        length = self._synced_size
        if self._floor < length:  # what a truncate cut off must not come back
            backing.truncate(self._floor)
            length = self._floor
        written = 0
        ps = self.page_size
        run: list[memoryview] = []  # contiguous written ranges, as views of their pages
        run_start = run_end = -1
        for index in sorted(self._pages):
            page = self._pages[index]
            start = index * ps
            lo, hi = start + page.lo, min(start + page.hi, self.size)  # a filled page may pass it
            if lo >= hi:
                continue
            if run and lo != run_end:
                backing.pwritev(run, run_start)
                written += run_end - run_start
                run = []
            if not run:
                run_start = lo
            run.append(memoryview(page.data)[page.lo : hi - start])
            run_end = hi
            length = max(length, hi)
        if run:
            backing.pwritev(run, run_start)
            written += run_end - run_start
        if length != self.size:
            backing.truncate(self.size)
        self._pages.clear()
        self._synced_size = self._floor = self.size
        self.unsynced = 0
        return written

    def drop(self) -> int:
        """Forget everything unsynced (a power cut); the bytes written since the last sync."""
        dropped = self.unsynced
        self._pages.clear()
        self.size = self._floor = self._synced_size
        self.unsynced = 0
        return dropped

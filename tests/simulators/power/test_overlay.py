"""The overlay alone: a file as a disk with a volatile write cache holds it, no FUSE needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.power.overlay import IOV_MAX, FdBacking, FileOverlay, MemoryBacking


def overlay(data: bytes = b"", page_size: int = 8) -> tuple[FileOverlay, MemoryBacking]:
    backing = MemoryBacking(data)
    return FileOverlay(backing, page_size=page_size), backing


def test_writes_are_read_back_but_reach_the_backing_only_on_sync() -> None:
    o, backing = overlay(b"0123456789")
    o.write(b"abc", 8)
    assert o.read(100, 0) == b"01234567abc"
    assert o.size == 11
    assert bytes(backing.data) == b"0123456789"
    assert o.sync() == 3
    assert bytes(backing.data) == b"01234567abc"
    assert not o.dirty


def test_drop_returns_to_the_last_sync_and_counts_what_it_lost() -> None:
    o, backing = overlay(b"synced")
    o.write(b"XY", 0)
    o.sync()
    o.write(b"lost!", 4)
    o.truncate(3)
    assert o.drop() == 5
    assert o.read(100, 0) == b"XYnced"
    assert bytes(backing.data) == b"XYnced"


def test_a_write_past_the_end_leaves_a_hole_of_zeros() -> None:
    o, backing = overlay(b"ab")
    o.write(b"z", 20)
    assert o.read(100, 0) == b"ab" + bytes(18) + b"z"
    o.sync()
    assert bytes(backing.data) == b"ab" + bytes(18) + b"z"


def test_truncate_then_extend_does_not_bring_old_bytes_back() -> None:
    o, backing = overlay(b"abcdefghijklmnopqrstuvwxyz")
    o.truncate(3)
    o.truncate(26)
    assert o.read(100, 0) == b"abc" + bytes(23)
    o.sync()
    assert bytes(backing.data) == b"abc" + bytes(23)


def test_truncate_inside_a_written_page_forgets_the_bytes_past_the_cut() -> None:
    o, _ = overlay(b"")
    o.write(b"ABCDEFGHIJ", 0)  # 8-byte pages: one whole, one partial
    o.truncate(5)
    o.write(b"z", 9)
    assert o.read(100, 0) == b"ABCDE" + bytes(4) + b"z"


def test_appends_do_not_read_the_backing() -> None:
    class CountingBacking(MemoryBacking):
        reads = 0

        def pread(self, size: int, offset: int) -> bytes:
            self.reads += 1
            return super().pread(size, offset)

    backing = CountingBacking(b"header--")
    o = FileOverlay(backing, page_size=8)
    for k in range(20):  # WAL-like: a small header, then a page at an odd offset
        o.write(b"h" * 3, 8 + k * 11)
        o.write(b"p" * 8, 11 + k * 11)
    assert backing.reads == 0
    o.sync()
    assert bytes(backing.data) == b"header--" + (b"hhh" + b"p" * 8) * 20


def test_a_gap_inside_a_page_is_filled_from_the_backing() -> None:
    o, _ = overlay(b"abcdefgh")
    o.write(b"X", 1)
    o.write(b"Y", 6)
    assert o.read(8, 0) == b"aXcdefYh"


def test_sync_of_a_clean_file_writes_nothing() -> None:
    o, _ = overlay(b"abc")
    assert o.sync() == 0
    assert not o.dirty


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="page_size"):
        overlay(page_size=0)
    o, _ = overlay()
    with pytest.raises(ValueError, match="negative"):
        o.truncate(-1)


# ---- the property: what survives a cut is exactly what was synced -------------------------

FILES = 3
_op = st.one_of(
    st.tuples(
        st.just("write"),
        st.integers(0, FILES - 1),
        st.integers(0, 70),
        st.binary(min_size=1, max_size=12),
    ),
    st.tuples(st.just("truncate"), st.integers(0, FILES - 1), st.integers(0, 80)),
    st.tuples(st.just("sync"), st.integers(0, FILES - 1)),
    st.tuples(st.just("cut")),
)


@settings(max_examples=300, deadline=None)
@given(
    # never zeros, so a byte wrongly taken from a hole or wrongly kept from the backing shows
    initial=st.lists(
        st.binary(max_size=40).map(lambda b: bytes(x | 0x80 for x in b)),
        min_size=FILES,
        max_size=FILES,
    ),
    ops=st.lists(_op, max_size=60),
    page_size=st.sampled_from([1, 4, 8, 16]),
)
def test_after_any_sequence_the_backing_holds_each_files_last_synced_content(
    initial: list[bytes], ops: list[tuple[object, ...]], page_size: int
) -> None:
    backings = [MemoryBacking(data) for data in initial]
    overlays = [FileOverlay(b, page_size=page_size) for b in backings]
    seen = [bytearray(data) for data in initial]  # what the program reads back
    synced = [bytes(data) for data in initial]  # as of each file's last fsync
    for op in ops:
        if op[0] == "write":
            _, i, offset, data = op
            assert isinstance(i, int) and isinstance(offset, int) and isinstance(data, bytes)
            overlays[i].write(data, offset)
            if offset > len(seen[i]):
                seen[i].extend(bytes(offset - len(seen[i])))
            seen[i][offset : offset + len(data)] = data
        elif op[0] == "truncate":
            _, i, size = op
            assert isinstance(i, int) and isinstance(size, int)
            overlays[i].truncate(size)
            del seen[i][size:]
            seen[i].extend(bytes(size - len(seen[i])))
        elif op[0] == "sync":
            _, i = op
            assert isinstance(i, int)
            overlays[i].sync()
            synced[i] = bytes(seen[i])
        else:
            for o in overlays:
                o.drop()
            seen = [bytearray(s) for s in synced]
        for i in range(FILES):
            assert overlays[i].size == len(seen[i])
            assert overlays[i].read(200, 0) == bytes(seen[i])
            assert overlays[i].read(7, 5) == bytes(seen[i][5:12])
    for o in overlays:
        o.drop()
    for i in range(FILES):
        assert bytes(backings[i].data) == synced[i]
        assert FileOverlay(backings[i]).read(200, 0) == synced[i]


def test_a_sync_of_more_pages_than_one_vectored_write_takes_reaches_the_file_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        o = FileOverlay(FdBacking(fd), page_size=4)
        frames = [bytes([k % 251 + 1]) * 6 for k in range(IOV_MAX)]  # each spans 2-3 pages
        for k, frame in enumerate(frames):
            o.write(frame, k * 6)
        assert o.dirty_pages > IOV_MAX
        o.sync()
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(frames)

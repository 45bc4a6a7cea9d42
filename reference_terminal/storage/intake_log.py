"""The intake log: the file on which a write becomes durable before the database holds it.

Why it exists (ISC-2 §9.4, edge latency): a SQLite commit of a few dozen readings of as many
points dirties one leaf of the ``(point, t)`` index per row, and on a store in service that is
~0.5 MB of WAL per commit with a p99 of ~20 ms on this kind of disk. One append to one file
and an ``fdatasync`` cost ~0.3 ms (p99 ~1 ms). So a write is appended here, synced and
acknowledged; the store's writer applies it to the database behind, recording the sequence
number applied in the same transaction (``intake_state``). When the store opens, records the
database has not applied yet are applied again: a kill or power cut at any instant loses
nothing acknowledged, and nothing is applied twice.

What sets the tail (measured at 10 000 readings/s, ``benchmarks/bench_edge_latency.py``): the
database behind the log writes several KB to the disk per reading (its transactions' pages in
the WAL and again at the checkpoint, and the moves of recent rows to the settled tables), and
a sync of the log waits for whatever of that is queued on the same device. The moves were
bursts of ~90 MB that held the log's syncs for 40–70 ms; they now reach the disk in 2 MB
steps (``writeback.py``). Moving the database writer to a process of its own did not help
(the disk, not the GIL, is shared); neither did 1 KiB or 4 KiB pages.

The file is a sequence of records, each ``CBIL | seq u64 | length u32 | crc32 u32 | payload``
(little-endian; the CRC covers seq, length and payload; the payload is JSON of the rows as the
database stores them). Sequence numbers increase by one. Once the database has applied every
record the log rewinds and writes from its start again; what lies beyond the newest record is
older (lower numbers) or torn, so a reader stops at the first record that is torn, fails its
CRC or does not continue the sequence.

No threads here: :meth:`IntakeLog.append` is called by the store's intake thread or, for a
small write while that thread has nothing in hand, by the event loop (``store.py``).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from reference_terminal.durable import fsync_dir
from reference_terminal.storage.schema import DERIVED_COLUMNS, FIGURE_COLUMNS, StoreError

log = logging.getLogger(__name__)

MAGIC: Final = b"CBIL"
_HEADER: Final = struct.Struct("<4sQII")
#: Once this far into the file with everything applied, the next record starts it afresh.
REWIND_AT_BYTES: Final = 8 << 20
#: A record larger than this is not one this store wrote (a garbled length): stop reading.
MAX_RECORD_BYTES: Final = 1 << 30

#: The rows of one record: readings and events as column tuples (``READING_COLUMNS``,
#: ``EVENT_COLUMNS``), derived values as tuples in ``DERIVED_COLUMNS`` order (schema.py).
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


class IntakeLogError(StoreError):
    """The intake log could not be written or read back."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    seq: int
    rows: Rows


def log_path(database: Path) -> Path:
    """Where the intake log of the SQLite file ``database`` lives: beside it, as its WAL does."""
    return database.with_name(database.name + "-intake")


def payload_of(rows: Rows) -> bytes:
    """A record's payload: ``rows`` as JSON."""
    # orjson: the same bytes as json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
    # in a seventeenth of the time (1.8 µs against 31 for an instant's 40 readings), on the
    # event loop's path to every acknowledgement.
    return orjson.dumps(rows)


def rows_of(payload: bytes) -> Rows:
    """The rows of a record's payload (``payload_of``'s inverse)."""
    readings, events, derived = orjson.loads(payload)
    return (
        [tuple(r) for r in readings],
        [tuple(e) for e in events],
        # a record written before windows kept their figures in their row has 8 columns
        [tuple(d) if len(d) == _DERIVED_WIDTH else (*d, *_NO_FIGURES) for d in derived],
    )


_DERIVED_WIDTH: Final = len(DERIVED_COLUMNS)
_NO_FIGURES: Final = (None,) * len(FIGURE_COLUMNS)


def encode(seq: int, payload: bytes) -> bytes:
    """Record ``seq`` of ``payload`` (``payload_of``): header, checksum, payload."""
    header = _HEADER.pack(MAGIC, seq, len(payload), 0)
    crc = zlib.crc32(payload, zlib.crc32(header[4:16]))
    return _HEADER.pack(MAGIC, seq, len(payload), crc) + payload


def scan(data: bytes, *, applied: int = 0) -> Iterator[tuple[int, LogRecord]]:
    """The records of a log's contents, with the offset after each, up to the first that is
    torn, garbled or does not continue the sequence. Those up to ``applied`` (a database
    holds them already) are checked but not decoded, and come with no rows: a boot after a
    cut read up to 8 MiB of them only to drop them."""
    offset, previous = 0, None
    while offset + _HEADER.size <= len(data):
        magic, seq, length, crc = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if magic != MAGIC or length > MAX_RECORD_BYTES or end > len(data):
            return
        if previous is not None and seq != previous + 1:
            return
        payload = data[offset + _HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(data[offset + 4 : offset + 16])) != crc:
            return
        if seq <= applied:
            rows: Rows = ([], [], [])
        else:
            try:
                rows = rows_of(payload)
            except (ValueError, TypeError, RecursionError):
                return  # a CRC-valid record this code cannot read: stop, as for a torn one
        yield end, LogRecord(seq, rows)
        offset, previous = end, seq


class IntakeLog:
    """An open intake log. ``sync=False`` acknowledges before the data is on disk: the weak
    setting a bench uses to show its power cuts catch a terminal that cuts this corner."""

    def __init__(self, path: Path, fd: int, next_seq: int, *, sync: bool) -> None:
        self.path = path
        self._fd = fd
        self.sync = sync
        self.offset = 0
        #: The sequence number of the newest record written (0: none yet).
        self.last_seq = next_seq - 1

    @classmethod
    def open(
        cls, path: Path, *, applied: int, sync: bool = True
    ) -> tuple[IntakeLog, list[LogRecord]]:
        """Open (or create) the log at ``path`` for a database that has applied every record
        up to ``applied``. Returns the log, positioned at its start, and the records still to
        apply, in order. A log that does not continue from ``applied`` (the database file was
        replaced by an older one while records were pending) is set aside, not applied."""
        existed = path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise IntakeLogError(f"cannot open the intake log {path}: {exc}") from exc
        try:
            if not existed and sync:  # unsynced, the weak setting syncs nothing at all
                fsync_dir(path.parent)
            data = _read_all(fd)
            records = [record for _, record in scan(data, applied=applied)]
            pending = [r for r in records if r.seq > applied]
            newest = max([applied, *(r.seq for r in records)])
            if pending and pending[0].seq != applied + 1:
                aside = _set_aside(path, fd)
                log.error(
                    "intake log %s continues from record %d but the database has applied only "
                    "up to %d (was the database file replaced?): set aside as %s, not applied",
                    path,
                    pending[0].seq - 1,
                    applied,
                    aside,
                )
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                if sync:
                    fsync_dir(path.parent)
                pending = []
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, newest + 1, sync=sync), pending

    def append(self, payload: bytes) -> int:
        """Write one record of ``payload`` (``payload_of``) and (with ``sync``) put it on disk;
        return its sequence number. Nothing is acknowledged if this raises: the record is then
        torn or absent."""
        seq = self.last_seq + 1
        record = encode(seq, payload)
        try:
            written = os.pwrite(self._fd, record, self.offset)
            if written != len(record):
                raise OSError(f"short write: {written} of {len(record)} bytes")
            if self.sync:
                os.fdatasync(self._fd)
        except OSError as exc:
            raise IntakeLogError(f"could not write the intake log {self.path}: {exc}") from exc
        self.offset += len(record)
        self.last_seq = seq
        return seq

    @property
    def rewind_due(self) -> bool:
        return self.offset >= REWIND_AT_BYTES

    def rewind(self) -> None:
        """Write the next record at the start again. Only once the database holds, durably,
        every record written so far: they are overwritten from here on."""
        self.offset = 0

    def clear(self) -> None:
        """Empty the file (the database holds every record, durably): a store closed in order
        leaves no log to read at its next start."""
        try:
            os.ftruncate(self._fd, 0)
            if self.sync:
                os.fsync(self._fd)
        except OSError as exc:  # harmless: the next start finds every record applied
            log.warning("could not empty the intake log %s: %s", self.path, exc)
        self.offset = 0

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError as exc:  # a dead disk: what was synced stays, nothing else was promised
            log.warning("closing the intake log %s: %s", self.path, exc)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 16 << 20), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _set_aside(path: Path, fd: int) -> Path:
    os.close(fd)
    n = 1
    while (aside := path.with_name(f"{path.name}.orphaned-{n}")).exists():
        n += 1
    path.rename(aside)
    fsync_dir(path.parent)
    return aside

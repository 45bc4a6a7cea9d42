"""The intake log's file: records read back as written, in sequence; a torn or garbled tail, a
record from before a rewind or a stray byte ends the reading there; a log that does not
continue the database's applied position is set aside, not applied; garbage never crashes it."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reference_terminal.storage.intake_log import (
    IntakeLog,
    Rows,
    encode,
    log_path,
    payload_of,
    scan,
)

READING = ("EM01.ep", 1_767_225_600.25, "0012345678", "123.45", "good", 2, "em1", "")
EVENT = (1_767_225_600.0, "interpolated", "EM01.ep", None, None, None, '{"k": "中文"}')
DERIVED = ("EM01.ep", "increment", 1.0, 2.0, "0.10", "good", "", 3.0, None, None, None, None, None)
WINDOW = ("EM01.ep", "minute", 0.0, 60.0, "5", "good", "", 60.0, "6", "4", "4", "6", None)


def rows(n: int = 1) -> Rows:
    return ([READING] * n, [EVENT], [DERIVED, WINDOW])


def record(seq: int, n: int = 1) -> bytes:
    return encode(seq, payload_of(rows(n)))


def seqs(data: bytes) -> list[int]:
    return [r.seq for _, r in scan(data)]


def test_records_read_back_as_written() -> None:
    data = record(7, 2) + record(8, 1)
    records = [r for _, r in scan(data)]
    assert [r.seq for r in records] == [7, 8]
    assert records[0].rows == rows(2)  # tuples, floats and text exact


def test_records_a_database_already_applied_are_checked_not_decoded() -> None:
    data = record(7, 2) + record(8, 1)
    records = [r for _, r in scan(data, applied=7)]
    assert [(r.seq, r.rows) for r in records] == [(7, ([], [], [])), (8, rows(1))]
    garbled = bytearray(data)
    garbled[len(record(7, 2)) - 3] ^= 0x01  # the applied record's payload: still checked
    assert [r.seq for _, r in scan(bytes(garbled), applied=7)] == []


def test_a_record_from_before_windows_kept_their_figures_reads_with_none() -> None:
    old = encode(3, payload_of(([READING], [], [DERIVED[:8]])))
    [(_, record_)] = scan(old)
    assert record_.rows == ([READING], [], [DERIVED])


def test_a_torn_or_garbled_tail_ends_the_log() -> None:
    whole = record(1) + record(2)
    assert seqs(whole[:-1]) == [1]  # the second record cut short
    garbled = bytearray(whole)
    garbled[-3] ^= 0x01  # one bit of the second record's payload
    assert seqs(bytes(garbled)) == [1]
    assert seqs(whole + b"\0" * 40) == [1, 2]  # zeros after the last record: nothing more


def test_records_left_from_before_a_rewind_are_not_read() -> None:
    old = record(5, 3) + record(6, 3) + record(7, 3)
    new = record(8, 1)
    # written from the start again over older, longer records: what follows is not number 9
    data = new + old[len(new) :]
    assert seqs(data) == [8]


def test_opening_returns_only_what_the_database_has_not_applied(tmp_path: Path) -> None:
    path = log_path(tmp_path / "terminal.db")
    assert path.name == "terminal.db-intake"
    path.write_bytes(record(4) + record(5) + record(6))
    log, pending = IntakeLog.open(path, applied=4)
    try:
        assert [r.seq for r in pending] == [5, 6]
        assert log.last_seq == 6 and log.offset == 0  # the next record is 7, from the start
        assert log.append(payload_of(rows())) == 7
    finally:
        log.close()
    assert seqs(path.read_bytes()) == [7]


def test_a_log_that_does_not_continue_the_database_is_set_aside(tmp_path: Path) -> None:
    # the database file was replaced by an older one while the log held records 9 and 10
    path = log_path(tmp_path / "terminal.db")
    path.write_bytes(record(9) + record(10))
    log, pending = IntakeLog.open(path, applied=3)
    log.close()
    assert pending == []
    aside = tmp_path / "terminal.db-intake.orphaned-1"
    assert seqs(aside.read_bytes()) == [9, 10]  # kept for whoever investigates
    assert path.read_bytes() == b""


def test_rewinding_writes_over_the_start_and_clear_empties_the_file(tmp_path: Path) -> None:
    log, _ = IntakeLog.open(log_path(tmp_path / "t.db"), applied=0)
    try:
        for _ in range(3):
            log.append(payload_of(rows(5)))
        log.rewind()
        log.append(payload_of(rows(1)))
        assert seqs(log.path.read_bytes()) == [4]
        log.clear()
        assert os.path.getsize(log.path) == 0
        assert log.append(payload_of(rows(1))) == 5
    finally:
        log.close()


@given(st.binary(max_size=4096))
def test_garbage_never_crashes_the_reader(data: bytes) -> None:
    list(scan(data))
    list(scan(record(1) + data))


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=300))
def test_a_valid_record_with_garbage_spliced_in_reads_up_to_the_damage(
    junk: bytes, at: int
) -> None:
    first = record(1)
    second = record(2)
    at = min(at, len(second) - 1)
    damaged = first + second[:at] + junk + second[at:]
    assert seqs(damaged)[:1] == [1]
    assert seqs(damaged) in ([1], [1, 2])

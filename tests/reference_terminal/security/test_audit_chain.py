"""The audit log in the store (ISC-2 §7.4.1.3): every entry hash-chained with SM3 and sealed, so
an edit, a single deleted entry or a rewritten chain is found and named; whole-log deletion
starts a new chain that records it; combined-condition queries, sorting and export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from reference_terminal.security.audit import (
    CLEARED,
    GENESIS,
    AuditFilter,
    AuditLog,
    chain_hash,
    content,
)
from reference_terminal.security.errors import AuditUnavailable
from reference_terminal.security.secrets import SecretBox
from reference_terminal.storage.store import Store, sqlite_url
from tests.reference_terminal.security.harness import ManualClock

T0 = 1_800_000_000.0


@asynccontextmanager
async def audit_log(tmp_path: Path, clock: ManualClock | None = None) -> AsyncIterator[AuditLog]:
    async with await Store.open(sqlite_url(tmp_path / "terminal.db")) as store:
        yield AuditLog(
            lambda: store,
            clock or ManualClock(T0),
            SecretBox.from_key_file(tmp_path / "terminal.key"),
            tmp_path / "audit.anchor",
        )


async def fill(log: AuditLog, clock: ManualClock, n: int = 6) -> None:
    people = ["admin", "operator", "auditor"]
    for i in range(n):
        clock.advance(10)
        await log.append(
            people[i % 3],
            "login" if i % 2 == 0 else "configure",
            "failure" if i % 4 == 3 else "success",
            {"source": "127.0.0.1", "n": str(i)},
        )


def sql(tmp_path: Path, statement: str) -> None:
    """An edit behind the terminal's back, as anyone with the database file could make."""
    db = sqlite3.connect(tmp_path / "terminal.db")
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_each_entry_holds_time_user_type_outcome_details_and_its_chain(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            first = await log.append("admin", "login", "success", {"source": "127.0.0.1"})
            clock.advance(5)
            second = await log.append("operator", "operate", "failure", {"reason": "forbidden"})
            assert (first.seq, first.t, first.user, first.type, first.outcome) == (
                1,
                T0,
                "admin",
                "login",
                "success",
            )
            assert first.prev_hash == GENESIS
            assert second.prev_hash == first.hash
            assert second.hash == chain_hash(
                first.hash, content(2, T0 + 5, "operator", "operate", "failure", second.details)
            )
            report = await log.verify_chain()
            assert report.ok and report.entries == 2 and report.first_broken is None

    asyncio.run(main())


def test_an_edited_entry_is_named(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
            sql(tmp_path, "UPDATE audit_log SET outcome = 'success' WHERE seq = 4")
            report = await log.verify_chain()
            assert not report.ok
            assert report.first_broken is not None and report.first_broken.seq == 4
            assert "edited" in report.first_broken.reason

    asyncio.run(main())


def test_an_entry_rehashed_without_the_key_is_named_by_its_seal(tmp_path: Path) -> None:
    """Whoever edits the database can recompute SM3 hashes, not the seals."""

    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
            (entry,) = (await log.query(AuditFilter(), limit=1, offset=2))[0]
            forged = chain_hash(
                entry.prev_hash, content(3, entry.t, "nobody", entry.type, "success", entry.details)
            )
            sql(
                tmp_path,
                f"UPDATE audit_log SET user_id = 'nobody', outcome = 'success', "
                f"hash = '{forged}' WHERE seq = 3",
            )
            report = await log.verify_chain()
            assert report.first_broken is not None and report.first_broken.seq == 3
            assert "seal" in report.first_broken.reason

    asyncio.run(main())


@pytest.mark.parametrize(("deleted", "named"), [(3, 3), (1, 1), (6, 6)])
def test_a_single_deleted_entry_is_detected_wherever_it_was(
    tmp_path: Path, deleted: int, named: int
) -> None:
    """ISC-2 §7.4.1.3(4) 审计日志不允许逐条删除: the middle (a broken link), the first (the log no
    longer starts at 1) and the last (the terminal's anchor says the log went further)."""

    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
            sql(tmp_path, f"DELETE FROM audit_log WHERE seq = {deleted}")
            report = await log.verify_chain()
            assert not report.ok
            assert report.first_broken is not None and report.first_broken.seq == named
            assert "missing" in report.first_broken.reason

    asyncio.run(main())


def test_the_next_entry_after_a_cut_off_end_keeps_the_gap_visible(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
            sql(tmp_path, "DELETE FROM audit_log WHERE seq = 6")
            nxt = await log.append("admin", "login", "success")
            assert nxt.seq == 7  # not 6: the deleted entry's place stays empty
            report = await log.verify_chain()
            assert report.first_broken is not None and report.first_broken.seq == 6

    asyncio.run(main())


def test_the_whole_log_deleted_behind_the_terminals_back_is_detected(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
        sql(tmp_path, "DELETE FROM audit_log")
        async with audit_log(tmp_path, clock) as restarted:  # the anchor is read at start
            report = await restarted.verify_chain()
            assert report.first_broken is not None
            assert "entries 1 to 6 are missing" in report.first_broken.reason

    asyncio.run(main())


def test_whole_log_deletion_starts_a_chain_that_records_it(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock)
            last = (await log.query(AuditFilter(), sort="seq", descending=True, limit=1))[0][0]
            first = await log.clear("auditor", {"source": "127.0.0.1"})
            assert (first.seq, first.type, first.user, first.outcome) == (
                7,
                CLEARED,
                "auditor",
                "success",
            )
            assert first.prev_hash == last.hash
            assert first.details["deleted_entries"] == "6"
            assert first.details["deleted_last_seq"] == "6"
            entries, total = await log.query()
            assert total == 1 and entries[0] == first
            after = await log.append("auditor", "audit_delete", "success")
            assert after.prev_hash == first.hash
            assert (await log.verify_chain()).ok
            # A forged "cleared" entry needs the key: one without a seal is refused.
            sql(tmp_path, "UPDATE audit_log SET details = replace(details, '6', '5') WHERE seq = 7")
            report = await log.verify_chain()
            assert report.first_broken is not None and report.first_broken.seq == 7

    asyncio.run(main())


def test_queries_combine_conditions_and_sort(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.3(5) a. 支持组合条件查找 b. 支持日志记录排序."""

    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock, 12)
            logins, total = await log.query(AuditFilter(type="login", user="admin"))
            assert total == len(logins) == 2
            assert all(e.type == "login" and e.user == "admin" for e in logins)
            window = AuditFilter(start=T0 + 30, end=T0 + 80, outcome="success")
            found, _ = await log.query(window)
            assert [e.seq for e in found] == [3, 5, 6, 7]
            newest, _ = await log.query(window, sort="t", descending=True)
            assert [e.seq for e in newest] == [7, 6, 5, 3]
            by_user, _ = await log.query(AuditFilter(), sort="user", limit=4)
            assert [e.user for e in by_user] == ["admin"] * 4
            page, total = await log.query(AuditFilter(), limit=5, offset=10)
            assert total == 12 and [e.seq for e in page] == [11, 12]

    asyncio.run(main())


def test_export_as_csv_and_json_carries_every_field_and_hash(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.3(5) c. 具备日志查看与导出功能."""

    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock, 4)
            await log.append("op\x00erator\nfake,line", "login", "failure", {"x": "a\r\nb"})
            data, rows = await log.export(AuditFilter(), "csv", offset_s=8 * 3600)
            table = list(csv.DictReader(io.StringIO(data.decode())))
            assert rows == len(table) == 5
            assert table[0]["time"] == "2027-01-15T16:00:10+08:00"
            assert table[4]["user"] == "op\\x00erator\\nfake,line"  # escaped, one line
            entries, _ = await log.query()
            assert [r["hash"] for r in table] == [e.hash for e in entries]
            data, rows = await log.export(AuditFilter(outcome="failure"), "json", offset_s=0)
            records = json.loads(data)
            assert rows == len(records) == 2
            assert records[-1]["details"] == {"x": "a\\r\\nb"}

    asyncio.run(main())


def test_without_its_store_the_log_refuses_rather_than_drops(tmp_path: Path) -> None:
    async def main() -> None:
        log = AuditLog(
            lambda: None,
            ManualClock(T0),
            SecretBox.from_key_file(tmp_path / "k"),
            tmp_path / "a",
        )
        assert not log.ready()
        with pytest.raises(AuditUnavailable, match=r"ISC-2 §7.4.1.3\(4\)"):
            await log.append("admin", "login", "success")

    asyncio.run(main())


def test_a_tampered_anchor_is_reported(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock(T0)
        async with audit_log(tmp_path, clock) as log:
            await fill(log, clock, 2)
        (tmp_path / "audit.anchor").write_bytes(b"\x01" + b"0" * 80)
        async with audit_log(tmp_path, clock) as restarted:
            report = await restarted.verify_chain()
            assert report.first_broken is not None and "anchor" in report.first_broken.reason

    asyncio.run(main())

"""``POST /restore`` (ISC-2 §4.4): a backup made through the API replaces everything stored while
the terminal runs on; what was stored after the backup is gone, the audit chain stays whole (its
restore entry names the head it superseded), and a body that is no backup changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.reference_terminal.security.harness import Secured, secured_terminal

T = 1_800_000_000.0
SQLITE = {"Content-Type": "application/vnd.sqlite3"}


async def enter(client: httpx.AsyncClient, value: str, t: float) -> None:
    body = {"point": "coal_t", "value": value, "time": t, "operator": "li"}
    response = await client.post("/manual", json=body)
    assert response.status_code == 200, response.text


async def coal(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/points/coal_t/readings")
    assert response.status_code == 200, response.text
    return [item["raw"] for item in response.json()["items"]]


async def restore_entry(t: Secured) -> dict[str, str]:
    entries = [e for e in await t.audit_entries() if e.details.get("path") == "/restore"]
    assert len(entries) == 1, entries
    return dict(entries[0].details)


def test_a_restored_backup_replaces_the_data_and_the_terminal_runs_on(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as t:
            admin, operator = await t.session("admin"), await t.session("operator")
            await enter(operator, "100.00", T)
            backup = await admin.post("/backup")
            assert backup.status_code == 200, backup.text
            await enter(operator, "150.10", T + 3600)
            head_before = t.service.audit.head

            response = await admin.post("/restore", content=backup.content, headers=SQLITE)
            assert response.status_code == 200, response.text
            assert response.json()["rows"]["readings"] == 1
            assert await coal(operator) == ["100.00"]  # what came after the backup is gone

            await enter(operator, "170.00", T + 7200)  # acquisition and storage run on
            assert await coal(operator) == ["100.00", "170.00"]
            report = await t.service.audit.verify_chain()
            assert report.ok, report.problems
            record = await restore_entry(t)
            assert record["status"] == "200"
            assert (record["superseded_seq"], record["superseded_hash"]) == (
                str(head_before[0]),
                head_before[1],
            )
            await admin.aclose()
            await operator.aclose()

    asyncio.run(main())


def test_a_body_that_is_no_backup_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as t:
            admin, operator = await t.session("admin"), await t.session("operator")
            await enter(operator, "100.00", T)
            for body in (b"", b"SQLite format 3\0" + b"\xff" * 5000, b"not a database"):
                response = await admin.post("/restore", content=body, headers=SQLITE)
                assert response.status_code == 422, response.text
                assert "ISC-2 §4.4" in response.json()["detail"]
            assert await coal(operator) == ["100.00"]
            assert not list(tmp_path.glob("terminal.db.restored*"))
            refused = await operator.post("/restore", content=b"x", headers=SQLITE)
            assert refused.status_code == 403  # an administrator's act, like a backup
            report = await t.service.audit.verify_chain()
            assert report.ok, report.problems
            await admin.aclose()
            await operator.aclose()

    asyncio.run(main())

"""``/export`` in each format and ``/backup``, each read back."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from reference_terminal.storage.backup import inspect_backup
from tests.reference_terminal.api.harness import make_config, running_api

VALUES = [("coal_t", "100.00", 1_800_000_000.0), ("coal_t", "150.10", 1_800_003_600.0)]
VALUES += [("lime_t", "7.0", 1_800_000_000.0)]


async def _enter(client: httpx.AsyncClient) -> None:
    for point, value, t in VALUES:
        response = await client.post(
            "/manual", json={"point": point, "value": value, "time": t, "operator": "li"}
        )
        assert response.status_code == 200, response.text


def test_export_in_each_format(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            await _enter(client)
            everything = [(p, v) for p, v, _ in VALUES]

            response = await client.get("/export", params={"format": "csv"})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/csv")
            assert "attachment" in response.headers["content-disposition"]
            assert response.headers["x-rows"] == "3"
            rows = list(csv.DictReader(io.StringIO(response.text)))
            assert [(r["point"], r["value"]) for r in rows] == everything
            assert {r["quality"] for r in rows} == {"manual"}

            response = await client.get(
                "/export", params={"format": "jsonl", "points": "coal_t", "start": "1800000000"}
            )
            assert response.status_code == 200
            records = [json.loads(line) for line in response.text.splitlines()]
            assert [r["value"] for r in records] == ["100.00", "150.10"]
            assert records[0]["t"] == 1_800_000_000.0

            response = await client.get(
                "/export", params={"format": "parquet", "end": "1800000001"}
            )
            assert response.status_code == 200
            table = pq.read_table(io.BytesIO(response.content))
            assert sorted(
                zip(table["point"].to_pylist(), table["value"].to_pylist(), strict=True)
            ) == [
                ("coal_t", "100.00"),
                ("lime_t", "7.0"),
            ]

            response = await client.get(
                "/export", params={"format": "jsonl", "what": "derived", "points": "coal_t"}
            )
            derived = [json.loads(line) for line in response.text.splitlines()]
            assert ("increment", "50.10") in {(d["kind"], d["value"]) for d in derived}

            response = await client.get("/export", params={"format": "xlsx"})
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "format"

    asyncio.run(main())


def test_backup_streams_a_restorable_file(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (terminal, client):
            await _enter(client)
            response = await client.post("/backup")
            assert response.status_code == 200, response.text
            path = tmp_path / "copy.db"
            path.write_bytes(response.content)
            version, rows = inspect_backup(path)
            assert rows["readings"] == 3
            assert json.loads(response.headers["x-backup-rows"]) == rows
            assert response.headers["x-backup-schema-version"] == str(version)
            store = terminal.store
            assert store is not None
            assert rows["events"] == len(await store.events())

    asyncio.run(main())

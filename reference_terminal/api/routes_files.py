"""Files out of the terminal: an export of a time range (ISC-2 §7.2.3(4) "easy export") and a
backup of all the data (ISC-2 §4.4, §7.4.1.4(4)).

Both are written by the storage modules to a private temporary directory (an export in one
read snapshot, a backup with SQLite's online backup: the terminal keeps acquiring meanwhile),
then streamed and deleted once sent. Nothing is left on the terminal: the copy's place is off
the device.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanBackup, CanRead
from reference_terminal.api.wire import time_range
from reference_terminal.storage.backup import backup
from reference_terminal.storage.export import export_store
from reference_terminal.storage.schema import StoreError

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def _stamp(t: float) -> str:
    return f"{t:.0f}"


def _file_response(
    path: Path, workdir: Path, media_type: str, headers: dict[str, str]
) -> FileResponse:
    return FileResponse(
        path,
        media_type=media_type,
        filename=path.name,
        headers=headers,
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )


def file_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["files"])

    @router.get(
        "/export",
        summary="Export readings, events or derived values of a time range as a file",
        response_class=FileResponse,
        responses={
            200: {
                "content": {m: {} for m in MEDIA_TYPES.values()},
                "description": "the file; header X-Rows gives its row count",
            }
        },
    )
    async def export_file(
        _: CanRead,
        fmt: Annotated[Literal["csv", "jsonl", "parquet"], Query(alias="format")] = "csv",
        what: Literal["readings", "events", "derived"] = "readings",
        start: Annotated[str | None, Query(description="inclusive; open: from the first")] = None,
        end: Annotated[str | None, Query(description="exclusive; open: to the last")] = None,
        points: Annotated[
            str | None, Query(description="comma-separated point ids; open: every point")
        ] = None,
    ) -> FileResponse:
        # Times before 1970 cannot be in a terminal's store; the export module's own default.
        lo, hi = time_range(start, end, default_start=0.0)
        wanted = None if points is None else [p.strip() for p in points.split(",") if p.strip()]
        store = ctx.store()
        workdir = Path(tempfile.mkdtemp(prefix="carbench-export-"))
        name = f"{what}-{_stamp(lo) if start else 'first'}-{_stamp(hi) if end else 'last'}"
        path = workdir / f"{name}.{fmt}"
        try:
            rows = await export_store(
                store, path, start=lo, end=hi, points=wanted, what=what, fmt=fmt
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return _file_response(path, workdir, MEDIA_TYPES[fmt], {"X-Rows": str(rows)})

    @router.post(
        "/backup",
        summary="Back up every reading, event and derived value: one SQLite file, streamed",
        response_class=FileResponse,
        responses={
            200: {
                "content": {"application/vnd.sqlite3": {}},
                "description": "the backup; X-Backup-Rows (JSON), X-Backup-Schema-Version",
            }
        },
    )
    async def make_backup(_: CanBackup) -> FileResponse:
        store = ctx.store()
        workdir = Path(tempfile.mkdtemp(prefix="carbench-backup-"))
        path = workdir / f"terminal-backup-{_stamp(ctx.now())}.db"
        try:
            info = await backup(store, path)
        except StoreError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ApiError(500, "backup_failed", str(exc)) from exc
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        headers = {
            "X-Backup-Rows": json.dumps(info.rows, sort_keys=True),
            "X-Backup-Schema-Version": str(info.schema_version),
            "X-Backup-Method": info.method,
        }
        return _file_response(path, workdir, "application/vnd.sqlite3", headers)

    return router

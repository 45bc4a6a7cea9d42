"""Files out of the terminal: an export of a time range (ISC-2 §7.2.3(4) "easy export") and a
backup of all the data (ISC-2 §4.4, §7.4.1.4(4)); and a backup back in (``POST /restore``).

Both are written by the storage modules to a private temporary directory (an export in one
read snapshot, a backup with SQLite's online backup: the terminal keeps acquiring meanwhile),
then streamed and deleted once sent. Nothing is left on the terminal: the copy's place is off
the device.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import create_engine
from starlette.background import BackgroundTask

from reference_terminal.api.auditing import note_of
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanBackup, CanRead, security_of
from reference_terminal.api.wire import time_range
from reference_terminal.app import RestoreRefused
from reference_terminal.security.audit import stored_head
from reference_terminal.storage.backup import backup
from reference_terminal.storage.export import export_store
from reference_terminal.storage.schema import StoreError

RECEIVE_CHUNK = 1 << 20

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

    @router.post(
        "/restore",
        summary="Replace all the data with a backup made by POST /backup, while running",
        responses={
            409: {"description": "this store is not restored while running (a server database)"},
            422: {"description": "the body is not a backup of a terminal store"},
        },
    )
    async def restore_backup(request: Request, _: CanBackup) -> RestoreOut:
        """The backup (the body, as ``POST /backup`` gave it) is checked and restored beside the
        store; only then does the terminal stop acquiring, put it in the store's place and start
        again from it. Everything stored after the backup was made is gone, the audit log's
        entries included: this request's own entry records the head it superseded."""
        workdir = Path(tempfile.mkdtemp(prefix="carbench-restore-"))
        try:
            path = workdir / "backup.db"
            await _receive_file(request, path)
            superseded: dict[str, str] = {}
            security = security_of(request)

            def swapped(target: Path) -> None:
                if security is not None:
                    old = security.audit.rebase(_audit_head(target))
                    superseded.update(superseded_seq=str(old[0]), superseded_hash=old[1])

            try:
                info = await ctx.terminal.restore(path, on_swap=swapped)
            except RestoreRefused as exc:
                raise ApiError(409, "restore_refused", str(exc)) from None
            except StoreError as exc:
                raise ApiError(422, "not_a_backup", f"ISC-2 §4.4 restore: {exc}") from None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        note = note_of(request)
        if note is not None:
            note.details.update(superseded, restored_rows=json.dumps(info.rows, sort_keys=True))
        return RestoreOut(
            rows=info.rows,
            schema_version=info.backup_version,
            method=info.method,
            seconds=round(info.seconds, 3),
        )

    return router


class RestoreOut(BaseModel):
    rows: dict[str, int]  # rows per table now in the store
    schema_version: int  # the backup's (migrated to the terminal's on restore)
    method: str
    seconds: float


async def _receive_file(request: Request, path: Path) -> None:
    """The request body into ``path``, written by a thread as it arrives (a backup of months
    is hundreds of megabytes: never held in memory whole)."""
    with path.open("wb") as out:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= RECEIVE_CHUNK:
                await asyncio.to_thread(out.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(out.write, bytes(pending))


def _audit_head(path: Path) -> tuple[int, str]:
    """The end of the audit log in the SQLite store file ``path`` (closed)."""
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            return stored_head(conn)
    finally:
        engine.dispose()

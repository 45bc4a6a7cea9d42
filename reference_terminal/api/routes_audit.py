"""``/audit``: the audit log for the auditor (ISC-2 §7.4.1.3): query by combined conditions,
sort, export, verify the SM3 chain, and delete the whole log (never one entry).

Installed only when ``security.enabled``; every call here is itself audited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from reference_terminal.api.auditing import note_of
from reference_terminal.api.context import ApiContext
from reference_terminal.api.security import CanDeleteAudit, CanReadAudit, audited_as
from reference_terminal.api.wire import optional_range
from reference_terminal.security.audit import AuditEntry, AuditFilter, AuditLog, Broken, SortKey

MAX_PAGE = 1000
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class AuditEntryOut(BaseModel):
    seq: int
    t: float
    time: str
    user: str
    type: str
    outcome: str
    details: dict[str, str]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    #: How many entries match in all (the page is ``offset`` … ``offset + len(items)``).
    total: int
    offset: int
    limit: int


class BrokenOut(BaseModel):
    #: The first entry found edited, or the first position found missing.
    seq: int
    reason: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    anchor_seq: int
    first_broken: BrokenOut | None
    problems: list[BrokenOut]


class ClearedOut(BaseModel):
    deleted_entries: int
    #: The first entry of the new chain, recording the deletion.
    chain_starts_with: AuditEntryOut


def _broken(b: Broken) -> BrokenOut:
    return BrokenOut(seq=b.seq, reason=b.reason)


def conditions(
    start: Annotated[str | None, Query(description="inclusive; ISO 8601 or POSIX")] = None,
    end: Annotated[str | None, Query(description="exclusive")] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Literal["success", "failure"] | None = None,
) -> AuditFilter:
    """The combined conditions of a query (ISC-2 §7.4.1.3(5) a. 组合条件查找)."""
    lo, hi = optional_range(start, end)
    return AuditFilter(start=lo, end=hi, user=user, type=type, outcome=outcome)


#: Module level: annotations are strings (PEP 563), resolved in the module's globals.
Where = Annotated[AuditFilter, Depends(conditions)]


def audit_routes(log: AuditLog, ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/audit", tags=["audit"])

    def entry_out(e: AuditEntry) -> AuditEntryOut:
        return AuditEntryOut.model_validate(e.record(ctx.offset_s))

    @router.get(
        "",
        summary="Entries by combined conditions (time range, user, type, outcome), sorted",
        dependencies=[Depends(audited_as("audit_query"))],
    )
    async def query(
        f: Where,
        _: CanReadAudit,
        sort: SortKey = "seq",
        order: Literal["asc", "desc"] = "asc",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    ) -> AuditPage:
        entries, total = await log.query(
            f, sort=sort, descending=order == "desc", limit=limit, offset=offset
        )
        return AuditPage(
            items=[entry_out(e) for e in entries], total=total, offset=offset, limit=limit
        )

    @router.get(
        "/export",
        summary="Every matching entry as CSV or JSON, hashes included",
        response_class=Response,
        responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}},
        dependencies=[Depends(audited_as("audit_export"))],
    )
    async def export(
        f: Where,
        request: Request,
        _: CanReadAudit,
        fmt: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
        sort: SortKey = "seq",
        order: Literal["asc", "desc"] = "asc",
    ) -> Response:
        data, rows = await log.export(
            f, fmt, offset_s=ctx.offset_s, sort=sort, descending=order == "desc"
        )
        note = note_of(request)
        if note is not None:
            note.details["rows"] = str(rows)
        name = f"audit-{ctx.now():.0f}.{fmt}"
        return Response(
            data,
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Rows": str(rows)},
        )

    @router.get(
        "/verify",
        summary="Check every entry's SM3 hash, seal and link; name the first broken one",
        dependencies=[Depends(audited_as("audit_verify"))],
    )
    async def verify(request: Request, _: CanReadAudit) -> VerifyOut:
        report = await log.verify_chain()
        note = note_of(request)
        if note is not None:
            note.details["chain"] = "intact" if report.ok else "broken"
            if report.first_broken is not None:
                note.details["first_broken"] = str(report.first_broken.seq)
        return VerifyOut(
            ok=report.ok,
            entries=report.entries,
            first_seq=report.first_seq,
            last_seq=report.last_seq,
            anchor_seq=report.anchor_seq,
            first_broken=None if report.first_broken is None else _broken(report.first_broken),
            problems=[_broken(b) for b in report.problems],
        )

    @router.delete(
        "",
        summary="Delete the whole audit log (auditor only; the next chain records it)",
        dependencies=[Depends(audited_as("audit_delete"))],
    )
    async def delete_all(request: Request, principal: CanDeleteAudit) -> ClearedOut:
        note = note_of(request)
        details = {"source": note.source} if note is not None else {}
        first = await log.clear(principal.user, details)
        return ClearedOut(
            deleted_entries=int(first.details.get("deleted_entries", "0")),
            chain_starts_with=entry_out(first),
        )

    return router

"""Every request to the management API leaves one audit entry (ISC-2 §7.4.1.3(1) 审计覆盖到每个
用户), refused ones included: an ASGI middleware installed only when security is enabled.

Each request carries an :class:`AuditNote` in its scope; authentication fills in the user and
session, :func:`~reference_terminal.api.security.authorize` the action (the entry's type), a
route may name a more precise type (``login``, ``user_create`` …) and add details. The entry is
written when the response starts, before the client sees a byte of it: once a caller has an
answer, the trail of it is durable. Outcome is ``success`` below status 400, else ``failure``
(details carry the status and the refusal's code).

While the audit log cannot be written (the store not open yet) the API answers 503 to
everything: nothing is done unaudited (§7.4.1.3(4) 应对审计进程进行保护). A failure to write an
entry after the route has run cannot undo what it did; it is logged as an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_terminal.api.errors import error_response
from reference_terminal.security.errors import AUDIT_PROTECTION

if TYPE_CHECKING:
    from reference_terminal.security.service import SecurityService

log = logging.getLogger(__name__)

#: Where a request's note is kept in its ASGI scope.
NOTE_KEY = "carbench.audit_note"
MAX_QUERY = 500


@dataclass
class AuditNote:
    """What the audit entry of one request will say."""

    source: str
    method: str
    path: str
    user: str = "anonymous"
    type: str = "request"
    details: dict[str, str] = field(default_factory=dict)
    #: The refusal's code (``forbidden``, ``login_failed`` …), when there was one.
    reason: str | None = None


def note_of(connection: HTTPConnection) -> AuditNote | None:
    note = connection.scope.get(NOTE_KEY)
    return note if isinstance(note, AuditNote) else None


class AuditTrail:
    """The middleware: one audit entry per HTTP request."""

    def __init__(self, app: ASGIApp, service: SecurityService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        note = AuditNote(
            source=str(client[0]) if client else "",
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
        )
        query = scope.get("query_string", b"")
        if query:
            note.details["query"] = query.decode("latin-1")[:MAX_QUERY]
        scope[NOTE_KEY] = note
        if not self.service.audit.ready():
            response = error_response(
                503,
                "not_ready",
                "the terminal is starting: its audit log is not open yet, and nothing is done "
                f"unaudited ({AUDIT_PROTECTION})",
            )
            await response(scope, receive, send)
            return
        started = False

        async def send_audited(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                await self._record(note, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not started:
                await self._record(note, 500)
            raise

    async def _record(self, note: AuditNote, status: int) -> None:
        details = {
            "method": note.method,
            "path": note.path,
            "status": str(status),
            "source": note.source,
            **note.details,
        }
        if note.reason:
            details["reason"] = note.reason
        try:
            await self.service.audit.append(
                note.user, note.type, "success" if status < 400 else "failure", details
            )
        except Exception:
            log.exception(
                "audit entry not written: %s %s by %s (%s)",
                note.method,
                note.path,
                note.user,
                status,
            )

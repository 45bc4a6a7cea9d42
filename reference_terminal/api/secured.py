"""Switching the management API's security on (``security.enabled: true``).

:func:`install` makes the terminal's :class:`~reference_terminal.security.service.SecurityService`
(key file, sealed accounts, sessions, audit log), puts it where :mod:`.security` finds it
(``app.state.security``), adds the audit middleware and the ``/auth``, ``/users`` and ``/audit``
routes. Without it (the default) none of these exist and the API is as open as before.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from reference_terminal.api.auditing import AuditTrail
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import error_response
from reference_terminal.api.routes_audit import audit_routes
from reference_terminal.api.routes_auth import auth_routes
from reference_terminal.api.routes_users import user_routes
from reference_terminal.api.security import Unauthenticated
from reference_terminal.security.service import SecurityService


async def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthenticated)
    response = error_response(exc.status, exc.error, exc.detail, **exc.extra)
    response.headers["WWW-Authenticate"] = 'Bearer realm="carbench terminal"'
    return response


def install(app: FastAPI, ctx: ApiContext) -> SecurityService:
    """Secure ``app`` (made by ``create_app``) as its terminal's ``security:`` section says."""
    terminal = ctx.terminal
    service = SecurityService(terminal.config.security, terminal.clock, lambda: ctx.terminal.store)
    app.state.security = service
    app.add_middleware(AuditTrail, service=service)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.include_router(auth_routes(service, ctx))
    app.include_router(user_routes(service, ctx))
    app.include_router(audit_routes(service.audit, ctx))
    return service

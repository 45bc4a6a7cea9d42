"""Who may do what through the management API: the seam every route goes through.

Every route declares the :class:`Action` it performs through ``Depends(authorize(action))``
(``CanRead``, ``CanConfigure`` …); two functions decide:

- :func:`current_principal` — authentication: who is calling;
- :func:`permits` — authorization: whether that principal's roles allow the action
  (:data:`reference_terminal.security.roles.PERMISSIONS`).

**With ``security.enabled: false`` (the default)** no security service is installed, everybody
is :data:`ANONYMOUS` and every action is allowed: the API behaves as it did before the security
work (nothing asked, nothing audited).

**With ``security.enabled: true``** ``create_app`` installs the service (:mod:`.secured`):

- A caller logs in (``POST /auth/login``) and sends ``Authorization: Bearer <token>``; a
  missing, malformed, ended, idle or expired session is a 401 (ISC-2 §7.4.1.1(2)), an action
  outside the caller's role a 403 (ISC-2 §7.4.1.2), an administrator outside
  ``security.admin_networks`` a 403 (§7.4.1.2(3)). A session with a one-time or expired
  password may only change it (``Action.SESSION``).
- Control operations (:data:`~reference_terminal.security.roles.CONTROL_ACTIONS`: configure,
  operate, backup, user management, deleting the audit log) by any method but GET also need the
  caller's password again in the ``X-Confirm`` header (SSEA §5.5.3 「应对每一控制操作提供校核」);
  a wrong one counts towards the lockout. A header rather than a body field, so every route,
  JSON, CSV upload or none, is confirmed the same way without touching it.
- A collector pushing to the intake (``Action.PUSH``) needs no user session: it is the
  :data:`COLLECTOR` principal, and a person's session cannot push.
- Every request, refused ones included, leaves one audit entry (:mod:`.auditing`).

``app.dependency_overrides[current_principal] = …`` also works (tests, a gateway putting the
API behind its own authenticating proxy). The SM-protected management channel (ISC-2 §7.4.1.2(4),
§7.4.2) is a transport matter for the server that runs the app, not for this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from reference_terminal.api.auditing import note_of
from reference_terminal.api.errors import ApiError
from reference_terminal.security.errors import (
    LEAST_PRIVILEGE,
    NotAuthenticated,
    PasswordChangeRequired,
    SecurityError,
)
from reference_terminal.security.roles import (
    COLLECTOR_ROLE,
    CONTROL_ACTIONS,
    Action,
    role_permits,
)
from reference_terminal.security.service import SecurityService
from reference_terminal.security.sessions import Session

__all__ = [
    "ANONYMOUS",
    "COLLECTOR",
    "CONFIRM_HEADER",
    "Action",
    "CanBackup",
    "CanConfigure",
    "CanDeleteAudit",
    "CanManageUsers",
    "CanOperate",
    "CanRead",
    "CanReadAudit",
    "CanSession",
    "Principal",
    "authorize",
    "current_principal",
    "permits",
]

#: The header carrying the caller's password again for a control operation (SSEA §5.5.3).
CONFIRM_HEADER = "X-Confirm"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    roles: frozenset[str] = frozenset()
    #: The session it came with (None: security disabled, or a collector).
    session: Session | None = None


#: Everybody, while security is disabled: allowed everything.
ANONYMOUS = Principal("anonymous")
#: A collector pushing to the intake while security is enabled.
COLLECTOR = Principal("collector", frozenset({COLLECTOR_ROLE}))

#: The HTTP status of each security refusal (by its ``code``).
STATUS: dict[str, int] = {
    "password_rejected": 422,
    "bad_user_id": 422,
    "login_failed": 401,
    "unauthenticated": 401,
    "session_invalid": 401,
    "account_locked": 403,
    "source_refused": 403,
    "password_change_required": 403,
    "forbidden": 403,
    "confirmation_required": 403,
    "confirmation_failed": 403,
    "unknown_user": 404,
    "user_exists": 409,
    "user_protected": 409,
    "too_many_sessions": 503,
    "audit_unavailable": 503,
}


class Unauthenticated(ApiError):
    """A 401; answered with ``WWW-Authenticate: Bearer`` (RFC 6750)."""


def security_of(request: Request) -> SecurityService | None:
    service = getattr(request.app.state, "security", None)
    return service if isinstance(service, SecurityService) else None


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def api_error(exc: SecurityError, request: Request | None = None) -> ApiError:
    """The answer to a security refusal; the audit entry of the request gets its code."""
    status = STATUS.get(exc.code, 403)
    if request is not None:
        note = note_of(request)
        if note is not None:
            note.reason = exc.code
    extra: dict[str, Any] = {}
    locked_until = getattr(exc, "locked_until", None)
    if locked_until is not None:
        extra["locked_until"] = locked_until
    if status == 401:
        return Unauthenticated(status, exc.code, str(exc), **extra)
    return ApiError(status, exc.code, str(exc), **extra)


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is no header;
    :class:`NotAuthenticated` for any other scheme."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """Who is calling: :data:`ANONYMOUS` while security is disabled, else the session's user."""
    service = security_of(request)
    if service is None:
        return ANONYMOUS
    action = getattr(request.state, "action", None)
    header = request.headers.get("authorization")
    if header is None and action is Action.PUSH:
        note = note_of(request)
        if note is not None:
            note.user = COLLECTOR.user
        return COLLECTOR
    source = client_address(request)
    try:
        token = parse_bearer(header)
        if token is None:
            raise NotAuthenticated(
                "log in first (POST /auth/login) and send 'Authorization: Bearer <token>'"
            )
        session = service.authenticate(token, source)
    except SecurityError as exc:
        raise api_error(exc, request) from None
    note = note_of(request)
    if note is not None:
        note.user = session.user
        note.details["session"] = session.id
        note.details["role"] = session.role.value
    if session.must_change and action is not Action.SESSION:
        raise api_error(
            PasswordChangeRequired(
                f"{session.user} signed in with a one-time or expired password: change it "
                "first (POST /auth/password)"
            ),
            request,
        )
    return Principal(session.user, frozenset({session.role.value}), session)


def permits(principal: Principal, action: Action) -> bool:
    """Whether ``principal`` may perform ``action``: anything for :data:`ANONYMOUS` (security
    disabled), else what its roles allow (``reference_terminal.security.roles.PERMISSIONS``)."""
    if principal is ANONYMOUS:
        return True
    return role_permits(principal.roles, action)


def authorize(action: Action) -> Callable[..., Awaitable[Principal]]:
    """The dependency a route performing ``action`` declares; gives the caller's principal."""

    async def declare(request: Request) -> None:
        # Before authentication, so even a refused request is audited as what it tried.
        request.state.action = action
        note = note_of(request)
        if note is not None and note.type == "request":
            note.type = action.value

    # ``declare`` is a default, not an ``Annotated`` type: annotations are strings here (PEP 563)
    # and FastAPI resolves them in the module's globals, where this closure's ``declare`` is not.
    # FastAPI solves sub-dependencies in parameter order: ``declare`` runs first.
    async def dependency(
        *,
        request: Request,
        _declared: None = Depends(declare),
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not permits(principal, action):
            note = note_of(request)
            if note is not None:
                note.reason = "forbidden"
            roles = ", ".join(sorted(principal.roles)) or "no role"
            raise ApiError(
                403,
                "forbidden",
                f"{principal.user} may not {action.value} ({roles}; {LEAST_PRIVILEGE})",
            )
        service = security_of(request)
        if (
            service is not None
            and principal.session is not None
            and action in CONTROL_ACTIONS
            and request.method not in ("GET", "HEAD")
        ):
            try:
                await service.confirm(
                    principal.session, request.headers.get(CONFIRM_HEADER), client_address(request)
                )
            except SecurityError as exc:
                raise api_error(exc, request) from None
            note = note_of(request)
            if note is not None:
                note.details["confirmed"] = "password"
        return principal

    dependency.__name__ = f"authorize_{action.value}"
    return dependency


def audited_as(type_: str) -> Callable[[Request], Awaitable[None]]:
    """A route-level dependency naming the route's audit entry type (runs before the body is
    validated, so a malformed request is audited under the same type)."""

    async def name(request: Request) -> None:
        note = note_of(request)
        if note is not None:
            note.type = type_

    name.__name__ = f"audited_as_{type_}"
    return name


# What a route's parameter list says: ``_: CanRead`` (the caller's principal, once allowed).
CanRead = Annotated[Principal, Depends(authorize(Action.READ))]
CanConfigure = Annotated[Principal, Depends(authorize(Action.CONFIGURE))]
CanOperate = Annotated[Principal, Depends(authorize(Action.OPERATE))]
CanBackup = Annotated[Principal, Depends(authorize(Action.BACKUP))]
CanSession = Annotated[Principal, Depends(authorize(Action.SESSION))]
CanManageUsers = Annotated[Principal, Depends(authorize(Action.MANAGE_USERS))]
CanReadAudit = Annotated[Principal, Depends(authorize(Action.READ_AUDIT))]
CanDeleteAudit = Annotated[Principal, Depends(authorize(Action.DELETE_AUDIT))]

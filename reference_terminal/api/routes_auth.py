"""``/auth``: log in, log out, who am I, change my password (ISC-2 §7.4.1.1).

Installed only when ``security.enabled``. A login answers a bearer token (shown once), the
session's deadlines on the terminal's clock, and whether the password must be changed first
(a one-time or expired one). Failures never say whether the user ID or the password was wrong.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from reference_terminal.api.auditing import note_of
from reference_terminal.api.context import ApiContext
from reference_terminal.api.security import (
    CanSession,
    api_error,
    audited_as,
    client_address,
)
from reference_terminal.api.wire import iso
from reference_terminal.security.errors import SecurityError
from reference_terminal.security.service import SecurityService
from reference_terminal.security.sessions import Session

#: Longer inputs are refused by validation, before any hashing (a KDF over megabytes would be
#: a denial of service).
MAX_USER = 64
MAX_PASSWORD = 128


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=MAX_USER)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class SessionOut(BaseModel):
    user: str
    role: str
    session: str
    source: str
    opened_at: float
    #: When the session ends without another request (terminal clock).
    idle_deadline: float
    idle_deadline_time: str
    #: When it ends whatever happens.
    expires_at: float
    expires_time: str
    must_change_password: bool
    password_expires_at: float | None


class LoginOut(SessionOut):
    token: str
    token_type: str = "bearer"


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class LoggedOut(BaseModel):
    ended: bool


def auth_routes(service: SecurityService, ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["authentication"])

    def describe(session: Session) -> SessionOut:
        idle, absolute = service.sessions.deadlines(session)
        user = service.users.get(session.user)
        expires = None if user is None else service.users.password_expires_at(user)
        return SessionOut(
            user=session.user,
            role=session.role.value,
            session=session.id,
            source=session.source,
            opened_at=session.opened_at,
            idle_deadline=idle,
            idle_deadline_time=iso(idle, ctx.offset_s),
            expires_at=absolute,
            expires_time=iso(absolute, ctx.offset_s),
            must_change_password=session.must_change,
            password_expires_at=expires,
        )

    @router.post(
        "/login",
        summary="Log in: a bearer token for the other routes (ISC-2 §7.4.1.1)",
        dependencies=[Depends(audited_as("login"))],
        responses={401: {"description": "wrong user ID or password"}, 403: {}},
    )
    async def login(body: LoginIn, request: Request) -> LoginOut:
        note = note_of(request)
        if note is not None:
            note.user = body.user
        try:
            result = await service.login(body.user, body.password, client_address(request))
        except SecurityError as exc:
            raise api_error(exc, request) from None
        if note is not None:
            note.details["session"] = result.session.id
            note.details["role"] = result.session.role.value
        described = describe(result.session)
        return LoginOut(**described.model_dump(), token=result.token)

    @router.post(
        "/logout",
        summary="End this session",
        dependencies=[Depends(audited_as("logout"))],
    )
    async def logout(principal: CanSession) -> LoggedOut:
        if principal.session is not None:
            service.logout(principal.session)
        return LoggedOut(ended=principal.session is not None)

    @router.get("/session", summary="This session: user, role, deadlines")
    async def whoami(principal: CanSession) -> SessionOut:
        if principal.session is None:  # an overridden principal: no session to describe
            raise api_error(SecurityError("no session"))
        return describe(principal.session)

    @router.post(
        "/password",
        summary="Change one's own password (complexity, history; ends one's other sessions)",
        dependencies=[Depends(audited_as("password_change"))],
    )
    async def change_password(
        body: PasswordIn, request: Request, principal: CanSession
    ) -> SessionOut:
        session = principal.session
        if session is None:
            raise api_error(SecurityError("no session"))
        try:
            await service.change_password(
                session, body.old_password, body.new_password, client_address(request)
            )
        except SecurityError as exc:
            raise api_error(exc, request) from None
        return describe(session)

    return router

"""``/users``: accounts, administrator only (ISC-2 §7.4.1.1 unique IDs, §7.4.1.2 roles).

Installed only when ``security.enabled``. Every change is a control operation (``X-Confirm``).
A password set here is a one-time password: its user must change it at the first login.
Nobody, the administrator included, can read a password or its hash back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from reference_terminal.api.auditing import note_of
from reference_terminal.api.context import ApiContext
from reference_terminal.api.routes_auth import MAX_PASSWORD
from reference_terminal.api.security import CanManageUsers, api_error, audited_as
from reference_terminal.api.wire import iso_or_none
from reference_terminal.security.errors import SecurityError
from reference_terminal.security.roles import ROLE_TITLES, Role
from reference_terminal.security.service import SecurityService
from reference_terminal.security.users import User

USER_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, max_length=64)]


class UserOut(BaseModel):
    id: str
    role: Role
    role_title: str
    created_at: float
    password_set_at: float
    password_expires_at: float
    must_change_password: bool
    failures: int
    locked_until: float | None
    locked_until_time: str | None
    last_login: float | None
    sessions: int


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=USER_ID_PATTERN, max_length=64)]
    role: Role
    #: A one-time password: the user changes it at the first login.
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


def user_routes(service: SecurityService, ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/users", tags=["users"])

    def out(user: User) -> UserOut:
        locked = service.users.locked_until(user)
        return UserOut(
            id=user.id,
            role=user.role,
            role_title=ROLE_TITLES[user.role],
            created_at=user.created_at,
            password_set_at=user.password_set_at,
            password_expires_at=service.users.password_expires_at(user),
            must_change_password=service.users.must_change(user),
            failures=user.failures,
            locked_until=locked,
            locked_until_time=iso_or_none(locked, ctx.offset_s),
            last_login=user.last_login,
            sessions=sum(1 for s in service.sessions.active() if s.user == user.id),
        )

    def target(request: Request, user_id: str) -> None:
        note = note_of(request)
        if note is not None:
            note.details["target"] = user_id

    @router.get("", summary="Every account (no password, no hash)")
    async def list_users(_: CanManageUsers) -> list[UserOut]:
        return [out(u) for u in service.users.all()]

    @router.post(
        "",
        status_code=201,
        summary="Create an account with a one-time password",
        dependencies=[Depends(audited_as("user_create"))],
    )
    async def create_user(body: UserIn, request: Request, _: CanManageUsers) -> UserOut:
        target(request, body.id)
        try:
            user = await service.create_user(body.id, body.role, body.password)
        except SecurityError as exc:
            raise api_error(exc, request) from None
        return out(user)

    @router.delete(
        "/{user_id}",
        summary="Delete an account (not one's own, not the last administrator)",
        dependencies=[Depends(audited_as("user_delete"))],
    )
    async def delete_user(user_id: UserId, request: Request, principal: CanManageUsers) -> UserOut:
        target(request, user_id)
        try:
            user = service.delete_user(user_id, by=principal.user)
        except SecurityError as exc:
            raise api_error(exc, request) from None
        return out(user)

    @router.post(
        "/{user_id}/password",
        summary="Set a one-time password (and lift a lock); the user's sessions end",
        dependencies=[Depends(audited_as("user_password_reset"))],
    )
    async def reset_password(
        user_id: UserId, body: PasswordResetIn, request: Request, _: CanManageUsers
    ) -> UserOut:
        target(request, user_id)
        try:
            user = await service.reset_password(user_id, body.password)
        except SecurityError as exc:
            raise api_error(exc, request) from None
        return out(user)

    @router.post(
        "/{user_id}/unlock",
        summary="Lift a lockout before its period ends",
        dependencies=[Depends(audited_as("user_unlock"))],
    )
    async def unlock(user_id: UserId, request: Request, _: CanManageUsers) -> UserOut:
        target(request, user_id)
        try:
            user = service.unlock(user_id)
        except SecurityError as exc:
            raise api_error(exc, request) from None
        return out(user)

    return router

"""``/apps``: the terminal's applications, installed, upgraded, rolled back and uninstalled
remotely (ISC-2 §8.4, §4.3; :mod:`reference_terminal.operations.apps`).

A package travels as JSON: ``{"package": base64 of the zip, "signature": base64 of the DER SM2
signature}``. Changing applications is the administrator's (``Action.CONFIGURE``, confirmed
with ``X-Confirm`` like every control operation); listing them is a read. The list starts with
the terminal's own program (``kind: core``), which is not managed here.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanConfigure, CanRead
from reference_terminal.api.wire import iso_or_none
from reference_terminal.operations.apps import AppError, AppStatus
from reference_terminal.operations.monitoring import terminal_version

CORE = "terminal"
STATUS = {
    "unknown_app": 404,
    "app_exists": 409,
    "not_newer": 409,
    "no_previous": 409,
    "apps_disabled": 409,
    "untrusted": 409,
    "too_large": 413,
    "signature": 422,
    "manifest": 422,
    "package": 422,
    "start_failed": 422,
    "storage": 507,
}
AppName = Path(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="the application's name")


class PackageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The zip file (manifest.json + files), base64.
    package: str = Field(min_length=4, max_length=400 * 1024 * 1024)
    #: Its SM2 signature (DER, SM3 with the default user ID), base64.
    signature: str = Field(min_length=4, max_length=400)

    def decoded(self) -> tuple[bytes, bytes]:
        out = []
        for name in ("package", "signature"):
            try:
                out.append(base64.b64decode(getattr(self, name), validate=True))
            except (binascii.Error, ValueError):
                raise ApiError(
                    422,
                    "invalid_request",
                    f"{name}: not base64",
                    errors=[{"field": name, "message": "not base64"}],
                ) from None
        return out[0], out[1]


class AppOut(BaseModel):
    name: str
    kind: Literal["core", "app"]
    version: str
    state: str
    previous_version: str | None = None
    description: str = ""
    sm3: str = ""
    signer: str = ""
    installed_at: float | None = None
    installed_time: str | None = None
    started_at: float | None = None
    pid: int | None = None
    exit_code: int | None = None
    #: The application's last lines of output.
    output: list[str] = []


class Uninstalled(BaseModel):
    name: str
    version: str
    uninstalled: bool = True


def _error(exc: AppError) -> ApiError:
    return ApiError(STATUS.get(exc.code, 422), exc.code, str(exc), **exc.extra)


def app_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/apps", tags=["applications"])

    def out(s: AppStatus) -> AppOut:
        return AppOut(
            name=s.name,
            kind="app",
            version=s.version,
            state=s.state,
            previous_version=s.previous_version,
            description=s.description,
            sm3=s.sm3,
            signer=s.signer,
            installed_at=s.installed_at,
            installed_time=iso_or_none(s.installed_at, ctx.offset_s),
            started_at=s.started_at,
            pid=s.pid,
            exit_code=s.exit_code,
            output=list(s.output),
        )

    def core() -> AppOut:
        return AppOut(
            name=CORE,
            kind="core",
            version=terminal_version(),
            state=ctx.terminal.state,
            description=f"{ctx.config.name}: acquisition, processing, storage, upload",
            started_at=ctx.terminal.started_at,
        )

    def not_core(name: str) -> None:
        if name == CORE:
            raise ApiError(
                409,
                "core",
                "the terminal's own program is not an application: it is upgraded as a whole",
            )

    @router.get("", summary="The terminal's program and its installed applications, with versions")
    async def list_apps(_: CanRead) -> list[AppOut]:
        return [core(), *(out(s) for s in ctx.terminal.apps.statuses())]

    @router.get("/{name}", summary="One application", responses={404: {"description": "unknown"}})
    async def get_app(_: CanRead, name: str = AppName) -> AppOut:
        if name == CORE:
            return core()
        try:
            return out(ctx.terminal.apps.status(name))
        except AppError as exc:
            raise _error(exc) from None

    @router.post(
        "",
        status_code=201,
        summary="Install a signed application package (ISC-2 §8.4)",
        responses={
            409: {"description": "installed already, or this terminal installs nothing"},
            413: {"description": "too large"},
            422: {"description": "bad signature, manifest or package, or it did not start"},
            507: {"description": "the applications' disk is full or read-only"},
        },
    )
    async def install(body: PackageIn, who: CanConfigure) -> AppOut:
        package, signature = body.decoded()
        try:
            return out(await ctx.terminal.apps.install(package, signature, user=who.user))
        except AppError as exc:
            raise _error(exc) from None

    @router.put(
        "/{name}",
        summary="Upgrade an application; the running version comes back if the new one fails",
        responses={
            404: {"description": "not installed"},
            409: {"description": "not newer than the installed version"},
            422: {"description": "bad signature, manifest or package, or rolled back"},
        },
    )
    async def upgrade(body: PackageIn, who: CanConfigure, name: str = AppName) -> AppOut:
        not_core(name)
        package, signature = body.decoded()
        try:
            return out(await ctx.terminal.apps.upgrade(name, package, signature, user=who.user))
        except AppError as exc:
            raise _error(exc) from None

    @router.post(
        "/{name}/rollback",
        summary="Go back to the version before the current one",
        responses={404: {"description": "not installed"}, 409: {"description": "none kept"}},
    )
    async def rollback(who: CanConfigure, name: str = AppName) -> AppOut:
        not_core(name)
        try:
            return out(await ctx.terminal.apps.rollback(name, user=who.user))
        except AppError as exc:
            raise _error(exc) from None

    @router.delete(
        "/{name}",
        summary="Stop an application and remove every version of it",
        responses={404: {"description": "not installed"}},
    )
    async def uninstall(who: CanConfigure, name: str = AppName) -> Uninstalled:
        not_core(name)
        try:
            version = await ctx.terminal.apps.uninstall(name, user=who.user)
        except AppError as exc:
            raise _error(exc) from None
        return Uninstalled(name=name, version=version)

    return router

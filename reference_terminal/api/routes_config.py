"""``/config``: the configuration tool's API for every protocol (ISC-2 §7.2.2, CSMT §11.3).

A new configuration is validated by :class:`TerminalConfig` itself (a 422 names each field in
error), then applied: written next to the configuration file, handed to the terminal's
``apply_config``, and only once the terminal took it renamed over the file, so the file never
holds a configuration the terminal refused, and a restart runs what was applied.

Secrets never leave (ISC-2 §7.4.1.4(2)): every configuration this API answers shows passwords,
keys, password hashes and passwords inside URLs as ``********``
(:mod:`reference_terminal.security.redaction`). A document sent back with ``********`` in a
place keeps the running configuration's secret there, so GET, edit, PUT never wipes one.

The ``security`` and ``apps`` sections are read when the terminal starts: a change to them is
refused (edit the file and restart), so the security of a running terminal, and whose signatures
its applications need, cannot be changed remotely. The ``api`` section is taken but only a
restart moves the API to its new address (the answer says ``restart_required``); everything
else applies at once, without a restart: acquisition and upload are rebuilt for the new
configuration inside the running terminal (ISC-2 §8.3).

``PATCH /config`` changes named fields instead of sending the whole document
(:mod:`reference_terminal.operations.remote_config`): ``{"changes": [{"op": "replace", "path":
"/uplink/centres/provincial/port", "value": 20001}]}``. Every configuration applied, either way,
is logged with who applied it and which fields changed (the ``configuration`` log, CSMT
§11.12); with security on, the audit trail has the request too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError, field_errors
from reference_terminal.api.security import CanConfigure, CanRead
from reference_terminal.config import ConfigError, TerminalConfig
from reference_terminal.durable import publish
from reference_terminal.operations.journal import configuration_event
from reference_terminal.operations.remote_config import (
    RESTART,
    START_ONLY,
    Operation,
    PatchError,
    apply_operations,
    changed_fields,
    sections_changed,
)
from reference_terminal.security.redaction import REDACTED, redact, restore

log = logging.getLogger(__name__)
SHOWN = f"the configuration (TerminalConfig) with every secret shown as {REDACTED!r}"


class Applied(BaseModel):
    applied: bool
    #: The file the configuration was written to; None when the terminal has none.
    written_to: str | None
    config: dict[str, Any] = Field(description=SHOWN)
    #: What changed, one line per field (secrets shown as ``********``).
    changed: list[str] = []
    #: Sections taken but in effect only after a restart (``api``).
    restart_required: list[str] = []


class PatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[Operation] = Field(min_length=1, max_length=1000)


class Validated(BaseModel):
    valid: bool
    config: dict[str, Any] = Field(description=SHOWN)


def shown(config: TerminalConfig) -> dict[str, Any]:
    """``config`` as the API shows it: JSON, secrets redacted."""
    document: dict[str, Any] = redact(config.model_dump(mode="json"))
    return document


class _RestoringRequest(Request):
    """A request whose JSON body gets the running configuration's secrets back in place of
    ``********`` before FastAPI validates it as a :class:`TerminalConfig`."""

    current: Callable[[], TerminalConfig]

    async def body(self) -> bytes:
        if not hasattr(self, "_restored"):
            raw = await super().body()
            try:
                document = json.loads(raw)
            except ValueError:
                self._restored = raw  # FastAPI answers the malformed JSON itself
            else:
                current = self.current().model_dump(mode="json")
                self._restored = json.dumps(restore(document, current)).encode()
        return self._restored


def _restoring_route(current: Callable[[], TerminalConfig]) -> type[APIRoute]:
    class RestoringRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def restoring(request: Request) -> Response:
                wrapped = _RestoringRequest(request.scope, request.receive)
                wrapped.current = current
                return await handler(wrapped)

            return restoring

    return RestoringRoute


def _document(config: TerminalConfig, path: Path) -> str:
    data: dict[str, Any] = config.model_dump(mode="json")  # decimals as their exact text
    if path.suffix.lower() == ".json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _write_part(config: TerminalConfig, path: Path) -> Path:
    """The new file's content under a temporary name, on disk."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8") as out:
        out.write(_document(config, path))
        out.flush()
        os.fsync(out.fileno())
    return part


def config_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["configuration"], route_class=_restoring_route(lambda: ctx.config))

    @router.get(
        "/config",
        summary=f"The configuration the terminal runs, secrets shown as {REDACTED!r}",
        response_description=SHOWN,
    )
    async def get_config(_: CanRead) -> dict[str, Any]:
        return shown(ctx.config)

    @router.post(
        "/config/validate",
        summary="Check a configuration without applying it (422 names each field in error)",
    )
    async def validate_config(config: TerminalConfig, _: CanConfigure) -> Validated:
        return Validated(valid=True, config=shown(config))

    async def apply(config: TerminalConfig, user: str, how: str) -> Applied:
        old = ctx.config.model_dump(mode="json")
        new = config.model_dump(mode="json")
        fixed = sections_changed(old, new, START_ONLY)
        if fixed:
            raise ApiError(
                422,
                "config_not_applied",
                f"{', '.join(fixed)}: read at start only; edit the configuration file and "
                "restart the terminal (a running terminal's security and application trust "
                "cannot be changed remotely)",
                errors=[{"field": f, "message": "read at start only"} for f in fixed],
            )
        path = ctx.terminal.config_path
        async with ctx.config_lock:
            part = None if path is None else await asyncio.to_thread(_write_part, config, path)
            try:
                try:
                    await ctx.terminal.apply_config(config)
                except (ConfigError, ValueError) as exc:
                    raise ApiError(
                        422,
                        "config_not_applied",
                        f"the terminal refused the configuration and runs the previous one: {exc}",
                    ) from exc
                if part is not None and path is not None:
                    try:
                        await asyncio.to_thread(publish, part, path)
                    except OSError as exc:
                        raise ApiError(
                            500,
                            "config_not_written",
                            f"the terminal runs the new configuration, but {path} could not be "
                            f"replaced ({exc.strerror}): a restart would run the previous one",
                        ) from exc
            finally:
                if part is not None:
                    part.unlink(missing_ok=True)
        changed = changed_fields(old, new)
        restart = sections_changed(old, new, RESTART)
        try:
            await ctx.terminal.record(
                [configuration_event(ctx.now(), changed, user=user, how=how, restart=restart)]
            )
        except Exception as exc:  # applied; only its log line is missing (said in the log)
            log.error("configuration applied by %s but not logged: %s", user, exc)
        return Applied(
            applied=True,
            written_to=None if path is None else str(path),
            config=shown(config),
            changed=changed,
            restart_required=restart,
        )

    @router.put(
        "/config",
        summary="Replace the configuration: validate, write the file, apply",
        responses={
            422: {"description": "invalid, or refused by the terminal"},
        },
    )
    async def put_config(config: TerminalConfig, who: CanConfigure) -> Applied:
        return await apply(config, who.user, "PUT /config")

    @router.patch(
        "/config",
        summary="Change named fields of the configuration (ISC-2 §8.3): validate, write, apply",
        responses={
            422: {"description": "a path that does not fit, an invalid result, or refused"},
        },
    )
    async def patch_config(body: PatchIn, who: CanConfigure) -> Applied:
        try:
            document = apply_operations(ctx.config.model_dump(mode="json"), body.changes)
        except PatchError as exc:
            raise ApiError(422, "invalid_change", str(exc)) from None
        try:
            config = TerminalConfig.model_validate(document)
        except ValidationError as exc:
            problems = field_errors(exc.errors())
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ApiError(422, "invalid_config", detail, errors=problems) from None
        paths = ", ".join(c.path for c in body.changes)
        return await apply(config, who.user, f"PATCH /config {paths}"[:300])

    return router

"""``/config``: the configuration tool's API for every protocol (ISC-2 §7.2.2, CSMT §11.3).

A new configuration is validated by :class:`TerminalConfig` itself (a 422 names each field in
error), then applied: written next to the configuration file, handed to the terminal's
``apply_config``, and only once the terminal took it renamed over the file, so the file never
holds a configuration the terminal refused, and a restart runs what was applied.

Secrets never leave (ISC-2 §7.4.1.4(2)): every configuration this API answers shows passwords,
keys, password hashes and passwords inside URLs as ``********``
(:mod:`reference_terminal.security.redaction`). A document sent back with ``********`` in a
place keeps the running configuration's secret there, so GET, edit, PUT never wipes one.

The ``security`` section is read when the API starts: a PUT that changes it is refused (edit the
file and restart), so the security of a running terminal cannot be switched off remotely.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanConfigure, CanRead
from reference_terminal.config import ConfigError, TerminalConfig
from reference_terminal.security.redaction import REDACTED, redact, restore

SHOWN = f"the configuration (TerminalConfig) with every secret shown as {REDACTED!r}"


class Applied(BaseModel):
    applied: bool
    #: The file the configuration was written to; None when the terminal has none.
    written_to: str | None
    config: dict[str, Any] = Field(description=SHOWN)


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


def _publish(part: Path, path: Path) -> None:
    part.replace(path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    finally:
        os.close(fd)


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

    @router.put(
        "/config",
        summary="Replace the configuration: validate, write the file, apply",
        responses={
            422: {"description": "invalid, or refused by the terminal"},
        },
    )
    async def put_config(config: TerminalConfig, _: CanConfigure) -> Applied:
        if config.security != ctx.config.security:
            raise ApiError(
                422,
                "config_not_applied",
                "security: the security section is read at start only; edit the configuration "
                "file and restart the terminal (a running terminal's security cannot be "
                "changed remotely)",
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
                        await asyncio.to_thread(_publish, part, path)
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
        return Applied(
            applied=True, written_to=None if path is None else str(path), config=shown(config)
        )

    return router

"""``/accounting/factors``: the methodology and emission-factor library (ISC-2 §7.2.8, SSEA
§5.4.9, CPCIF §5.2.1 d)), queried, exported, and updated offline by importing a file or online
by downloading one from a platform (CSMT §11.4).

An imported library is checked first: every binding of the accounting must still resolve with
it (an import that removes a fuel in use is refused, naming the field). It is then kept in
``accounting.imports_dir`` (one file per vintage, written atomically) so it survives restarts,
logged as a ``method_import`` or ``method_download`` event (CSMT §11.12 "方法下载" log), and the
accounting carries on with it.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reference_terminal.accounting.bindings import resolve
from reference_terminal.accounting.download import (
    DownloadRefused,
    check,
    load_keys,
    parse_library,
    save_library,
)
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import Factor, FactorKind, FactorLibrary
from reference_terminal.accounting.methods import CO2_PER_C
from reference_terminal.accounting.units import CONTEXT
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError
from reference_terminal.api.security import CanConfigure, CanRead, Principal
from reference_terminal.model import Event

MAX_LIBRARY_BYTES = 4 * 1024 * 1024


class DownloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        max_length=2048,
        description="http:// or https:// URL of the library (default: the configured platform)",
    )
    #: CA certificates (PEM) to verify the platform with, instead of the system's.
    ca_file: str | None = Field(None, max_length=4096)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("an http:// or https:// URL with a host is needed")
        return url


def factor_data(f: Factor, revision: int) -> dict[str, Any]:
    """One library entry: its parameters, and ``value``/``unit`` its emission factor (for a
    fuel: CC × OF × 44/12 per GJ)."""
    value, unit = None, ""
    if f.factor is not None:
        value, unit = f"{f.factor.value:f}", str(f.factor.unit)
    elif f.carbon_content is not None and f.oxidation is not None:
        cc = f.carbon_content.to("tC/GJ").value
        of = f.oxidation.to("").value
        ef = CONTEXT.divide(CONTEXT.multiply(CONTEXT.multiply(cc, of), CO2_PER_C[0]), CO2_PER_C[1])
        value, unit = f"{ef.quantize(CONTEXT.power(10, -10)).normalize():f}", "tCO2/GJ"
    return {
        "id": f"{f.vintage}/{f.name}" + ("" if f.data_year is None else f"/{f.data_year}"),
        "name": f.name,
        "label": f.label,
        "kind": f.kind.value,
        "vintage": f.vintage,
        "version": revision,
        "data_year": f.data_year,
        "value": value,
        "unit": unit,
        "parameters": {p: str(q) for p, q in f.parameters().items()},
        "source": f.source,
        "to_confirm": f.to_confirm,
        "note": f.note,
    }


def _parse(body: bytes) -> FactorLibrary:
    if len(body) > MAX_LIBRARY_BYTES:
        raise ApiError(413, "too_large", f"a library of {len(body)} bytes is beyond the limit")
    try:
        return parse_library(body, "the imported library")
    except ValueError as exc:  # AccountingError, and what the library's checks raise
        raise ApiError(422, "invalid_library", str(exc)) from None


def factor_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["accounting"])

    def library() -> FactorLibrary:
        from reference_terminal.api.routes_accounting import running  # noqa: PLC0415

        return running(ctx).bindings.library

    @router.get(
        "/accounting/factors",
        summary="The factor library: every factor with its value, unit, vintage, version, data "
        "year and source (ISC-2 §7.2.8)",
    )
    async def get_factors(
        _: CanRead,
        vintage: str | None = None,
        kind: FactorKind | None = None,
        name: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[dict[str, Any]]:
        lib = library()
        found = lib.query(vintage=vintage, kind=kind, name=name)
        return [factor_data(f, lib.vintages[f.vintage].revision) for f in found]

    @router.get(
        "/accounting/factors/export",
        summary="The whole library as a file (YAML or JSON) that imports back as it is",
        response_class=Response,
    )
    async def export_factors(
        _: CanRead, format: Annotated[str, Query(pattern="^(yaml|json)$")] = "yaml"
    ) -> Response:
        data = library().to_data()
        if format == "json":
            body = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            media = "application/json"
        else:
            body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
            media = "application/yaml"
        return Response(
            body.encode("utf-8"),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="factors.{format}"'},
        )

    async def take(
        imported: FactorLibrary,
        principal: Principal,
        how: str,
        origin: str,
        publication: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        config = ctx.config
        if config.accounting is None:
            raise ApiError(404, "no_accounting", "the configuration has no accounting section")
        current = library()
        try:
            merged = current.merged(imported, replace=True)
            manual = frozenset(d.id for d in config.devices if d.protocol == "manual")
            resolve(
                config.accounting,
                config.points,
                config.virtual_points,
                library=merged,
                manual_devices=manual,
            )
        except AccountingError as exc:
            raise ApiError(422, "library_refused", str(exc)) from None
        changed = merged.to_data() != current.to_data()
        files = save_library(Path(config.accounting.imports_dir), imported) if changed else []
        details = {
            "vintages": ", ".join(imported.vintages),
            "revisions": ", ".join(f"{v.name}: {v.revision}" for v in imported.vintages.values()),
            "changed": str(changed).lower(),
            "origin": origin,
            "user": principal.user,
        } | (publication or {})
        await ctx.terminal.record([Event(ctx.now(), how, details=details)])
        if changed:
            await ctx.terminal.reload_accounting()
        return {"imported": list(imported.vintages), "changed": changed, "files": files}

    @router.post(
        "/accounting/factors/import",
        summary="Import a library file (YAML or JSON body; offline methodology configuration, "
        "CSMT §11.4); a vintage imported again replaces the one there was",
    )
    async def import_factors(request: Request, principal: CanConfigure) -> dict[str, Any]:
        body = await request.body()
        return await take(_parse(body), principal, "method_import", "file")

    @router.post(
        "/accounting/factors/download",
        summary="Download a library from a platform and import it (online methodology "
        "configuration, CSMT §11.4): from ``url``, or from the configured platform "
        "(accounting.factor_download); its SM3 digest and SM2 signature are checked first",
    )
    async def download_factors(
        principal: CanConfigure, given: DownloadIn | None = None
    ) -> dict[str, Any]:
        accounting = ctx.config.accounting
        platform = None if accounting is None else accounting.factor_download
        given = given or DownloadIn()
        url = given.url or (None if platform is None else platform.url)
        if url is None:
            raise ApiError(
                422,
                "no_platform",
                "CSMT §11.4: no url given and no platform configured (accounting.factor_download)",
            )
        ca_file = given.ca_file or (
            platform.ca_file if platform is not None and given.url is None else None
        )
        try:
            keys = load_keys([] if platform is None else platform.trusted_keys)
        except DownloadRefused as exc:
            raise ApiError(500, exc.code, str(exc)) from None
        verify: ssl.SSLContext | bool = True
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ValueError) as exc:
                raise ApiError(422, "invalid_ca_file", f"ca_file {ca_file!r}: {exc}") from None
        try:
            async with httpx.AsyncClient(timeout=30.0, verify=verify) as client:
                answer = await client.get(url)
        except (httpx.HTTPError, OSError) as exc:
            raise ApiError(502, "download_failed", f"{url}: {exc!r}") from None
        if answer.status_code != 200:
            raise ApiError(502, "download_failed", f"{url}: HTTP {answer.status_code}")
        if len(answer.content) > MAX_LIBRARY_BYTES:
            raise ApiError(413, "too_large", f"{url}: {len(answer.content)} bytes")
        try:
            got = check(answer.content, keys)
        except DownloadRefused as exc:
            details = {"origin": url, "code": exc.code, "error": str(exc), "user": principal.user}
            await ctx.terminal.record(
                [Event(ctx.now(), "method_download_refused", details=details)]
            )
            raise ApiError(422, f"download_{exc.code}", str(exc)) from None
        publication = {
            "publisher": got.publisher or "",
            "version": got.version or "",
            "published_at": got.published_at or "",
            "sm3": got.sm3,
            "signature": got.signature,
        }
        out = await take(_parse(got.library), principal, "method_download", url, publication)
        return out | {"publication": publication}

    return router

"""Every error the management API answers is JSON ``{"error": code, "detail": text}``.

``error`` is a short, stable code a client can branch on (``unknown_point``, ``not_ready``,
``invalid_request`` …); ``detail`` is for people. A request that fails validation (a body, a
query parameter) also carries ``errors``: one ``{"field", "message"}`` per problem, the field
spelled as the configuration's own messages spell it (``points[0].group``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reference_terminal.app import TerminalNotReady
from reference_terminal.storage.store import StoreClosed

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success; raised anywhere below a route, answered by the handler."""

    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.extra = extra


class NotReady(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, "not_ready", detail)


def error_body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "detail": detail, **extra}


def error_response(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(error, detail, **extra), status_code=status)


# A model validator's message starts with the path of the field at fault ("points[0].group: no
# group 'x'"); pydantic puts such an error at the model's own location, so the field is read
# back from the message.
_FIELD_IN_MESSAGE = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.+)$")
_WHERE = ("body", "query", "path", "header", "cookie")


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "points", 0, "group")`` → ``points[0].group``."""
    parts = list(loc)
    if parts and parts[0] in _WHERE:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's errors as ``{"field", "message"}`` (the input value is left out: it may be a
    large document or a password)."""
    out = []
    for e in errors:
        field = field_name(e.get("loc", ()))
        message = str(e.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        if not field:
            match = _FIELD_IN_MESSAGE.match(message)
            if match:
                field, message = match.group(1), match.group(2)
        out.append({"field": field or "(body)", "message": message})
    return out


def validation_response(errors: Sequence[Any], error: str = "invalid_request") -> JSONResponse:
    problems = field_errors(errors)
    detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return error_response(422, error, detail, errors=problems)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.detail, **exc.extra)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        code = "http_error"
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


async def _store_closed(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, "not_ready", f"the terminal cannot store now: {exc}")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("management API: unexpected failure", exc_info=exc)
    return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StoreClosed, _store_closed)
    app.add_exception_handler(TerminalNotReady, _store_closed)
    app.add_exception_handler(Exception, _unexpected)

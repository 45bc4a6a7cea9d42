"""How the console reads and changes the terminal: through the management API itself.

Every page calls the API's own routes in process (ASGI, no socket) with the caller's bearer
token and address, so the console can do exactly what its user may do through the API: the
same roles, the same ``X-Confirm`` on control operations, the same validation, and one audit
entry per call. There is no second way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from reference_terminal.api.security import CONFIRM_HEADER

#: The in-process calls' base URL (never resolved: the transport is the app itself).
BASE = "http://terminal.console"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    data: Any
    content: bytes
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def error(self) -> str:
        """The API's error code (``forbidden``, ``unknown_point`` …), or ``""``."""
        return str(self.data.get("error", "")) if isinstance(self.data, dict) else ""

    @property
    def detail(self) -> str:
        """What went wrong, for people (the API's ``detail``)."""
        if isinstance(self.data, dict) and "detail" in self.data:
            return str(self.data["detail"])
        return self.content.decode("utf-8", "replace")[:500]


def refusal(error: str, detail: str, status: int = 400) -> Answer:
    """An answer the console gives itself, in the API's error shape."""
    return Answer(status, {"error": error, "detail": detail}, b"", httpx.Headers())


def _header_safe(text: str) -> bool:
    return all(0x20 <= ord(c) <= 0xFF and c != "\x7f" for c in text)


class Api:
    """The management API as one console request's user sees it."""

    def __init__(self, request: Request, token: str | None) -> None:
        client = request.client
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=request.app,
                client=(client.host, client.port) if client is not None else ("127.0.0.1", 0),
                raise_app_exceptions=False,
            ),
            base_url=BASE,
            timeout=120.0,
        )
        self.token = token

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        confirm: str | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Answer:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if confirm:
            if not _header_safe(confirm):
                return refusal(
                    "confirmation_failed",
                    "this password cannot be sent in the X-Confirm header (printable Latin-1 "
                    "only): the API could not confirm it either",
                )
            headers[CONFIRM_HEADER] = confirm
        if content_type:
            headers["Content-Type"] = content_type
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._client.request(
            method, path, params=query, json=json, content=content, headers=headers
        )
        data: Any = None
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                data = response.json()
            except ValueError:
                data = None
        return Answer(response.status_code, data, response.content, response.headers)

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params=params)

    async def aclose(self) -> None:
        await self._client.aclose()

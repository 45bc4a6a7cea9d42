"""A limit on every request body (issue 66: four 256 MiB login bodies took the process from
223 MiB to 2.4 GiB). A body over its route's limit is answered 413 before any route sees it: by
its ``Content-Length`` when it has one, else by counting as it arrives (a chunked body is held
up to the limit, then handed on whole).

Most routes take small JSON (``api.max_body_bytes``); the few that take files have their own
limits: an application package (``apps.max_package_bytes``) and a backup to restore
(``api.max_restore_bytes``), streamed through without being held.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: bodies of routes allowed more than this are counted as they stream, never held
HOLD_MAX = 16 * 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, default: int, by_prefix: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.by_prefix = dict(by_prefix)

    def limit(self, path: str) -> int:
        return next(
            (n for prefix, n in self.by_prefix.items() if path.startswith(prefix)), self.default
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(str(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, 400, "bad_request", "Content-Length is not a number")
                return
            if declared > limit:
                await _too_large(send, limit)
                return
            await self.app(scope, _counting(receive, limit), send)
            return
        if limit > HOLD_MAX:  # a file route: count as it streams
            await self.app(scope, _counting(receive, limit), send)
            return
        held: list[Message] = []
        size = 0
        while True:  # no length given: hold the body (up to the limit) before the route runs
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return held.pop(0) if held else await receive()

        await self.app(scope, replay, send)


def _counting(receive: Receive, limit: int) -> Receive:
    """A body longer than its own Content-Length said ends the request (no route reads past
    the limit)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return counted


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(send, 413, "too_large", f"a request body over {limit} bytes is refused")


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

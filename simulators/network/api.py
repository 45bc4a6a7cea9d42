"""Toxiproxy's HTTP API over a :class:`~.server.FaultProxyServer`, for existing clients.

Endpoints, bodies, defaults and status codes as Toxiproxy 2 (api.go): ``201`` for a created
proxy and for populate, ``200`` for a created toxic (sic), ``204`` for deletes and reset,
``POST`` or ``PATCH`` for updates; errors are ``{"error": <Toxiproxy's text>, "status": <code>}``
with, when it says more, ``"detail"`` (which field, what was given). Requests with a browser's
``User-Agent`` are refused with 403, as Toxiproxy does against cross-site requests.

The app runs in the bench's event loop (the proxies live there): :class:`ApiServer` embeds
uvicorn without taking the process's signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.clock import Clock
from simulators.network.config import ProxyUpdate, parse_populate, parse_proxy, parse_proxy_update
from simulators.network.errors import BadRequest, NetworkFaultError
from simulators.network.listener import tcp_listener
from simulators.network.toxics import parse_toxic

if TYPE_CHECKING:
    from simulators.network.server import FaultProxyServer

log = logging.getLogger(__name__)

#: The Toxiproxy release whose API this follows; /version says so, marked as carbench's.
TOXIPROXY_VERSION: Final = "2.12.0"
VERSION: Final = f"{TOXIPROXY_VERSION}+carbench"


def create_app(server: FaultProxyServer) -> FastAPI:
    app = FastAPI(
        title="carbench fault proxy (Toxiproxy API)",
        version=VERSION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response("User agent not allowed\n", status_code=403, media_type="text/plain")
        try:
            return await call_next(request)
        except Exception as error:  # the server answers, whatever went wrong
            log.exception("fault proxy API: %s %s failed", request.method, request.url.path)
            return _error(500, f"internal error: {type(error).__name__}: {error}")

    @app.exception_handler(NetworkFaultError)
    async def fault(request: Request, error: Exception) -> Response:
        assert isinstance(error, NetworkFaultError)
        return _error(error.status, error.api_message, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return _error(error.status_code, str(error.detail).lower())

    @app.get("/version")
    async def version() -> Response:
        return Response(
            json.dumps({"version": VERSION}) + "\n", media_type="application/json;charset=utf-8"
        )

    @app.post("/reset")
    async def reset() -> Response:
        await server.reset()
        return Response(status_code=204)

    @app.get("/proxies")
    async def proxy_index() -> Response:
        return JSONResponse({name: p.to_json() for name, p in server.proxies.items()})

    @app.post("/proxies")
    async def proxy_create(request: Request) -> Response:
        config = parse_proxy(await _body(request))
        proxy = await server.add(config)
        return JSONResponse(proxy.to_json(), status_code=201)

    @app.post("/populate")
    async def populate(request: Request) -> Response:
        # Toxiproxy answers populate errors with the proxies list alongside the error.
        try:
            proxies = await server.populate(parse_populate(await _body(request)))
        except NetworkFaultError as error:
            body = _error_body(error.status, error.api_message, error.message)
            return JSONResponse({**body, "proxies": []}, status_code=error.status)
        return JSONResponse({"proxies": [p.to_json() for p in proxies]}, status_code=201)

    @app.get("/proxies/{proxy}")
    async def proxy_show(proxy: str) -> Response:
        return JSONResponse(server.proxy(proxy).to_json())

    @app.api_route("/proxies/{proxy}", methods=["POST", "PATCH"])
    async def proxy_update(proxy: str, request: Request) -> Response:
        target = server.proxy(proxy)
        current = ProxyUpdate(target.listen, target.upstream, target.enabled)
        wanted = parse_proxy_update(current, await _body(request))
        await target.update(listen=wanted.listen, upstream=wanted.upstream, enabled=wanted.enabled)
        return JSONResponse(target.to_json())

    @app.delete("/proxies/{proxy}")
    async def proxy_delete(proxy: str) -> Response:
        await server.delete(proxy)
        return Response(status_code=204)

    @app.get("/proxies/{proxy}/toxics")
    async def toxic_index(proxy: str) -> Response:
        return JSONResponse([t.to_json() for t in server.proxy(proxy).toxics])

    @app.post("/proxies/{proxy}/toxics")
    async def toxic_create(proxy: str, request: Request) -> Response:
        target = server.proxy(proxy)
        toxic = await target.add_toxic(parse_toxic(await _body(request)))
        return JSONResponse(toxic.to_json())

    @app.get("/proxies/{proxy}/toxics/{toxic}")
    async def toxic_show(proxy: str, toxic: str) -> Response:
        return JSONResponse(server.proxy(proxy).toxic(toxic).to_json())

    @app.api_route("/proxies/{proxy}/toxics/{toxic}", methods=["POST", "PATCH"])
    async def toxic_update(proxy: str, toxic: str, request: Request) -> Response:
        target = server.proxy(proxy)
        target.toxic(toxic)  # 404 before looking at the body, as Toxiproxy
        updated = await target.update_toxic_json(toxic, await _body(request))
        return JSONResponse(updated.to_json())

    @app.delete("/proxies/{proxy}/toxics/{toxic}")
    async def toxic_delete(proxy: str, toxic: str) -> Response:
        await server.proxy(proxy).remove_toxic(toxic)
        return Response(status_code=204)

    return app


async def _body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("", "the body is empty, expected JSON")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise BadRequest("", f"the body is not JSON: {error}") from None


def _error_body(status: int, message: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "status": status}
    if detail is not None and detail != message:
        body["detail"] = detail
    return body


def _error(status: int, message: str, detail: str | None = None) -> Response:
    return JSONResponse(_error_body(status, message, detail), status_code=status)


# ---- serving --------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bench's loop: signals belong to the bench, not to this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The HTTP API listening on ``host:port`` (0: a free port; ``url`` says which)."""

    def __init__(self, app: FastAPI, host: str, port: int, *, clock: Clock) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.clock = clock
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        # Bind first, so port 0 is resolved before uvicorn starts and the URL can be told.
        try:
            listener = tcp_listener(self.host, self.port)
        except OSError as error:
            raise OSError(
                error.errno, f"fault proxy API: cannot listen on {self.host}:{self.port}: {error}"
            ) from error
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._serving = asyncio.ensure_future(self._serve(server, listener))
        while not server.started and not self._serving.done():
            await self.clock.sleep(0.005)
        if self._serving.done():
            self._serving.result()

    @staticmethod
    async def _serve(server: _EmbeddedServer, listener: socket.socket) -> None:
        with listener:
            await server.serve(sockets=[listener])

    async def stop(self) -> None:
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is None or serving is None:
            return
        server.should_exit = True
        await serving

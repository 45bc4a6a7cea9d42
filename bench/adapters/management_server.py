"""The reference terminal's management API served in the bench's event loop (uvicorn on a
loopback socket), one server per boot: it goes down with the power and comes back on the same
port, as a gateway's web server would."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from simulators.network.listener import tcp_listener
from simulators.tasks import cancel_and_wait

STOP_TIMEOUT_S = 10.0  # wall seconds for uvicorn to let go of its socket


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bench's loop: signals belong to the bench (and pytest)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ManagementServer:
    """``http``: uvicorn's protocol class, e.g. the SM channel's (``reference_terminal.api
    .channel_server.channel_protocol``) for the dedicated management port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        http: type[asyncio.Protocol] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.http = http
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, terminal: Terminal, app: FastAPI | None = None) -> None:
        """Serve ``app`` (default: a new management API of ``terminal``; give the same app to
        every port of one terminal, so that they share its sessions and lockouts)."""
        if self._task is not None:
            raise RuntimeError("the management API is already being served")
        listener = tcp_listener(self.host, self.port)
        config = uvicorn.Config(
            app or create_app(terminal),
            http=self.http or "auto",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = _EmbeddedServer(config)

        async def serve() -> None:
            with listener:
                await server.serve(sockets=[listener])

        self._server, self._task = server, asyncio.create_task(serve(), name="management API")
        while not server.started and not self._task.done():
            await asyncio.sleep(0.005)  # uvicorn's own start-up, in wall time
        if self._task.done():
            self._task.result()

    async def stop(self, *, abort: bool = False) -> None:
        """Stop serving; ``abort``: drop the connections now (the power went)."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        if abort:
            server.force_exit = True
            for protocol in list(server.server_state.connections):
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await task
        except TimeoutError:
            await cancel_and_wait(task)

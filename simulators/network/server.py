"""Many proxies in one process: the registry the API and the scenario engine both drive.

From Python::

    async with running_proxies(ProxyConfig("centre", upstream="127.0.0.1:21212"), seed=7) as net:
        centre = net["centre"]                      # connect the terminal to centre.listen
        await centre.add_toxic("latency", latency=800, jitter=100)
        await centre.set_enabled(False)             # down: refused, open connections closed

As a Toxiproxy: ``serve(port=8474)`` (blocking; the CLI's entry) or ``await net.start_api()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

from common.clock import Clock, RealClock
from simulators.network.config import (
    DEFAULT_LISTEN,
    Address,
    ProxyConfig,
    parse_address,
    parse_populate,
)
from simulators.network.errors import ProxyAlreadyExists, ProxyNotFound
from simulators.network.proxy import FaultProxy

if TYPE_CHECKING:
    from simulators.network.api import ApiServer

DEFAULT_API: Final = "127.0.0.1:8474"


class FaultProxyServer:
    """A set of named proxies sharing one seed and one clock."""

    def __init__(self, *, seed: int = 0, clock: Clock | None = None) -> None:
        self.seed = seed
        self.clock: Clock = clock if clock is not None else RealClock()
        self._proxies: dict[str, FaultProxy] = {}
        self._lock = asyncio.Lock()
        self.api: ApiServer | None = None

    async def __aenter__(self) -> FaultProxyServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- the registry ------------------------------------------------------------------------
    @property
    def proxies(self) -> dict[str, FaultProxy]:
        return dict(self._proxies)

    def proxy(self, name: str) -> FaultProxy:
        try:
            return self._proxies[name]
        except KeyError:
            raise ProxyNotFound(name) from None

    __getitem__ = proxy

    async def create_proxy(
        self, name: str, *, upstream: str, listen: str = DEFAULT_LISTEN, enabled: bool = True
    ) -> FaultProxy:
        """A new proxy, listening at once unless ``enabled`` is false."""
        return await self.add(ProxyConfig(name, upstream, listen, enabled))

    async def add(self, config: ProxyConfig) -> FaultProxy:
        async with self._lock:
            return await self._add(config)

    async def _add(self, config: ProxyConfig) -> FaultProxy:
        if config.name in self._proxies:
            raise ProxyAlreadyExists(config.name)
        proxy = FaultProxy(config, seed=self.seed, clock=self.clock)
        if config.enabled:
            await proxy.set_enabled(True)  # ListenError: the proxy is not kept
        self._proxies[config.name] = proxy
        return proxy

    async def delete(self, name: str) -> None:
        """Remove a proxy: listener closed, connections closed, toxics gone."""
        async with self._lock:
            proxy = self.proxy(name)
            del self._proxies[name]
        await proxy.close()

    async def populate(self, configs: Sequence[ProxyConfig]) -> list[FaultProxy]:
        """Toxiproxy's populate: each proxy is created, or kept as it is when one of that name
        has the same listen and upstream, or replaced when it differs. Proxies not named are
        left alone. Every config is valid by construction; a listen failure stops the rest."""
        result = []
        async with self._lock:
            for config in configs:
                existing = self._proxies.get(config.name)
                if existing is not None:
                    if existing.matches(config):
                        result.append(existing)
                        continue
                    del self._proxies[config.name]
                    await existing.close()
                result.append(await self._add(config))
        return result

    async def reset(self) -> None:
        """Toxiproxy's ``/reset``: every proxy enabled, every toxic removed."""
        for proxy in list(self._proxies.values()):
            await proxy.reset()

    async def close(self) -> None:
        """Every proxy and the API down."""
        if self.api is not None:
            api, self.api = self.api, None
            await api.stop()
        async with self._lock:
            proxies = list(self._proxies.values())
            self._proxies.clear()
        for proxy in proxies:
            await proxy.close()

    # ---- the Toxiproxy HTTP API -------------------------------------------------------------
    async def start_api(self, host: str = "127.0.0.1", port: int = 8474) -> ApiServer:
        """Serve Toxiproxy's HTTP API for these proxies (port 0: a free one, see ``.url``)."""
        from simulators.network.api import ApiServer, create_app  # noqa: PLC0415 - FastAPI is heavy

        if self.api is not None:
            raise RuntimeError(f"the API is already served at {self.api.url}")
        api = ApiServer(create_app(self), host, port, clock=self.clock)
        await api.start()
        self.api = api
        return api


@contextlib.asynccontextmanager
async def running_proxies(
    *proxies: ProxyConfig,
    seed: int = 0,
    clock: Clock | None = None,
    api: str | None = None,
) -> AsyncIterator[FaultProxyServer]:
    """A :class:`FaultProxyServer` with ``proxies`` up (and the HTTP API on ``api``,
    "host:port", if given), all closed on exit."""
    server = FaultProxyServer(seed=seed, clock=clock)
    try:
        await server.populate(proxies)
        if api is not None:
            address = parse_address("api", api, port_zero=True)
            await server.start_api(address.host, address.port)
        yield server
    finally:
        await server.close()


def load_config_file(path: Path) -> list[ProxyConfig]:
    """Toxiproxy's ``-config`` file: a JSON array of proxies, as ``/populate`` takes."""
    return parse_populate(json.loads(path.read_text(encoding="utf-8")))


async def serve_until_stopped(
    *,
    api: str = DEFAULT_API,
    seed: int = 0,
    config: Path | None = None,
    clock: Clock | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the proxies of ``config`` and the API on ``api`` until cancelled or SIGTERM."""
    proxies = load_config_file(config) if config is not None else []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_proxies(*proxies, seed=seed, clock=clock, api=api) as server:
        assert server.api is not None
        announce(f"toxiproxy-compatible API on {server.api.url} (seed {seed})")
        for proxy in server.proxies.values():
            state = "up" if proxy.enabled else "down"
            announce(f"proxy {proxy.name}: {proxy.listen} -> {proxy.upstream} ({state})")
        await stop.wait()


def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    seed: int = 0,
    config: Path | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Blocking: a Toxiproxy-compatible server on ``host:port`` until Ctrl-C or SIGTERM."""
    api = str(Address(host, port))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(api=api, seed=seed, config=config, announce=announce))

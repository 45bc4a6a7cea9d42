"""One named proxy: its listener, its connections, its toxics, up or down.

``enabled = False`` is Toxiproxy's "down": the listener is closed (a new connection is refused,
ECONNREFUSED) and the connections through it are closed; enabling listens again on the same
address, whose port the proxy keeps meanwhile. Toxics apply per connection and per direction;
each connection draws its own randomness (toxicity, jitter, slicing, corruption) from a
generator seeded with the server's seed, the proxy's name, the connection's number, the stream,
the toxic's name and how often the toxic was updated, so a run is reproducible whatever the
interleaving of connections.
"""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass
from typing import Any

from common.clock import Clock
from simulators.network.config import Address, ProxyConfig, ProxyUpdate, parse_address
from simulators.network.connection import Connection
from simulators.network.errors import ListenError, ToxicAlreadyExists, ToxicNotFound
from simulators.network.link import StreamCounters
from simulators.network.stages import Stage, make_stage
from simulators.network.toxics import (
    Stream,
    Toxic,
    ToxicType,
    make_toxic,
    parse_toxic_update,
)

LISTEN_BACKLOG = 128


@dataclass(frozen=True)
class StreamStats:
    """One stream's bytes: read from its source, written to its destination (a toxic that
    drops, truncates or holds data makes them differ)."""

    bytes_received: int
    bytes_sent: int


@dataclass(frozen=True)
class ProxyStats:
    connections_accepted: int
    connections_active: int
    #: accepted clients closed because the upstream could not be reached
    upstream_failures: int
    upstream: StreamStats  # client → server
    downstream: StreamStats  # server → client


class FaultProxy:
    def __init__(self, config: ProxyConfig, *, seed: int, clock: Clock) -> None:
        self.name = config.name
        self.seed = seed
        self.clock = clock
        self._configured_listen = config.listen
        self._listen = config.listen
        self._upstream = config.upstream
        self._enabled = False
        self._server: asyncio.Server | None = None
        #: While down: the port, bound but not listening (module text of ``_reserve``).
        self._reserved: socket.socket | None = None
        self._toxics: dict[Stream, list[Toxic]] = {Stream.UPSTREAM: [], Stream.DOWNSTREAM: []}
        self._generation: dict[str, int] = {}
        self._connections: set[Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._numbers = 0
        self._upstream_failures = 0
        self._counters = {Stream.UPSTREAM: StreamCounters(), Stream.DOWNSTREAM: StreamCounters()}
        self._lock = asyncio.Lock()

    # ---- what it is ------------------------------------------------------------------------
    @property
    def listen(self) -> str:
        """Where it listens: the bound address (port 0 resolved) while enabled, else as set."""
        return self._listen

    @property
    def listen_address(self) -> Address:
        return parse_address("listen", self._listen, port_zero=True)

    @property
    def port(self) -> int:
        return self.listen_address.port

    @property
    def upstream(self) -> str:
        return self._upstream

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def stats(self) -> ProxyStats:
        up, down = self._counters[Stream.UPSTREAM], self._counters[Stream.DOWNSTREAM]
        return ProxyStats(
            connections_accepted=self._numbers,
            connections_active=len(self._connections),
            upstream_failures=self._upstream_failures,
            upstream=StreamStats(up.bytes_received, up.bytes_sent),
            downstream=StreamStats(down.bytes_received, down.bytes_sent),
        )

    def upstream_buffered(self) -> int:
        """Bytes written towards the upstream that still wait in this process, its socket
        full: sent as far as ``stats`` counts, not yet where the upstream can read them."""
        return sum(
            c.upstream_writer.transport.get_write_buffer_size()
            for c in self._connections
            if c.upstream_writer is not None
        )

    def matches(self, config: ProxyConfig) -> bool:
        """Whether ``config`` describes this proxy (populate leaves such a proxy alone)."""
        return config.upstream == self._upstream and config.listen in (
            self._listen,
            self._configured_listen,
        )

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON for the proxy, with its toxics."""
        return {
            "name": self.name,
            "listen": self._listen,
            "upstream": self._upstream,
            "enabled": self._enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics],
        }

    # ---- up and down -----------------------------------------------------------------------
    async def set_enabled(self, enabled: bool) -> None:
        """Up (listen) or down (refuse new connections, close the open ones)."""
        async with self._lock:
            if enabled:
                await self._start()
            else:
                await self._stop(reserve=True)

    async def update(
        self, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> None:
        """Toxiproxy's proxy update: a new address restarts the proxy (its connections are
        dropped), then ``enabled`` is applied."""
        wanted = ProxyUpdate(
            listen=self._listen if listen is None else listen,
            upstream=self._upstream if upstream is None else upstream,
            enabled=self._enabled if enabled is None else enabled,
        )
        parse_address("listen", wanted.listen, port_zero=True)
        parse_address("upstream", wanted.upstream, port_zero=False)
        async with self._lock:
            if wanted.listen != self._listen or wanted.upstream != self._upstream:
                await self._stop()
                self._release()
                self._listen = self._configured_listen = wanted.listen
                self._upstream = wanted.upstream
            if wanted.enabled:
                await self._start()
            else:
                await self._stop(reserve=True)

    async def reset(self) -> None:
        """Toxiproxy's reset for this proxy: enabled, no toxics."""
        await self.set_enabled(True)
        await self.remove_all_toxics()

    async def drop_connections(self, *, reset: bool = False) -> int:
        """Close every open connection (RST with ``reset``), staying up; how many."""
        connections = list(self._connections)
        for connection in connections:
            connection.close(reset=reset)
        await _finished(connections)
        return len(connections)

    async def close(self) -> None:
        """Down for good: listener closed, connections aborted, their handlers finished."""
        async with self._lock:
            await self._stop(abort=True)
            self._release()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _start(self) -> None:
        if self._enabled:
            return
        sock = self._listen_on_reserved()
        if sock is None:
            try:
                sock = await _bind(self.listen_address)
            except OSError as error:
                raise ListenError(self.name, self._listen, error.strerror or str(error)) from error
        self._server = await asyncio.start_server(self._accepted, sock=sock)
        host, port = sock.getsockname()[:2]
        self._listen = str(Address(host, port))
        self._enabled = True

    async def _stop(self, *, abort: bool = False, reserve: bool = False) -> None:
        if not self._enabled:
            return
        self._enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if reserve:
            self._reserved = _reserve(self.listen_address)
        connections = list(self._connections)
        for connection in connections:
            connection.close(abort=abort)
        if server is not None:
            await server.wait_closed()
        await _finished(connections)

    def _listen_on_reserved(self) -> socket.socket | None:
        sock, self._reserved = self._reserved, None
        if sock is None:
            return None
        try:
            sock.listen(LISTEN_BACKLOG)
        except OSError:
            sock.close()
            return None
        return sock

    def _release(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if not self._enabled:  # accepted just before the listener closed
                writer.transport.abort()
                return
            self._numbers += 1
            connection = Connection(self, self._numbers, reader, writer, task)
            self._connections.add(connection)
            try:
                reached = await connection.run(
                    parse_address("upstream", self._upstream, port_zero=False),
                    lambda stream: self._stages(stream, connection.number),
                    self._counters,
                )
                if not reached:
                    self._upstream_failures += 1
            finally:
                connection.close()
                self._connections.discard(connection)
        finally:
            if task is not None:
                self._handlers.discard(task)

    # ---- toxics ----------------------------------------------------------------------------
    @property
    def toxics(self) -> list[Toxic]:
        """Upstream toxics then downstream ones, each in the order added (as Toxiproxy)."""
        return [*self._toxics[Stream.UPSTREAM], *self._toxics[Stream.DOWNSTREAM]]

    def toxic(self, name: str) -> Toxic:
        for toxic in self.toxics:
            if toxic.name == name:
                return toxic
        raise ToxicNotFound(self.name, name)

    async def add_toxic(
        self,
        toxic: Toxic | ToxicType | str,
        /,
        *,
        name: str | None = None,
        stream: Stream | str = Stream.DOWNSTREAM,
        toxicity: float = 1.0,
        **attributes: float,
    ) -> Toxic:
        """Add a toxic, to live connections too: ``add_toxic("latency", latency=500)``,
        ``add_toxic("timeout", stream="upstream", timeout=0)`` or a :class:`Toxic`."""
        if isinstance(toxic, Toxic):
            given = name is not None or attributes or toxicity != 1.0 or stream != "downstream"
            if given:
                raise TypeError("add_toxic(Toxic) takes no other arguments: the toxic says all")
            spec = toxic
        else:
            spec = make_toxic(toxic, name=name, stream=stream, toxicity=toxicity, **attributes)
        if any(t.name == spec.name for t in self.toxics):
            raise ToxicAlreadyExists(self.name, spec.name)
        self._generation[spec.name] = 0
        self._toxics[spec.stream].append(spec)
        for connection in self._live():
            link = connection.links[spec.stream]
            link.add_stage(self._stage(spec, connection.number))
        return spec

    async def update_toxic(
        self, name: str, *, toxicity: float | None = None, **attributes: float
    ) -> Toxic:
        """Change some attributes (the others keep their value) and/or the toxicity."""
        body: dict[str, object] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return await self.update_toxic_json(name, body)

    async def update_toxic_json(self, name: str, body: object) -> Toxic:
        """The API's toxic update: ``{"attributes": {...}, "toxicity": …}``."""
        current = self.toxic(name)
        updated = parse_toxic_update(current, body)
        chain = self._toxics[current.stream]
        chain[chain.index(current)] = updated
        self._generation[name] += 1
        for connection in self._live():
            connection.links[updated.stream].replace_stage(self._stage(updated, connection.number))
        return updated

    async def remove_toxic(self, name: str) -> None:
        toxic = self.toxic(name)
        self._toxics[toxic.stream].remove(toxic)
        del self._generation[name]
        for connection in self._live():
            connection.links[toxic.stream].remove_stage(name)

    async def remove_all_toxics(self) -> None:
        for toxic in self.toxics:
            await self.remove_toxic(toxic.name)

    def _live(self) -> list[Connection]:
        return [c for c in self._connections if c.links and not c.closed]

    def _stages(self, stream: Stream, number: int) -> list[Stage]:
        return [self._stage(toxic, number) for toxic in self._toxics[stream]]

    def _stage(self, toxic: Toxic, number: int) -> Stage:
        generation = self._generation[toxic.name]
        # A string seed is hashed with SHA-512 by random.Random: stable across processes.
        key = f"{self.seed}/{self.name}/{number}/{toxic.stream}/{toxic.name}/{generation}"
        return make_stage(toxic, random.Random(key))


async def _finished(connections: list[Connection]) -> None:
    """Wait until the handlers of ``connections`` are done, so counters are final when a
    caller looks (the caller itself excepted, should it be one of them)."""
    current = asyncio.current_task()
    handlers = {
        c.handler for c in connections if c.handler is not None and c.handler is not current
    }
    if handlers:
        await asyncio.wait(handlers)


def _reserve(address: Address) -> socket.socket | None:
    """The port of a proxy that went down, bound but not listening: connections to it are
    refused as to a closed port, and no other socket takes it meanwhile. Released, an
    ephemeral port was another connection's source port by the time a 48-hour outage ended
    ("cannot listen …: Address already in use"). None when it cannot be had again at once."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    # Made as TCP by name, as _bind's are: asyncio then turns Nagle off on every connection
    # accepted on it, as Toxiproxy does (with proto 0 it did not, and a 9014 written behind
    # another waited for the terminal's delayed ACK: in virtual time, uploads resent 30 s on).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        return None
    return sock


async def _bind(address: Address) -> socket.socket:
    """A listening socket on the first address ``address.host`` resolves to (one socket, as
    Go's net.Listen; "" is every interface)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        address.host or None,
        address.port,
        type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
    )
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock

"""The proxies from Python: transparency, counters, the registry (create, populate, reset,
delete), errors that say what is wrong, and every delay taken from the clock given."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import simulators.clock as clocks
from simulators.network import (
    FaultProxyServer,
    ListenError,
    ProxyAlreadyExists,
    ProxyConfig,
    ProxyNotFound,
    ToxicAlreadyExists,
    ToxicNotFound,
    make_toxic,
    running_proxies,
    stages,
)
from tests.simulators.network.support import (
    Recording,
    aio,
    connect,
    echo,
    record,
    round_trip,
    tcp_server,
)


def to(port: int, name: str = "p") -> ProxyConfig:
    return ProxyConfig(name, f"127.0.0.1:{port}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---- transparency and counters -----------------------------------------------------------------


@aio
async def test_without_toxics_bytes_pass_unchanged_both_ways() -> None:
    payload = bytes(range(256)) * 1000
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        reader, writer = await connect(net["p"].port)
        writer.write(payload)
        assert await reader.readexactly(len(payload)) == payload
        writer.close()


@aio
async def test_a_half_close_is_passed_on_and_the_other_direction_goes_on() -> None:
    """The client shuts its sending side; the server still answers, then closes."""

    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until the client's FIN
        writer.write(b"got " + request)
        await writer.drain()
        writer.close()

    async with tcp_server(answer_after_eof) as port, running_proxies(to(port)) as net:
        reader, writer = await connect(net["p"].port)
        writer.write(b"request")
        writer.write_eof()
        got = await record(reader, Recording())
    assert got.data == b"got request"
    assert got.eof_at is not None


@aio
async def test_counters_count_bytes_per_direction_and_connections() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        await proxy.add_toxic("limit_data", bytes=4)  # the server's answer is cut
        reader, writer = await connect(proxy.port)
        writer.write(b"0123456789")
        got = await record(reader, Recording())
        await proxy.drop_connections()
        stats = proxy.stats
    assert got.data == b"0123"
    assert (stats.upstream.bytes_received, stats.upstream.bytes_sent) == (10, 10)
    assert stats.downstream.bytes_sent == 4
    assert stats.downstream.bytes_received >= 4
    assert (stats.connections_accepted, stats.connections_active) == (1, 0)


@aio
async def test_an_unreachable_upstream_closes_the_client_and_is_counted() -> None:
    async with running_proxies(ProxyConfig("p", f"127.0.0.1:{free_port()}")) as net:
        reader, _ = await connect(net["p"].port)
        assert await asyncio.wait_for(reader.read(10), 2) == b""
        assert net["p"].stats.upstream_failures == 1


@aio
async def test_drop_connections_with_reset_sends_rst_and_keeps_the_proxy_up() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        reader, writer = await connect(proxy.port)
        await round_trip(reader, writer, b"x")
        assert await proxy.drop_connections(reset=True) == 1
        with pytest.raises(ConnectionResetError):
            await reader.read(10)
        reader, writer = await connect(proxy.port)
        await round_trip(reader, writer, b"still up")
        writer.close()


# ---- the registry ----------------------------------------------------------------------------


@aio
async def test_many_proxies_in_one_server_are_independent() -> None:
    async with (
        tcp_server(echo) as port,
        running_proxies(to(port, "fast"), to(port, "slow"), seed=1) as net,
    ):
        await net["slow"].add_toxic("latency", latency=200)
        fast_r, fast_w = await connect(net["fast"].port)
        slow_r, slow_w = await connect(net["slow"].port)
        assert await round_trip(fast_r, fast_w, b"f") < 0.1
        assert await round_trip(slow_r, slow_w, b"s") >= 0.2
        fast_w.close()
        slow_w.close()
        assert sorted(net.proxies) == ["fast", "slow"]


@aio
async def test_populate_keeps_a_matching_proxy_and_replaces_a_changed_one() -> None:
    async with tcp_server(echo) as port, FaultProxyServer() as net:
        listen = f"127.0.0.1:{free_port()}"
        (kept,) = await net.populate([ProxyConfig("a", f"127.0.0.1:{port}", listen)])
        await kept.add_toxic("latency", latency=1)
        again = await net.populate([ProxyConfig("a", f"127.0.0.1:{port}", listen)])
        assert again == [kept] and kept.toxics  # untouched, toxics and all
        (replaced,) = await net.populate([ProxyConfig("a", f"127.0.0.1:{free_port()}", listen)])
        assert replaced is not kept and not replaced.toxics
        assert not kept.enabled and replaced.enabled


@aio
async def test_reset_enables_every_proxy_and_removes_every_toxic() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port, "a"), to(port, "b")) as net:
        await net["a"].set_enabled(False)
        await net["b"].add_toxic("timeout", timeout=0)
        await net.reset()
        assert net["a"].enabled and not net["b"].toxics
        reader, writer = await connect(net["b"].port)
        assert await round_trip(reader, writer, b"ok") < 0.5
        writer.close()


@aio
async def test_a_deleted_proxy_is_gone_and_its_port_refuses() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        listening = net["p"].port
        await net.delete("p")
        with pytest.raises(ProxyNotFound, match="no proxy named 'p'"):
            net.proxy("p")
        with pytest.raises(ConnectionRefusedError):
            await connect(listening)


@aio
async def test_update_moves_a_proxy_to_a_new_upstream() -> None:
    async with (
        tcp_server(echo) as first,
        tcp_server(echo) as second,
        running_proxies(to(first)) as net,
    ):
        proxy = net["p"]
        listen = proxy.listen
        await proxy.update(upstream=f"127.0.0.1:{second}")
        assert (proxy.upstream, proxy.listen, proxy.enabled) == (
            f"127.0.0.1:{second}",
            listen,
            True,
        )
        reader, writer = await connect(proxy.port)
        await round_trip(reader, writer, b"moved")
        writer.close()


@aio
async def test_errors_say_what_is_wrong() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        with pytest.raises(ProxyAlreadyExists, match="'p' exists already"):
            await net.add(to(port))
        with pytest.raises(ListenError, match=rf"cannot listen on {proxy.listen}: .*in use"):
            await net.create_proxy("twin", upstream=f"127.0.0.1:{port}", listen=proxy.listen)
        assert "twin" not in net.proxies
        await proxy.add_toxic("latency", latency=1)
        with pytest.raises(ToxicAlreadyExists, match="'latency_downstream' already"):
            await proxy.add_toxic("latency", latency=2)
        with pytest.raises(ToxicNotFound, match="no toxic named 'nope'"):
            await proxy.remove_toxic("nope")
        with pytest.raises(TypeError, match="no other arguments"):
            await proxy.add_toxic(make_toxic("noop"), latency=5)


@aio
async def test_a_disabled_proxy_can_be_created_and_listens_only_when_enabled() -> None:
    async with tcp_server(echo) as port, FaultProxyServer() as net:
        listen = f"127.0.0.1:{free_port()}"
        proxy = await net.create_proxy(
            "p", upstream=f"127.0.0.1:{port}", listen=listen, enabled=False
        )
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy.port)
        await proxy.set_enabled(True)
        reader, writer = await connect(proxy.port)
        await round_trip(reader, writer, b"up")
        writer.close()


@aio
async def test_small_writes_go_at_once_on_connections_accepted_after_the_link_came_back() -> None:
    """Nagle off on both sockets of a connection, as Toxiproxy's (Go's default): with it on,
    an acknowledgement written behind another waited for the terminal's delayed ACK."""
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        await net["p"].set_enabled(False)  # its port is kept, bound, while it is down
        await net["p"].set_enabled(True)
        reader, writer = await connect(net["p"].port)
        await round_trip(reader, writer, b"up")
        (connection,) = net["p"]._connections
        assert connection.upstream_writer is not None
        for end in (connection.client_writer, connection.upstream_writer):
            sock = end.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()


# ---- the clock ---------------------------------------------------------------------------------


class FastClock:
    """Time running ``factor`` times faster than the wall clock."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.slept: list[float] = []

    def time(self) -> float:
        return time.time() * self.factor

    def monotonic(self) -> float:
        return time.monotonic() * self.factor

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(seconds / self.factor)


@aio
async def test_toxic_delays_are_taken_from_the_clock_given() -> None:
    """A 5 s latency and a 5 s timeout on a clock 50 times faster take 0.1 s of real time."""
    clock = FastClock(50)
    async with tcp_server(echo) as port, running_proxies(to(port), clock=clock) as net:
        await net["p"].add_toxic("latency", latency=5000)
        reader, writer = await connect(net["p"].port)
        took = await round_trip(reader, writer, b"ping")
        assert 0.1 <= took < 0.1 + 0.3
        await net["p"].add_toxic("timeout", stream="upstream", timeout=5000)
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(10), 2) == b""
        assert time.monotonic() - start < 0.5
    assert clock.slept  # the proxy slept on it, not on asyncio


@aio
async def test_an_hour_of_latency_passes_in_moments_on_the_virtual_clock() -> None:
    virtual = getattr(clocks, "VirtualClock", None)
    if virtual is None:
        pytest.skip("simulators.clock has no VirtualClock yet")
    clock = virtual(start=1.7e9)
    async with tcp_server(echo) as port, running_proxies(to(port), clock=clock) as net:
        await net["p"].add_toxic("latency", latency=3_600_000)
        reader, writer = await connect(net["p"].port)
        before = clock.monotonic()
        took = await round_trip(reader, writer, b"ping")
        writer.close()
        assert clock.monotonic() - before >= 3600
    assert took < 5


# ---- robustness --------------------------------------------------------------------------------


@aio
async def test_a_failing_toxic_costs_its_connection_not_the_proxy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: object, item: object) -> list[object]:
        raise RuntimeError("a bug in a toxic")

    monkeypatch.setattr(stages.LatencyStage, "process", broken)
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("latency", latency=10)
        reader, writer = await connect(net["p"].port)
        writer.write(b"trigger")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 2)
        await net["p"].remove_toxic("latency_downstream")
        reader, writer = await connect(net["p"].port)
        assert await round_trip(reader, writer, b"fine") < 0.5
    assert "a bug in a toxic" in caplog.text

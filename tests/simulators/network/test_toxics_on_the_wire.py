"""Each toxic seen on real loopback connections through the proxy: what the client and the
server actually receive, and when."""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import pytest

from simulators.network import FaultProxy, ProxyConfig, running_proxies
from simulators.network.toxics import Latency
from tests.simulators.network.support import (
    Recording,
    Sink,
    aio,
    connect,
    echo,
    record,
    round_trip,
    sender,
    tcp_server,
)


def to(port: int, name: str = "p") -> ProxyConfig:
    return ProxyConfig(name, f"127.0.0.1:{port}")


async def greet_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"hello\n")
    await writer.drain()
    await echo(reader, writer)


# ---- latency ----------------------------------------------------------------------------------


@aio
async def test_latency_delays_what_the_server_sends_by_the_latency() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        reader, writer = await connect(proxy.port)
        baseline = await round_trip(reader, writer, b"ping")
        await proxy.add_toxic("latency", latency=150)
        delayed = await round_trip(reader, writer, b"ping")
        writer.close()
    assert baseline < 0.1
    assert 0.15 <= delayed < 0.15 + 0.25


@aio
async def test_an_upstream_toxic_leaves_the_downstream_alone() -> None:
    """The server's greeting (downstream) is on time; the client's data (upstream) is late."""
    async with tcp_server(greet_then_echo) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("latency", stream="upstream", latency=300)
        start = time.monotonic()
        reader, writer = await connect(net["p"].port)
        assert await reader.readline() == b"hello\n"
        greeting = time.monotonic() - start
        echoed = await round_trip(reader, writer, b"ping")
        writer.close()
    assert greeting < 0.2
    assert 0.3 <= echoed < 0.3 + 0.25


# ---- bandwidth --------------------------------------------------------------------------------


@aio
async def test_bandwidth_limits_throughput_to_the_rate() -> None:
    """60 000 bytes at 100 KB/s take 0.6 s."""
    server = Sink()
    async with tcp_server(server) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("bandwidth", stream="upstream", rate=100)
        _, writer = await connect(net["p"].port)
        start = time.monotonic()
        writer.write(bytes(60_000))
        writer.write_eof()
        received = await asyncio.wait_for(server.first(), 5)
        writer.close()
    took = received.chunks[-1][0] - start
    assert len(received.data) == 60_000
    assert 0.6 * 0.9 <= took < 0.6 * 1.5
    # steady, not one burst at the end: something arrived within the first half
    assert received.chunks[0][0] - start < 0.45


# ---- slicer -----------------------------------------------------------------------------------


@aio
async def test_slicer_delivers_data_in_small_spaced_pieces() -> None:
    """200 bytes arrive as many reads of at most average_size + size_variation bytes."""
    payload = bytes(range(200))
    async with (
        tcp_server(sender(payload, then_close=False)) as port,
        running_proxies(to(port)) as net,
    ):
        await net["p"].add_toxic("slicer", average_size=20, size_variation=5, delay=30_000)
        reader, writer = await connect(net["p"].port)
        got = Recording()
        while len(got.data) < len(payload):
            got.chunks.append((time.monotonic(), await reader.read(65536)))
        writer.close()
    sizes = [len(chunk) for _, chunk in got.chunks]
    assert got.data == payload
    assert len(sizes) >= 8
    # A reader stalled by a busy machine may take two pieces at once; most reads are one piece.
    assert sum(size <= 25 for size in sizes) >= 0.75 * len(sizes)


@aio
async def test_without_the_slicer_the_same_data_arrives_in_one_read() -> None:
    """The control of the test above: the pieces are the slicer's doing."""
    payload = bytes(range(200))
    async with (
        tcp_server(sender(payload, then_close=False)) as port,
        running_proxies(to(port)) as net,
    ):
        reader, writer = await connect(net["p"].port)
        await asyncio.sleep(0.1)
        assert await reader.read(65536) == payload
        writer.close()


# ---- limit_data -------------------------------------------------------------------------------


@aio
async def test_limit_data_downstream_closes_after_that_many_bytes() -> None:
    async with (
        tcp_server(sender(bytes(range(100)), then_close=False)) as port,
        running_proxies(to(port)) as net,
    ):
        await net["p"].add_toxic("limit_data", bytes=10)
        reader, writer = await connect(net["p"].port)
        got = await record(reader, Recording())
        writer.close()
    assert got.data == bytes(range(10))
    assert got.eof_at is not None and not got.reset


@aio
async def test_limit_data_upstream_lets_the_server_see_only_that_many_bytes() -> None:
    server = Sink()
    async with tcp_server(server) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("limit_data", stream="upstream", bytes=30)
        reader, writer = await connect(net["p"].port)
        writer.write(bytes(100))
        client = await record(reader, Recording())  # the client is closed too
        received = await asyncio.wait_for(server.first(), 5)
    assert received.data == bytes(30)
    assert received.eof_at is not None
    assert client.eof_at is not None


# ---- reset_peer -------------------------------------------------------------------------------


@aio
async def test_reset_peer_resets_the_client_timeout_after_data_arrives() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("reset_peer", timeout=100)
        reader, writer = await connect(net["p"].port)
        start = time.monotonic()
        writer.write(b"ping")
        with pytest.raises(ConnectionResetError):
            await reader.read(100)
        took = time.monotonic() - start
    assert 0.1 <= took < 0.1 + 0.25


@aio
async def test_reset_peer_upstream_resets_both_sides_and_drops_the_data() -> None:
    server = Sink()
    async with tcp_server(server) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("reset_peer", stream="upstream", timeout=0)
        reader, writer = await connect(net["p"].port)
        writer.write(b"never seen")
        with pytest.raises(ConnectionResetError):
            await reader.read(100)
        received = await asyncio.wait_for(server.first(), 5)
    assert received.reset
    assert received.data == b""


# ---- timeout ----------------------------------------------------------------------------------


@aio
async def test_timeout_drops_data_then_closes_after_the_timeout() -> None:
    server = Sink()
    async with tcp_server(server) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("timeout", stream="upstream", timeout=200)
        start = time.monotonic()
        reader, writer = await connect(net["p"].port)
        writer.write(b"lost")
        client = await record(reader, Recording())
        received = await asyncio.wait_for(server.first(), 5)
    assert client.eof_at is not None and not client.reset
    assert 0.2 <= client.eof_at - start < 0.2 + 0.25
    assert received.data == b""


@aio
async def test_timeout_zero_blackholes_forever_and_its_removal_closes_the_connection() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        await proxy.add_toxic("timeout", timeout=0)
        reader, writer = await connect(proxy.port)
        writer.write(b"into the void")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.4)
        assert proxy.stats.connections_active == 1  # held open, not closed
        assert proxy.stats.downstream.bytes_received == len(b"into the void")
        assert proxy.stats.downstream.bytes_sent == 0
        await proxy.remove_toxic("timeout_downstream")
        assert await asyncio.wait_for(reader.read(100), 2) == b""


# ---- slow_close -------------------------------------------------------------------------------


@aio
async def test_slow_close_passes_data_on_time_and_the_fin_late() -> None:
    async with tcp_server(sender(b"bye")) as port, running_proxies(to(port)) as net:
        await net["p"].add_toxic("slow_close", delay=300)
        start = time.monotonic()
        reader, _ = await connect(net["p"].port)
        got = await record(reader, Recording())
    assert got.data == b"bye"
    assert got.chunks[0][0] - start < 0.15
    assert got.eof_at is not None
    assert 0.3 <= got.eof_at - start < 0.3 + 0.25


@aio
async def test_without_slow_close_the_fin_follows_the_data() -> None:
    async with tcp_server(sender(b"bye")) as port, running_proxies(to(port)) as net:
        start = time.monotonic()
        reader, _ = await connect(net["p"].port)
        got = await record(reader, Recording())
    assert got.eof_at is not None and got.eof_at - start < 0.15


# ---- down -------------------------------------------------------------------------------------


@aio
async def test_a_disabled_proxy_closes_its_connections_and_refuses_new_ones() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        reader, writer = await connect(proxy.port)
        await round_trip(reader, writer, b"up")
        await proxy.set_enabled(False)
        assert await asyncio.wait_for(reader.read(100), 2) == b""
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy.port)
        await proxy.set_enabled(True)  # the same port again
        reader, writer = await connect(proxy.port)
        assert await round_trip(reader, writer, b"back") < 0.5
        writer.close()


@aio
async def test_a_disabled_proxy_keeps_its_port_from_every_other_socket() -> None:
    # A released ephemeral port was some connection's source port by the time a 48-hour
    # outage ended, and the proxy could not come back up.
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        await proxy.set_enabled(False)
        other = socket.socket()
        try:
            with pytest.raises(OSError) as taken:
                other.bind(("127.0.0.1", proxy.port))
            assert taken.value.errno == errno.EADDRINUSE
        finally:
            other.close()
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy.port)
        await proxy.set_enabled(True)
        reader, writer = await connect(proxy.port)
        assert await round_trip(reader, writer, b"back") < 0.5
        writer.close()


# ---- corrupt ----------------------------------------------------------------------------------


async def _through_corrupt(seed: int, probability: float, payload: bytes) -> bytes:
    server = Sink()
    async with tcp_server(server) as port, running_proxies(to(port), seed=seed) as net:
        await net["p"].add_toxic("corrupt", stream="upstream", probability=probability)
        _, writer = await connect(net["p"].port)
        writer.write(payload)
        writer.write_eof()
        received = await asyncio.wait_for(server.first(), 5)
        writer.close()
    return received.data


@aio
async def test_corrupt_flips_one_bit_in_the_given_share_of_bytes_reproducibly() -> None:
    payload = bytes(range(256)) * 80  # 20 480 bytes
    damaged = await _through_corrupt(7, 0.1, payload)
    changed = [(a, b) for a, b in zip(payload, damaged, strict=True) if a != b]
    assert len(changed) / len(payload) == pytest.approx(0.1, abs=0.015)
    assert all(bin(a ^ b).count("1") == 1 for a, b in changed)
    assert await _through_corrupt(7, 0.1, payload) == damaged  # same seed, same damage
    assert await _through_corrupt(8, 0.1, payload) != damaged


# ---- toxicity ---------------------------------------------------------------------------------


async def _corrupted_connections(seed: int, toxicity: float, count: int) -> list[bool]:
    """For each of ``count`` connections in turn: was its data corrupted?"""
    async with tcp_server(echo) as port, running_proxies(to(port), seed=seed) as net:
        proxy: FaultProxy = net["p"]
        await proxy.add_toxic("corrupt", probability=1.0, toxicity=toxicity)
        pattern = []
        for _ in range(count):
            reader, writer = await connect(proxy.port)
            writer.write(b"\x00" * 8)
            pattern.append(await reader.readexactly(8) != b"\x00" * 8)
            writer.close()
        return pattern


@aio
async def test_toxicity_zero_never_applies_and_one_always_applies() -> None:
    assert await _corrupted_connections(1, 0.0, 8) == [False] * 8
    assert await _corrupted_connections(1, 1.0, 8) == [True] * 8


@aio
async def test_toxicity_picks_connections_at_random_reproducibly_by_seed() -> None:
    pattern = await _corrupted_connections(3, 0.5, 16)
    assert 0 < sum(pattern) < 16
    assert await _corrupted_connections(3, 0.5, 16) == pattern
    others = [await _corrupted_connections(seed, 0.5, 16) for seed in (4, 5)]
    assert any(other != pattern for other in others)


# ---- toxics on live connections -----------------------------------------------------------------


@aio
async def test_a_toxic_added_to_a_live_connection_acts_on_it() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        reader, writer = await connect(net["p"].port)
        await round_trip(reader, writer, b"before")
        await net["p"].add_toxic("latency", latency=200)
        assert await round_trip(reader, writer, b"after") >= 0.2
        writer.close()


@aio
async def test_removing_a_toxic_releases_what_it_holds_at_once() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        await proxy.add_toxic("latency", latency=5000)
        reader, writer = await connect(proxy.port)
        start = time.monotonic()
        writer.write(b"held")
        await asyncio.sleep(0.2)
        await proxy.remove_toxic("latency_downstream")
        assert await reader.readexactly(4) == b"held"
        assert time.monotonic() - start < 1.0
        assert await round_trip(reader, writer, b"free") < 0.15
        writer.close()


@aio
async def test_updating_a_toxic_changes_it_on_live_connections() -> None:
    async with tcp_server(echo) as port, running_proxies(to(port)) as net:
        proxy = net["p"]
        await proxy.add_toxic("latency", name="slow", latency=100, jitter=0)
        reader, writer = await connect(proxy.port)
        assert await round_trip(reader, writer, b"a") >= 0.1
        updated = await proxy.update_toxic("slow", latency=400)
        assert (updated.attributes, updated.toxicity) == (Latency(400, 0), 1.0)
        assert await round_trip(reader, writer, b"b") >= 0.4
        writer.close()

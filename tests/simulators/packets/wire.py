"""Traffic for the packet-fault tests: sockets at both ends of a link, measured from this process.

Both ends are sockets made inside their namespaces (``link.socket``), driven by threads, so a
test sees exactly what crossed the wire namespace.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from simulators.packets import DeviceLink, Side, device_link, features

RCVBUF = 4 << 20


def skip_unless(*names: str) -> None:
    """Skip the calling test, with the machine's reason, unless it has every feature named."""
    reason = features.missing(*names)
    if reason is not None:
        pytest.skip(reason)


def on_link(scenario: Callable[[DeviceLink], Awaitable[None]], timeout: float = 30.0) -> None:
    """Run ``scenario`` against a fresh link, which is torn down afterwards whatever happens.

    The traffic helpers block (each with its own socket timeout); ``timeout`` bounds the
    awaited parts.
    """
    skip_unless("root", "netns", "iptables")

    async def main() -> None:
        async with device_link() as link:
            await scenario(link)

    asyncio.run(asyncio.wait_for(main(), timeout))


def other(side: Side) -> Side:
    return "bench" if side == "device" else "device"


def udp_stream(
    link: DeviceLink, to: Side, count: int, *, gap_s: float = 0.0, quiet_s: float = 0.4
) -> list[int]:
    """Send datagrams numbered 0..count-1 toward ``to``; return the numbers in arrival order.

    The receiver stops after ``quiet_s`` without a datagram, so it must exceed any hold.
    """
    receiver = link.socket(to, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    receiver.bind((link.address_of(to), 0))
    receiver.settimeout(quiet_s)
    sender = link.socket(other(to), socket.SOCK_DGRAM)
    arrived: list[int] = []

    def receive() -> None:
        while True:
            try:
                arrived.append(int.from_bytes(receiver.recv(64)[:4], "big"))
            except TimeoutError:
                return

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    destination = receiver.getsockname()
    try:
        for number in range(count):
            sender.sendto(number.to_bytes(4, "big"), destination)
            if gap_s:
                pause(gap_s)
        thread.join()
    finally:
        sender.close()
        receiver.close()
    return arrived


def pause(seconds: float) -> None:
    """Sleep precisely enough for sub-millisecond pacing (time.sleep overshoots by ~0.1 ms)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class UdpEcho:
    """A UDP echo server in the device namespace, answering from a thread."""

    def __init__(self, link: DeviceLink) -> None:
        self.sock = link.socket("device", socket.SOCK_DGRAM)
        self.sock.bind((link.device_address, 0))
        # closing a socket does not wake a thread blocked in recvfrom: poll, so close() can end
        # the thread (a thread left blocked counts as busy to a later test's virtual clock)
        self.sock.settimeout(0.1)
        self.address: tuple[str, int] = self.sock.getsockname()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
                self.sock.sendto(data, peer)
            except TimeoutError:
                continue
            except OSError:
                return  # closed

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass(frozen=True)
class Rtts:
    samples_ms: list[float]  # answered probes only
    lost: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)


def measure_rtts(link: DeviceLink, echo: UdpEcho, count: int, timeout_s: float = 0.5) -> Rtts:
    """Ping the echo ``count`` times from the bench, one probe at a time."""
    client = link.socket("bench", socket.SOCK_DGRAM)
    client.settimeout(timeout_s)
    samples: list[float] = []
    lost = 0
    try:
        for number in range(count):
            probe = number.to_bytes(4, "big")
            start = time.perf_counter()
            client.sendto(probe, echo.address)
            try:
                while client.recv(64) != probe:
                    pass  # a late answer to an earlier probe
            except TimeoutError:
                lost += 1
                continue
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        client.close()
    return Rtts(samples, lost)


def late_arrivals(arrived: list[int]) -> int:
    """How many datagrams arrived after one sent later than them (overtaken packets)."""
    late, highest = 0, -1
    for number in arrived:
        if number < highest:
            late += 1
        highest = max(highest, number)
    return late


class TcpSink:
    """A TCP server in the device namespace that reads each connection to its end."""

    def __init__(self, link: DeviceLink) -> None:
        self.sock = link.socket("device", socket.SOCK_STREAM)
        self.sock.bind((link.device_address, 0))
        self.sock.listen()
        self.sock.settimeout(30)  # a test that goes wrong fails instead of hanging
        self.address: tuple[str, int] = self.sock.getsockname()

    def accept_all(self) -> tuple[bytes, float]:
        """Accept one connection, read it to EOF; (data, seconds from first to last byte)."""
        conn, _ = self.sock.accept()
        chunks: list[bytes] = []
        first = last = 0.0
        with conn:
            conn.settimeout(30)
            while chunk := conn.recv(1 << 16):
                last = time.perf_counter()
                if not chunks:
                    first = last
                chunks.append(chunk)
        return b"".join(chunks), last - first

    def close(self) -> None:
        self.sock.close()


def bulk_send(link: DeviceLink, sink: TcpSink, payload: bytes) -> tuple[bytes, float]:
    """Send ``payload`` from the bench to the sink; what arrived and how long it took."""
    result: list[tuple[bytes, float]] = []
    reader = threading.Thread(target=lambda: result.append(sink.accept_all()), daemon=True)
    reader.start()
    client = link.socket("bench", socket.SOCK_STREAM)
    with client:
        client.settimeout(30)
        client.connect(sink.address)
        client.sendall(payload)
    reader.join(30)
    assert result, "the sink received nothing within 30 s"
    return result[0]

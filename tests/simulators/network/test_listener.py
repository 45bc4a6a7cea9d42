"""The listeners the simulators hand to their HTTP servers: every connection they accept has
Nagle off, so an answer written in pieces (headers, then body) goes at once instead of after
the client's delayed ACK (40 ms on Linux): asyncio sets the option itself only on sockets made
for TCP by name, and ``socket.create_server``'s are not."""

from __future__ import annotations

import socket

import pytest

from simulators.network.listener import tcp_listener


def accepted_nodelay(host: str) -> int:
    with tcp_listener(host, 0) as listener, socket.create_connection(listener.getsockname()[:2]):
        accepted, _ = listener.accept()
        with accepted:
            return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_connections_accepted_on_ipv4_have_nagle_off() -> None:
    assert accepted_nodelay("127.0.0.1") == 1


def test_an_ipv6_address_is_listened_on_over_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        nodelay = accepted_nodelay("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert nodelay == 1

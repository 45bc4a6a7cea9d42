"""A TCP listener to hand to a server (uvicorn's or asyncio's ``sock=``): bound first, so port 0
is resolved before the server starts and its address can be told, with Nagle off on every
connection it accepts."""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int) -> socket.socket:
    """Listen on ``host``:``port`` (IPv6 when ``host`` is an IPv6 address); OSError if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family)
    # Accepted sockets inherit the option. asyncio sets it itself only on sockets made for TCP
    # by name (proto IPPROTO_TCP), and create_server's have proto 0: an answer written in two
    # pieces (headers, body) would wait for the client's delayed ACK, 40 ms on Linux.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener

"""A Toxiproxy-compatible TCP fault proxy (asyncio, in the bench's process and clock).

- :mod:`.toxics`: toxic types, attributes, JSON and validation; :mod:`.config`: proxies.
- :mod:`.stages`: what each toxic does to a stream, as times; :mod:`.link`: one direction of
  one connection; :mod:`.connection`: both directions; :mod:`.proxy`: one named proxy.
- :mod:`.server`: many proxies, ``running_proxies``, ``serve``; :mod:`.api`: Toxiproxy's HTTP
  API (FastAPI). See README.md.
"""

from simulators.network.config import Address, ProxyConfig
from simulators.network.errors import (
    BadRequest,
    InvalidStream,
    InvalidToxicType,
    ListenError,
    MissingField,
    NetworkFaultError,
    ProxyAlreadyExists,
    ProxyNotFound,
    ToxicAlreadyExists,
    ToxicNotFound,
)
from simulators.network.proxy import FaultProxy, ProxyStats, StreamStats
from simulators.network.server import FaultProxyServer, running_proxies, serve, serve_until_stopped
from simulators.network.toxics import Stream, Toxic, ToxicType, make_toxic

__all__ = [
    "Address",
    "BadRequest",
    "FaultProxy",
    "FaultProxyServer",
    "InvalidStream",
    "InvalidToxicType",
    "ListenError",
    "MissingField",
    "NetworkFaultError",
    "ProxyAlreadyExists",
    "ProxyConfig",
    "ProxyNotFound",
    "ProxyStats",
    "Stream",
    "StreamStats",
    "Toxic",
    "ToxicAlreadyExists",
    "ToxicNotFound",
    "ToxicType",
    "make_toxic",
    "running_proxies",
    "serve",
    "serve_until_stopped",
]

"""Proxy descriptions: the JSON of Toxiproxy's ``/proxies`` and ``/populate``, validated.

A proxy is ``{"name", "listen", "upstream", "enabled"}``; ``enabled`` defaults to true and
``listen`` to ``127.0.0.1:0`` (Toxiproxy's empty listen means every interface; the bench keeps
to loopback unless told otherwise). Port 0 picks a free port, which the proxy's ``listen``
shows once it listens. Unknown fields are ignored as Toxiproxy ignores them (its Go client
sends ``toxics`` along when it saves a proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from simulators.network.errors import BadRequest, MissingField
from simulators.network.toxics import check_name, describe

DEFAULT_LISTEN: Final = "127.0.0.1:0"


@dataclass(frozen=True)
class Address:
    """``host:port``; an IPv6 host is written in brackets (``[::1]:8474``)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(where: str, value: object, *, port_zero: bool) -> Address:
    """``host:port`` → :class:`Address`; ``port_zero``: whether port 0 (pick one) is allowed."""
    if not isinstance(value, str):
        raise BadRequest(where, f"expected 'host:port' as a string, got {describe(value)}")
    host, colon, port_text = value.rpartition(":")
    if not colon:
        raise BadRequest(where, f"expected 'host:port', got {value!r} (no port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise BadRequest(where, f"an IPv6 host goes in brackets ('[::1]:8474'), got {value!r}")
    lowest = 0 if port_zero else 1
    if not port_text.isdigit() or not lowest <= int(port_text) <= 65535:
        raise BadRequest(where, f"port must be {lowest}…65535, got {port_text!r} in {value!r}")
    if not port_zero and not host:
        raise BadRequest(where, f"expected a host before the port, got {value!r}")
    return Address(host, int(port_text))


@dataclass(frozen=True)
class ProxyConfig:
    """One proxy: where it listens, where it forwards to, whether it is up."""

    name: str
    upstream: str
    listen: str = DEFAULT_LISTEN
    enabled: bool = True

    def __post_init__(self) -> None:
        # Checked here too so a config made in Python fails as early as one posted as JSON.
        check_name("name", self.name)
        parse_address("listen", self.listen, port_zero=True)
        parse_address("upstream", self.upstream, port_zero=False)
        _flag("enabled", self.enabled)


def parse_proxy(body: object, *, where: str = "") -> ProxyConfig:
    """A proxy from the JSON of ``POST /proxies`` (``where``: "at proxy 2" in a populate)."""
    if not isinstance(body, dict):
        at = f" {where}" if where else ""
        raise BadRequest("", f"expected a JSON object describing a proxy{at}, got {describe(body)}")
    name = body.get("name")
    if name is None or name == "":
        raise MissingField("name", where=where)
    upstream = body.get("upstream")
    if upstream is None or upstream == "":
        raise MissingField("upstream", where=where)
    listen = body.get("listen")
    if listen is None or listen == "":
        listen = DEFAULT_LISTEN
    try:
        return ProxyConfig(
            name=check_name("name", name),
            upstream=_string("upstream", upstream),
            listen=_string("listen", listen),
            enabled=_flag("enabled", body.get("enabled", True)),
        )
    except BadRequest as error:
        if not where:
            raise
        raise BadRequest(f"{error.field} {where}", error.problem) from None


def parse_populate(body: object) -> list[ProxyConfig]:
    """The proxies of ``POST /populate``: every one valid and no name twice, or nothing."""
    if not isinstance(body, list):
        raise BadRequest("", f"expected a JSON array of proxies, got {describe(body)}")
    configs: list[ProxyConfig] = []
    seen: set[str] = set()
    for number, item in enumerate(body, start=1):
        config = parse_proxy(item, where=f"at proxy {number}")
        if config.name in seen:
            raise BadRequest(
                f"name at proxy {number}", f"{config.name!r} is given twice in one populate"
            )
        seen.add(config.name)
        configs.append(config)
    return configs


@dataclass(frozen=True)
class ProxyUpdate:
    """What ``POST/PATCH /proxies/{name}`` asks for: fields not given keep their value."""

    listen: str
    upstream: str
    enabled: bool


def parse_proxy_update(current: ProxyUpdate, body: object) -> ProxyUpdate:
    if not isinstance(body, dict):
        raise BadRequest("", f"expected a JSON object updating a proxy, got {describe(body)}")
    listen = _string("listen", body.get("listen", current.listen))
    upstream = _string("upstream", body.get("upstream", current.upstream))
    parse_address("listen", listen, port_zero=True)
    parse_address("upstream", upstream, port_zero=False)
    enabled = _flag("enabled", body.get("enabled", current.enabled))
    return ProxyUpdate(listen=listen, upstream=upstream, enabled=enabled)


def _string(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest(where, f"expected a string, got {describe(value)}")
    return value


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(where, f"expected true or false, got {describe(value)}")
    return value

"""OPC UA: a DCS's or EMS's tags read by node id, all of a read's nodes in one Read service call.

``Source.node`` is a node id: ``ns=2;s=dcs.Clinker_t``, ``nsu=urn:carbench:plant;s=dcs.Clinker_t``
(the namespace by URI, which survives a server renumbering its namespaces), or without any
namespace (``s=dcs.Clinker_t``, ``i=1001``, or a bare ``dcs.Clinker_t`` taken as a string id) in
the device's ``namespace``.

Values: a Double as ``Decimal(repr(value))`` (the shortest text that is the same double, so a
tag holding 1234.56 gives 1234.56); a Float as the shortest text that is the same float32;
integers exactly; a numeric String as written. Only Good values count: a Bad status (the
server's or the field device's failure) and an Uncertain one (e.g. UncertainLastUsableValue,
a stale value the server kept) set ``RawValue.error`` with the status name.

The session stays open between reads; a read that fails on the connection (or times out,
``timeout_s`` per service call) is retried on a new session, up to ``retries`` times, then
raises :class:`DriverError`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

from asyncua import Client as _Client  # type: ignore[attr-defined]
from asyncua import ua as _ua

from common.clock import Clock
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.float32 import shortest_float32_text
from reference_terminal.config import OpcUaDevice, Point, Source
from reference_terminal.model import RawValue

__all__ = ["OpcUaDriver", "opcua_value"]

log = logging.getLogger(__name__)

#: asyncua's own annotations use its int/str subclasses that plain values never match.
ua: Any = _ua
Client: Any = _Client

INTEGER_TYPES: Final = frozenset(
    {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}
)


def opcua_value(variant: Any) -> tuple[Decimal, str]:
    """(exact value, its text as sent) of a Variant; ValueError for a non-number."""
    kind = variant.VariantType.name
    value = variant.Value
    if kind == "Double" and isinstance(value, float):
        _finite(value)
        return Decimal(repr(value)), repr(value)
    if kind == "Float" and isinstance(value, float):
        _finite(value)
        text = shortest_float32_text(value)
        return Decimal(text), text
    if kind in INTEGER_TYPES and isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value), str(value)
    if kind == "String" and isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite():
            return number, value
    raise ValueError(f"not a number: {kind} {value!r}")


def _finite(x: float) -> None:
    if not math.isfinite(x):
        raise ValueError(f"not a number: {x!r}")


class OpcUaDriver:
    """One OPC UA server."""

    def __init__(self, device: OpcUaDevice, clock: Clock) -> None:
        self.device_id = device.id
        self.device = device
        self.clock = clock
        self.sessions = 0  # sessions opened, for reports
        self._client: Any = None
        self._namespaces: list[str] = []

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        last: Exception | None = None
        for _ in range(self.device.retries + 1):
            try:
                return await self._read_once(requests)
            except Exception as exc:  # asyncua fails in many ways (UaError, OSError, EOF …)
                last = exc
                await self._drop()
        kind = "timeout" if isinstance(last, TimeoutError) else "connection"
        raise DriverError(
            self.device_id,
            f"{self.device.endpoint}: {last!r} ({self.device.retries + 1} attempt(s))",
            kind=kind,
        )

    async def _read_once(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        client = await self._session()
        results: list[RawValue | None] = [None] * len(requests)
        nodes: list[Any] = []
        members: list[int] = []
        for i, (point, source) in enumerate(requests):
            try:
                node_id = self._node_id(source.node)
            except (ValueError, ua.UaError) as exc:
                results[i] = self._error(point, "", f"configuration: {exc}")
                continue
            nodes.append(client.get_node(node_id))
            members.append(i)
        if nodes:
            answers = await client.read_attributes(nodes)
            t = self.clock.time()
            for i, answer in zip(members, answers, strict=True):
                results[i] = self._value(requests[i][0], answer, t)
        return [r for r in results if r is not None]

    def _value(self, point: Point, answer: Any, t: float) -> RawValue:
        status = answer.StatusCode
        variant = answer.Value
        text = "" if variant is None else repr(variant.Value)
        if status is not None and not status.is_good():
            return self._error(point, text, f"status {status.name}", t)
        if variant is None:
            return self._error(point, "", "status Good but no value", t)
        try:
            value, raw = opcua_value(variant)
        except ValueError as exc:
            return self._error(point, text, f"value: {exc}", t)
        if variant.VariantType.name in ("Double", "Float"):
            # A floating-point tag carries no resolution of its own: the point's configured
            # decimals are the source system's display (ISC-2 §9.3).
            value = value.quantize(Decimal(1).scaleb(-point.decimals), ROUND_HALF_EVEN)
        return RawValue(point.id, value, raw, t, self.device_id)

    def _error(self, point: Point, raw: str, message: str, t: float | None = None) -> RawValue:
        when = self.clock.time() if t is None else t
        return RawValue(point.id, None, raw, when, self.device_id, message)

    # ---- node ids -------------------------------------------------------------------------
    def _node_id(self, text: str | None) -> Any:
        if not text:
            raise ValueError("the source names no OPC UA node")
        text = text.strip()
        if text.startswith("nsu="):
            uri, _, rest = text[4:].partition(";")
            text = f"ns={self._namespace_index(uri)};{rest}"
        elif not text.startswith("ns="):
            home = self._namespace_index(self.device.namespace)
            if text[:2] in ("i=", "s=", "g=", "b="):
                text = f"ns={home};{text}"
            else:
                text = f"ns={home};s={text}"
        return ua.NodeId.from_string(text)

    def _namespace_index(self, uri: str) -> int:
        try:
            return self._namespaces.index(uri)
        except ValueError:
            raise ValueError(
                f"the server has no namespace {uri!r} (it has {', '.join(self._namespaces)})"
            ) from None

    # ---- the session ----------------------------------------------------------------------
    async def _session(self) -> Any:
        if self._client is not None:
            return self._client
        client = Client(self.device.endpoint, timeout=self.device.timeout_s)
        await client.connect()
        try:
            self._namespaces = list(await client.get_namespace_array())
        except BaseException:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise
        self._client = client
        self.sessions += 1
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def close(self) -> None:
        await self._drop()

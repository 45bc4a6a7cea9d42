"""Toxics as Toxiproxy names them: types, attributes, defaults, JSON shape, validation.

A toxic is ``{"name", "type", "stream", "toxicity", "attributes"}``. As in Toxiproxy the stream
defaults to ``downstream`` (server → client), toxicity to 1, the name to ``<type>_<stream>``
and every attribute to 0; ``upstream`` is client → server. Unlike Toxiproxy, values are checked
before they are used, and a wrong one is refused with its field named (``attributes.rate: …``):
negative numbers, fractions of a millisecond, toxicity outside 0..1, attributes the toxic does
not have, and a slicer that would split forever.

``corrupt`` is carbench's own: each byte is corrupted with ``probability`` (one of its eight bits
flipped, so a corrupted byte always differs). It exists because byte corruption cannot be done
at packet level here (checksums turn it into loss, FACTS.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Final

from simulators.network.errors import BadRequest, InvalidStream, InvalidToxicType

#: Toxiproxy's attributes are Go int64.
INT64_MAX: Final = 2**63 - 1


class Stream(StrEnum):
    """Which way the data a toxic acts on flows."""

    UPSTREAM = "upstream"  # client → server
    DOWNSTREAM = "downstream"  # server → client


class ToxicType(StrEnum):
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLOW_CLOSE = "slow_close"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"
    CORRUPT = "corrupt"
    NOOP = "noop"


def _ms(doc: str) -> Any:
    return field(default=0, metadata={"unit": "milliseconds", "doc": doc})


@dataclass(frozen=True)
class Latency:
    """Each chunk is delivered ``latency`` ± ``jitter`` ms after it arrived."""

    latency: int = _ms("delay added to every chunk")
    jitter: int = _ms("random ± spread around the delay, drawn per chunk")


@dataclass(frozen=True)
class Bandwidth:
    """At most ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy); 0: no limit."""

    rate: int = field(default=0, metadata={"unit": "KB/s", "doc": "throughput limit"})


@dataclass(frozen=True)
class SlowClose:
    """The close (FIN) is passed on ``delay`` ms late."""

    delay: int = _ms("how late the close is passed on")


@dataclass(frozen=True)
class Timeout:
    """Data is dropped; after ``timeout`` ms the connection is closed (0: held open forever)."""

    timeout: int = _ms("when the connection is closed; 0 never")


@dataclass(frozen=True)
class ResetPeer:
    """On the first data, ``timeout`` ms later, the connection is reset (TCP RST)."""

    timeout: int = _ms("how long after the first data the reset comes")


@dataclass(frozen=True)
class Slicer:
    """Chunks are cut into pieces of ``average_size`` ± ``size_variation`` bytes, each piece
    ``delay`` µs after the one before."""

    average_size: int = field(default=0, metadata={"unit": "bytes", "doc": "mean piece size"})
    size_variation: int = field(default=0, metadata={"unit": "bytes", "doc": "± spread"})
    delay: int = field(default=0, metadata={"unit": "microseconds", "doc": "gap between pieces"})


@dataclass(frozen=True)
class LimitData:
    """The connection is closed once ``bytes`` bytes have passed in this stream."""

    bytes: int = field(default=0, metadata={"unit": "bytes", "doc": "bytes let through"})


@dataclass(frozen=True)
class Corrupt:
    """Each byte is corrupted (one random bit flipped) with ``probability``."""

    probability: float = field(
        default=0.0, metadata={"unit": "probability", "doc": "share of bytes corrupted"}
    )


@dataclass(frozen=True)
class Noop:
    """Lets everything through (Toxiproxy registers it too)."""


Attributes = (
    Latency | Bandwidth | SlowClose | Timeout | ResetPeer | Slicer | LimitData | Corrupt | Noop
)

ATTRIBUTES: Final[dict[ToxicType, type[Attributes]]] = {
    ToxicType.LATENCY: Latency,
    ToxicType.BANDWIDTH: Bandwidth,
    ToxicType.SLOW_CLOSE: SlowClose,
    ToxicType.TIMEOUT: Timeout,
    ToxicType.RESET_PEER: ResetPeer,
    ToxicType.SLICER: Slicer,
    ToxicType.LIMIT_DATA: LimitData,
    ToxicType.CORRUPT: Corrupt,
    ToxicType.NOOP: Noop,
}


@dataclass(frozen=True)
class Toxic:
    """One toxic of a proxy, validated."""

    name: str
    type: ToxicType
    stream: Stream
    toxicity: float
    attributes: Attributes

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON for this toxic."""
        return {
            "attributes": asdict(self.attributes),
            "name": self.name,
            "type": str(self.type),
            "stream": str(self.stream),
            "toxicity": self.toxicity,
        }


# ---- parsing --------------------------------------------------------------------------------


def parse_toxic(body: object) -> Toxic:
    """A new toxic from the JSON a Toxiproxy client posts (checks in Toxiproxy's order)."""
    if not isinstance(body, dict):
        raise BadRequest("", f"expected a JSON object describing a toxic, got {describe(body)}")
    stream = _stream(body.get("stream", Stream.DOWNSTREAM.value))
    kind = _type(body.get("type"))
    name = body.get("name")
    if name is None or name == "":
        name = f"{kind}_{stream}"
    name = check_name("name", name)
    toxicity = probability("toxicity", body.get("toxicity", 1.0))
    attributes = _attributes(kind, body.get("attributes"), None)
    return Toxic(name=name, type=kind, stream=stream, toxicity=toxicity, attributes=attributes)


def parse_toxic_update(current: Toxic, body: object) -> Toxic:
    """``current`` changed by the JSON of a toxic update: ``attributes`` given are replaced,
    the others kept; ``toxicity`` if given. Name, type and stream cannot change (Toxiproxy
    ignores them too)."""
    if not isinstance(body, dict):
        raise BadRequest("", f"expected a JSON object updating a toxic, got {describe(body)}")
    toxicity = current.toxicity
    if "toxicity" in body:
        toxicity = probability("toxicity", body["toxicity"])
    attributes = _attributes(current.type, body.get("attributes"), current.attributes)
    return Toxic(
        name=current.name,
        type=current.type,
        stream=current.stream,
        toxicity=toxicity,
        attributes=attributes,
    )


def make_toxic(
    type: ToxicType | str,
    *,
    name: str | None = None,
    stream: Stream | str = Stream.DOWNSTREAM,
    toxicity: float = 1.0,
    **attributes: float,
) -> Toxic:
    """A toxic from Python, checked exactly as one posted to the API:
    ``make_toxic("latency", stream="upstream", latency=200, jitter=20)``."""
    body: dict[str, object] = {
        "type": str(type),
        "stream": str(stream),
        "toxicity": toxicity,
        "attributes": attributes,
    }
    if name is not None:
        body["name"] = name
    return parse_toxic(body)


def _stream(value: object) -> Stream:
    if isinstance(value, str):
        for stream in Stream:
            if value.lower() == stream.value:
                return stream
    raise InvalidStream(value)


def _type(value: object) -> ToxicType:
    known = [t.value for t in ToxicType]
    if isinstance(value, str) and value in known:
        return ToxicType(value)
    raise InvalidToxicType(value, known)


def _attributes(kind: ToxicType, raw: object, base: Attributes | None) -> Attributes:
    cls = ATTRIBUTES[kind]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest("attributes", f"expected an object, got {describe(raw)}")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {} if base is None else asdict(base)
    for key, value in raw.items():
        where = f"attributes.{key}"
        spec = known.get(key)
        if spec is None:
            has = ", ".join(known) if known else "none"
            raise BadRequest(where, f"a {kind} toxic has no such attribute (its attributes: {has})")
        if isinstance(spec.default, float):
            values[key] = probability(where, value)
        else:
            values[key] = whole(where, value, spec.metadata["unit"])
    result = cls(**values)
    if isinstance(result, Slicer):
        _check_slicer(result)
    return result


def _check_slicer(slicer: Slicer) -> None:
    # Toxiproxy would split a chunk forever with average_size 0, and into empty pieces when
    # the variation reaches the average; refuse both rather than hang a connection.
    if slicer.average_size < 1:
        raise BadRequest("attributes.average_size", "must be at least 1 byte")
    if slicer.size_variation >= slicer.average_size:
        raise BadRequest(
            "attributes.size_variation",
            f"must be smaller than average_size ({slicer.average_size}), "
            f"got {slicer.size_variation}",
        )


# ---- values ---------------------------------------------------------------------------------


def check_name(where: str, value: object) -> str:
    """A proxy or toxic name: a non-empty string that can stand in a URL path."""
    if not isinstance(value, str):
        raise BadRequest(where, f"expected a string, got {describe(value)}")
    if not value:
        raise BadRequest(where, "must not be empty")
    if "/" in value:
        raise BadRequest(where, f"must not contain '/' (it is part of the API's URLs): {value!r}")
    if value in (".", ".."):  # a URL path makes these "here" and "up", not a name
        raise BadRequest(where, f"must not be {value!r} (a step in a URL path)")
    return value


def whole(where: str, value: object, unit: str) -> int:
    """A whole number of ``unit``, 0 … int64 max (integral floats such as 100.0 accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(where, f"expected a whole number of {unit}, got {describe(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise BadRequest(where, f"expected a whole number of {unit}, got {value!r}")
        value = int(value)
    if value < 0:
        raise BadRequest(where, f"must not be negative, got {value}")
    if value > INT64_MAX:
        raise BadRequest(where, f"must be at most {INT64_MAX}, got {value}")
    return value


def probability(where: str, value: object) -> float:
    """A number from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(where, f"expected a number from 0 to 1, got {describe(value)}")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise BadRequest(where, f"must be from 0 to 1, got {value!r}")
    return float(value)


def describe(value: object) -> str:
    """A JSON value as a person would name it in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

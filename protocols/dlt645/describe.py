"""A DL/T 645 frame as a JSON-able dict with every field named, for reports and evidence.

Broken frames (start, end, length, checksum, address BCD) raise :class:`DLT645Error`.
A well-formed frame whose *content* is wrong (a value with bad BCD or the wrong length, a
broadcast time in year-first order) is still described, with the problem under
``content_error``: that is a finding about the meter, not about the bytes' framing.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from protocols.dlt645.frame import (
    BROADCAST_TIME,
    READ_ADDRESS,
    DLT645Error,
    Frame,
    decode,
    encode,
    error_flags,
)
from protocols.dlt645.messages import parse_broadcast_time, parse_reply_address, read_values
from protocols.dlt645.registry import DEFAULT_REGISTRY, Registry, ValueType

__all__ = ["describe", "describe_frame", "value_text"]


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def value_text(value: ValueType) -> str:
    """Exact text of a decoded value: Decimals keep their digits (``"0.00"``), dates ISO."""
    if isinstance(value, bytes):
        return _hex(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    return str(value)


def describe(
    data: bytes, *, edition: str | None = None, registry: Registry = DEFAULT_REGISTRY
) -> dict[str, Any]:
    """Decode ``data`` (one frame) and describe it; see :func:`describe_frame`."""
    return describe_frame(decode(data, edition=edition), registry=registry, raw=bytes(data))


def describe_frame(
    frame: Frame, *, registry: Registry = DEFAULT_REGISTRY, raw: bytes | None = None
) -> dict[str, Any]:
    """Every field of ``frame``, named. ``raw`` defaults to the frame re-encoded."""
    wire = encode(frame) if raw is None else raw
    body_end = len(wire) - 2
    content_error: dict[str, str] | None = None
    values: list[dict[str, str]] = []
    reply_address: str | None = None
    when: str | None = None
    try:
        values = [
            {"name": v.name, "value": value_text(v.value), "unit": v.unit, "raw_hex": _hex(v.raw)}
            for v in read_values(frame, registry)
        ]
        if frame.function == BROADCAST_TIME and not frame.is_reply:
            when = parse_broadcast_time(frame).isoformat()
        if frame.control == 0x80 | READ_ADDRESS:
            reply_address = parse_reply_address(frame).digits
    except DLT645Error as exc:
        content_error = {"reason": exc.reason, "message": str(exc)}
    di = frame.di
    item = None if di is None else registry.get(di, frame.edition)
    code = frame.error_code
    return {
        "protocol": "dlt645",
        "edition": frame.edition,
        "edition_inferred": frame.edition_inferred,
        "preamble_len": frame.preamble,
        "address": frame.address.digits,
        "address_kind": frame.address.kind,
        "control": {
            "raw": f"0x{frame.control:02X}",
            "direction": "reply" if frame.is_reply else "request",
            "error": frame.is_error,
            "follows": frame.follows,
            "function": f"0x{frame.function:02X}",
            "function_name": frame.function_name,
        },
        "length": len(frame.data),
        "data_hex": _hex(frame.data),
        "di": frame.di_hex,
        "di_name": None if item is None else item.name,
        "values": values,
        "reply_address": reply_address,
        "time": when,
        "error_code": None if code is None else f"0x{code:02X}",
        "error_flags": [] if code is None else error_flags(code, frame.edition),
        "content_error": content_error,
        "checksum": {
            "found": f"0x{wire[body_end]:02X}",
            "computed": f"0x{sum(wire[frame.preamble : body_end]) & 0xFF:02X}",
        },
        "raw_hex": _hex(wire),
    }

"""A CJ/T 188 frame as a JSON-able dict with every field named, for reports and evidence.

Broken frames (start, end, length, checksum, address BCD) raise :class:`CJT188Error`. A
well-formed frame whose payload is wrong (bad BCD in a value, wrong length for its layout) is
still described, with the problem under ``content_error``. The options that change how bytes
are read (``unit_first``) and what the decoder observed (``di_order``) are always reported.
"""

from __future__ import annotations

from typing import Any

from protocols.cjt188.frame import DI_NAMES, CJT188Error, Frame, decode, encode
from protocols.cjt188.readings import HeatReading, Quantity, Reading, parse_reading

__all__ = ["describe", "describe_frame", "reading_dict"]


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def _quantity(q: Quantity) -> dict[str, str]:
    return {"value": str(q.value), "unit": q.unit_name, "unit_code": f"0x{q.unit:02X}"}


def reading_dict(reading: Reading) -> dict[str, Any]:
    """A reading's fields with exact values as strings."""
    common = {
        "time": None if reading.time is None else reading.time.isoformat(),
        "status": _hex(reading.status),
    }
    if isinstance(reading, HeatReading):
        return {
            "layout": "heat",
            "settlement_heat": _quantity(reading.settlement_heat),
            "current_heat": _quantity(reading.current_heat),
            "heat_power": _quantity(reading.heat_power),
            "flow": _quantity(reading.flow),
            "total_flow": _quantity(reading.total_flow),
            "supply_temp": {"value": str(reading.supply_temp), "unit": "°C"},
            "return_temp": {"value": str(reading.return_temp), "unit": "°C"},
            "working_hours": {"value": str(reading.working_hours), "unit": "h"},
            **common,
        }
    return {
        "layout": "water",
        "current_total": _quantity(reading.current_total),
        "settlement_total": _quantity(reading.settlement_total),
        **common,
    }


def describe(data: bytes, *, unit_first: bool = False) -> dict[str, Any]:
    """Decode ``data`` (one frame) and describe it; see :func:`describe_frame`."""
    return describe_frame(decode(data), unit_first=unit_first, raw=bytes(data))


def describe_frame(
    frame: Frame, *, unit_first: bool = False, raw: bytes | None = None
) -> dict[str, Any]:
    """Every field of ``frame``, named. ``raw`` defaults to the frame re-encoded."""
    wire = encode(frame) if raw is None else raw
    body_end = len(wire) - 2
    reading: dict[str, Any] | None = None
    content_error: dict[str, str] | None = None
    try:
        parsed = parse_reading(frame, unit_first=unit_first)
        reading = None if parsed is None else reading_dict(parsed)
    except CJT188Error as exc:
        content_error = {"reason": exc.reason, "message": str(exc)}
    di = frame.di
    status = frame.status
    return {
        "protocol": "cjt188",
        "preamble_len": frame.preamble,
        "meter_type": f"0x{frame.meter_type:02X}",
        "meter_type_name": frame.meter_type_name,
        "address": frame.address.digits,
        "address_kind": frame.address.kind,
        "control": {
            "raw": f"0x{frame.control:02X}",
            "direction": "reply" if frame.is_reply else "request",
            "error": frame.is_error,
            "function": f"0x{frame.function:02X}",
            "function_name": frame.function_name,
        },
        "length": len(frame.data),
        "data_hex": _hex(frame.data),
        "di": None if di is None else f"{di:04X}",
        "di_name": None if di is None else DI_NAMES.get(di),
        "di_order": frame.di_order,
        "di_wire": _hex(frame.data[:2]) if frame.has_di else None,
        "ser": frame.ser,
        "payload_hex": _hex(frame.payload),
        "unit_first": unit_first,
        "reading": reading,
        "error_status": None if status is None else _hex(status),
        "content_error": content_error,
        "checksum": {
            "found": f"0x{wire[body_end]:02X}",
            "computed": f"0x{sum(wire[frame.preamble : body_end]) & 0xFF:02X}",
        },
        "raw_hex": _hex(wire),
    }

"""``carbench decode``: a captured frame in, every field named as JSON out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocols import cjt188, dlt645, hj212
from protocols.errors import CodecError

PROTOCOLS = ("hj212", "dlt645", "cjt188")


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    hj212: hj212.DecodeOptions = hj212.STRICT
    dlt645_edition: str | None = None
    cjt188_unit_first: bool = False


class InputError(CodecError):
    """The text given is not a frame in the notation the command expects."""

    protocol = "input"
    reason = "input"


def frame_bytes(protocol: str, text: str) -> tuple[bytes, list[str]]:
    """The bytes a command-line frame stands for, and what the CLI did to get them.

    HJ 212 frames are text: a literal ``\\r\\n`` at the end is taken as CR LF, and a frame
    given without its trailer gets one (a shell argument cannot end in CR LF) — said in the
    output. Meter frames are hex, with or without spaces.
    """
    notes: list[str] = []
    if protocol == "hj212":
        body = text.strip()
        if body.endswith("\\r\\n"):
            body = body[:-4]
        else:
            notes.append("no <CR><LF> given: the CLI appended one")
        return body.encode("utf-8") + b"\r\n", notes
    digits = re.sub(r"[\s:-]", "", text)
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    if not digits or len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise InputError(f"{protocol} frames are given in hex (e.g. '68 AA … 16'); got {text!r}")
    return bytes.fromhex(digits), notes


def decode_one(protocol: str, text: str, settings: DecodeSettings) -> tuple[dict[str, Any], bool]:
    """(JSON object, ok) for one frame. ok is False for a broken frame or broken content."""
    try:
        raw, notes = frame_bytes(protocol, text)
        if protocol == "hj212":
            out = hj212.describe(raw, settings.hj212)
        elif protocol == "dlt645":
            out = dlt645.describe(raw, edition=settings.dlt645_edition)
        else:
            out = cjt188.describe(raw, unit_first=settings.cjt188_unit_first)
    except CodecError as exc:
        return {"ok": False, "input": text, "error": exc.as_dict()}, False
    ok = out.get("content_error") is None
    result = {"ok": ok, **out}
    if notes:
        result["cli_notes"] = notes
    return result, ok

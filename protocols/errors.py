"""The one base class every codec's errors derive from.

Callers that handle bytes from the outside world catch :class:`CodecError` and nothing else:
the fuzz tests hold every codec to raising only this family on garbage.
"""

from __future__ import annotations


class CodecError(ValueError):
    """Bytes that are not a valid frame of the protocol, or a value that cannot be encoded.

    ``reason`` is a short stable code (``"crc"``, ``"length"``, ``"bcd"`` …) for programs;
    the message is for people and says what was expected and what was found.
    """

    protocol: str = "?"
    reason: str = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"protocol": self.protocol, "reason": self.reason, "message": str(self)}

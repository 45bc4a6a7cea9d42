"""What DL/T 645 and CJ/T 188 frames share: ``68 … L DATA CS 16`` with CS the byte sum.

Both codecs check a frame's size, end byte and checksum the same way; this does it once,
raising the calling codec's own error class so the report names the protocol.
"""

from __future__ import annotations

from typing import Final

from protocols.errors import CodecError

START: Final = 0x68
END: Final = 0x16
#: The 0xFE wake-up bytes a stream decoder keeps before a 0x68 (senders use four; more is
#: noise, dropped as it comes, so an endless run costs linear time and bounded memory).
MAX_PREAMBLE: Final = 16


def checked_end(data: bytes, start: int, length: int, min_len: int, error: type[CodecError]) -> int:
    """Index just past the frame that starts at ``start`` and whose L byte says ``length``.

    Raises ``error`` when the bytes are fewer or more than L makes them, when the last is not
    0x16, or when CS is not the sum, modulo 256, of the bytes from the first 0x68 to the last
    data byte.
    """
    n = len(data)
    end = start + min_len + length
    if n < end:
        raise error(
            f"truncated: L=0x{length:02X} makes the frame {end} bytes, found {n}",
            reason="truncated",
        )
    if n > end:
        raise error(
            f"length: L=0x{length:02X} makes the frame {end} bytes, found {n} ({n - end} trailing)",
            reason="length",
        )
    if data[end - 1] != END:
        raise error(
            f"end: expected 0x16 at byte {end - 1}, found 0x{data[end - 1]:02X}", reason="end"
        )
    checksum = sum(data[start : end - 2]) & 0xFF
    if data[end - 2] != checksum:
        raise error(
            f"checksum: expected 0x{checksum:02X}, found 0x{data[end - 2]:02X}", reason="checksum"
        )
    return end

"""CJ/T 188 frames out of a byte stream that arrives in arbitrary pieces (an M-Bus/RS-485 line).

Sans-I/O, like :mod:`protocols.dlt645.stream`: :meth:`StreamDecoder.feed` returns the frames
(and damaged frames, as :class:`CJT188Error`) completed by the bytes given; output does not
depend on chunking. A CJ/T 188 header has no second 0x68 to check, so a candidate is judged when
complete: no 0x16 where L puts the end → noise, skipped silently (counted in ``discarded``);
0x16 there but a wrong checksum → reported, then the search resumes after its 0x68.
Noise with a large L can hold the search until its end arrives: call :meth:`idle` when the
line goes quiet to give up on it.
"""

from __future__ import annotations

from protocols.cjt188.frame import (
    HEADER_LEN,
    MIN_FRAME_LEN,
    PREAMBLE_BYTE,
    CJT188Error,
    Frame,
    decode,
)
from protocols.meterframe import END, MAX_PREAMBLE, START

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """Bytes in, frames out."""

    __slots__ = ("_buffer", "discarded")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0  # bytes dropped as noise (not counting reported bad frames)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | CJT188Error]:
        self._buffer += data
        return self._scan()

    def idle(self) -> list[Frame | CJT188Error]:
        """The line went quiet: drop the pending candidate, rescan the rest, empty the buffer."""
        out: list[Frame | CJT188Error] = []
        while self._buffer:
            out.extend(self._scan())
            start = self._buffer.find(START)
            if start < 0:
                self.discarded += len(self._buffer)
                self._buffer.clear()
                break
            self.discarded += start + 1
            del self._buffer[: start + 1]
        return out

    def _scan(self) -> list[Frame | CJT188Error]:
        out: list[Frame | CJT188Error] = []
        buf = self._buffer
        while True:
            start = buf.find(START)
            if start < 0:
                # Keep a trailing FE run, up to a preamble's length: the next frame's, maybe.
                keep = min(len(buf) - len(buf.rstrip(b"\xfe")), MAX_PREAMBLE)
                self.discarded += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            first = start
            while first and start - first < MAX_PREAMBLE and buf[first - 1] == PREAMBLE_BYTE:
                first -= 1
            if first:
                self.discarded += first
                del buf[:first]
                start -= first
            if len(buf) - start < HEADER_LEN:
                return out
            end = start + MIN_FRAME_LEN + buf[start + 10]
            if len(buf) < end:
                return out
            if buf[end - 1] != END:
                self.discarded += start + 1
                del buf[: start + 1]
                continue
            try:
                out.append(decode(bytes(buf[:end])))
            except CJT188Error as exc:  # checksum (or BCD) damage on a frame-shaped run
                out.append(exc)
                del buf[: start + 1]
                continue
            del buf[:end]

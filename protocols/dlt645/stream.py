"""DL/T 645 frames out of a byte stream that arrives in arbitrary pieces (a serial bus).

Sans-I/O: :meth:`StreamDecoder.feed` takes whatever bytes were read and returns the frames
(and damaged frames, as :class:`DLT645Error`) completed by them. Output does not depend on
how the bytes were chunked: a decision is only made once the bytes it needs are there.

Resynchronisation: a 0x68 not followed by a second 0x68 seven bytes later is noise and is
skipped silently (counted in :attr:`StreamDecoder.discarded`). A candidate with both 0x68, a
complete length and the 0x16 end byte but a wrong checksum is reported as an error, then the
search resumes one byte after its first 0x68, so a real frame hidden inside is still found.
"""

from __future__ import annotations

from protocols.dlt645.frame import (
    MIN_FRAME_LEN,
    PREAMBLE_BYTE,
    DLT645Error,
    Frame,
    decode,
)
from protocols.meterframe import END, MAX_PREAMBLE, START

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """Bytes in, frames out. ``edition`` as for :func:`~protocols.dlt645.frame.decode`."""

    __slots__ = ("_buffer", "discarded", "edition")

    def __init__(self, *, edition: str | None = None) -> None:
        self.edition = edition
        self._buffer = bytearray()
        self.discarded = 0  # bytes dropped as noise (not counting reported bad frames)

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | DLT645Error]:
        self._buffer += data
        return self._scan()

    def idle(self) -> list[Frame | DLT645Error]:
        """The line went quiet: whatever is pending will never complete.

        Drops the pending candidate (a truncated frame is reported when its header was
        plausible), rescans what followed it, and empties the buffer.
        """
        out: list[Frame | DLT645Error] = []
        while self._buffer:
            out.extend(self._scan())
            start = self._buffer.find(START)
            if start < 0:
                self.discarded += len(self._buffer)
                self._buffer.clear()
                break
            if len(self._buffer) - start >= 8 and self._buffer[start + 7] == START:
                out.append(
                    DLT645Error(
                        f"truncated: the line went idle {len(self._buffer) - start} bytes into a "
                        "frame",
                        reason="truncated",
                    )
                )
            self.discarded += start + 1
            del self._buffer[: start + 1]
        return out

    def _scan(self) -> list[Frame | DLT645Error]:
        out: list[Frame | DLT645Error] = []
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
            if len(buf) - start < 10:  # need the second 68 and L
                if len(buf) - start >= 8 and buf[start + 7] != START:
                    self._skip(start)
                    continue
                return out
            if buf[start + 7] != START:
                self._skip(start)
                continue
            end = start + MIN_FRAME_LEN + buf[start + 9]
            if len(buf) < end:
                return out
            if buf[end - 1] != END:
                self._skip(start)
                continue
            candidate = bytes(buf[:end])
            try:
                out.append(decode(candidate, edition=self.edition))
            except DLT645Error as exc:  # checksum (or BCD) damage on a frame-shaped run
                out.append(exc)
                del buf[: start + 1]  # reported, so not counted as discarded noise
                continue
            del buf[:end]

    def _skip(self, start: int) -> None:
        """Drop everything up to and including the 0x68 at ``start``."""
        self.discarded += start + 1
        del self._buffer[: start + 1]

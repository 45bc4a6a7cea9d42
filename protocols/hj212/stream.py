"""A stream decoder: TCP hands over byte chunks cut anywhere; frames and errors come out.

A frame runs from ``##`` to the first ``<CR><LF>`` (the data segment is text and cannot hold
one). Anything else is skipped and reported once as :class:`GarbageSkipped` when the decoder
resynchronises on the next ``##``. A frame cut short by a new ``##`` is reported as
:class:`TruncatedFrame`. Output depends only on the bytes, never on how they were chunked.
"""

from __future__ import annotations

from protocols.hj212.errors import FramingError, GarbageSkipped, HJ212Error, TruncatedFrame
from protocols.hj212.packet import STRICT, DecodeOptions, Packet, decode

#: ``##`` + 4 digits + at most 9999 data bytes + CRC + <CR><LF>: no frame is longer.
MAX_FRAME = 2 + 4 + 9999 + 4 + 2


class StreamDecoder:
    """Feed bytes with :meth:`feed`; get back packets and the errors found on the way."""

    def __init__(self, options: DecodeOptions = STRICT) -> None:
        self.options = options
        self._buffer = bytearray()
        self._garbage = 0
        self._garbage_sample = b""

    def feed(self, data: bytes) -> list[Packet | HJ212Error]:
        self._buffer += data
        out: list[Packet | HJ212Error] = []
        buf = self._buffer
        pos = 0  # consumed bytes are dropped once per feed: deleting per frame is quadratic
        size = len(buf)
        while pos < size:
            start = buf.find(b"##", pos)
            if start < 0:
                # Keep a trailing '#': it may be the first half of the next header.
                pos = self._skip(pos, size - (1 if buf.endswith(b"#") else 0))
                break
            pos = self._skip(pos, start)
            header = _header_at(buf, pos)
            if header is None:
                break  # too few bytes yet to tell
            if not header:
                pos = self._skip(pos, pos + 1)  # '##' that is not a header: move on by one
                continue
            self._flush_garbage(out)
            limit = min(size, pos + MAX_FRAME)
            end = buf.find(b"\r\n", pos + 6, limit)
            cut = _next_header(buf, pos + 2, end if end >= 0 else limit)
            if cut is None:
                break
            if cut >= 0:
                raw = bytes(buf[pos:cut])
                pos = cut
                out.append(TruncatedFrame(_truncated(raw)).with_raw(raw))
                continue
            if end < 0:
                if size - pos >= MAX_FRAME:
                    raw = bytes(buf[pos : pos + MAX_FRAME])
                    pos += MAX_FRAME
                    message = f"no <CR><LF> within {MAX_FRAME} bytes of '##': not a frame"
                    out.append(FramingError(message).with_raw(raw))
                    continue
                break
            raw = bytes(buf[pos : end + 2])
            pos = end + 2
            try:
                out.append(decode(raw, self.options))
            except HJ212Error as exc:
                out.append(exc)
        del buf[:pos]
        return out

    def close(self) -> list[HJ212Error]:
        """End of stream: whatever is buffered is reported, not silently dropped."""
        out: list[HJ212Error] = []
        buf = self._buffer
        if buf.startswith(b"##"):
            raw = bytes(buf)
            self._flush_garbage(out)
            out.append(TruncatedFrame(_truncated(raw)).with_raw(raw))
        else:
            self._skip(0, len(buf))
            self._flush_garbage(out)
        buf.clear()
        return out

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _skip(self, pos: int, upto: int) -> int:
        """Count ``buffer[pos:upto]`` as garbage; return the new position."""
        if upto <= pos:
            return pos
        if len(self._garbage_sample) < 16:
            take = min(upto - pos, 16 - len(self._garbage_sample))
            self._garbage_sample += bytes(self._buffer[pos : pos + take])
        self._garbage += upto - pos
        return upto

    def _flush_garbage(self, out: list[Packet | HJ212Error] | list[HJ212Error]) -> None:
        if self._garbage:
            error = GarbageSkipped(self._garbage, self._garbage_sample)
            out.append(error)
            self._garbage = 0
            self._garbage_sample = b""


def _header_at(buf: bytearray, i: int) -> bool | None:
    """Whether ``buf[i:]`` starts with ``##`` and four digits; None while too short to tell."""
    head = buf[i + 2 : i + 6]
    if len(head) == 4:
        return head.isdigit()
    return None if not head or head.isdigit() else False


def _next_header(buf: bytearray, start: int, stop: int) -> int | None:
    """First header in ``buf[start:stop]``: its index, -1 if none, None if undecidable yet."""
    i = buf.find(b"##", start, stop)
    while i >= 0:
        found = _header_at(buf, i)
        if found is None:
            return None
        if found:
            return i
        i = buf.find(b"##", i + 1, stop)
    return -1


def _truncated(raw: bytes) -> str:
    return (
        f"frame of {len(raw)} bytes ends without <CR><LF> before the next '##' "
        f"(starts {raw[:24]!r})"
    )

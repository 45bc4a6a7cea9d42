"""HJ 212 errors: each names the clause it enforces and shows what was expected and found."""

from __future__ import annotations

from protocols.errors import CodecError


class HJ212Error(CodecError):
    """Base of every HJ 212 codec error. ``raw`` is the offending bytes when known."""

    protocol = "hj212"
    raw: bytes = b""

    def with_raw(self, raw: bytes) -> HJ212Error:
        self.raw = raw
        return self


class FramingError(HJ212Error):
    """Missing ``##``, a length field that is not four digits, or no ``<CR><LF>`` trailer."""

    reason = "framing"


class TruncatedFrame(FramingError):
    """A frame that ends before its declared length and trailer (or a new ``##`` cut it off)."""

    reason = "truncated"


class GarbageSkipped(FramingError):
    """Bytes between frames that are not a frame; the stream decoder resynchronised on ``##``."""

    reason = "garbage"

    def __init__(self, count: int, sample: bytes) -> None:
        super().__init__(
            f"skipped {count} byte(s) that are not part of a frame before resynchronising on "
            f"'##' (first bytes: {sample[:16]!r})"
        )
        self.count = count


class LengthMismatch(HJ212Error):
    reason = "length"

    def __init__(self, declared: int, actual: int) -> None:
        super().__init__(
            f"length mismatch: the header declares a data segment of {declared} bytes, "
            f"the frame has {actual} (HJ 212-2017 §6.3.1 表 2: 数据段的 ASCII 字符数)"
        )
        self.declared = declared
        self.actual = actual


class DataTooLong(HJ212Error):
    reason = "too_long"

    def __init__(self, what: str, limit: int, actual: int) -> None:
        super().__init__(
            f"{what} is {actual} bytes, the limit is {limit} (HJ 212-2017 表 2/表 3: "
            f"数据段 0≤n≤1024, CP 0≤n≤950); split it into packets (PNUM/PNO)"
        )
        self.limit = limit
        self.actual = actual


class CrcMismatch(HJ212Error):
    reason = "crc"

    def __init__(self, expected: int, found: str, hint: str = "") -> None:
        super().__init__(
            f"CRC mismatch: computed {expected:04X} (HJ 212-2017 Appendix A over the data "
            f"segment), frame carries {found}" + (f"; {hint}" if hint else "")
        )
        self.expected = expected
        self.found = found


class HeaderError(HJ212Error):
    """A data-segment field before ``CP=`` that is missing, repeated or malformed."""

    reason = "header"


class UnknownCommand(HeaderError):
    reason = "unknown_cn"

    def __init__(self, cn: str) -> None:
        super().__init__(
            f"unknown CN {cn!r}: not a command code of HJ 212-2017 表 9 nor one registered "
            f"by the edition profile (decode with allow_unknown_cn to accept it)"
        )
        self.cn = cn


class CpError(HJ212Error):
    """The ``CP=&&…&&`` command-parameter area is malformed."""

    reason = "cp"


class EncodingError(HJ212Error):
    """Typed values that cannot be written as a valid packet."""

    reason = "encode"


class SessionError(HJ212Error):
    """A session method called in a state where the protocol does not allow it."""

    reason = "session"

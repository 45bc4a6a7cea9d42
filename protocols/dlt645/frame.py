"""DL/T 645 frames (2007 and 1997 editions): bytes ⇄ :class:`Frame`, nothing else.

Wire layout: ``FE×n 68 A0..A5 68 C L DATA CS 16``. The address is 6 BCD bytes, low byte
first; every DATA byte travels +0x33; CS is the sum of the bytes from the first 68 to the last
data byte, mod 256. The model keeps the preamble length so a decoded frame re-encodes byte for
byte, and holds DATA as plain bytes (0x33 already taken off).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from protocols import bcd
from protocols.errors import CodecError
from protocols.meterframe import END, START, checked_end

__all__ = [
    "BROADCAST",
    "BROADCAST_TIME",
    "ERROR_FLAGS_1997",
    "ERROR_FLAGS_2007",
    "FUNCTION_NAMES_1997",
    "FUNCTION_NAMES_2007",
    "READ",
    "READ_1997",
    "READ_ADDRESS",
    "READ_FOLLOW",
    "READ_FOLLOW_1997",
    "WILDCARD",
    "WRITE",
    "WRITE_1997",
    "Address",
    "DLT645Error",
    "Edition",
    "Frame",
    "decode",
    "encode",
    "error_flags",
    "infer_edition",
]

Edition = Literal["2007", "1997"]
EDITIONS: Final = ("2007", "1997")


class DLT645Error(CodecError):
    """Bytes that are not a DL/T 645 frame, or a value that cannot go into one.

    ``reason``: start, end, checksum, length, truncated, bcd, address, edition, value, range,
    time, format, unknown_di, function, registry.
    """

    protocol = "dlt645"


PREAMBLE_BYTE: Final = 0xFE
HEADER_LEN: Final = 10  # 68 A0..A5 68 C L
MIN_FRAME_LEN: Final = 12  # header + CS + 16

# One C-level pass per frame instead of a Python loop over the data bytes.
PLUS_33: Final = bytes((i + 0x33) & 0xFF for i in range(256))
MINUS_33: Final = bytes((i - 0x33) & 0xFF for i in range(256))

# Control code, function bits 4..0 ----------------------------------------------------------
BROADCAST_TIME: Final = 0x08  # both editions; address 99…99, no reply
READ: Final = 0x11
READ_FOLLOW: Final = 0x12
READ_ADDRESS: Final = 0x13
WRITE: Final = 0x14
READ_1997: Final = 0x01
READ_FOLLOW_1997: Final = 0x02
WRITE_1997: Final = 0x04

FUNCTION_NAMES_2007: Final[dict[int, str]] = {
    0x03: "security authentication",
    0x08: "broadcast time",
    0x11: "read",
    0x12: "read follow",
    0x13: "read address",
    0x14: "write",
    0x15: "write address",
    0x16: "freeze",
    0x17: "change baud rate",
    0x18: "change password",
    0x19: "clear max demand",
    0x1A: "clear meter",
    0x1B: "clear events",
    0x1C: "remote control",
}
FUNCTION_NAMES_1997: Final[dict[int, str]] = {
    0x01: "read",
    0x02: "read follow",
    0x03: "reread",
    0x04: "write",
    0x08: "broadcast time",
    0x0A: "write address",
    0x0C: "change baud rate",
    0x0F: "change password",
    0x10: "clear max demand",
}
_FUNCTION_NAMES: Final[dict[str, dict[int, str]]] = {
    "2007": FUNCTION_NAMES_2007,
    "1997": FUNCTION_NAMES_1997,
}
# Functions that exist only in 1997: their presence decides the edition in auto mode.
_ONLY_1997: Final = frozenset({0x01, 0x02, 0x04, 0x0A, 0x0C, 0x0F, 0x10})

# Error byte of an error reply (C bit 6 set), bit → meaning. 2007 per several independent
# implementations (go645-style constants, C# and Java meter readers); bit 7 reserved.
ERROR_FLAGS_2007: Final[dict[int, str]] = {
    0: "other error",
    1: "no data requested",
    2: "password error or unauthorized",
    3: "baud rate cannot be changed",
    4: "year time zones exceeded",
    5: "day periods exceeded",
    6: "tariffs exceeded",
}
# 1997 differs in bits 0-2 (and has no baud-rate bit) [R: two public 1997 implementations].
ERROR_FLAGS_1997: Final[dict[int, str]] = {
    0: "illegal data",
    1: "data identifier error",
    2: "password error",
    4: "year time zones exceeded",
    5: "day periods exceeded",
    6: "tariffs exceeded",
}


def error_flags(code: int, edition: Edition = "2007") -> list[str]:
    """Names of the bits set in an error reply's error byte (unknown bits as ``bit N``)."""
    table = ERROR_FLAGS_2007 if edition == "2007" else ERROR_FLAGS_1997
    return [table.get(bit, f"bit {bit}") for bit in range(8) if code >> bit & 1]


def infer_edition(control: int) -> Edition:
    """Edition implied by a control code: 1997-only functions (01 read, 04 write …) → 1997.

    Everything else → 2007, including 0x08 (broadcast time, same layout in both) and codes
    that mean different things in the two editions (0x03).
    """
    return "1997" if control & 0x1F in _ONLY_1997 else "2007"


def _check_edition(edition: str | None) -> Edition | None:
    if edition is None or edition == "auto":
        return None
    if edition == "2007":
        return "2007"
    if edition == "1997":
        return "1997"
    raise DLT645Error(
        f"edition: expected '2007', '1997' or None (infer), found {edition!r}", reason="edition"
    )


# Addresses -----------------------------------------------------------------------------------
_ADDRESS_CHARS: Final = frozenset("0123456789A")
_address_cache: dict[bytes, Address] = {}  # a bus has few meters: skip re-validating them
_ADDRESS_CACHE_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class Address:
    """A meter address, printed most significant digit first: ``"558890213594"``.

    On the wire it is 6 BCD bytes low byte first (``94 35 21 90 88 55``). ``A`` digits are
    wildcards: ``AAAAAAAAAAAA`` reaches any meter, and some meters accept partial wildcards
    such as ``AAAAAA123456``. ``999999999999`` is the broadcast address.
    """

    digits: str

    def __post_init__(self) -> None:
        d = self.digits
        if len(d) != 12 or not (d.isascii() and (d.isdigit() or _ADDRESS_CHARS.issuperset(d))):
            raise DLT645Error(
                f"address: expected 12 digits 0-9 or wildcard A, found {d!r}", reason="address"
            )

    @classmethod
    def parse(cls, text: str) -> Address:
        """From text, tolerating spaces and lowercase ``a``: ``"5588 9021 3594"``."""
        return cls(text.replace(" ", "").upper())

    @classmethod
    def from_wire(cls, wire: bytes) -> Address:
        """From the 6 wire bytes (low byte first); ``DLT645Error`` on a non-BCD nibble."""
        cached = _address_cache.get(wire)
        if cached is not None:
            return cached
        if len(wire) != 6:
            raise DLT645Error(f"address: expected 6 bytes, found {len(wire)}", reason="address")
        address = cls(bcd.check_digits(wire, "address", DLT645Error, wildcard=True))
        if len(_address_cache) >= _ADDRESS_CACHE_MAX:
            _address_cache.clear()
        _address_cache[bytes(wire)] = address
        return address

    @property
    def wire(self) -> bytes:
        return bcd.digits_to_wire(self.digits)

    @property
    def is_broadcast(self) -> bool:
        return self.digits == "999999999999"

    @property
    def is_wildcard(self) -> bool:
        """Any wildcard digit (full ``AA…AA`` or partial)."""
        return "A" in self.digits

    @property
    def kind(self) -> Literal["unicast", "wildcard", "broadcast"]:
        if self.is_broadcast:
            return "broadcast"
        return "wildcard" if self.is_wildcard else "unicast"

    def matches(self, meter: Address) -> bool:
        """Would a meter at ``meter`` accept a frame sent to this address?

        Broadcast reaches everyone; each wildcard digit matches any digit.
        """
        if self.is_broadcast:
            return True
        return all(a in ("A", b) for a, b in zip(self.digits, meter.digits, strict=True))

    def __str__(self) -> str:
        return self.digits


WILDCARD: Final = Address("AAAAAAAAAAAA")
BROADCAST: Final = Address("999999999999")


# Frames --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frame:
    """One DL/T 645 frame.

    ``data`` is the plain data field (the wire carries each byte + 0x33). ``preamble`` is the
    number of FE bytes before the first 68, kept so re-encoding is byte-exact.
    ``edition_inferred`` records that the decoder guessed the edition from the control code;
    it takes no part in equality.
    """

    address: Address
    control: int
    data: bytes = b""
    edition: Edition = "2007"
    preamble: int = 0
    edition_inferred: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.control <= 0xFF:
            raise DLT645Error(f"control: expected 0x00-0xFF, found {self.control}", reason="value")
        if len(self.data) > 0xFF:
            raise DLT645Error(
                f"length: data is limited to 255 bytes, found {len(self.data)}", reason="length"
            )
        if self.preamble < 0:
            raise DLT645Error(
                f"preamble: expected 0 or more FE bytes, found {self.preamble}", reason="value"
            )
        if self.edition not in EDITIONS:
            raise DLT645Error(
                f"edition: expected '2007' or '1997', found {self.edition!r}", reason="edition"
            )

    # Control code ------------------------------------------------------------------------
    @property
    def is_reply(self) -> bool:
        """Bit 7: sent by the meter (1) or by the master (0)."""
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        """Bit 6: the meter reports an error; DATA is the error byte."""
        return bool(self.control & 0x40)

    @property
    def follows(self) -> bool:
        """Bit 5: more data follows in another frame."""
        return bool(self.control & 0x20)

    @property
    def function(self) -> int:
        return self.control & 0x1F

    @property
    def function_name(self) -> str:
        return _FUNCTION_NAMES[self.edition].get(self.function, f"function 0x{self.function:02X}")

    # Data field ----------------------------------------------------------------------------
    @property
    def di_length(self) -> int:
        """Bytes of DI this frame's function puts first in DATA (0 when it carries none)."""
        if self.is_error:
            return 0
        function = self.function
        if self.edition == "2007":
            if function in (READ, READ_FOLLOW) or (function == WRITE and not self.is_reply):
                return 4
            return 0
        if function in (READ_1997, READ_FOLLOW_1997, 0x03) or (
            function == WRITE_1997 and not self.is_reply
        ):
            return 2
        return 0

    @property
    def di(self) -> int | None:
        """Data identifier (DI3..DI0 as one number, e.g. ``0x00010000``), sent DI0 first."""
        n = self.di_length
        if not n or len(self.data) < n:
            return None
        return int.from_bytes(self.data[:n], "little")

    @property
    def di_hex(self) -> str | None:
        di = self.di
        return None if di is None else f"{di:0{2 * self.di_length}X}"

    @property
    def payload(self) -> bytes:
        """DATA after the DI (all of DATA when the frame carries no DI)."""
        n = self.di_length
        return self.data[n:] if n and len(self.data) >= n else self.data

    @property
    def error_code(self) -> int | None:
        """The error byte of an error reply."""
        return self.data[0] if self.is_error and self.is_reply and self.data else None


def decode(data: bytes | bytearray | memoryview, *, edition: str | None = None) -> Frame:
    """One complete frame (optionally FE-prefixed) → :class:`Frame`.

    ``edition``: "2007", "1997", or None to infer it from the control code
    (see :func:`infer_edition`). Raises :class:`DLT645Error` on anything else, including
    trailing bytes (use :class:`~protocols.dlt645.stream.StreamDecoder` for a byte stream).
    """
    wanted = _check_edition(edition)
    if not isinstance(data, bytes):  # bytearray/memoryview: slices must be hashable bytes
        data = bytes(data)
    n = len(data)
    start = n - len(data.lstrip(b"\xfe")) if n and data[0] == PREAMBLE_BYTE else 0
    if n - start < MIN_FRAME_LEN:
        raise DLT645Error(
            f"truncated: a frame needs at least {MIN_FRAME_LEN} bytes after the "
            f"{start}-byte preamble, found {n - start}",
            reason="truncated",
        )
    if data[start] != START:
        raise DLT645Error(
            f"start: expected 0x68 at byte {start}, found 0x{data[start]:02X}", reason="start"
        )
    if data[start + 7] != START:
        raise DLT645Error(
            f"start: expected the second 0x68 at byte {start + 7}, found 0x{data[start + 7]:02X}",
            reason="start",
        )
    end = checked_end(data, start, data[start + 9], MIN_FRAME_LEN, DLT645Error)
    control = data[start + 8]
    inferred = wanted is None
    return Frame(
        Address.from_wire(data[start + 1 : start + 7]),
        control,
        data[start + HEADER_LEN : end - 2].translate(MINUS_33),
        infer_edition(control) if wanted is None else wanted,
        start,
        inferred,
    )


def encode(frame: Frame) -> bytes:
    """:class:`Frame` → wire bytes (preamble, +0x33 on DATA, checksum, end byte)."""
    body = (
        b"\x68"
        + frame.address.wire
        + bytes((START, frame.control, len(frame.data)))
        + frame.data.translate(PLUS_33)
    )
    return b"\xfe" * frame.preamble + body + bytes((sum(body) & 0xFF, END))

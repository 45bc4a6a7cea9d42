"""CJ/T 188-2004 frames (water, heat, gas meters): bytes ⇄ :class:`Frame`, nothing else.

Wire layout: ``FE×n 68 T A0..A6 C L DATA CS 16`` with DATA = ``DI(2) SER payload`` for data
exchanges. The address is 7 BCD bytes, low byte first; no +0x33 here; CS is the sum of the bytes
from 68 to the last data byte, mod 256. The model keeps DATA as sent, so a decoded frame
re-encodes byte for byte whatever order the meter used for the DI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocols import bcd
from protocols.errors import CodecError
from protocols.meterframe import END, START, checked_end

__all__ = [
    "DI_NAMES",
    "FUNCTION_NAMES",
    "METER_TYPES",
    "READ",
    "READ_ADDRESS",
    "READ_ADDRESS_DI",
    "READ_DATA_DI",
    "UNITS",
    "WILDCARD",
    "WILDCARD_TYPE",
    "WRITE",
    "Address",
    "CJT188Error",
    "DIOrder",
    "Frame",
    "decode",
    "di_wire",
    "encode",
    "meter_class",
    "unit_name",
]

DIOrder = Literal["standard", "swapped"]


class CJT188Error(CodecError):
    """Bytes that are not a CJ/T 188 frame, or a value that cannot go into one.

    ``reason``: start, end, checksum, length, truncated, bcd, address, value, range, time,
    function, layout.
    """

    protocol = "cjt188"


PREAMBLE_BYTE: Final = 0xFE
HEADER_LEN: Final = 11  # 68 T A0..A6 C L
MIN_FRAME_LEN: Final = 13  # header + CS + 16

# Control code: bit 7 direction, bit 6 communication error, bits 5..0 function.
READ: Final = 0x01
READ_ADDRESS: Final = 0x03
WRITE: Final = 0x04
FUNCTION_NAMES: Final[dict[int, str]] = {
    0x01: "read data",
    0x03: "read address",
    0x04: "write data",
    0x09: "read key version",
    0x15: "write address",
    0x16: "write meter sync data",
}

WILDCARD_TYPE: Final = 0xAA  # "any meter type", used with the wildcard address
METER_TYPES: Final[dict[int, str]] = {
    0x10: "cold water meter",
    0x11: "domestic hot water meter",
    0x12: "drinking water meter",
    0x13: "reclaimed water meter",
    0x20: "heat meter (heat)",
    0x21: "heat meter (cooling)",
    0x30: "gas meter",
    0x40: "electricity meter",
    0xAA: "any meter type (wildcard)",
}


def meter_class(meter_type: int) -> Literal["water", "heat", "gas", "electricity", "other"]:
    """The family a type byte belongs to (10-19 water, 20-29 heat, 30-39 gas, 40-49 power)."""
    family = meter_type >> 4
    if family == 1:
        return "water"
    if family == 2:
        return "heat"
    if family == 3:
        return "gas"
    if family == 4:
        return "electricity"
    return "other"


READ_DATA_DI: Final = 0x901F  # meter data (901F reply layouts in readings.py)
READ_ADDRESS_DI: Final = 0x810A
# Data identifiers by their standard wire order (first byte = high byte, "90 1F") [R].
# Known DIs let the decoder tell a vendor's swapped order ("1F 90") apart; add vendor DIs here.
DI_NAMES: Final[dict[int, str]] = {
    0x901F: "meter data",
    0x8102: "price table",
    0x8103: "settlement day",
    0x8104: "reading day",
    0x8105: "purchase amount",
    0x8106: "key version",
    0x810A: "meter address",
    0xA010: "write price table",
    0xA011: "write settlement day",
    0xA012: "write reading day",
    0xA013: "write purchase amount",
    0xA014: "write new key",
    0xA015: "write standard time",
    0xA016: "write meter sync data",
    0xA017: "valve control",
    0xA018: "write address",
    0xA019: "factory start",
}

UNITS: Final[dict[int, str]] = {
    0x02: "Wh",
    0x05: "kWh",
    0x08: "MWh",
    0x0A: "MWh×100",
    0x0B: "kJ",
    0x0E: "MJ",
    0x11: "GJ",
    0x13: "GJ×100",
    0x14: "W",
    0x17: "kW",
    0x1A: "MW",
    0x29: "L",
    0x2C: "m³",
    0x32: "L/h",
    0x35: "m³/h",
}


def unit_name(code: int) -> str:
    """Name of a unit byte; an unknown code is named, not refused (vendors add their own)."""
    return UNITS.get(code, f"unknown unit 0x{code:02X}")


def di_wire(di: int, order: DIOrder = "standard") -> bytes:
    """A DI's two wire bytes: standard ``90 1F`` or swapped ``1F 90``."""
    if not 0 <= di <= 0xFFFF:
        raise CJT188Error(f"DI: expected 0x0000-0xFFFF, found 0x{di:X}", reason="value")
    if order not in ("standard", "swapped"):
        raise CJT188Error(
            f"DI order: expected 'standard' or 'swapped', found {order!r}", reason="value"
        )
    return di.to_bytes(2, "big" if order == "standard" else "little")


# Addresses ------------------------------------------------------------------------------------
_ADDRESS_CHARS: Final = frozenset("0123456789A")


@dataclass(frozen=True, slots=True)
class Address:
    """A 14-digit meter address printed most significant digit first: ``"78330011223344"``.

    On the wire: 7 BCD bytes, low byte first. ``A`` digits are wildcards (``AA…AA`` = any).
    """

    digits: str

    def __post_init__(self) -> None:
        d = self.digits
        if len(d) != 14 or not (d.isascii() and (d.isdigit() or _ADDRESS_CHARS.issuperset(d))):
            raise CJT188Error(
                f"address: expected 14 digits 0-9 or wildcard A, found {d!r}", reason="address"
            )

    @classmethod
    def parse(cls, text: str) -> Address:
        return cls(text.replace(" ", "").upper())

    @classmethod
    def from_wire(cls, wire: bytes) -> Address:
        if len(wire) != 7:
            raise CJT188Error(f"address: expected 7 bytes, found {len(wire)}", reason="address")
        return cls(bcd.check_digits(wire, "address", CJT188Error, wildcard=True))

    @property
    def wire(self) -> bytes:
        return bcd.digits_to_wire(self.digits)

    @property
    def is_wildcard(self) -> bool:
        return "A" in self.digits

    @property
    def kind(self) -> Literal["unicast", "wildcard"]:
        return "wildcard" if self.is_wildcard else "unicast"

    def matches(self, meter: Address) -> bool:
        """Would a meter at ``meter`` accept a frame sent to this address?"""
        return all(a in ("A", b) for a, b in zip(self.digits, meter.digits, strict=True))

    def __str__(self) -> str:
        return self.digits


WILDCARD: Final = Address("AAAAAAAAAAAAAA")


# Frames --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frame:
    """One CJ/T 188 frame; ``data`` is the data field exactly as sent.

    The parts of ``data`` (DI, SER, payload, status) are properties, so re-encoding never
    depends on how they were interpreted.
    """

    meter_type: int
    address: Address
    control: int
    data: bytes = b""
    preamble: int = 0

    def __post_init__(self) -> None:
        for name, value in (("meter type", self.meter_type), ("control", self.control)):
            if not 0 <= value <= 0xFF:
                raise CJT188Error(f"{name}: expected 0x00-0xFF, found {value}", reason="value")
        if len(self.data) > 0xFF:
            raise CJT188Error(
                f"length: data is limited to 255 bytes, found {len(self.data)}", reason="length"
            )
        if self.preamble < 0:
            raise CJT188Error(
                f"preamble: expected 0 or more FE bytes, found {self.preamble}", reason="value"
            )

    @property
    def meter_type_name(self) -> str:
        return METER_TYPES.get(
            self.meter_type, f"{meter_class(self.meter_type)} meter type 0x{self.meter_type:02X}"
        )

    @property
    def is_reply(self) -> bool:
        """Bit 7: sent by the meter."""
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        """Bit 6: communication abnormal; the meter reports an error."""
        return bool(self.control & 0x40)

    @property
    def function(self) -> int:
        return self.control & 0x3F

    @property
    def function_name(self) -> str:
        return FUNCTION_NAMES.get(self.function, f"function 0x{self.function:02X}")

    # Data field ----------------------------------------------------------------------------
    @property
    def has_di(self) -> bool:
        """DATA starts with DI(2) SER. Error replies carry ``SER ST(2)`` instead (L=3) [R]."""
        return len(self.data) >= 3 and not (self.is_error and len(self.data) == 3)

    @property
    def di_order(self) -> DIOrder | None:
        """Which byte order the DI was sent in, judged against :data:`DI_NAMES`.

        A DI known in neither order is taken as standard.
        """
        if not self.has_di:
            return None
        hi, lo = self.data[0], self.data[1]
        if (hi << 8 | lo) not in DI_NAMES and (lo << 8 | hi) in DI_NAMES:
            return "swapped"
        return "standard"

    @property
    def di(self) -> int | None:
        """The DI as a number in standard order (``0x901F`` whichever way it was sent)."""
        order = self.di_order
        if order is None:
            return None
        return int.from_bytes(self.data[:2], "big" if order == "standard" else "little")

    @property
    def ser(self) -> int | None:
        """Sequence number the reply echoes."""
        if self.has_di:
            return self.data[2]
        if self.is_error and len(self.data) == 3:
            return self.data[0]
        return None

    @property
    def payload(self) -> bytes:
        """DATA after DI and SER (all of DATA for frames without them)."""
        if self.has_di:
            return self.data[3:]
        if self.is_error and len(self.data) == 3:
            return b""
        return self.data

    @property
    def status(self) -> bytes | None:
        """ST of an error reply (2 bytes)."""
        if self.is_error and len(self.data) == 3:
            return self.data[1:]
        return None


def decode(data: bytes | bytearray | memoryview) -> Frame:
    """One complete frame (optionally FE-prefixed) → :class:`Frame`; :class:`CJT188Error`
    on anything else, including trailing bytes."""
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    start = n - len(data.lstrip(b"\xfe")) if n and data[0] == PREAMBLE_BYTE else 0
    if n - start < MIN_FRAME_LEN:
        raise CJT188Error(
            f"truncated: a frame needs at least {MIN_FRAME_LEN} bytes after the "
            f"{start}-byte preamble, found {n - start}",
            reason="truncated",
        )
    if data[start] != START:
        raise CJT188Error(
            f"start: expected 0x68 at byte {start}, found 0x{data[start]:02X}", reason="start"
        )
    end = checked_end(data, start, data[start + 10], MIN_FRAME_LEN, CJT188Error)
    return Frame(
        data[start + 1],
        Address.from_wire(data[start + 2 : start + 9]),
        data[start + 9],
        data[start + HEADER_LEN : end - 2],
        start,
    )


def encode(frame: Frame) -> bytes:
    """:class:`Frame` → wire bytes (preamble, checksum, end byte)."""
    body = (
        bytes((START, frame.meter_type))
        + frame.address.wire
        + bytes((frame.control, len(frame.data)))
        + frame.data
    )
    return b"\xfe" * frame.preamble + body + bytes((sum(body) & 0xFF, END))

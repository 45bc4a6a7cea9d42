"""Builders for the CJ/T 188 exchanges, from typed values to :class:`Frame`.

Builders default to a 4-byte FE preamble (field practice); pass ``preamble=0`` for none.
``di_order`` chooses the DI byte order: ``"standard"`` (``90 1F``) or ``"swapped"``
(``1F 90``, seen on some meters); ``unit_first`` the JY vendor layout of 901F replies.
"""

from __future__ import annotations

from typing import Final

from protocols.cjt188.frame import (
    READ,
    READ_ADDRESS,
    READ_ADDRESS_DI,
    READ_DATA_DI,
    WILDCARD,
    WILDCARD_TYPE,
    WRITE,
    Address,
    CJT188Error,
    DIOrder,
    Frame,
    di_wire,
)
from protocols.cjt188.readings import Reading, encode_reading

__all__ = [
    "error_reply",
    "read_address_reply",
    "read_address_request",
    "read_reply",
    "read_request",
    "write_reply",
    "write_request",
]

DEFAULT_PREAMBLE: Final = 4


def _ser(ser: int) -> bytes:
    if not 0 <= ser <= 0xFF:
        raise CJT188Error(f"SER: expected 0x00-0xFF, found {ser}", reason="value")
    return bytes((ser,))


def read_request(
    meter_type: int,
    address: Address,
    *,
    di: int = READ_DATA_DI,
    ser: int = 0,
    di_order: DIOrder = "standard",
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Master → meter: read a DI (C=0x01), 901F by default."""
    return Frame(meter_type, address, READ, di_wire(di, di_order) + _ser(ser), preamble)


def read_reply(
    meter_type: int,
    address: Address,
    reading: Reading | bytes,
    *,
    di: int = READ_DATA_DI,
    ser: int = 0,
    di_order: DIOrder = "standard",
    unit_first: bool = False,
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Meter → master (C=0x81): a :class:`WaterReading`/:class:`HeatReading`, or raw payload
    bytes for any other DI."""
    payload = (
        reading if isinstance(reading, bytes) else encode_reading(reading, unit_first=unit_first)
    )
    data = di_wire(di, di_order) + _ser(ser) + payload
    return Frame(meter_type, address, 0x80 | READ, data, preamble)


def read_address_request(
    *,
    meter_type: int = WILDCARD_TYPE,
    address: Address = WILDCARD,
    ser: int = 0,
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Master → the one meter on the line: C=0x03, DI 810A, to type AA and address AA…AA."""
    return Frame(meter_type, address, READ_ADDRESS, di_wire(READ_ADDRESS_DI) + _ser(ser), preamble)


def read_address_reply(
    meter_type: int, address: Address, *, ser: int = 0, preamble: int = DEFAULT_PREAMBLE
) -> Frame:
    """Meter → master: C=0x83, DI 810A; the address is the frame's own address field."""
    if address.is_wildcard:
        raise CJT188Error(
            f"address: a meter answers with its own address, not {address}", reason="address"
        )
    return Frame(
        meter_type, address, 0x80 | READ_ADDRESS, di_wire(READ_ADDRESS_DI) + _ser(ser), preamble
    )


def error_reply(
    meter_type: int,
    address: Address,
    status: bytes,
    *,
    function: int = READ,
    ser: int = 0,
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Meter → master: request failed (C=0xC1 for a read); data ``SER ST(2)`` [R]."""
    if not 0 <= function <= 0x3F:
        raise CJT188Error(f"function: expected 0x00-0x3F, found 0x{function:X}", reason="function")
    if len(status) != 2:
        raise CJT188Error(f"status: ST is 2 bytes, found {len(status)}", reason="value")
    return Frame(meter_type, address, 0xC0 | function, _ser(ser) + status, preamble)


def write_request(
    meter_type: int,
    address: Address,
    di: int,
    payload: bytes,
    *,
    ser: int = 0,
    di_order: DIOrder = "standard",
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Master → meter: write a DI (C=0x04), e.g. A017 valve control."""
    return Frame(meter_type, address, WRITE, di_wire(di, di_order) + _ser(ser) + payload, preamble)


def write_reply(
    meter_type: int,
    address: Address,
    di: int,
    payload: bytes = b"",
    *,
    ser: int = 0,
    di_order: DIOrder = "standard",
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Meter → master: write done (C=0x84), echoing DI and SER (vendors append ST)."""
    return Frame(
        meter_type, address, 0x80 | WRITE, di_wire(di, di_order) + _ser(ser) + payload, preamble
    )

"""The standard DL/T 645 exchanges: builders that make :class:`Frame` s from typed values,
and readers that take typed values back out of a decoded frame.

Builders default to a 4-byte FE preamble, what masters and meters send in the field (and what
the bus-time figures in FACTS.md assume); pass ``preamble=0`` for none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from protocols import bcd
from protocols.dlt645.frame import (
    BROADCAST,
    BROADCAST_TIME,
    READ,
    READ_1997,
    READ_ADDRESS,
    WILDCARD,
    WRITE,
    Address,
    DLT645Error,
    Edition,
    Frame,
)
from protocols.dlt645.registry import (
    DEFAULT_REGISTRY,
    Registry,
    Value,
    ValueType,
    decode_values,
    encode_values,
)

__all__ = [
    "broadcast_time_request",
    "error_reply",
    "parse_broadcast_time",
    "parse_reply_address",
    "parse_write_request",
    "read_address_reply",
    "read_address_request",
    "read_reply",
    "read_request",
    "read_values",
    "write_reply",
    "write_request",
]

DEFAULT_PREAMBLE: Final = 4


def _di_bytes(di: int, edition: Edition) -> bytes:
    size = 4 if edition == "2007" else 2
    if not 0 <= di < 1 << (8 * size):
        raise DLT645Error(
            f"DI 0x{di:X} does not fit the {size}-byte DI of edition {edition}", reason="value"
        )
    return di.to_bytes(size, "little")  # DI0 first on the wire


def _read_function(edition: Edition) -> int:
    return READ if edition == "2007" else READ_1997


def _payload(
    di: int, values: ValueType | Sequence[ValueType], edition: Edition, registry: Registry
) -> bytes:
    if isinstance(values, bytes):  # raw data, any DI
        return values
    item = registry.get(di, edition)
    if item is None:
        width = 8 if edition == "2007" else 4
        raise DLT645Error(
            f"DI {di:0{width}X} ({edition}) is not in the registry: register it or pass the "
            "data as bytes",
            reason="unknown_di",
        )
    return encode_values(item, values)


# Builders ----------------------------------------------------------------------------------
def read_request(
    address: Address, di: int, *, edition: Edition = "2007", preamble: int = DEFAULT_PREAMBLE
) -> Frame:
    """Master → meter: read one DI (C=0x11, 1997 C=0x01)."""
    return Frame(address, _read_function(edition), _di_bytes(di, edition), edition, preamble)


def read_reply(
    address: Address,
    di: int,
    values: ValueType | Sequence[ValueType],
    *,
    edition: Edition = "2007",
    follows: bool = False,
    registry: Registry = DEFAULT_REGISTRY,
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Meter → master: a DI's value(s) (C=0x91, 0xB1 with ``follows``; 1997 C=0x81).

    ``values``: typed value(s) encoded by the DI's registry entry (a sequence for block DIs),
    or ``bytes`` taken as the plain data after the DI.
    """
    control = 0x80 | _read_function(edition) | (0x20 if follows else 0)
    data = _di_bytes(di, edition) + _payload(di, values, edition, registry)
    return Frame(address, control, data, edition, preamble)


def read_address_request(*, preamble: int = DEFAULT_PREAMBLE) -> Frame:
    """Master → the one meter on the line: tell me your address (C=0x13 to AA…AA)."""
    return Frame(WILDCARD, READ_ADDRESS, b"", "2007", preamble)


def read_address_reply(address: Address, *, preamble: int = DEFAULT_PREAMBLE) -> Frame:
    """Meter → master: C=0x93, the data is the address again."""
    if address.is_wildcard or address.is_broadcast:
        raise DLT645Error(
            f"address: a meter answers with its own address, not {address}", reason="address"
        )
    return Frame(address, 0x80 | READ_ADDRESS, address.wire, "2007", preamble)


def broadcast_time_request(
    when: datetime,
    *,
    address: Address = BROADCAST,
    edition: Edition = "2007",
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Master → all meters: set your clock (C=0x08, no reply).

    Data ``ss mm hh DD MM YY``, seconds first: the field practice (the PyPI ``dlt645`` 3.2.0
    library sends the year first, which meters read as a wrong time).
    """
    if not 2000 <= when.year <= 2099:
        raise DLT645Error(
            f"broadcast time: two-digit years cover 2000-2099, found {when.year}", reason="range"
        )
    return Frame(
        address,
        BROADCAST_TIME,
        bcd.digits_to_wire(when.strftime("%y%m%d%H%M%S")),
        edition,
        preamble,
    )


def error_reply(
    address: Address,
    code: int,
    *,
    function: int | None = None,
    edition: Edition = "2007",
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Meter → master: the request failed (C=0xD1 for a read, 1997 0xC1); ``code`` is the
    error byte (2007 bit 1 = no data requested, see ``ERROR_FLAGS_2007``)."""
    if not 0 <= code <= 0xFF:
        raise DLT645Error(f"error code: expected 0x00-0xFF, found {code}", reason="value")
    function = _read_function(edition) if function is None else function
    if not 0 <= function <= 0x1F:
        raise DLT645Error(f"function: expected 0x00-0x1F, found 0x{function:X}", reason="function")
    return Frame(address, 0xC0 | function, bytes((code,)), edition, preamble)


def write_request(
    address: Address,
    di: int,
    values: ValueType | Sequence[ValueType],
    *,
    password: bytes,
    operator: bytes = bytes(4),
    registry: Registry = DEFAULT_REGISTRY,
    preamble: int = DEFAULT_PREAMBLE,
) -> Frame:
    """Master → meter (2007, C=0x14): DI, password (PA P0 P1 P2), operator code (C0..C3),
    then the data."""
    if len(password) != 4 or len(operator) != 4:
        raise DLT645Error(
            f"write: password and operator code are 4 bytes each, found {len(password)} and "
            f"{len(operator)}",
            reason="value",
        )
    data = _di_bytes(di, "2007") + password + operator + _payload(di, values, "2007", registry)
    return Frame(address, WRITE, data, "2007", preamble)


def write_reply(address: Address, *, preamble: int = DEFAULT_PREAMBLE) -> Frame:
    """Meter → master: write accepted (C=0x94, no data)."""
    return Frame(address, 0x80 | WRITE, b"", "2007", preamble)


# Readers -----------------------------------------------------------------------------------
def read_values(frame: Frame, registry: Registry = DEFAULT_REGISTRY) -> list[Value]:
    """The typed values of a read reply (empty for frames that carry none).

    A DI the registry does not know yields one ``Value("unknown DI …", raw bytes)``: not an
    error, the bench records what it cannot interpret. Raises :class:`DLT645Error` when a
    known DI's data has the wrong length or bad BCD.
    """
    if not frame.is_reply or frame.is_error or frame.function != _read_function(frame.edition):
        return []
    data = frame.data
    size = 4 if frame.edition == "2007" else 2
    if len(data) < size:
        raise DLT645Error(
            f"length: a read reply starts with a {size}-byte DI, found {len(data)} data bytes",
            reason="length",
        )
    item = registry.get(int.from_bytes(data[:size], "little"), frame.edition)
    payload = data[size:]
    if item is None:
        return [Value(f"unknown DI {frame.di_hex}", payload, "", payload)] if payload else []
    return decode_values(item, payload)


def parse_broadcast_time(frame: Frame) -> datetime:
    """The time in a broadcast-time frame; accepts only the seconds-first order."""
    if frame.function != BROADCAST_TIME or frame.is_reply:
        raise DLT645Error(
            f"function: expected broadcast time (C=0x08), found C=0x{frame.control:02X}",
            reason="function",
        )
    if len(frame.data) != 6:
        raise DLT645Error(
            f"length: broadcast time carries 6 data bytes, found {len(frame.data)}", reason="length"
        )
    digits = bcd.check_digits(frame.data, "broadcast time", DLT645Error)
    try:
        return bcd.datetime_from_digits(digits, "broadcast time", DLT645Error)
    except DLT645Error as exc:
        raise DLT645Error(
            f"{exc} — data must be ss mm hh DD MM YY, seconds first (year-first senders such "
            "as PyPI dlt645 3.2.0 produce this)",
            reason="time",
        ) from exc


def parse_reply_address(frame: Frame) -> Address:
    """The address carried in the data of a read-address reply (C=0x93)."""
    if frame.control != 0x80 | READ_ADDRESS:
        raise DLT645Error(
            f"function: expected a read-address reply (C=0x93), found C=0x{frame.control:02X}",
            reason="function",
        )
    if len(frame.data) != 6:
        raise DLT645Error(
            f"length: a read-address reply carries 6 data bytes, found {len(frame.data)}",
            reason="length",
        )
    return Address.from_wire(frame.data)


def parse_write_request(frame: Frame) -> tuple[int, bytes, bytes, bytes]:
    """(DI, password, operator code, data) of a 2007 write request (C=0x14)."""
    if frame.edition != "2007" or frame.control != WRITE:
        raise DLT645Error(
            f"function: expected a 2007 write request (C=0x14), found C=0x{frame.control:02X}",
            reason="function",
        )
    if len(frame.data) < 12:
        raise DLT645Error(
            f"length: a write request needs DI + password + operator code "
            f"(12 bytes), found {len(frame.data)}",
            reason="length",
        )
    data = frame.data
    return int.from_bytes(data[:4], "little"), data[4:8], data[8:12], data[12:]

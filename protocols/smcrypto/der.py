"""The small, strict subset of ASN.1 DER and PEM that SM2 keys, signatures and ciphertexts need.

Only single-octet tags and definite, minimally encoded lengths are accepted; INTEGERs must be
minimally encoded; nothing may trail a structure. Every failure raises :class:`SmCryptoError`
(``reason="der"`` or ``"pem"``), never anything else.
"""

from __future__ import annotations

import binascii
import re
import textwrap

from protocols.smcrypto.errors import SmCryptoError

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
CONTEXT_0 = 0xA0  # [0] constructed (EXPLICIT)
CONTEXT_1 = 0xA1  # [1] constructed (EXPLICIT)

_TAG_NAMES = {
    INTEGER: "INTEGER",
    BIT_STRING: "BIT STRING",
    OCTET_STRING: "OCTET STRING",
    NULL: "NULL",
    OID: "OBJECT IDENTIFIER",
    SEQUENCE: "SEQUENCE",
    CONTEXT_0: "[0]",
    CONTEXT_1: "[1]",
}

Element = tuple[int, bytes]  # (tag octet, contents)


def _tag_name(tag: int) -> str:
    return _TAG_NAMES.get(tag, f"tag 0x{tag:02x}")


def _fail(message: str) -> SmCryptoError:
    return SmCryptoError(message, reason="der")


# --- encoding ---------------------------------------------------------------------------------


def encode(tag: int, contents: bytes) -> bytes:
    n = len(contents)
    if n < 0x80:
        header = bytes([tag, n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(size)]) + size
    return header + contents


def encode_integer(value: int) -> bytes:
    """A DER INTEGER (two's complement, minimal)."""
    length = (value if value >= 0 else ~value).bit_length() // 8 + 1  # room for the sign bit
    return encode(INTEGER, value.to_bytes(length, "big", signed=True))


def encode_sequence(*elements: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(elements))


def encode_octet_string(data: bytes) -> bytes:
    return encode(OCTET_STRING, data)


def encode_bit_string(data: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits)."""
    return encode(BIT_STRING, b"\x00" + data)


def encode_oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


# --- decoding ---------------------------------------------------------------------------------


def read(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """The element at ``offset``: ``(tag, contents, offset just past it)``."""
    end = len(data)
    if offset + 2 > end:
        raise _fail(f"DER truncated: need a tag and a length at offset {offset}")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise _fail(f"DER multi-octet tag at offset {offset} is not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _fail(f"DER forbids the indefinite length (BER) at offset {offset + 1}")
    else:
        count = first & 0x7F
        if count > 4:
            raise _fail(f"DER length of {count} octets at offset {offset + 1} is too long")
        if pos + count > end:
            raise _fail(f"DER truncated inside the length at offset {offset + 1}")
        size = data[pos : pos + count]
        if size[0] == 0:
            raise _fail(f"DER length at offset {offset + 1} has a leading zero octet")
        length = int.from_bytes(size, "big")
        if length < 0x80:
            raise _fail(f"DER length {length} at offset {offset + 1} should use the short form")
        pos += count
    if pos + length > end:
        raise _fail(
            f"DER {_tag_name(tag)} at offset {offset} claims {length} bytes, "
            f"only {end - pos} remain"
        )
    return tag, bytes(data[pos : pos + length]), pos + length


def read_all(data: bytes) -> list[Element]:
    """Every element in ``data``, which must hold whole elements and nothing else."""
    elements: list[Element] = []
    offset = 0
    while offset < len(data):
        tag, contents, offset = read(data, offset)
        elements.append((tag, contents))
    return elements


def expect(element: Element, tag: int, what: str) -> bytes:
    if element[0] != tag:
        raise _fail(f"{what}: expected {_tag_name(tag)}, found {_tag_name(element[0])}")
    return element[1]


def decode_single(data: bytes, tag: int, what: str) -> bytes:
    """The contents of the one element that ``data`` must consist of."""
    found, contents, end = read(data, 0)
    if end != len(data):
        raise _fail(f"{what}: {len(data) - end} bytes trail the DER structure")
    return expect((found, contents), tag, what)


def decode_sequence(data: bytes, what: str) -> list[Element]:
    return read_all(decode_single(data, SEQUENCE, what))


def decode_integer(contents: bytes, what: str) -> int:
    if not contents:
        raise _fail(f"{what}: empty INTEGER")
    if len(contents) > 1 and (
        (contents[0] == 0x00 and contents[1] < 0x80)
        or (contents[0] == 0xFF and contents[1] >= 0x80)
    ):
        raise _fail(f"{what}: INTEGER is not minimally encoded")
    return int.from_bytes(contents, "big", signed=True)


def decode_unsigned(element: Element, what: str, *, max_bytes: int) -> int:
    """A non-negative INTEGER below ``2**(8*max_bytes)``."""
    value = decode_integer(expect(element, INTEGER, what), what)
    if value < 0:
        raise _fail(f"{what}: INTEGER is negative")
    if value.bit_length() > 8 * max_bytes:
        raise _fail(f"{what}: INTEGER is longer than {max_bytes} bytes")
    return value


def decode_bit_string(element: Element, what: str) -> bytes:
    contents = expect(element, BIT_STRING, what)
    if not contents or contents[0] != 0:
        raise _fail(f"{what}: BIT STRING must have whole octets (0 unused bits)")
    return contents[1:]


def decode_oid(contents: bytes) -> str:
    """Dotted form of OID contents, for error messages."""
    if not contents or contents[-1] & 0x80:
        return "(malformed OID)"
    arcs: list[int] = []
    value = 0
    for octet in contents:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


# --- PEM --------------------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")


def pem_encode(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(binascii.b2a_base64(der, newline=False).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def pem_decode(text: str | bytes, labels: tuple[str, ...]) -> tuple[str, bytes]:
    """``(label, DER bytes)`` of the first PEM block in ``text`` whose label is in ``labels``.

    Text around and other blocks before it are skipped (``openssl ecparam -genkey`` writes an
    ``SM2 PARAMETERS`` block before the key).
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise SmCryptoError("PEM must be ASCII text", reason="pem") from None
    found: list[str] = []
    for begin in _PEM_BEGIN.finditer(text):
        label = begin.group(1)
        if label in labels:
            return label, _pem_body(text, label, begin.end())
        found.append(label)
    if not found:
        raise SmCryptoError("no '-----BEGIN ...-----' line: not PEM", reason="pem")
    raise SmCryptoError(
        f"PEM has {', '.join(map(repr, found))} but no {' or '.join(map(repr, labels))} block",
        reason="pem",
    )


def _pem_body(text: str, label: str, start: int) -> bytes:
    end_line = f"-----END {label}-----"
    stop = text.find(end_line, start)
    if stop < 0:
        raise SmCryptoError(f"PEM block {label!r} has no '{end_line}' line", reason="pem")
    body = text[start:stop]
    if ":" in body:
        raise SmCryptoError(
            f"PEM block {label!r} has RFC 1421 headers (a legacy encrypted key?): not supported",
            reason="pem",
        )
    compact = "".join(body.split())
    try:
        der = binascii.a2b_base64(compact, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII characters in a str
        raise SmCryptoError(
            f"PEM block {label!r} is not valid base64: {exc}", reason="pem"
        ) from None
    if not der:
        raise SmCryptoError(f"PEM block {label!r} is empty", reason="pem")
    return der

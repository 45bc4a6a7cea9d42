"""HJ 212 packets: ``##`` + length + data segment + CRC + ``<CR><LF>`` (HJ 212-2017 §6.3).

``decode`` turns one frame's bytes into a :class:`Packet`; ``encode`` does the reverse. A decoded
packet remembers what it needs to re-encode byte for byte (header field order, CP groups); a built
one uses its edition's canonical layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from protocols.hj212.cipher import CpCipher
from protocols.hj212.codes import Command, command_name
from protocols.hj212.cp import Cp, is_time
from protocols.hj212.crc import crc16, crc16_modbus_wire_order
from protocols.hj212.editions import HJ212_2005, HJ212_2017, Edition, edition_for_version
from protocols.hj212.errors import (
    CpError,
    CrcMismatch,
    DataTooLong,
    EncodingError,
    FramingError,
    HeaderError,
    HJ212Error,
    LengthMismatch,
    UnknownCommand,
)

HEADER = b"##"
TRAILER = b"\r\n"
CORE_FIELDS = frozenset({"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"})
REQUIRED_FIELDS = ("ST", "CN", "PW", "MN")

_QN = re.compile(r"[0-9]{17}")
_SEPARATOR = re.compile(r"[;=&\r\n]")
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")


class Lenience(StrEnum):
    """Departures from the standard that decoding tolerated; reported, never silent."""

    CRC_LOWERCASE = "crc_lowercase"
    CRC_MODBUS = "crc_modbus"
    LENGTH_COUNTS_CHARACTERS = "length_counts_characters"
    DATA_TOO_LONG = "data_too_long"
    HEADER_ORDER = "header_order"
    UNKNOWN_HEADER_FIELD = "unknown_header_field"
    PACKET_NUMBERS_WITHOUT_D = "packet_numbers_without_d"
    D_WITHOUT_PACKET_NUMBERS = "d_without_packet_numbers"
    CP_DEPARTURES = "cp_departures"
    UNKNOWN_CN = "unknown_cn"

    @property
    def description(self) -> str:
        return _LENIENCE_TEXT[self]


_LENIENCE_TEXT = {
    Lenience.CRC_LOWERCASE: "CRC written in lowercase hex (accepted always)",
    Lenience.CRC_MODBUS: "CRC is CRC-16/MODBUS in wire order, not Appendix A (lenient_modbus_crc)",
    Lenience.LENGTH_COUNTS_CHARACTERS: "declared length counts characters, not UTF-8 bytes",
    Lenience.DATA_TOO_LONG: "data segment or CP longer than the standard allows (allow_oversize)",
    Lenience.HEADER_ORDER: "header fields not in the edition's order",
    Lenience.UNKNOWN_HEADER_FIELD: "header field the edition does not define",
    Lenience.PACKET_NUMBERS_WITHOUT_D: "PNUM/PNO present although Flag's D bit is 0",
    Lenience.D_WITHOUT_PACKET_NUMBERS: "Flag's D bit is 1 but PNUM/PNO are absent",
    Lenience.CP_DEPARTURES: "CP departures tolerated (listed in Packet.cp.notes)",
    Lenience.UNKNOWN_CN: "CN not in the edition's command table (allow_unknown_cn)",
}


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How forgiving decoding is. Every forgiven departure is listed in ``Packet.lenience``."""

    #: Accept a CRC that is CRC-16/MODBUS printed low byte first (some field devices, V30/V31).
    lenient_modbus_crc: bool = False
    #: Accept data segments over 1024 bytes and CP over the edition's limit.
    allow_oversize: bool = False
    allow_unknown_cn: bool = False
    #: Decode with this edition whatever Flag says; None infers it from Flag.
    edition: Edition | None = None
    #: Skip the CRC check entirely (to answer QnRtn=9 with the QN of a damaged request).
    check_crc: bool = True
    #: Decrypt CP with this before the CRC check (HJ 212-2025 profile: CRC over plaintext).
    cp_cipher: CpCipher | None = None


STRICT = DecodeOptions()


@dataclass(frozen=True, slots=True)
class Flag:
    """Flag bits ``V5..V0 D A`` (HJ 212-2017 表 3)."""

    version: int = 1
    split: bool = False  # D: PNUM and PNO present
    ack: bool = False  # A: the receiver must answer

    @classmethod
    def from_int(cls, value: int) -> Flag:
        return cls(value >> 2, bool(value & 2), bool(value & 1))

    def __int__(self) -> int:
        return (self.version << 2) | (self.split << 1) | int(self.ack)


@dataclass(frozen=True, slots=True)
class Packet:
    """One HJ 212 packet. ``cn`` is an int (a :class:`Command` when known)."""

    cn: int
    st: str
    mn: str
    pw: str
    cp: Cp = field(default_factory=Cp)
    qn: str | None = None
    flag: Flag | None = None
    pnum: int | None = None
    pno: int | None = None
    #: Header fields beyond the core ones, in wire order (e.g. the 2025 resend marker RF=1).
    extra: tuple[tuple[str, str], ...] = ()
    edition: Edition = HJ212_2017
    #: Wire order of the header fields when it differs from the edition's; None = canonical.
    field_order: tuple[str, ...] | None = None
    lenience: frozenset[Lenience] = frozenset()

    @property
    def command(self) -> Command | None:
        try:
            return Command(self.cn)
        except ValueError:
            return None

    @property
    def command_name(self) -> str | None:
        return command_name(self.cn)

    @property
    def ack_requested(self) -> bool:
        return self.flag is not None and self.flag.ack

    @property
    def request_qn(self) -> str | None:
        """The QN an answer refers to: the header's, or CP's in 2005-style answers."""
        return self.qn if self.qn is not None else self.cp.get("QN")

    @property
    def qn_time(self) -> datetime | None:
        return None if self.qn is None else qn_to_datetime(self.qn)

    def header_fields(self) -> list[tuple[str, str]]:
        """The data segment's fields before CP, in wire order."""
        values: dict[str, str] = {}
        if self.qn is not None:
            values["QN"] = self.qn
        values["ST"] = self.st
        values["CN"] = f"{self.cn:04d}"
        values["PW"] = self.pw
        values["MN"] = self.mn
        if self.flag is not None:
            values["Flag"] = str(int(self.flag))
        if self.pnum is not None:
            values["PNUM"] = f"{self.pnum:04d}"
        if self.pno is not None:
            values["PNO"] = f"{self.pno:04d}"
        values.update(self.extra)
        order = self.field_order or self.edition.header_order
        out = [(k, values.pop(k)) for k in order if k in values]
        return out + list(values.items())

    def data_segment(self) -> str:
        return f"{self._head()};CP=&&{self.cp.render()}&&"

    def _head(self) -> str:
        """``header_fields`` rendered. Directly when they are the core ones in the edition's
        order (every part of a split upload is encoded: the general path was a tenth of it)."""
        order = self.edition.header_order
        if self.extra or self.field_order is not None or not CORE_FIELDS.issubset(order):
            return ";".join([f"{k}={v}" for k, v in self.header_fields()])
        values = {"QN": self.qn, "ST": self.st, "CN": f"{self.cn:04d}", "PW": self.pw}
        values["MN"] = self.mn
        values["Flag"] = None if self.flag is None else str(int(self.flag))
        values["PNUM"] = None if self.pnum is None else f"{self.pnum:04d}"
        values["PNO"] = None if self.pno is None else f"{self.pno:04d}"
        return ";".join([f"{k}={v}" for k in order if (v := values.get(k)) is not None])

    def encode(self, *, allow_oversize: bool = False, cp_cipher: CpCipher | None = None) -> bytes:
        return encode(self, allow_oversize=allow_oversize, cp_cipher=cp_cipher)

    def replace(self, **changes: Any) -> Packet:
        return replace(self, **changes)


def make_qn(moment: datetime) -> str:
    """QN=YYYYMMDDhhmmsszzz from a moment (HJ 212-2017 表 3)."""
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def qn_to_datetime(qn: str) -> datetime:
    if not _QN.fullmatch(qn):
        raise HeaderError(f"QN={qn!r}: expected YYYYMMDDhhmmsszzz (17 digits, 表 3)")
    try:
        return datetime(
            int(qn[0:4]),
            int(qn[4:6]),
            int(qn[6:8]),
            int(qn[8:10]),
            int(qn[10:12]),
            int(qn[12:14]),
            int(qn[14:17]) * 1000,
        )
    except ValueError as exc:
        raise HeaderError(f"QN={qn!r} is not a valid time ({exc})") from None


# ---- encoding -------------------------------------------------------------------------


def _with_cp(data: bytes, transform: Callable[[str], str]) -> bytes:
    """The data segment with its CP area replaced by ``transform`` of it."""
    at = data.find(b"CP=&&")
    if at < 0 or not data.endswith(b"&&") or len(data) < at + 7:
        raise CpError("no 'CP=&&…&&' area to encrypt or decrypt")
    try:
        text = data[at + 5 : -2].decode("utf-8")
    except UnicodeDecodeError:
        raise CpError("the CP area is not UTF-8 text") from None
    return data[: at + 5] + transform(text).encode("utf-8") + b"&&"


def enclose(data: bytes) -> bytes:
    """A standard data segment in its frame: header, length, CRC (uppercase) and CRLF."""
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def encode(
    packet: Packet, *, allow_oversize: bool = False, cp_cipher: CpCipher | None = None
) -> bytes:
    """The packet's bytes on the wire. Length counts UTF-8 bytes (FACTS.md). With
    ``cp_cipher`` CP travels encrypted and the CRC covers the plaintext (2025 profile)."""
    _check_packet(packet)
    # A decoded packet re-encodes as it was received, tolerated departures included, so a
    # capture can be replayed exactly; a built packet (empty ``lenience``) is always standard.
    # (Looking a Lenience up hashes it in Python: a built packet skips that.)
    lenience = packet.lenience
    allow_oversize = allow_oversize or (bool(lenience) and Lenience.DATA_TOO_LONG in lenience)
    data = packet.data_segment().encode("utf-8")
    if not allow_oversize:
        cp_text = packet.cp.render()
        cp_len = (len(cp_text) if cp_text.isascii() else len(cp_text.encode("utf-8"))) + 7
        if cp_len > packet.edition.cp_max:
            raise DataTooLong("CP", packet.edition.cp_max, cp_len)
        if len(data) > packet.edition.data_max:
            raise DataTooLong("data segment", packet.edition.data_max, len(data))
    if len(data) > 9999:
        raise DataTooLong("data segment (the 4-digit length field)", 9999, len(data))
    length = len(data)
    if not lenience:
        crc = b"%04X" % crc16(data)
    else:
        if Lenience.LENGTH_COUNTS_CHARACTERS in lenience:
            length = len(packet.data_segment())
        if Lenience.CRC_MODBUS in lenience:
            crc = b"%04X" % crc16_modbus_wire_order(data)
        else:
            crc = b"%04X" % crc16(data)
        if Lenience.CRC_LOWERCASE in lenience:
            crc = crc.lower()
    if cp_cipher is not None:
        data = _with_cp(data, cp_cipher.encrypt)
        length = len(data)
    return b"##%04d%s%s\r\n" % (length, data, crc)


def _check_packet(packet: Packet) -> None:
    for name, value in (("ST", packet.st), ("PW", packet.pw), ("MN", packet.mn)):
        if _SEPARATOR.search(value):
            raise EncodingError(f"{name}={value!r} contains a separator (';', '=', '&')")
    if not 0 <= packet.cn <= 9999:
        raise EncodingError(f"CN={packet.cn} is not a 4-digit command code")
    qn = packet.qn
    if qn is not None and not (len(qn) == 17 and is_time(qn)):  # is_time: cached dates
        qn_to_datetime(qn)  # raises, saying what is wrong
    if (packet.pnum is None) != (packet.pno is None):
        raise EncodingError("PNUM and PNO go together: set both or neither")
    if packet.flag is not None:
        if not 0 <= int(packet.flag) <= 255:
            raise EncodingError(f"Flag={int(packet.flag)} does not fit in 8 bits")
        if (
            packet.flag.split
            and packet.pnum is None
            and Lenience.D_WITHOUT_PACKET_NUMBERS not in packet.lenience
        ):
            raise EncodingError("Flag D=1 (split packet) requires PNUM and PNO")


# ---- decoding -------------------------------------------------------------------------


def decode(raw: bytes, options: DecodeOptions = STRICT) -> Packet:
    """Decode one complete frame (``##`` … ``<CR><LF>``) or raise an :class:`HJ212Error`."""
    try:
        return _decode(raw, options)
    except HJ212Error as exc:
        raise exc.with_raw(raw) from None


def _decode(raw: bytes, options: DecodeOptions) -> Packet:
    lenience: set[Lenience] = set()
    if raw[:2] != HEADER:
        raise FramingError(f"a frame starts with '##', this one with {raw[:2]!r}")
    if not raw.endswith(TRAILER):
        raise FramingError(f"a frame ends with <CR><LF>, this one with {raw[-2:]!r}")
    length_field = raw[2:6]
    if len(length_field) < 4 or not length_field.isdigit():
        raise FramingError(f"the length field must be 4 decimal digits, found {length_field!r}")
    if len(raw) < 12:
        raise FramingError(f"{len(raw)} bytes cannot hold ## + length + CRC + <CR><LF>")
    declared = int(length_field)
    data = raw[6:-6]
    crc_field = raw[-6:-2]
    if declared != len(data):
        try:
            characters = len(data.decode("utf-8"))
        except UnicodeDecodeError:
            characters = -1
        if declared != characters:
            raise LengthMismatch(declared, len(data))
        lenience.add(Lenience.LENGTH_COUNTS_CHARACTERS)
    if not _HEX4.fullmatch(crc_field):
        raise FramingError(f"the CRC field must be 4 hex digits, found {crc_field!r}")
    if options.cp_cipher is not None:
        data = _with_cp(data, options.cp_cipher.decrypt)
    if options.check_crc:
        found = int(crc_field, 16)
        expected = crc16(data)
        if found != expected:
            if options.lenient_modbus_crc and found == crc16_modbus_wire_order(data):
                lenience.add(Lenience.CRC_MODBUS)
            else:
                hint = ""
                if found == crc16_modbus_wire_order(data):
                    hint = (
                        "the frame's CRC is CRC-16/MODBUS in wire order, which some devices "
                        "send (decode with lenient_modbus_crc to accept it)"
                    )
                raise CrcMismatch(expected, crc_field.decode("ascii"), hint)
        if not crc_field.isupper() and not crc_field.isdigit():
            lenience.add(Lenience.CRC_LOWERCASE)
    if len(data) > 1024:
        if not options.allow_oversize:
            raise DataTooLong("data segment", 1024, len(data))
        lenience.add(Lenience.DATA_TOO_LONG)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(
            f"the data segment is not ASCII/UTF-8 text (byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r}; HJ 212-2017 §6.3)"
        ) from None
    return parse_data_segment(text, options, lenience)


def parse_data_segment(
    text: str, options: DecodeOptions = STRICT, lenience: set[Lenience] | None = None
) -> Packet:
    """Parse ``QN=…;…;CP=&&…&&`` (no framing) into a packet."""
    lenience = set() if lenience is None else lenience
    at = text.find("CP=&&")
    if at < 0:
        raise HeaderError("no 'CP=&&' in the data segment (HJ 212-2017 表 3: CP=&&数据区&&)")
    if at and text[at - 1] != ";":
        raise HeaderError(f"'CP=' must follow ';', found {text[max(0, at - 8) : at + 5]!r}")
    if len(text) < at + 7 or not text.endswith("&&"):
        raise CpError("CP is not closed by '&&' at the end of the data segment")
    cp_text = text[at + 5 : -2]
    fields: dict[str, str] = {}
    order: list[str] = []
    if at:
        for item in text[: at - 1].split(";"):
            key, eq, value = item.partition("=")
            if not eq:
                raise HeaderError(f"header item {item!r} has no '=' (HJ 212-2017 表 3)")
            if key in fields:
                raise HeaderError(f"header field {key} appears twice")
            fields[key] = value
            order.append(key)
    for key in REQUIRED_FIELDS:
        if key not in fields:
            raise HeaderError(f"header field {key} is missing (HJ 212-2017 表 3)")

    flag: Flag | None = None
    if "Flag" in fields:
        text_flag = fields["Flag"]
        if (
            len(text_flag) > 3
            or not (text_flag.isascii() and text_flag.isdigit())
            or int(text_flag) > 255
        ):
            raise HeaderError(f"Flag={text_flag[:20]!r}: expected an integer 0-255 (表 3)")
        flag = _FLAGS[int(text_flag)]
    if options.edition is not None:
        edition = options.edition
    elif flag is not None:
        edition = edition_for_version(flag.version)
    else:
        edition = HJ212_2005  # 2017 made Flag mandatory; a packet without it is 2005-style

    qn = fields.get("QN")
    if qn is not None and not (len(qn) == 17 and is_time(qn)):
        qn_to_datetime(qn)  # raises, saying what is wrong
    st = fields["ST"]
    if not (0 < len(st) <= 5 and st.isascii() and st.isalnum()):
        raise HeaderError(f"ST={st!r}: expected a system code of letters and digits (表 5)")
    cn_text = fields["CN"]
    if len(cn_text) != 4 or not (cn_text.isascii() and cn_text.isdigit()):
        raise HeaderError(f"CN={cn_text!r}: expected a 4-digit command code (表 9)")
    cn = int(cn_text)
    if cn not in edition.commands:
        if not options.allow_unknown_cn:
            raise UnknownCommand(cn_text)
        lenience.add(Lenience.UNKNOWN_CN)

    pnum = _packet_number(fields, "PNUM")
    pno = _packet_number(fields, "PNO")
    if (pnum is None) != (pno is None):
        raise HeaderError("PNUM and PNO go together (表 3): one is missing")
    if pnum is not None and pno is not None:
        if not 1 <= pno <= pnum:
            raise HeaderError(f"PNO={pno} is outside 1..PNUM={pnum}")
        if flag is not None and not flag.split:
            lenience.add(Lenience.PACKET_NUMBERS_WITHOUT_D)
    elif flag is not None and flag.split:
        # HJ/T 212-2005's own examples send Flag=3 on unsplit requests.
        lenience.add(Lenience.D_WITHOUT_PACKET_NUMBERS)

    extra: tuple[tuple[str, str], ...] = ()
    if not CORE_FIELDS.issuperset(fields):
        extra = tuple((k, fields[k]) for k in order if k not in CORE_FIELDS)
        if any(key not in edition.extra_header_fields for key, _ in extra):
            lenience.add(Lenience.UNKNOWN_HEADER_FIELD)
    field_order, known = _classify_order(edition, tuple(order))
    if not known:
        lenience.add(Lenience.HEADER_ORDER)

    cp = Cp.parse(cp_text)
    if cp.notes:
        lenience.add(Lenience.CP_DEPARTURES)
    cp_len = (len(cp_text) if cp_text.isascii() else len(cp_text.encode("utf-8"))) + 7
    if cp_len > edition.cp_max:
        if not options.allow_oversize:
            raise DataTooLong("CP", edition.cp_max, cp_len)
        lenience.add(Lenience.DATA_TOO_LONG)
    return Packet(
        cn=cn,
        st=st,
        mn=fields["MN"],
        pw=fields["PW"],
        cp=cp,
        qn=qn,
        flag=flag,
        pnum=pnum,
        pno=pno,
        extra=extra,
        edition=edition,
        field_order=field_order,
        lenience=frozenset(lenience) if lenience else _NO_LENIENCE,
    )


def _packet_number(fields: dict[str, str], key: str) -> int | None:
    text = fields.get(key)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 4:
        raise HeaderError(f"{key}={text!r}: expected a number 0001-9999 (表 3)")
    return int(text)


def _classify_order(
    edition: Edition, order: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, bool]:
    """(the order to remember, or None when it is the edition's own; whether some edition
    writes it — 2005 and 2017 orders differ). Cached: a link sends the same order every time."""
    key = (edition.key, order)
    found = _ORDERS.get(key)
    if found is None:
        canonical = [k for k in edition.header_order if k in order]
        canonical += [k for k in order if k not in edition.header_order]
        known = False
        for reference in (HJ212_2005.header_order, HJ212_2017.header_order):
            ranked = [k for k in reference if k in order]
            known = known or ranked == [k for k in order if k in reference]
        found = (None if canonical == list(order) else order, known)
        # bounded in entries and in bytes: a peer sending junk field names cannot grow it
        if len(_ORDERS) < 4096 and sum(map(len, order)) <= 256:
            _ORDERS[key] = found
    return found


_ORDERS: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...] | None, bool]] = {}
_FLAGS = tuple(Flag.from_int(value) for value in range(256))
_NO_LENIENCE: frozenset[Lenience] = frozenset()

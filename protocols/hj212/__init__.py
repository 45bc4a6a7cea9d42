"""HJ 212 (HJ/T 212-2005, HJ 212-2017, provisional 2025): codec, stream decoder and sessions.

>>> from protocols import hj212
>>> packet = hj212.decode(b"##0101QN=...&&1C80\\r\\n")          # one frame -> Packet
>>> packet.cp.rtd_interval, packet.flag.ack
>>> hj212.encode(packet)                                       # Packet -> bytes
>>> decoder = hj212.StreamDecoder(); decoder.feed(chunk)       # TCP chunks -> packets/errors
>>> session = hj212.DeviceSession(hj212.SessionConfig(mn=..., pw=..., st="32"))
"""

from protocols.hj212.cipher import CpCipher, Sm4CpCipher
from protocols.hj212.codes import Command, DataFlag, ExeRtn, QnRtn
from protocols.hj212.cp import Cp, Pollutant
from protocols.hj212.crc import crc16
from protocols.hj212.describe import describe
from protocols.hj212.editions import EDITIONS, HJ212_2005, HJ212_2017, HJ212_2025, Edition
from protocols.hj212.errors import (
    CpError,
    CrcMismatch,
    DataTooLong,
    EncodingError,
    FramingError,
    GarbageSkipped,
    HeaderError,
    HJ212Error,
    LengthMismatch,
    SessionError,
    TruncatedFrame,
    UnknownCommand,
)
from protocols.hj212.packet import (
    STRICT,
    DecodeOptions,
    Flag,
    Lenience,
    Packet,
    decode,
    encode,
    make_qn,
)
from protocols.hj212.session import DeviceSession, PlatformSession, SessionConfig
from protocols.hj212.split import Reassembler, merge, split
from protocols.hj212.stream import StreamDecoder

__all__ = [
    "EDITIONS",
    "HJ212_2005",
    "HJ212_2017",
    "HJ212_2025",
    "STRICT",
    "Command",
    "Cp",
    "CpCipher",
    "CpError",
    "CrcMismatch",
    "DataFlag",
    "DataTooLong",
    "DecodeOptions",
    "DeviceSession",
    "Edition",
    "EncodingError",
    "ExeRtn",
    "Flag",
    "FramingError",
    "GarbageSkipped",
    "HJ212Error",
    "HeaderError",
    "LengthMismatch",
    "Lenience",
    "Packet",
    "PlatformSession",
    "Pollutant",
    "QnRtn",
    "Reassembler",
    "SessionConfig",
    "SessionError",
    "Sm4CpCipher",
    "StreamDecoder",
    "TruncatedFrame",
    "UnknownCommand",
    "crc16",
    "decode",
    "describe",
    "encode",
    "make_qn",
    "merge",
    "split",
]

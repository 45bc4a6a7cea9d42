"""The CRC of HJ 212 Appendix A, and the CRC-16/MODBUS some field devices send instead.

Appendix A is *not* CRC-16/MODBUS: each byte is folded into the register's high byte
(``crc = (crc >> 8) ^ byte``) before the eight shift/xor steps, so after every byte the register
is a function of one 8-bit value ``x`` (the state has only 256 values). Writing ``x`` for that
value, one step is ``x' = H[x] ^ byte`` with ``H`` linear over GF(2), and ``H`` applied eight
times is the identity. Hence ``x`` after the last byte is the XOR, over the eight residues of a
byte's distance from the end modulo 8, of ``H^r`` applied to the XOR of the bytes in that residue
class. Folding the data into eight bytes with big-integer XORs does the per-byte work in C; that
is what makes decoding fast (``crc16_reference`` is the algorithm as the standard writes it).
"""

from __future__ import annotations

_POLY = 0xA001  # 0x8005 reflected, as Appendix A step 6 gives it


def _shift8(value: int) -> int:
    for _ in range(8):
        lsb = value & 1
        value >>= 1
        if lsb:
            value ^= _POLY
    return value


_TABLE = tuple(_shift8(x) for x in range(256))  # 16-bit register after folding in x
_HIGH = tuple(t >> 8 for t in _TABLE)  # the next byte is XORed with this


def _power_table(r: int) -> tuple[int, ...]:
    out = []
    for byte in range(256):
        value = byte
        for _ in range(r):
            value = _HIGH[value]
        out.append(value)
    return tuple(out)


_POWERS = tuple(_power_table(r) for r in range(8))
assert _POWERS[0] == _power_table(8), "H^8 must be the identity for the folding to hold"
# x after the first byte is 0xFF ^ b1 (the high byte of 0xFFFF); its share in the final x
# depends only on the data length modulo 8.
_INITIAL = tuple(_POWERS[r][0xFF] for r in range(8))


def crc16(data: bytes) -> int:
    """HJ 212-2017 Appendix A CRC of ``data`` (the data segment, ``QN=`` … ``&&``)."""
    n = len(data)
    if n == 0:
        return 0xFFFF
    folded = int.from_bytes(data, "big")  # the last byte is the least significant
    bits = (n + 7) // 8 * 64
    while bits > 64:
        half = (bits // 64 + 1) // 2 * 64
        folded = (folded >> half) ^ (folded & ((1 << half) - 1))
        bits = half
    word = folded.to_bytes(8, "big")  # word[7 - r]: XOR of the bytes r positions from the end
    x = _INITIAL[(n - 1) % 8]
    for r in range(8):
        x ^= _POWERS[r][word[7 - r]]
    return _TABLE[x]


def crc16_reference(data: bytes) -> int:
    """Appendix A step by step, for tests and for readers checking the fast version."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= _POLY
    return crc


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS, which some devices put in HJ 212 frames (see the vectors, V30/V31)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _MODBUS_TABLE[(crc ^ byte) & 0xFF]
    return crc


_MODBUS_TABLE = _TABLE  # same 8 shift steps; Modbus XORs the byte into the low byte instead


def crc16_modbus_wire_order(data: bytes) -> int:
    """CRC-16/MODBUS printed low byte first, as a device copying Modbus wire order does."""
    crc = crc16_modbus(data)
    return ((crc & 0xFF) << 8) | (crc >> 8)

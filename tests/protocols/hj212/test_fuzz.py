"""Garbage in, the codec's own errors out: nothing else may escape, ever."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.vectors import hj212_flows, hj212_vectors
from protocols import hj212
from protocols.hj212 import DecodeOptions, HJ212Error, StreamDecoder

SEEDS = [v.raw for v in hj212_vectors()] + [f.raw for f in hj212_flows()]
LENIENT = DecodeOptions(lenient_modbus_crc=True, allow_oversize=True, allow_unknown_cn=True)
MUTATED_INPUTS = 40_000  # + the stream pass below: 80 000 HJ 212 inputs in all


def mutate(rnd: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(4)
        at = rnd.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] = rnd.randrange(256)
        elif op == 1:
            buf[at:at] = bytes([rnd.choice(b"#&;,=-\r\n0123456789AF\xe4\xff")])
        elif op == 2 and buf:
            del buf[at : at + rnd.randint(1, 8)]
        else:
            buf[at:at] = rnd.randbytes(rnd.randint(1, 6))
    return bytes(buf)


def refit(data: bytes) -> bytes:
    """Repair length and CRC so a mutation reaches the header and CP parsers."""
    if len(data) < 12:
        return data
    body = data[6:-6]
    return b"##%04d%s%04X\r\n" % (len(body) % 10000, body, hj212.crc16(body))


def decode_or_codec_error(raw: bytes, options: DecodeOptions) -> None:
    with contextlib.suppress(HJ212Error):
        hj212.decode(raw, options)


def test_mutated_and_random_frames_raise_only_codec_errors() -> None:
    rnd = random.Random(212)
    for i in range(MUTATED_INPUTS):
        kind = i % 4
        if kind == 3:
            raw = rnd.randbytes(rnd.randint(0, 200))
        else:
            raw = mutate(rnd, rnd.choice(SEEDS))
            if kind == 1:
                raw = refit(raw)
        decode_or_codec_error(raw, LENIENT if i % 2 else hj212.STRICT)


def test_the_stream_decoder_survives_a_long_mutated_stream() -> None:
    rnd = random.Random(2017)
    decoder = StreamDecoder(LENIENT)
    produced = 0
    for _ in range(MUTATED_INPUTS):
        chunk = mutate(rnd, rnd.choice(SEEDS)) if rnd.random() < 0.9 else rnd.randbytes(50)
        produced += len(decoder.feed(chunk))
    produced += len(decoder.close())
    assert produced > MUTATED_INPUTS // 2


@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    decode_or_codec_error(raw, LENIENT)
    decode_or_codec_error(b"##%04d" % len(raw) + raw + b"FFFF\r\n", LENIENT)


@given(st.text(max_size=200))
def test_any_text_after_a_valid_frame_header(text: str) -> None:
    body = ("QN=20160801085857223;ST=32;CN=2011;PW=1;MN=X;Flag=4;CP=&&" + text + "&&").encode()
    decode_or_codec_error(
        b"##%04d%s%04X\r\n" % (len(body) % 10000, body, hj212.crc16(body)), LENIENT
    )


def test_integers_too_long_for_python_are_codec_errors() -> None:
    """int() refuses more than 4 300 digits with a plain ValueError; the codec names the field
    instead, oversize frames allowed or not."""
    head = b"QN=20260101120000001;ST=32;CN=2051;PW=123456;MN=010000A8900016F000169DC0"
    long_int = b"9" * 5000
    frames = [
        head + b";Flag=5;CP=&&DataTime=20260101120000;OverTime=" + long_int + b"&&",
        head + b";Flag=" + long_int + b";CP=&&DataTime=20260101120000&&",
    ]
    for body in frames:
        with pytest.raises(HJ212Error, match="expected"):
            hj212.decode(refit(b"##0000" + body + b"0000\r\n"), LENIENT)
    with pytest.raises(HJ212Error, match="at most 18 digits"):
        _ = hj212.Cp.parse("OverTime=" + "9" * 5000).over_time

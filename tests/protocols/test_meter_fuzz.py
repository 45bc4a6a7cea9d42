"""Robustness: random and mutated bytes never raise anything but a CodecError subclass.

The project's acceptance asks for 100 000 random or mutated inputs across the protocols.
:func:`test_seeded_mutation_loop_covers_100_000_inputs` proves the count for the two meter
codecs alone (50 000 each, seeded, ~1 s); the hypothesis tests explore shrinkable cases and
are sized to keep this file at a few seconds. Set ``CARBENCH_FUZZ_EXAMPLES`` to run more.

Every input that *is* accepted must also re-encode to exactly the same bytes, and the content
readers (values, readings, describe) must hold to the same error discipline.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import cjt188, dlt645
from protocols.errors import CodecError
from protocols.meterframe import MAX_PREAMBLE
from tests.protocols.test_meter_vectors import CJT188_VECTORS, DLT645_VECTORS

FUZZ = settings(
    max_examples=int(os.environ.get("CARBENCH_FUZZ_EXAMPLES", "1500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LOOP_INPUTS_PER_CODEC = 50_000


def _fix_checksum(data: bytes) -> bytes:
    """Recompute CS over everything after the FE preamble, so content decoding is reached."""
    start = len(data) - len(data.lstrip(b"\xfe"))
    if len(data) - start < 3:
        return data
    return data[:-2] + bytes((sum(data[start:-2]) & 0xFF,)) + data[-1:]


def _dlt645_seeds() -> list[bytes]:
    meter = dlt645.Address("558890213594")
    built = [
        dlt645.read_reply(meter, 0x0203FF00, ["1.2345", "-0.5", "0", "2"]),
        dlt645.read_reply(meter, 0x04000101, datetime(2025, 1, 2).date()),
        dlt645.read_reply(meter, 0x04000102, datetime(2025, 1, 2, 3, 4, 5).time()),
        dlt645.error_reply(meter, 0x02),
        dlt645.broadcast_time_request(datetime(2025, 1, 2, 3, 4, 5)),
        dlt645.write_request(
            meter, 0x04000102, datetime(2025, 1, 2, 3, 4, 5).time(), password=bytes(4)
        ),
    ]
    return [v.raw for v in DLT645_VECTORS] + [dlt645.encode(f) for f in built]


def _cjt188_seeds() -> list[bytes]:
    address = cjt188.Address("78330011223344")
    water = cjt188.WaterReading(
        cjt188.Quantity(Decimal("1.00"), 0x2C),
        cjt188.Quantity(Decimal("0.50"), 0x2C),
        datetime(2025, 1, 2, 3, 4, 5),
        b"\x00\x00",
    )
    built = [
        cjt188.read_reply(0x10, address, water),
        cjt188.read_reply(0x10, address, water, di_order="swapped"),
        cjt188.error_reply(0x10, address, b"\x04\x00"),
        cjt188.write_request(0x10, address, 0xA017, b"\x55"),
    ]
    fixed = [_fix_checksum(v.raw) for v in CJT188_VECTORS]  # incl. the wrong-CS one
    return fixed + [cjt188.encode(f) for f in built]


DLT645_SEEDS = _dlt645_seeds()
CJT188_SEEDS = _cjt188_seeds()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete, duplicate or truncate a few bytes, sometimes fixing the CS."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out.insert(pos, rng.randrange(256))
        elif op == 2 and out:
            del out[min(pos, len(out) - 1)]
        elif op == 3 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 4:
            del out[pos:]
        else:
            out[pos:pos] = out[pos : pos + rng.randint(1, 8)]
    result = bytes(out)
    return _fix_checksum(result) if rng.random() < 0.5 else result


# What each codec must survive --------------------------------------------------------------
def check_dlt645(data: bytes) -> bool:
    """True when the input was accepted as a frame; any non-CodecError propagates."""
    try:
        inferred = dlt645.decode(data)
    except CodecError:
        return False
    assert dlt645.encode(inferred) == data
    for edition in ("2007", "1997"):  # content is read differently per edition: try both
        frame = dlt645.decode(data, edition=edition)
        described = dlt645.describe(data, edition=edition)
        json.dumps(described)
        try:
            dlt645.read_values(frame)
        except CodecError:
            assert described["content_error"] is not None
        for reader in (
            dlt645.parse_broadcast_time,
            dlt645.parse_reply_address,
            dlt645.parse_write_request,
        ):
            with contextlib.suppress(CodecError):
                reader(frame)
    return True


def check_cjt188(data: bytes) -> bool:
    try:
        frame = cjt188.decode(data)
    except CodecError:
        return False
    assert cjt188.encode(frame) == data
    for unit_first in (False, True):
        json.dumps(cjt188.describe(data, unit_first=unit_first))
        with contextlib.suppress(CodecError):
            cjt188.parse_reading(frame, unit_first=unit_first)
    return True


def check_stream(decoder: dlt645.StreamDecoder | cjt188.StreamDecoder, data: bytes) -> None:
    out = [*decoder.feed(data), *decoder.idle()]
    assert all(isinstance(x, dlt645.Frame | cjt188.Frame | CodecError) for x in out)


# Hypothesis --------------------------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    return mutate(draw(st.sampled_from(seeds)), random.Random(draw(st.integers(0, 2**32))))


def inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        mutated(seeds),
        st.sampled_from(seeds).flatmap(
            lambda s: st.binary(max_size=40).map(lambda junk: junk + s + junk)
        ),
    )


@FUZZ
@given(inputs(DLT645_SEEDS))
def test_dlt645_random_and_mutated_inputs_raise_only_codec_errors(data: bytes) -> None:
    check_dlt645(data)
    check_stream(dlt645.StreamDecoder(), data)


@FUZZ
@given(inputs(CJT188_SEEDS))
def test_cjt188_random_and_mutated_inputs_raise_only_codec_errors(data: bytes) -> None:
    check_cjt188(data)
    check_stream(cjt188.StreamDecoder(), data)


# The counted loop --------------------------------------------------------------------------
def _loop(
    seeds: list[bytes], check: Callable[[bytes], bool], rng: random.Random, count: int
) -> tuple[int, int]:
    accepted = 0
    for i in range(count):
        # One in five purely random, the rest mutated valid frames.
        data = rng.randbytes(rng.randrange(64)) if i % 5 == 0 else mutate(rng.choice(seeds), rng)
        accepted += check(data)
    return count, accepted


def test_seeded_mutation_loop_covers_100_000_inputs() -> None:
    rng = random.Random(20251121)
    total = 0
    for seeds, check, stream in (
        (DLT645_SEEDS, check_dlt645, dlt645.StreamDecoder()),
        (CJT188_SEEDS, check_cjt188, cjt188.StreamDecoder()),
    ):
        count, accepted = _loop(seeds, check, rng, LOOP_INPUTS_PER_CODEC)
        total += count
        assert 0 < accepted < count  # the mutations reach both verdicts
        for _ in range(200):  # and a long stream of the same material, in random chunks
            stream.feed(mutate(rng.choice(seeds), rng)[: rng.randrange(1, 80)])
        check_stream(stream, rng.randbytes(100))
    assert total >= 100_000


@pytest.mark.parametrize(
    ("decoder", "frame"),
    [(dlt645.StreamDecoder, DLT645_SEEDS[0]), (cjt188.StreamDecoder, CJT188_SEEDS[0])],
    ids=["dlt645", "cjt188"],
)
def test_an_endless_preamble_is_held_to_a_preambles_length(
    decoder: Callable[[], dlt645.StreamDecoder | cjt188.StreamDecoder], frame: bytes
) -> None:
    """0xFE wake-up bytes without end (a line stuck at mark, a hostile peer) cost bounded
    memory: the decoder keeps a preamble's worth, and the frame that follows still decodes."""
    stream = decoder()
    for _ in range(256):  # 1 MiB
        assert stream.feed(b"\xfe" * 4096) == []
    assert stream.pending <= MAX_PREAMBLE
    assert [type(f).__name__ for f in stream.feed(frame)] == ["Frame"]

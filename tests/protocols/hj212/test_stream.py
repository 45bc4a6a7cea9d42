"""The stream decoder: frames out of arbitrarily cut TCP chunks, garbage reported, never lost."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.vectors import hj212_flows, hj212_vectors
from protocols import hj212
from protocols.hj212 import GarbageSkipped, HJ212Error, Packet, StreamDecoder, TruncatedFrame
from protocols.hj212.stream import MAX_FRAME

GOOD = [v.raw for v in hj212_vectors() if v.valid] + [f.raw for f in hj212_flows()]
BAD = [v.raw for v in hj212_vectors() if not v.valid]


def run(chunks: list[bytes]) -> list[object]:
    decoder = StreamDecoder()
    out: list[Packet | HJ212Error] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.close()
    return [_key(item) for item in out]


def _key(item: Packet | HJ212Error) -> object:
    if isinstance(item, Packet):
        return ("packet", hj212.encode(item))
    return (type(item).__name__, str(item), item.raw)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


STREAM = b"".join(
    [GOOD[0], b"garbage\x00\xff#", GOOD[1], BAD[0], GOOD[2][:40], GOOD[3], b"##", *GOOD[4:9]]
)


def test_whole_stream_gives_frames_errors_and_resyncs() -> None:
    kinds = [k[0] for k in run([STREAM])]  # type: ignore[index]
    assert kinds == [
        "packet",
        "GarbageSkipped",
        "packet",
        "CrcMismatch",
        "TruncatedFrame",
        "packet",
        "GarbageSkipped",
        "packet",
        "packet",
        "packet",
        "packet",
        "packet",
    ]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_output_does_not_depend_on_chunking(points: list[int]) -> None:
    assert run(cut(STREAM, points)) == run([STREAM])


@settings(max_examples=50)
@given(st.randoms(use_true_random=False))
def test_byte_at_a_time_equals_all_at_once_on_mixed_traffic(rnd: random.Random) -> None:
    frames = [rnd.choice(GOOD + BAD + [b"\r\n", b"#", b"##12", b"noise"]) for _ in range(12)]
    data = b"".join(frames)
    assert run([bytes([b]) for b in data]) == run([data])


def test_garbage_is_counted_once_when_the_next_header_arrives() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"xxxx") == []
    assert decoder.feed(b"yy#") == []
    out = decoder.feed(b"#" + GOOD[0][2:])
    assert isinstance(out[0], GarbageSkipped) and out[0].count == 6
    assert isinstance(out[1], Packet)


def test_a_frame_without_trailer_is_cut_by_the_next_header() -> None:
    out = StreamDecoder().feed(GOOD[0][:-2] + GOOD[1])
    assert isinstance(out[0], TruncatedFrame)
    assert out[0].raw == GOOD[0][:-2]
    assert isinstance(out[1], Packet)


def test_memory_is_bounded_when_no_trailer_ever_comes() -> None:
    decoder = StreamDecoder()
    out = decoder.feed(b"##0100" + b"x" * (MAX_FRAME + 10))
    assert [type(e).__name__ for e in out] == ["FramingError"]
    assert decoder.buffered < MAX_FRAME


def test_close_reports_a_half_received_frame() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(GOOD[0][:30]) == []
    (error,) = decoder.close()
    assert isinstance(error, TruncatedFrame)

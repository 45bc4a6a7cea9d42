"""What each toxic does to a stream, as times and bytes (no sockets): the arithmetic the wire
tests then see on loopback."""

from __future__ import annotations

import itertools
import random

import pytest

from simulators.network.stages import (
    Item,
    Kind,
    Stage,
    corrupt,
    make_stage,
    slice_bounds,
)
from simulators.network.toxics import Slicer, parse_toxic


def stage(type_: str, seed: int = 1, toxicity: float = 1.0, **attributes: float) -> Stage:
    toxic = parse_toxic({"type": type_, "toxicity": toxicity, "attributes": attributes})
    return make_stage(toxic, random.Random(seed))


def data(at: float, payload: bytes = b"x" * 10) -> Item:
    return Item(at, Kind.DATA, payload)


def test_latency_delays_each_chunk_from_its_arrival_not_from_the_previous_one() -> None:
    """Toxiproxy's latency is per chunk since it arrived: a stream is not slowed down."""
    latency = stage("latency", latency=100)
    first, second = latency.process(data(0.0)) + latency.process(data(0.05))
    assert (first.due, second.due) == pytest.approx((0.1, 0.15))


def test_jitter_spreads_delays_over_latency_plus_or_minus_jitter_keeping_order() -> None:
    latency = stage("latency", latency=100, jitter=40)
    arrivals = [i * 0.5 for i in range(300)]  # far apart: order never binds
    delays = [latency.process(data(t))[0].due - t for t in arrivals]
    assert min(delays) >= 0.060 - 1e-9
    assert max(delays) < 0.140
    assert len({round(d, 3) for d in delays}) > 40  # spread, not one value
    close = stage("latency", latency=100, jitter=90)
    dues = [close.process(data(i * 0.001))[0].due for i in range(200)]
    assert dues == sorted(dues)  # a FIFO: jitter never reorders


def test_bandwidth_sends_a_chunk_when_the_rate_allows_and_cuts_big_ones_in_100ms_pieces() -> None:
    bandwidth = stage("bandwidth", rate=10)  # 10 KB/s: 1000 bytes per 100 ms
    pieces = bandwidth.process(data(0.0, bytes(2500)))
    assert [len(p.data) for p in pieces] == [1000, 1000, 500]
    assert [p.due for p in pieces] == pytest.approx([0.1, 0.2, 0.25])
    # the link is busy until 0.25: a chunk arriving at 0.1 waits its turn
    (later,) = bandwidth.process(data(0.1, bytes(100)))
    assert later.due == pytest.approx(0.26)


def test_bandwidth_zero_is_unlimited() -> None:
    (item,) = stage("bandwidth", rate=0).process(data(1.0, bytes(10**6)))
    assert item.due == 1.0


def test_slicer_pieces_stay_near_the_average_and_keep_every_byte() -> None:
    slicer = Slicer(average_size=10, size_variation=3, delay=0)
    for seed in range(50):
        bounds = slice_bounds(1000, slicer, random.Random(seed))
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
        assert bounds[0] == 0 and bounds[-1] == 1000
        assert all(1 <= s <= 13 for s in sizes)
        assert sum(sizes) / len(sizes) == pytest.approx(10, abs=3)


def test_slicer_spaces_pieces_by_its_delay() -> None:
    slicer = stage("slicer", average_size=4, size_variation=0, delay=1000)  # 1 ms
    pieces = slicer.process(data(0.0, bytes(16)))
    assert [len(p.data) for p in pieces] == [4, 4, 4, 4]
    assert [p.due for p in pieces] == pytest.approx([0.0, 0.001, 0.002, 0.003])


def test_slow_close_delays_the_close_and_nothing_else() -> None:
    slow = stage("slow_close", delay=300)
    (chunk,) = slow.process(data(0.0))
    (eof,) = slow.process(Item(0.01, Kind.EOF))
    assert chunk.due == 0.0
    assert eof.due == pytest.approx(0.31)


def test_timeout_drops_data_passes_the_close_and_says_when_it_closes() -> None:
    timeout = stage("timeout", timeout=250)
    assert timeout.process(data(0.0)) == []
    assert [i.kind for i in timeout.process(Item(0.1, Kind.EOF))] == [Kind.EOF]
    assert timeout.close_after == 0.25
    assert stage("timeout", timeout=0).close_after is None  # a blackhole forever
    assert timeout.closes_when_removed


def test_reset_peer_drops_the_first_data_and_resets_timeout_later() -> None:
    reset = stage("reset_peer", timeout=100)
    (item,) = reset.process(data(2.0))
    assert (item.kind, item.data) == (Kind.RESET, b"")
    assert item.due == pytest.approx(2.1)
    assert reset.process(data(2.05)) == []


def test_limit_data_lets_the_limit_through_then_closes() -> None:
    limit = stage("limit_data", bytes=15)
    assert [(i.kind, len(i.data)) for i in limit.process(data(0.0))] == [(Kind.DATA, 10)]
    out = limit.process(data(0.1))
    assert [(i.kind, len(i.data)) for i in out] == [(Kind.DATA, 5), (Kind.CLOSE, 0)]
    assert limit.process(data(0.2)) == []


def test_corrupt_flips_one_bit_in_about_the_given_share_of_bytes() -> None:
    original = bytes(range(256)) * 400  # 102 400 bytes
    damaged = corrupt(original, 0.05, random.Random(3))
    changed = [(a, b) for a, b in zip(original, damaged, strict=True) if a != b]
    assert len(changed) / len(original) == pytest.approx(0.05, rel=0.05)
    assert all(bin(a ^ b).count("1") == 1 for a, b in changed)
    assert corrupt(original, 0.05, random.Random(3)) == damaged  # seeded: the same bytes
    assert corrupt(original, 0.05, random.Random(4)) != damaged
    assert corrupt(original, 0.0, random.Random(3)) == original
    every = corrupt(original, 1.0, random.Random(3))
    assert all(a != b for a, b in zip(original, every, strict=True))


def test_toxicity_is_drawn_per_link_from_its_own_generator() -> None:
    assert not stage("latency", latency=1, toxicity=0.0).applies
    assert stage("latency", latency=1, toxicity=1.0).applies
    draws = [stage("latency", seed=s, latency=1, toxicity=0.3).applies for s in range(1000)]
    assert sum(draws) / len(draws) == pytest.approx(0.3, abs=0.05)

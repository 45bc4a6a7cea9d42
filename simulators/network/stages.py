"""What each toxic does to one direction of one connection, as arithmetic on times.

A chunk read from the source becomes an :class:`Item` stamped with the time it arrived. The
link passes it through its stages, in the order the toxics were added; each stage returns
what leaves it and *when*: later (latency, bandwidth, slicer, slow_close), in pieces (slicer,
bandwidth), changed (corrupt), not at all (timeout, reset_peer), or followed by the end of the
connection (limit_data, reset_peer). The link then writes each item when its time comes.

Every stage is a FIFO queue, as a Toxiproxy toxic is a goroutine reading a channel: nothing
leaves a stage before what entered it earlier (``_leave``). Computing the times instead of
sleeping in each stage gives Toxiproxy's pipelining (a chunk waits out its latency while the
next one is already being throttled) without a task per stage, and one sleep per write is all
a virtual clock has to drive. No I/O and no clock here; randomness only from the stage's own
seeded ``random.Random``.
"""

from __future__ import annotations

import enum
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from simulators.network.toxics import (
    Bandwidth,
    Corrupt,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    Toxic,
)


class Kind(enum.Enum):
    DATA = "data"
    EOF = "eof"  # the source closed its side: pass the FIN on
    CLOSE = "close"  # a toxic ends the connection: close both sides
    RESET = "reset"  # a toxic resets the connection: RST both sides


@dataclass(slots=True)
class Item:
    """Something to deliver to the destination at monotonic time ``due``."""

    due: float
    kind: Kind
    data: bytes = b""
    #: stages that made it later than it arrived; removing one of them releases it at once
    held_by: frozenset[int] = field(default_factory=frozenset)

    def later(self, due: float, stage: int, data: bytes | None = None) -> Item:
        held = self.held_by | {stage} if due > self.due else self.held_by
        return Item(due, self.kind, self.data if data is None else data, held)


_uids = itertools.count(1)


class Stage:
    """One toxic on one link. ``applies`` is the toxicity draw: when false the stage is
    inert (the link skips it), as Toxiproxy then runs a noop in the toxic's place."""

    def __init__(self, toxic: Toxic, rng: random.Random) -> None:
        self.toxic = toxic
        self.rng = rng
        self.uid = next(_uids)
        self.applies = rng.random() < toxic.toxicity
        self._last = -math.inf  # when the last item left: the FIFO bound

    @property
    def close_after(self) -> float | None:
        """Seconds after the stage starts at which it ends the connection (timeout)."""
        return None

    @property
    def closes_when_removed(self) -> bool:
        """Whether removing the toxic closes the connection (timeout: the data it dropped is
        gone, so the stream cannot go on; Toxiproxy closes it too)."""
        return False

    def carry_over(self, previous: Stage) -> None:
        """Take over the state of the stage this one replaces (a toxic update)."""
        self._last = previous._last

    def clamp(self, now: float) -> None:
        """Forget being busy past ``now`` (what kept it busy was released)."""
        self._last = min(self._last, now)

    def process(self, item: Item) -> list[Item]:
        return [self._leave(item, item.due)]

    def _leave(self, item: Item, due: float, data: bytes | None = None) -> Item:
        due = max(due, self._last)
        self._last = due
        return item.later(due, self.uid, data)


class LatencyStage(Stage):
    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, Latency)
        if item.kind is not Kind.DATA:
            return [self._leave(item, item.due)]
        delay = attributes.latency
        if attributes.jitter > 0:
            # Toxiproxy: latency + rand.Int63n(2*jitter) - jitter, in whole milliseconds
            delay += self.rng.randrange(2 * attributes.jitter) - attributes.jitter
        return [self._leave(item, item.due + max(delay, 0) / 1000)]


class BandwidthStage(Stage):
    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, Bandwidth)
        rate = attributes.rate * 1000  # bytes per second
        if item.kind is not Kind.DATA or rate <= 0:
            return [self._leave(item, item.due)]
        # As Toxiproxy: a chunk leaves when the link would have finished sending it, and one
        # larger than 100 ms worth goes out in 100 ms pieces so the reader sees a steady flow.
        piece = attributes.rate * 100
        t = max(item.due, self._last)
        out: list[Item] = []
        data = item.data
        while len(data) > piece:
            t += 0.1
            out.append(self._leave(item, t, data[:piece]))
            data = data[piece:]
        t += len(data) / rate
        out.append(self._leave(item, t, data))
        return out


class SlowCloseStage(Stage):
    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, SlowClose)
        if item.kind in (Kind.EOF, Kind.CLOSE):
            return [self._leave(item, max(item.due, self._last) + attributes.delay / 1000)]
        return [self._leave(item, item.due)]


class TimeoutStage(Stage):
    @property
    def close_after(self) -> float | None:
        attributes = self.toxic.attributes
        assert isinstance(attributes, Timeout)
        return attributes.timeout / 1000 if attributes.timeout > 0 else None

    @property
    def closes_when_removed(self) -> bool:
        return True

    def process(self, item: Item) -> list[Item]:
        if item.kind is Kind.DATA:
            return []  # dropped on the floor
        return [self._leave(item, item.due)]


class ResetPeerStage(Stage):
    def __init__(self, toxic: Toxic, rng: random.Random) -> None:
        super().__init__(toxic, rng)
        self.triggered = False

    def carry_over(self, previous: Stage) -> None:
        super().carry_over(previous)
        if isinstance(previous, ResetPeerStage):
            self.triggered = previous.triggered

    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, ResetPeer)
        if self.triggered:
            return []
        if item.kind in (Kind.CLOSE, Kind.RESET):
            return [self._leave(item, item.due)]
        # The first thing to arrive (data or the source's close) is dropped and arms the reset.
        self.triggered = True
        reset = Item(item.due, Kind.RESET)
        return [self._leave(reset, item.due + attributes.timeout / 1000)]


class SlicerStage(Stage):
    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, Slicer)
        if item.kind is not Kind.DATA:
            return [self._leave(item, item.due)]
        bounds = slice_bounds(len(item.data), attributes, self.rng)
        gap = attributes.delay / 1_000_000
        t = max(item.due, self._last)
        out = []
        for start, end in itertools.pairwise(bounds):
            out.append(self._leave(item, t, item.data[start:end]))
            t += gap
        self._last = t  # Toxiproxy waits the delay after the last piece too
        return out


def slice_bounds(size: int, slicer: Slicer, rng: random.Random) -> list[int]:
    """Cut points of ``size`` bytes: Toxiproxy's halving with random ± variation, pieces
    within ``average_size ± size_variation`` (the last halving may leave smaller ones)."""
    bounds = [0]

    def cut(start: int, end: int) -> None:
        if (end - start) - slicer.average_size <= slicer.size_variation:
            bounds.append(end)
            return
        variation = slicer.size_variation
        wobble = rng.randrange(2 * variation) - variation if variation else 0
        mid = start + (end - start) // 2 + wobble
        cut(start, mid)
        cut(mid, end)

    if size:
        cut(0, size)
    return bounds


class LimitDataStage(Stage):
    def __init__(self, toxic: Toxic, rng: random.Random) -> None:
        super().__init__(toxic, rng)
        self.transmitted = 0
        self.closed = False

    def carry_over(self, previous: Stage) -> None:
        super().carry_over(previous)
        if isinstance(previous, LimitDataStage):
            self.transmitted = previous.transmitted
            self.closed = previous.closed

    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, LimitData)
        if self.closed:
            return []
        if item.kind is not Kind.DATA:
            return [self._leave(item, item.due)]
        remaining = max(attributes.bytes - self.transmitted, 0)
        part = item.data[:remaining]
        out = []
        if part:
            out.append(self._leave(item, item.due, part))
            self.transmitted += len(part)
        if self.transmitted >= attributes.bytes:
            self.closed = True
            out.append(self._leave(Item(item.due, Kind.CLOSE), item.due))
        return out


class CorruptStage(Stage):
    def process(self, item: Item) -> list[Item]:
        attributes = self.toxic.attributes
        assert isinstance(attributes, Corrupt)
        if item.kind is not Kind.DATA or attributes.probability <= 0:
            return [self._leave(item, item.due)]
        return [self._leave(item, item.due, corrupt(item.data, attributes.probability, self.rng))]


def corrupt(data: bytes, probability: float, rng: random.Random) -> bytes:
    """``data`` with each byte, with ``probability``, one random bit flipped. The corrupted
    positions are drawn as geometric gaps, so the cost is per corrupted byte, not per byte."""
    if probability <= 0:
        return data
    out = bytearray(data)
    if probability >= 1:
        for i in range(len(out)):
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    log_keep = math.log1p(-probability)
    i = -1
    while True:
        # bytes skipped before the next corrupted one ~ Geometric(probability), by inversion
        # (1 - random() is in (0, 1]); compared as a float first, it may be astronomically big
        gap = math.log(1.0 - rng.random()) / log_keep
        if gap >= len(out) - i - 1:
            return bytes(out)
        i += 1 + int(gap)
        out[i] ^= 1 << rng.randrange(8)


_STAGES: Final[dict[str, Callable[[Toxic, random.Random], Stage]]] = {
    "latency": LatencyStage,
    "bandwidth": BandwidthStage,
    "slow_close": SlowCloseStage,
    "timeout": TimeoutStage,
    "reset_peer": ResetPeerStage,
    "slicer": SlicerStage,
    "limit_data": LimitDataStage,
    "corrupt": CorruptStage,
    "noop": Stage,
}


def make_stage(toxic: Toxic, rng: random.Random) -> Stage:
    """The stage doing ``toxic``'s work on one link; its first draw from ``rng`` decides
    whether the toxic applies to this link at all (toxicity)."""
    return _STAGES[toxic.type.value](toxic, rng)

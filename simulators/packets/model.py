"""The typed configuration: directions, the faults of one direction, the link's addresses.

Plain frozen dataclasses (no pydantic) because the NFQUEUE handler imports this module too and
its start-up time is part of every link that delays packets.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Side = Literal["bench", "device"]


class Direction(StrEnum):
    """Which way packets travel through the faulty wire."""

    TO_DEVICE = "to_device"  # bench → device (platform commands, polls of the device)
    TO_BENCH = "to_bench"  # device → bench (the terminal's uploads)
    BOTH = "both"

    def each(self) -> tuple[Direction, ...]:
        """The one-way directions this stands for."""
        if self is Direction.BOTH:
            return (Direction.TO_DEVICE, Direction.TO_BENCH)
        return (self,)


def _check_probability(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_ms(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of milliseconds ≥ 0, got {value!r}")


@dataclass(frozen=True)
class Bandwidth:
    """A token-bucket limit (``tc qdisc … tbf``) on the wire's egress in one direction.

    ``burst_bytes`` defaults to 10 ms worth of the rate, but never less than two full frames
    (tbf cannot pass a frame bigger than its bucket). ``latency_ms`` bounds how long a packet
    may wait in the bucket's queue before tbf drops it, as a real link's buffer would.
    """

    kbit: float
    burst_bytes: int | None = None
    latency_ms: float = 50.0

    def __post_init__(self) -> None:
        if not (isinstance(self.kbit, int | float) and math.isfinite(self.kbit) and self.kbit > 0):
            raise ValueError(f"kbit must be a rate > 0 (1 kbit = 1000 bit/s), got {self.kbit!r}")
        if self.burst_bytes is not None and self.burst_bytes < 1600:
            raise ValueError(f"burst_bytes must hold a full frame (≥ 1600), got {self.burst_bytes}")
        _check_ms("latency_ms", self.latency_ms)

    @property
    def bucket_bytes(self) -> int:
        if self.burst_bytes is not None:
            return self.burst_bytes
        return max(3028, math.ceil(self.kbit * 1000 / 8 * 0.010))


@dataclass(frozen=True)
class DirectionFaults:
    """Every fault of one direction; the default is a clean wire.

    Randomness: with ``seed`` set, every random choice of this direction (loss, jitter,
    reordering) is made by a generator seeded with it in the queue handler, so the same packets
    in the same order meet the same fate. Without a seed, loss is drawn by the kernel
    (``iptables -m statistic --mode random``: no user-space hop, not repeatable).
    """

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0  # probability that a packet is held back …
    reorder_hold_ms: float = 0.0  # … this much longer, so the next ones overtake it
    seed: int | None = None
    bandwidth: Bandwidth | None = None
    reset: bool = False  # TCP answered with RST (connect refused, connection reset)
    blackhole: bool = False  # everything silently dropped
    rewrite: tuple[bytes, bytes] | None = None  # (old, new): payload bytes replaced in flight

    def __post_init__(self) -> None:
        _check_probability("loss", self.loss)
        _check_probability("reorder", self.reorder)
        _check_ms("delay_ms", self.delay_ms)
        _check_ms("jitter_ms", self.jitter_ms)
        _check_ms("reorder_hold_ms", self.reorder_hold_ms)
        if self.reorder > 0 and self.reorder_hold_ms <= 0:
            raise ValueError("reorder needs reorder_hold_ms > 0 (how long a packet is held back)")
        if self.rewrite is not None:
            old, new = self.rewrite
            if not old or len(old) != len(new):
                raise ValueError(
                    "rewrite needs non-empty old and new of the same length "
                    f"(TCP sequence numbers must stay valid), got {len(old)} and {len(new)} bytes"
                )

    @property
    def kernel_loss(self) -> float:
        """Loss done by an iptables rule (unseeded) rather than by the queue handler."""
        return self.loss if self.seed is None else 0.0

    @property
    def needs_queue(self) -> bool:
        """Whether packets of this direction must pass through the NFQUEUE handler."""
        return self.queue_policy() != QueuePolicy()

    def queue_policy(self) -> QueuePolicy:
        return QueuePolicy(
            loss=self.loss if self.seed is not None else 0.0,
            delay_ms=self.delay_ms,
            jitter_ms=self.jitter_ms,
            reorder=self.reorder,
            reorder_hold_ms=self.reorder_hold_ms if self.reorder > 0 else 0.0,
            seed=self.seed if self.seed is not None and self._randomised else None,
            rewrite=self.rewrite,
        )

    @property
    def _randomised(self) -> bool:
        return self.loss > 0 or self.jitter_ms > 0 or self.reorder > 0


@dataclass(frozen=True)
class LinkFaults:
    """The faults of both directions: what the wire does right now."""

    to_device: DirectionFaults = field(default_factory=DirectionFaults)
    to_bench: DirectionFaults = field(default_factory=DirectionFaults)

    def of(self, direction: Direction) -> DirectionFaults:
        if direction is Direction.TO_DEVICE:
            return self.to_device
        if direction is Direction.TO_BENCH:
            return self.to_bench
        raise ValueError("ask for one direction at a time, not both")

    def updated(self, direction: Direction, **changes: Any) -> LinkFaults:
        """A copy with ``changes`` made to every direction ``direction`` stands for."""
        result = self
        for one in direction.each():
            replaced = dataclasses.replace(result.of(one), **changes)
            result = dataclasses.replace(result, **{one.value: replaced})
        return result


@dataclass(frozen=True)
class QueuePolicy:
    """What the NFQUEUE handler does to the packets of one direction (JSON on its stdin)."""

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    reorder_hold_ms: float = 0.0
    seed: int | None = None
    rewrite: tuple[bytes, bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.rewrite is not None:
            data["rewrite"] = [self.rewrite[0].hex(), self.rewrite[1].hex()]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueuePolicy:
        rewrite = data.get("rewrite")
        return cls(
            loss=float(data.get("loss", 0.0)),
            delay_ms=float(data.get("delay_ms", 0.0)),
            jitter_ms=float(data.get("jitter_ms", 0.0)),
            reorder=float(data.get("reorder", 0.0)),
            reorder_hold_ms=float(data.get("reorder_hold_ms", 0.0)),
            seed=None if data.get("seed") is None else int(data["seed"]),
            rewrite=None
            if rewrite is None
            else (bytes.fromhex(rewrite[0]), bytes.fromhex(rewrite[1])),
        )


@dataclass(frozen=True)
class LinkConfig:
    """Where the link lives: a /29 split into the bench's /30 and the device's /30.

    Every link has namespaces of its own, so every link may use the same addresses; the range
    only has to stay clear of what processes inside the namespaces want to reach.
    """

    network: str = "10.212.0.0/29"
    name_prefix: str = "cb-"
    mtu: int = 1500
    #: Segment TCP into wire-sized packets at the sender (``gso_max_segs 1``) so that a lost or
    #: delayed "packet" is one frame, as on a real Ethernet, not a 64 KiB offload super-packet.
    wire_sized_packets: bool = True

    def __post_init__(self) -> None:
        try:
            net = ipaddress.IPv4Network(self.network)
        except ValueError as exc:
            raise ValueError(f"network: {exc}") from exc
        if net.prefixlen > 29:
            raise ValueError(f"network must be a /29 or larger, got /{net.prefixlen}")
        if not self.name_prefix or len(self.name_prefix) > 8 or "/" in self.name_prefix:
            raise ValueError(
                f"name_prefix must be 1–8 characters without '/', got {self.name_prefix!r}"
            )
        if not 576 <= self.mtu <= 9000:
            raise ValueError(f"mtu must be in [576, 9000], got {self.mtu}")

    def addresses(self) -> tuple[str, str, str, str]:
        """(bench, wire's bench side, wire's device side, device), each with its /30."""
        base = ipaddress.IPv4Network(self.network).network_address
        return (
            f"{base + 1}/30",
            f"{base + 2}/30",
            f"{base + 5}/30",
            f"{base + 6}/30",
        )

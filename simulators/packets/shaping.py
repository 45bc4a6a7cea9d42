"""Bandwidth limits: a tbf qdisc on the wire namespace's egress toward the receiving end.

tbf counts whole frames at layer 2 (Ethernet header included), so TCP goodput under a limit of
R kbit is about R × 1448/1514 with the usual 1500-byte MTU and TCP timestamps.
"""

from __future__ import annotations

from simulators.packets.model import Bandwidth, Direction
from simulators.packets.netns import WIRE_TO_BENCH, WIRE_TO_DEVICE, run

#: Packets of each direction leave the wire namespace through this interface.
EGRESS = {Direction.TO_DEVICE: WIRE_TO_DEVICE, Direction.TO_BENCH: WIRE_TO_BENCH}


def tbf_argv(netns: str, direction: Direction, bandwidth: Bandwidth | None) -> list[str]:
    """The ``tc`` command that sets (or, for None, removes) the limit of one direction."""
    dev = EGRESS[direction]
    if bandwidth is None:
        return ["tc", "-n", netns, "qdisc", "del", "dev", dev, "root"]
    return [
        "tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", "tbf",
        "rate", f"{bandwidth.kbit * 1000:.0f}bit",
        "burst", str(bandwidth.bucket_bytes),
        "latency", f"{bandwidth.latency_ms * 1000:.0f}us",
    ]  # fmt: skip


async def set_bandwidth(netns: str, direction: Direction, bandwidth: Bandwidth | None) -> None:
    if bandwidth is None and not await is_limited(netns, direction):
        return  # deleting the default qdisc is an error; nothing to lift
    await run(tbf_argv(netns, direction, bandwidth))


async def is_limited(netns: str, direction: Direction) -> bool:
    out = await run(["tc", "-n", netns, "qdisc", "show", "dev", EGRESS[direction], "root"])
    return out.startswith("qdisc tbf ")

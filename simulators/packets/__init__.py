"""Packet-level faults for a device that is a separate host: netns + veth, iptables, tbf, NFQUEUE.

See README.md in this directory. The public API is ``device_link`` and what it yields.
"""

from simulators.packets.errors import (
    CommandError,
    FeatureUnavailable,
    PacketFaultError,
    QueueHandlerError,
)
from simulators.packets.features import Feature, probe_all
from simulators.packets.link import DeviceLink, LinkStats, device_link
from simulators.packets.model import (
    Bandwidth,
    Direction,
    DirectionFaults,
    LinkConfig,
    LinkFaults,
    Side,
)
from simulators.packets.netns import cleanup_leftovers

__all__ = [
    "Bandwidth",
    "CommandError",
    "DeviceLink",
    "Direction",
    "DirectionFaults",
    "Feature",
    "FeatureUnavailable",
    "LinkConfig",
    "LinkFaults",
    "LinkStats",
    "PacketFaultError",
    "QueueHandlerError",
    "Side",
    "cleanup_leftovers",
    "device_link",
    "probe_all",
]

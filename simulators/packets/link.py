"""The facade the scenario engine uses: a faulty wire between the bench and a device.

```python
async with device_link() as link:
    device = subprocess.Popen(link.exec_argv(["python", "-m", "my_device"]))  # in its netns
    listener = link.socket("bench")          # a socket in the bench namespace
    listener.bind((link.bench_address, 9000))
    await link.set_loss(0.1, direction=Direction.TO_BENCH)
    await link.set_delay(80, jitter_ms=20)
    await link.clear()
```
Every setter changes only what it names and applies at once; ``apply`` sets everything from a
``LinkFaults``. Packet faults act on the wall clock (the kernel's), so they belong to
real-time scenarios only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from simulators.packets import features, rules, shaping
from simulators.packets.errors import PacketFaultError, QueueHandlerError
from simulators.packets.model import (
    Bandwidth,
    Direction,
    DirectionFaults,
    LinkConfig,
    LinkFaults,
    Side,
)
from simulators.packets.netns import (
    Topology,
    cleanup_leftovers,
    create_topology,
    delete_netns_sync,
    destroy_topology,
    in_netns,
    socket_in,
)
from simulators.packets.queue_process import QueueProcess

#: Namespaces of links not yet closed, removed at exit if a link was never closed properly.
_OPEN: set[str] = set()


@atexit.register
def _remove_unclosed() -> None:
    for name in sorted(_OPEN):
        with contextlib.suppress(PacketFaultError):
            delete_netns_sync(name)


@dataclass(frozen=True)
class LinkStats:
    """What the faults have done since they were last set (rule counters restart then)."""

    #: (fault, direction) → packets matched, for the rules now in force.
    rules: dict[tuple[str, Direction], int]
    #: The queue handler's counters per direction (seen, dropped, held, reordered, rewritten,
    #: released, errors), empty when no handler has run.
    queue: dict[Direction, dict[str, int]]


class DeviceLink:
    """A bench namespace and a device namespace joined through a wire namespace with faults."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._faults = LinkFaults()
        self._queue: QueueProcess | None = None
        self._lock = asyncio.Lock()

    # -- where things are ---------------------------------------------------------------

    @property
    def bench_address(self) -> str:
        return self.topology.bench_address

    @property
    def device_address(self) -> str:
        return self.topology.device_address

    @property
    def bench_netns(self) -> str:
        return self.topology.bench_netns

    @property
    def device_netns(self) -> str:
        return self.topology.device_netns

    @property
    def wire_netns(self) -> str:
        return self.topology.wire_netns

    @property
    def queue_handler_pid(self) -> int | None:
        """The NFQUEUE handler's pid (an ``ip netns exec`` that became Python), once started."""
        return None if self._queue is None else self._queue.pid

    def address_of(self, side: Side) -> str:
        return self.bench_address if side == "bench" else self.device_address

    def exec_argv(self, argv: Sequence[str], side: Side = "device") -> list[str]:
        """``argv`` prefixed to run inside the namespace of ``side`` (for subprocess/asyncio)."""
        return in_netns(self.topology.netns_of(side), argv)

    def socket(
        self, side: Side = "bench", type: int = socket.SOCK_STREAM, family: int = socket.AF_INET
    ) -> socket.socket:
        """A socket in the namespace of ``side``; use it in this process like any other (e.g.
        ``asyncio.start_server(sock=…)`` after binding it to ``bench_address``)."""
        return socket_in(self.topology.netns_of(side), family, type)

    # -- faults ---------------------------------------------------------------------------

    @property
    def faults(self) -> LinkFaults:
        return self._faults

    async def set_loss(
        self, p: float, *, direction: Direction = Direction.BOTH, seed: int | None = None
    ) -> None:
        """Drop each packet with probability ``p``. With a seed (given here or by ``set_seed``)
        the drops are repeatable (decided in the queue handler); without, the kernel draws
        them (``iptables -m statistic``)."""
        await self._update(Direction(direction), loss=p, **_seed(seed))

    async def set_seed(self, seed: int | None, *, direction: Direction = Direction.BOTH) -> None:
        """Seed (or, with None, unseed) every random choice of ``direction``: loss, jitter,
        reordering. A ``seed=`` given to another setter does the same."""
        await self._update(Direction(direction), seed=seed)

    async def set_delay(
        self, ms: float, jitter_ms: float = 0.0, *, direction: Direction = Direction.BOTH
    ) -> None:
        """Hold each packet ``ms`` ± a uniform ``jitter_ms`` (never below 0). Jitter lets
        packets overtake each other, as netem's does."""
        await self._update(Direction(direction), delay_ms=ms, jitter_ms=jitter_ms)

    async def set_reorder(
        self,
        probability: float,
        hold_ms: float = 10.0,
        *,
        direction: Direction = Direction.BOTH,
        seed: int | None = None,
    ) -> None:
        """Hold a share ``probability`` of packets ``hold_ms`` longer than the rest, so that
        the packets after them arrive first."""
        await self._update(
            Direction(direction), reorder=probability, reorder_hold_ms=hold_ms, **_seed(seed)
        )

    async def set_bandwidth(
        self,
        kbit: float | None,
        *,
        direction: Direction = Direction.BOTH,
        burst_bytes: int | None = None,
        latency_ms: float = 50.0,
    ) -> None:
        """Limit the rate to ``kbit`` (1 kbit = 1000 bit/s, layer 2), or lift it with None."""
        bandwidth = None if kbit is None else Bandwidth(kbit, burst_bytes, latency_ms)
        await self._update(Direction(direction), bandwidth=bandwidth)

    async def set_reset(self, on: bool = True, *, direction: Direction = Direction.BOTH) -> None:
        """Answer TCP with RST: a connect is refused, an open connection is reset. Other
        protocols pass."""
        await self._update(Direction(direction), reset=on)

    async def set_blackhole(
        self, on: bool = True, *, direction: Direction = Direction.BOTH
    ) -> None:
        """Drop everything without a word: connects and reads time out."""
        await self._update(Direction(direction), blackhole=on)

    async def set_rewrite(
        self, old: bytes, new: bytes, *, direction: Direction = Direction.BOTH
    ) -> None:
        """Replace ``old`` by ``new`` (same length) in TCP/UDP payloads, checksums fixed up by
        scapy so the receiver accepts the edited packet. Each packet is edited on its own: a
        pattern split across two segments is not found."""
        await self._update(Direction(direction), rewrite=(bytes(old), bytes(new)))

    async def clear(self, direction: Direction = Direction.BOTH) -> None:
        """Back to a clean wire (in ``direction``). Packets already held are still released on
        their schedule."""
        faults = self._faults
        for one in Direction(direction).each():
            faults = faults.updated(one, **_clean())
        await self.apply(faults)

    async def apply(self, faults: LinkFaults) -> None:
        """Make the wire do ``faults``, whatever it did before."""
        async with self._lock:
            await self._apply(faults)

    async def stats(self) -> LinkStats:
        found = await rules.counters(self.wire_netns)
        queue: dict[Direction, dict[str, int]] = {}
        if self._queue is not None:
            raw = await self._queue.stats()
            queue = {Direction(d): c for d, c in raw["directions"].items()}
        return LinkStats(
            rules={(c.fault, c.direction): c.packets for c in found},
            queue=queue,
        )

    # -- internals --------------------------------------------------------------------------

    async def _update(self, direction: Direction, **changes: Any) -> None:
        async with self._lock:
            await self._apply(self._faults.updated(direction, **changes))

    async def _apply(self, new: LinkFaults) -> None:
        old = self._faults
        wire = self.wire_netns
        one_way = (Direction.TO_DEVICE, Direction.TO_BENCH)
        if any(new.of(d).needs_queue for d in one_way):
            # The handler must listen before a rule sends packets to its queue.
            queue = await self._ensure_queue()
            try:
                await queue.configure({d: new.of(d).queue_policy() for d in one_way})
            except QueueHandlerError:
                # Reported once; the next change that needs a handler starts a fresh one.
                self._queue = None
                await queue.stop()
                raise
        await rules.apply(wire, new)
        if self._queue is not None and not any(new.of(d).needs_queue for d in one_way):
            # Told even though no rule feeds it now, so that setting a seeded fault again later
            # is a change and restarts its sequence.
            with contextlib.suppress(QueueHandlerError):
                await self._queue.configure({d: new.of(d).queue_policy() for d in one_way})
        for d in one_way:
            if new.of(d).bandwidth != old.of(d).bandwidth:
                if new.of(d).bandwidth is not None:
                    features.require("tbf")
                await shaping.set_bandwidth(wire, d, new.of(d).bandwidth)
        self._faults = new

    async def _ensure_queue(self) -> QueueProcess:
        if self._queue is None:
            features.require("nfqueue")
            self._queue = await QueueProcess.start(self.wire_netns, dict(rules.QUEUE_NUM))
        return self._queue

    async def _close(self) -> None:
        try:
            if self._queue is not None:
                await self._queue.stop()
                self._queue = None
        finally:
            await destroy_topology(self.topology)


def _seed(seed: int | None) -> dict[str, Any]:
    """A seed given to a setter replaces the direction's; None leaves it as it was."""
    return {} if seed is None else {"seed": seed}


def _clean() -> dict[str, Any]:
    clean = DirectionFaults()
    return {f: getattr(clean, f) for f in clean.__dataclass_fields__}


@contextlib.asynccontextmanager
async def device_link(config: LinkConfig | None = None) -> AsyncIterator[DeviceLink]:
    """A fresh link with a clean wire; everything it made is removed on the way out."""
    features.require("root", "netns", "iptables")
    config = config or LinkConfig()
    cleanup_leftovers(config.name_prefix)  # of runs that were killed before they could clean up
    topology = await create_topology(config)
    _OPEN.update(topology.namespaces)
    link = DeviceLink(topology)
    try:
        await rules.apply(topology.wire_netns, link.faults)
        yield link
    finally:
        try:
            # Shielded: a cancelled scenario must still take its namespaces down.
            await asyncio.shield(link._close())
        except BaseException:
            for name in topology.namespaces:
                with contextlib.suppress(PacketFaultError):
                    delete_netns_sync(name)
            raise
        finally:
            _OPEN.difference_update(topology.namespaces)

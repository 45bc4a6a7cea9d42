"""The NFQUEUE handler: holds packets and re-injects them later (delay, jitter, reordering),
drops some by a seeded generator, and may edit them with scapy.

Run inside the wire namespace (NFQUEUE queues belong to a namespace)::

    ip netns exec NS python -m simulators.packets.nfqueue --queue to_device=0 --queue to_bench=1

Control is JSON lines: the parent writes ``{"op": "set", "policies": {direction: policy}}`` or
``{"op": "stats"}`` on stdin and reads one answer line per request on stdout. The handler says
``{"ready": true}`` once its queues are bound and exits when stdin closes, letting every packet
it still holds go first, so a parent that dies never leaves it behind.

Timing: one thread, a heap of release times and ``select`` with a timeout until the earliest;
a packet's hold is counted from when the handler received it, so measured delay is the
configured one plus the wake-up latency (≈ 0.1–1 ms here).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import selectors
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulators.packets.model import Direction, QueuePolicy

if TYPE_CHECKING:
    from netfilterqueue import Packet

MAX_QUEUE_LEN = 8192


@dataclass(frozen=True)
class Decision:
    drop: bool
    hold_s: float = 0.0
    reordered: bool = False


def decide(policy: QueuePolicy, rng: random.Random) -> Decision:
    """The fate of one packet. Draws happen in a fixed order and only for faults that are on,
    so one seed gives one sequence of fates whatever else is configured."""
    if policy.loss > 0 and rng.random() < policy.loss:
        return Decision(drop=True)
    hold_ms = policy.delay_ms
    if policy.jitter_ms > 0:
        hold_ms = max(0.0, hold_ms + rng.uniform(-policy.jitter_ms, policy.jitter_ms))
    reordered = policy.reorder > 0 and rng.random() < policy.reorder
    if reordered:
        hold_ms += policy.reorder_hold_ms
    return Decision(drop=False, hold_s=hold_ms / 1000.0, reordered=reordered)


def rewrite_ip_packet(packet: bytes, old: bytes, new: bytes) -> bytes | None:
    """``packet`` (an IPv4/IPv6 datagram) with ``old`` replaced by ``new`` in its TCP or UDP
    payload and its checksums recomputed by scapy, or None when there is nothing to replace."""
    # Imported here: scapy takes about a second to import and only rewriting needs it.
    from scapy.layers.inet import IP, TCP, UDP  # noqa: PLC0415
    from scapy.layers.inet6 import IPv6  # noqa: PLC0415
    from scapy.packet import Raw  # noqa: PLC0415

    parsed = IPv6(packet) if packet[0] >> 4 == 6 else IP(packet)
    if Raw not in parsed:
        return None
    data = bytes(parsed[Raw].load)
    if old not in data:
        return None
    parsed[Raw].load = data.replace(old, new)
    # Deleted fields are recomputed when the packet is built again.
    for layer in (TCP, UDP):
        if layer in parsed:
            del parsed[layer].chksum
    if IP in parsed:
        del parsed[IP].chksum
    return bytes(parsed)


@dataclass
class Counters:
    seen: int = 0
    dropped: int = 0
    held: int = 0
    reordered: int = 0
    rewritten: int = 0
    released: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Handler:
    """Decides each packet's fate and releases held ones when due."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.policies: dict[Direction, QueuePolicy] = {}
        self._rngs: dict[Direction, random.Random] = {}
        self.counters = {d: Counters() for d in (Direction.TO_DEVICE, Direction.TO_BENCH)}
        self._held: list[tuple[float, int, Direction, Packet]] = []
        self._order = itertools.count()

    def configure(self, policies: dict[Direction, QueuePolicy]) -> None:
        for direction, policy in policies.items():
            if self.policies.get(direction) == policy:
                continue  # unchanged: keep the generator's place in its sequence
            self.policies[direction] = policy
            self._rngs[direction] = random.Random(policy.seed)
            if policy.rewrite is not None:
                _warm_scapy()

    def on_packet(self, direction: Direction, packet: Packet) -> None:
        now = self._clock()
        policy = self.policies.get(direction, QueuePolicy())
        counters = self.counters[direction]
        counters.seen += 1
        decision = decide(policy, self._rngs.setdefault(direction, random.Random()))
        if decision.drop:
            counters.dropped += 1
            packet.drop()
            return
        if policy.rewrite is not None:
            try:
                edited = rewrite_ip_packet(packet.get_payload(), *policy.rewrite)
            except Exception:  # a packet scapy cannot rebuild goes on unedited, and is counted
                counters.errors += 1
                edited = None
            if edited is not None:
                packet.set_payload(edited)
                counters.rewritten += 1
        counters.reordered += decision.reordered
        if decision.hold_s <= 0:
            counters.released += 1
            packet.accept()
            return
        counters.held += 1
        heapq.heappush(self._held, (now + decision.hold_s, next(self._order), direction, packet))

    def next_due(self) -> float | None:
        return self._held[0][0] if self._held else None

    def release_due(self, *, everything: bool = False) -> None:
        now = self._clock()
        while self._held and (everything or self._held[0][0] <= now):
            _, _, direction, packet = heapq.heappop(self._held)
            self.counters[direction].released += 1
            packet.accept()

    def stats(self) -> dict[str, Any]:
        return {
            "held_now": len(self._held),
            "directions": {str(d): c.as_dict() for d, c in self.counters.items()},
        }


def _warm_scapy() -> None:
    """Import scapy before the first packet needs it (the import takes about a second)."""
    rewrite_ip_packet(bytes(20), b"x", b"y")


def answer(handler: Handler, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        if request.get("op") == "set":
            handler.configure(
                {Direction(d): QueuePolicy.from_json(p) for d, p in request["policies"].items()}
            )
            return {"ok": True}
        if request.get("op") == "stats":
            return {"ok": True, "stats": handler.stats()}
        return {"ok": False, "error": f"unknown op in {request!r}"}
    except Exception as exc:  # the parent gets the reason; the handler keeps running
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(queues: dict[Direction, int]) -> int:
    try:
        from netfilterqueue import NetfilterQueue  # noqa: PLC0415 - a missing one is reported
    except ImportError as exc:
        say({"ready": False, "error": f"cannot import netfilterqueue: {exc}"})
        return 1
    handler = Handler()
    selector = selectors.DefaultSelector()
    bound: list[NetfilterQueue] = []
    try:
        for direction, num in queues.items():
            nfq = NetfilterQueue()
            with warnings.catch_warnings():
                # A smaller socket buffer than asked for is only a warning worth ignoring here.
                warnings.simplefilter("ignore", RuntimeWarning)
                nfq.bind(num, _callback(handler, direction), max_len=MAX_QUEUE_LEN)
            bound.append(nfq)
            selector.register(nfq.get_fd(), selectors.EVENT_READ, nfq)
    except OSError as exc:
        say({"ready": False, "error": f"cannot bind queue: {exc}"})
        return 1
    stdin = sys.stdin.buffer.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_READ, None)
    say({"ready": True, "pid": os.getpid()})
    pending = b""
    try:
        while True:
            due = handler.next_due()
            timeout = None if due is None else max(0.0, due - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.data is not None:
                    key.data.run(block=False)
                    continue
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return 0
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        say(answer(handler, line))
            handler.release_due()
    finally:
        handler.release_due(everything=True)
        for nfq in bound:
            nfq.unbind()


def _callback(handler: Handler, direction: Direction) -> Callable[[Packet], None]:
    return lambda packet: handler.on_packet(direction, packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--queue",
        action="append",
        required=True,
        metavar="DIRECTION=NUM",
        help="bind queue NUM for the packets of DIRECTION (to_device or to_bench)",
    )
    args = parser.parse_args(argv)
    queues = {}
    for item in args.queue:
        direction, _, num = item.partition("=")
        queues[Direction(direction)] = int(num)
    return serve(queues)


if __name__ == "__main__":
    sys.exit(main())

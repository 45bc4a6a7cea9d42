"""Filter rules in the wire namespace: blackhole, TCP reset, kernel loss, hand-off to NFQUEUE.

Written with ``iptables-restore`` because NFQUEUE must be reachable: this machine's kernel has
the xtables NFQUEUE target but not nft's native ``queue`` expression (FACTS.md, and
``features``), and iptables-nft drives the same nf_tables underneath. The whole filter table of
the wire namespace is replaced in one transaction on every change, so a switch between two
fault sets never lets a packet see half of each.

Each direction's rules run in this order, the first that matches deciding: blackhole (drop) →
reset (TCP RST) → loss (drop) → queue. Every rule is counted and commented
``<fault>:<direction>`` so that what the faults did can be read back as evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulators.packets.model import Direction, DirectionFaults, LinkFaults
from simulators.packets.netns import WIRE_TO_BENCH, WIRE_TO_DEVICE, run

#: Queue numbers are per network namespace, so every link may use the same two.
QUEUE_NUM = {Direction.TO_DEVICE: 0, Direction.TO_BENCH: 1}
#: Packets of each direction enter the wire's forward chain on this interface.
INGRESS = {Direction.TO_DEVICE: WIRE_TO_BENCH, Direction.TO_BENCH: WIRE_TO_DEVICE}
#: Wait this long for the xtables lock, which is shared by every namespace on the machine.
LOCK_WAIT_S = 5


def render(faults: LinkFaults) -> str:
    """The ``iptables-restore`` input that makes the wire's filter table match ``faults``."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for direction in (Direction.TO_DEVICE, Direction.TO_BENCH):
        lines += [f"-A FORWARD {rule}" for rule in direction_rules(direction, faults.of(direction))]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def direction_rules(direction: Direction, faults: DirectionFaults) -> list[str]:
    match = f"-i {INGRESS[direction]}"

    def tag(fault: str) -> str:
        return f'-m comment --comment "{fault}:{direction}"'

    rules = []
    if faults.blackhole:
        rules.append(f"{match} {tag('blackhole')} -j DROP")
    if faults.reset:
        rules.append(f"{match} -p tcp {tag('reset')} -j REJECT --reject-with tcp-reset")
    if faults.kernel_loss > 0:
        rules.append(
            f"{match} -m statistic --mode random --probability {faults.kernel_loss:.10f}"
            f" {tag('loss')} -j DROP"
        )
    if faults.needs_queue:
        # No --queue-bypass: if the handler dies, packets stop rather than the fault silently
        # vanishing.
        rules.append(f"{match} {tag('queue')} -j NFQUEUE --queue-num {QUEUE_NUM[direction]}")
    return rules


async def apply(netns: str, faults: LinkFaults) -> None:
    await run(["iptables-restore", "-w", str(LOCK_WAIT_S)], netns=netns, stdin=render(faults))


@dataclass(frozen=True)
class RuleCounter:
    fault: str  # blackhole, reset, loss, queue
    direction: Direction
    packets: int
    bytes: int


async def counters(netns: str) -> list[RuleCounter]:
    """The counters of the rules now in force (they restart whenever the faults change)."""
    out = await run(["iptables-save", "-c", "-t", "filter"], netns=netns)
    return parse_counters(out)


_COUNTED = re.compile(r'^\[(\d+):(\d+)\] -A FORWARD .*--comment "?(\w+):(\w+)"?')


def parse_counters(iptables_save: str) -> list[RuleCounter]:
    found = []
    for line in iptables_save.splitlines():
        if m := _COUNTED.match(line):
            found.append(RuleCounter(m[3], Direction(m[4]), int(m[1]), int(m[2])))
    return found

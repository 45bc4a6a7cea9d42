"""The parts that need no root: configuration, the rules written, the handler's decisions."""

from __future__ import annotations

import random

import pytest

from simulators.packets import Bandwidth, Direction, DirectionFaults, LinkConfig, LinkFaults
from simulators.packets.model import QueuePolicy
from simulators.packets.netns import owner_pid
from simulators.packets.nfqueue import Handler, decide
from simulators.packets.rules import parse_counters, render
from simulators.packets.shaping import tbf_argv


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": 1.5}, "loss must be a probability"),
        ({"reorder": -0.1}, "reorder must be a probability"),
        ({"delay_ms": -1}, "delay_ms must be a finite number"),
        ({"jitter_ms": float("inf")}, "jitter_ms must be a finite number"),
        ({"reorder": 0.2}, "reorder needs reorder_hold_ms > 0"),
        ({"rewrite": (b"PING", b"PONGS")}, "same length"),
        ({"rewrite": (b"", b"")}, "non-empty"),
    ],
)
def test_faults_are_validated_with_the_field_named(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DirectionFaults(**changes)  # type: ignore[arg-type]


def test_bandwidth_needs_a_rate_and_a_bucket_that_holds_a_frame() -> None:
    with pytest.raises(ValueError, match="kbit must be a rate > 0"):
        Bandwidth(0)
    with pytest.raises(ValueError, match="burst_bytes must hold a full frame"):
        Bandwidth(1000, burst_bytes=1000)
    assert Bandwidth(1000).bucket_bytes == 3028  # two frames beat 10 ms of 1 Mbit/s
    assert Bandwidth(100_000).bucket_bytes == 125_000  # 10 ms of 100 Mbit/s


def test_both_directions_change_together_and_one_alone() -> None:
    faults = LinkFaults().updated(Direction.BOTH, delay_ms=20)
    assert faults.to_device.delay_ms == faults.to_bench.delay_ms == 20
    faults = faults.updated(Direction.TO_BENCH, loss=0.1)
    assert faults.to_bench.loss == 0.1 and faults.to_device.loss == 0


def test_link_addresses_split_the_network_into_two_point_to_point_nets() -> None:
    assert LinkConfig().addresses() == (
        "10.212.0.1/30",
        "10.212.0.2/30",
        "10.212.0.5/30",
        "10.212.0.6/30",
    )
    with pytest.raises(ValueError, match="network must be a /29 or larger"):
        LinkConfig(network="10.212.0.0/30")
    with pytest.raises(ValueError, match="network:"):
        LinkConfig(network="10.212.0.1/29")


def test_rules_run_blackhole_then_reset_then_loss_then_queue_per_direction() -> None:
    everything = DirectionFaults(blackhole=True, reset=True, loss=0.25, delay_ms=10)
    script = render(LinkFaults(to_device=everything))
    rules = [line for line in script.splitlines() if line.startswith("-A FORWARD")]
    assert rules == [
        '-A FORWARD -i to-bench -m comment --comment "blackhole:to_device" -j DROP',
        '-A FORWARD -i to-bench -p tcp -m comment --comment "reset:to_device"'
        " -j REJECT --reject-with tcp-reset",
        "-A FORWARD -i to-bench -m statistic --mode random --probability 0.2500000000"
        ' -m comment --comment "loss:to_device" -j DROP',
        '-A FORWARD -i to-bench -m comment --comment "queue:to_device" -j NFQUEUE --queue-num 0',
    ]
    assert script.startswith("*filter\n") and script.endswith("COMMIT\n")


def test_a_clean_wire_has_no_rules_and_seeded_loss_goes_to_the_queue() -> None:
    assert "-A FORWARD" not in render(LinkFaults())
    seeded = render(LinkFaults(to_bench=DirectionFaults(loss=0.25, seed=1)))
    assert "statistic" not in seeded
    assert "-i to-device" in seeded and "--queue-num 1" in seeded


def test_only_faults_that_need_the_handler_send_packets_to_it() -> None:
    assert not DirectionFaults(loss=0.5, reset=True, blackhole=True).needs_queue
    assert not DirectionFaults(seed=3).needs_queue  # a seed alone changes nothing
    assert DirectionFaults(loss=0.5, seed=3).needs_queue
    assert DirectionFaults(delay_ms=1).needs_queue
    assert DirectionFaults(reorder=0.1, reorder_hold_ms=5).needs_queue
    assert DirectionFaults(rewrite=(b"a", b"b")).needs_queue


def test_queue_policies_cross_to_the_handler_as_json() -> None:
    policy = QueuePolicy(loss=0.1, delay_ms=5, jitter_ms=2, seed=9, rewrite=(b"\x00A", b"\xffB"))
    assert QueuePolicy.from_json(policy.to_json()) == policy


def test_the_same_seed_gives_the_same_fates() -> None:
    policy = QueuePolicy(loss=0.3, delay_ms=20, jitter_ms=5, reorder=0.2, reorder_hold_ms=10)
    rng_a, rng_b = random.Random(42), random.Random(42)
    first = [decide(policy, rng_a) for _ in range(500)]
    second = [decide(policy, rng_b) for _ in range(500)]
    assert first == second
    kept = [d for d in first if not d.drop]
    assert 0.22 < 1 - len(kept) / 500 < 0.38
    plain = [d.hold_s for d in kept if not d.reordered]
    assert min(plain) >= 0.015 and max(plain) <= 0.025  # 20 ± 5 ms
    assert all(0.025 <= d.hold_s <= 0.035 for d in kept if d.reordered)  # 10 ms more


def test_jitter_never_makes_a_negative_hold() -> None:
    policy = QueuePolicy(delay_ms=1, jitter_ms=50)
    rng = random.Random(1)
    assert all(decide(policy, rng).hold_s >= 0 for _ in range(200))


class FakePacket:
    def __init__(self) -> None:
        self.verdicts: list[str] = []

    def accept(self) -> None:
        self.verdicts.append("accept")

    def drop(self) -> None:
        self.verdicts.append("drop")


def test_the_handler_releases_held_packets_when_due_and_all_at_exit() -> None:
    now = [100.0]
    handler = Handler(clock=lambda: now[0])
    handler.configure({Direction.TO_DEVICE: QueuePolicy(delay_ms=50)})
    early, late = FakePacket(), FakePacket()
    handler.on_packet(Direction.TO_DEVICE, early)  # type: ignore[arg-type]
    now[0] += 0.030
    handler.on_packet(Direction.TO_DEVICE, late)  # type: ignore[arg-type]
    assert handler.next_due() == pytest.approx(100.050)
    now[0] = 100.049
    handler.release_due()
    assert early.verdicts == []
    now[0] = 100.050
    handler.release_due()
    assert early.verdicts == ["accept"] and late.verdicts == []
    handler.release_due(everything=True)
    assert late.verdicts == ["accept"]
    assert handler.stats()["held_now"] == 0


def test_tbf_is_set_on_the_wire_egress_toward_the_receiver() -> None:
    assert tbf_argv("ns", Direction.TO_DEVICE, Bandwidth(2000)) == [
        "tc", "-n", "ns", "qdisc", "replace", "dev", "to-device", "root", "tbf",
        "rate", "2000000bit", "burst", "3028", "latency", "50000us",
    ]  # fmt: skip
    assert tbf_argv("ns", Direction.TO_BENCH, None) == [
        "tc", "-n", "ns", "qdisc", "del", "dev", "to-bench", "root",
    ]  # fmt: skip


def test_rule_counters_are_read_back_from_iptables_save() -> None:
    saved = (
        "*filter\n"
        ":FORWARD ACCEPT [0:0]\n"
        "[12:1008] -A FORWARD -i to-bench -m statistic --mode random --probability 0.25"
        ' -m comment --comment "loss:to_device" -j DROP\n'
        "[3:180] -A FORWARD -i to-device -m comment --comment queue:to_bench -j NFQUEUE\n"
        "COMMIT\n"
    )
    counted = parse_counters(saved)
    assert [(c.fault, c.direction, c.packets, c.bytes) for c in counted] == [
        ("loss", Direction.TO_DEVICE, 12, 1008),
        ("queue", Direction.TO_BENCH, 3, 180),
    ]


def test_namespace_names_carry_their_owner_pid() -> None:
    assert owner_pid("cb-4242-a1b2c3-w") == 4242
    assert owner_pid("cb-4242") is None
    assert owner_pid("other-4242-a1b2c3-w") is None
    assert owner_pid("cb-x42-a1b2c3-w") is None

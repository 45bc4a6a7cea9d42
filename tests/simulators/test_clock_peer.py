"""Virtual time led across processes: a peer that is still working holds time still, and its
sleepers' deadlines are stops on the way."""

from __future__ import annotations

import asyncio
import socket

import pytest

from simulators.clock import VirtualClock
from simulators.clock_peer import LoopTraffic

pytestmark = pytest.mark.anyio

T0 = 1_767_225_600.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Peer:
    """A peer in this process: it settles after ``work`` wall seconds, its sleepers as given."""

    def __init__(self, deadlines: list[float], *, work: float = 0.01) -> None:
        self.deadlines = deadlines
        self.work = work
        self.sent = 0  # what was sent to it
        self.settled_at: int | None = None
        self.settles = 0
        self.advanced: list[float] = []
        self.while_settling: list[int] = []  # what to send it during its next settles

    def stirred(self) -> bool:
        return self.settled_at != self.sent

    async def settle(self) -> float | None:
        mark = self.sent
        self.settles += 1
        await asyncio.sleep(self.work)  # wall time: it works while time stands still
        if self.while_settling:
            self.sent += self.while_settling.pop(0)
        self.settled_at = mark
        return self.deadlines[0] if self.deadlines else None

    def advance(self, monotonic: float, *, due: bool) -> None:
        self.advanced.append(monotonic)
        assert due == bool(self.deadlines and self.deadlines[0] <= monotonic)
        if due:
            self.deadlines.pop(0)
            self.sent += 1  # a woken sleeper is work


async def test_time_stops_at_a_peers_deadline_on_its_way_to_its_own() -> None:
    clock = VirtualClock(T0)
    peer = Peer([10.0, 25.0])
    peer.sent = 1  # it has something to do from the start
    clock.lead(peer)

    await clock.sleep(60)

    assert clock.monotonic() == 60
    assert peer.advanced == [10.0, 25.0, 60.0]
    # asked once at the start and once after each sleeper of its woke; never while quiet
    assert peer.settles == 3


async def test_a_peer_sent_something_while_it_settled_is_asked_again_before_time_moves() -> None:
    clock = VirtualClock(T0)
    peer = Peer([])
    peer.sent = 1
    peer.while_settling = [1, 1]  # bytes reach it twice while it answers
    clock.lead(peer)

    await clock.sleep(5)

    assert peer.settles == 3 and peer.advanced == [5.0]


async def test_a_quiet_peer_costs_no_question() -> None:
    clock = VirtualClock(T0)
    peer = Peer([])
    stop = clock.lead(peer)
    peer.settled_at = peer.sent  # settled, and nothing was sent since

    for _ in range(10):
        await clock.sleep(60)

    assert peer.settles == 0 and peer.advanced == [60.0 * n for n in range(1, 11)]
    stop()
    await clock.sleep(1)
    assert len(peer.advanced) == 10


async def test_the_loops_traffic_counts_every_event_it_handled_but_the_ignored_ones() -> None:
    """What the bench's loop may have sent a follower the whole bench talks to: anything it
    handled may have made it send (a meter answering a request), except the control line."""
    traffic = LoopTraffic.of()
    assert LoopTraffic.of() is traffic  # one count per loop, shared by its followers
    meter, terminal = socket.socketpair()
    control, follower = socket.socketpair()
    meter_reader, meter_writer = await asyncio.open_connection(sock=meter)
    control_reader, control_writer = await asyncio.open_connection(sock=control)
    counted_again = traffic.ignore(control.fileno())
    try:
        before = traffic.events
        follower.send(b'{"deadline": null}\n')  # a settle's answer: no news
        await control_reader.readline()
        assert traffic.events == before

        terminal.send(b"request\n")  # something the bench may answer
        await meter_reader.readline()
        assert traffic.events > before

        counted_again()
        before = traffic.events
        follower.send(b"again\n")
        await control_reader.readline()
        assert traffic.events > before
    finally:
        for writer in (meter_writer, control_writer):
            writer.close()
        terminal.close()
        follower.close()

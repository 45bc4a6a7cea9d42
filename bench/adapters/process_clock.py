"""The rig's virtual clock leading a terminal that runs as a process of its own, through its
power cycles (``bench.adapters.process``).

The terminal follows with ``python -m reference_terminal --follow-clock DIR``
(``common.clock_follower``): it reads the time the rig's clock writes into ``DIR/time``, keeps
its own sleepers, and answers ``settle`` on the control line once its loop and threads wait.
:class:`ProcessFollower` is one :class:`~simulators.clock.Peer` for the run's whole life,
attached to each boot's control line and detached at each cut, so the clock never asks a
dead process (a cut may fall while it waits for an answer).

**Stirred.** The terminal talks to the whole bench: the meters over loopback sockets and ptys,
the centres through their fault proxies (or a mutation's relay), the management client, the
MQTT broker the meters publish through. No one byte count covers all that, so the traffic
counted is what the bench's own loop did: every I/O event its selector handed it
(``simulators.clock_peer.LoopTraffic``, the control line left out) and every step of the clock
(a sleeper it woke may have sent something). Whatever the bench sends the terminal, it sends
from code run because of one of those; a byte sent is in the terminal's socket, or handed
over to its pty end (the serial lines' own watch makes the kernel do so before a step), by
the time the terminal is asked to settle, and its settle sees it. The price: the terminal is
asked to settle at nearly every step, a round trip of a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common.clock_follower import FollowDirectory, FollowSettings, SharedTime
from conformance.dut import DutError
from simulators.clock import VirtualClock
from simulators.clock_peer import LoopTraffic, PeerError, ProcessPeer

log = logging.getLogger(__name__)

#: Wall seconds between looks for the control socket while the process boots.
CONNECT_POLL_S = 0.02


class ProcessFollower:
    """The terminal process's time under ``clock`` (a Peer of it from construction to
    :meth:`close`). ``offset``: how far the terminal's battery-backed clock runs ahead of the
    rig's (``Dut.age``), given to each boot."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        # short: a Unix socket's path has at most 107 bytes, a run directory may be long
        self.directory = FollowDirectory(Path(tempfile.mkdtemp(prefix="carbench-clock-")))
        self.shared = SharedTime(self.directory.time_file, create=True)
        self.shared.write(clock.monotonic())
        self.offset = 0.0
        self._traffic = LoopTraffic.of()
        self._peer: ProcessPeer | None = None
        self._counted_again: Callable[[], None] | None = None
        #: A boot or a cut since it last settled: asked again (a dead boot's deadline goes).
        self._boots = 0
        self._settled_boot = 0
        #: Times it was asked to settle (for the run's manifest: the price of leading it).
        self.settles = 0
        #: Steps its own clock forced, over the boots counted (:meth:`count_forced`).
        self.forced_steps = 0
        self._stop_leading = clock.lead(self)

    @property
    def attached(self) -> bool:
        return self._peer is not None

    def prepare(self) -> None:
        """Before a boot: the time and the clock's settings it starts from."""
        self.shared.write(self.clock.monotonic())
        epoch = self.clock.time() - self.clock.monotonic() + self.offset
        settings = FollowSettings(epoch=epoch, stuck_after_s=self.clock.stuck_after_s)
        self.directory.write_settings(settings)

    async def attach(self, alive: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Connect to the booting process's control line and have it settle once: booted.
        ``alive()`` says whether the process still runs (one that died will never answer)."""
        deadline = time.monotonic() + timeout_s
        peer = ProcessPeer(self.directory.control, self.shared)
        while True:
            if not alive():
                raise DutError(f"{what} stopped while booting")
            if self.directory.control.exists():
                with contextlib.suppress(ConnectionError, FileNotFoundError):
                    await peer.connect()
                    break
            if time.monotonic() > deadline:
                raise DutError(f"{what}: its control line did not answer within {timeout_s:g} s")
            await asyncio.sleep(CONNECT_POLL_S)  # it boots in wall time; the clock is held
        fd = peer.control_fd
        if fd is not None:
            self._counted_again = self._traffic.ignore(fd)
        peer.traffic(lambda: (self.clock.steps, self._traffic.events))
        try:
            await peer.settle()
        except (PeerError, OSError) as exc:
            await peer.close()
            raise DutError(f"{what}: its control line broke while booting: {exc}") from exc
        self._peer = peer
        self._boots += 1

    async def count_forced(self) -> None:
        """Add the running boot's forced steps (its time moved although a thread of it still
        looked busy, after ``stuck_after_s``) to :attr:`forced_steps`; before a cut or a stop."""
        peer = self._peer
        if peer is None:
            return
        try:
            answer = await peer.request(op="clock")
        except (PeerError, OSError):  # it died by itself: its count went with it
            return
        self.forced_steps += int(answer.get("forced_steps", 0))

    async def detach(self) -> None:
        """The process is gone (cut, stopped, or dead by itself): time no longer waits for it."""
        peer, self._peer = self._peer, None
        self._boots += 1
        if self._counted_again is not None:
            self._counted_again()
            self._counted_again = None
        if peer is not None:
            await peer.close()

    def close(self) -> None:
        self._stop_leading()
        self.shared.close()
        shutil.rmtree(self.directory.path, ignore_errors=True)

    # ---- the Peer protocol ---------------------------------------------------------------
    def stirred(self) -> bool:
        if self._settled_boot != self._boots:
            return True
        return self._peer is not None and self._peer.stirred()

    async def settle(self) -> float | None:
        peer, boot = self._peer, self._boots
        deadline = None
        if peer is not None:
            self.settles += 1
            try:
                deadline = await peer.settle()
            except (PeerError, OSError) as exc:
                # It died under the question (a cut lands while the clock waits for its
                # answer, or it stopped by itself): nothing of it is left to wait for.
                if self._peer is peer:
                    log.warning("the terminal's control line broke: %s", exc)
                    await self.detach()
                return None
        self._settled_boot = boot
        return deadline

    def advance(self, monotonic: float, *, due: bool) -> None:
        self.shared.write(monotonic)  # also while it is off: the next boot reads it
        if self._peer is not None:
            self._peer.advance(monotonic, due=due)

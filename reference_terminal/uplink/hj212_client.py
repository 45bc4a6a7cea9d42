"""One HJ 212 data centre: an asyncio TCP client driving an :class:`UplinkSession`.

- Connects, and after a refusal or a lost link reconnects with exponential backoff and jitter
  (``retry.py``), reset once the centre acknowledges a frame.
- Uploads with Flag A=1; OverTime/ReCount resends are the session's; after ReCount failures the
  link counts as down (HJ 212-2017 表 1): the connection is closed and made again.
- What is sent, per connection: at most ``outbox.window`` frames in flight; *live* frames
  (enqueued since the connection came up) take the first free place, so the schedule holds;
  the *backlog* (everything the outbox held when it came up) fills the others oldest-first
  (ISC-2 §7.2.4(5): backfill in the next upload window without starving live data). Before
  the backlog is taken, ``on_connected`` is awaited: the producer builds the frames that waited
  for the link (``Producer.catch_up``), so that they go with the backlog, oldest first.
- Answers platform requests through ``commands.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.clock import Clock
from protocols.hj212 import EDITIONS, DecodeOptions, SessionConfig, Sm4CpCipher
from protocols.hj212 import events as ev
from reference_terminal.config import Hj212Centre
from reference_terminal.tasks import first_of
from reference_terminal.uplink.commands import Commands
from reference_terminal.uplink.frames import local_time
from reference_terminal.uplink.outbox import START, BacklogCursor, Entry, Feed, Outbox
from reference_terminal.uplink.retry import Backoff
from reference_terminal.uplink.session import UplinkSession
from reference_terminal.uplink.settings import CentreSettings

log = logging.getLogger(__name__)

#: Backlog entries read from the store at a time.
BACKLOG_CHUNK = 256


async def _nothing() -> None:
    pass


class LinkLost(Exception):
    """The connection ended: closed by the centre, or down after ReCount retries (表 1)."""


@dataclass
class ClientStatus:
    """What the management API shows about a centre's link."""

    connected: bool = False
    connects: int = 0
    connect_failures: int = 0
    last_error: str = ""
    sent: int = 0  # uploads started (a frame resent on a new connection counts again)
    resent: int = 0  # of which frames sent before (same QN)
    acknowledged: int = 0
    in_flight: int = 0
    backlog_left: bool = False
    history_requests: int = 0
    protocol_errors: int = 0
    restarts: int = 0  # after an unexpected failure of the centre's producer or client
    last_ack_at: float | None = None
    events: list[str] = field(default_factory=list)  # recent link events, newest last


class _Link:
    """One connection's state."""

    def __init__(self, session: UplinkSession, feed: Feed) -> None:
        self.session = session
        self.feed = feed
        self.boundary = feed.boundary  # entries with id ≤ boundary are the backlog
        self.live = feed.live  # the outbox appends the entries enqueued past it
        self.backlog: deque[Entry] = deque()
        self.backlog_cursor: BacklogCursor = START
        self.backlog_done = feed.boundary == 0
        self.in_flight: dict[str, Entry] = {}
        self.wake = feed.wake
        self.kick = asyncio.Event()  # the timer's earliest deadline may have moved
        self.tasks: set[asyncio.Task[None]] = set()  # commands being answered


class Hj212Client:
    def __init__(
        self,
        centre: Hj212Centre,
        outbox: Outbox,
        commands: Commands,
        settings: CentreSettings,
        clock: Clock,
        *,
        utc_offset_s: int,
        backoff: Backoff | None = None,
    ) -> None:
        self.centre = centre
        self.outbox = outbox
        self.commands = commands
        self.settings = settings
        self.clock = clock
        self.utc_offset_s = utc_offset_s
        self.backoff = backoff or Backoff(centre.backoff)
        self.status = ClientStatus()
        #: Awaited on each connection before its backlog is taken: the producer builds the
        #: frames that waited for the link, so that they go as backlog, oldest first.
        self.on_connected: Callable[[], Awaitable[None]] = _nothing
        self._link: _Link | None = None
        self._writer: asyncio.StreamWriter | None = None
        cipher = None if centre.cp_key is None else Sm4CpCipher(bytes.fromhex(centre.cp_key))
        self._decode = DecodeOptions(cp_cipher=cipher)

    # ---- the outside ---------------------------------------------------------------------
    def timing_changed(self) -> None:
        if self._link is not None:
            self._link.kick.set()

    def _now(self) -> datetime:
        return local_time(self.clock.time(), self.utc_offset_s)

    def _note(self, text: str) -> None:
        self.status.events = [*self.status.events[-19:], text]

    # ---- connecting ----------------------------------------------------------------------
    async def run(self) -> None:
        c = self.centre
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # arrives as a refused connection fails, and shutdown then never ends. Loop
                # time, not the clock's: under a bench's virtual time a timer on the clock
                # would fire as soon as the clock saw everything else wait, the connect
                # still under way
                async with asyncio.timeout(c.connect_timeout_s):
                    reader, writer = await asyncio.open_connection(c.host, c.port)
            except (OSError, TimeoutError) as exc:
                self.status.connect_failures += 1
                self.status.last_error = f"connect to {c.host}:{c.port}: {exc or 'timed out'}"
                delay = self.backoff.next()
                log.info("uplink %s: %s; retry in %.1f s", c.name, self.status.last_error, delay)
                await self.clock.sleep(delay)
                continue
            self.status.connects += 1
            self.status.connected = True
            self._note("connected")
            try:
                await self._serve(reader, writer)
            except LinkLost as exc:
                self.status.last_error = str(exc)
                self._note(f"link lost: {exc}")
                log.info("uplink %s: %s", c.name, exc)
            finally:
                self.status.connected = False
                self.status.in_flight = 0
                if self._link is not None:
                    self.outbox.close_feed(self._link.feed)
                self._link = None
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await self.clock.sleep(self.backoff.next())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.outbox.flush()  # acknowledged frames must not come back as backlog
        await self.on_connected()
        config = SessionConfig(
            mn=self.centre.mn,
            pw=self.centre.pw,
            st=self.centre.st,
            edition=EDITIONS[self.centre.edition],
            over_time=float(self.settings.over_time_s),
            re_count=self.settings.re_count,
            decode=self._decode,
        )
        session = UplinkSession(config, self.outbox.qns)
        link = _Link(session, await self.outbox.open_feed())
        self._link, self._writer = link, writer
        # asyncio.wait rather than a TaskGroup: Python 3.11's TaskGroup leaves the parent
        # "cancelling" after a child fails, which would hide a real cancellation from us.
        tasks = {
            asyncio.create_task(self._read(reader, link), name="hj212 read"),
            asyncio.create_task(self._timers(link), name="hj212 timers"),
            asyncio.create_task(self._dispatch(link), name="hj212 dispatch"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks | link.tasks:
                task.cancel()
            await asyncio.gather(*tasks, *link.tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if isinstance(error, LinkLost | ConnectionError):
                raise LinkLost(str(error) or type(error).__name__) from None
            if error is not None:
                raise error
        raise LinkLost("connection tasks ended")  # pragma: no cover - they loop until failure

    def _flush(self, link: _Link) -> None:
        data = link.session.data_to_send()
        if data and self._writer is not None and link is self._link:
            self._writer.write(data)

    # ---- receiving -----------------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise LinkLost("connection closed by the centre")
            link.session.receive_data(data, self._now())
            self._events(link)
            self._flush(link)

    def _spawn(self, link: _Link, work: Coroutine[Any, Any, None]) -> None:
        """Run a command's answer beside the link; a failure is logged, the link stays."""
        task = asyncio.create_task(work)
        link.tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            link.tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("uplink %s: command failed: %r", self.centre.name, task.exception())

        task.add_done_callback(done)

    def _events(self, link: _Link) -> None:
        for event in link.session.events():
            if isinstance(event, ev.UploadAcknowledged):
                entry = link.in_flight.pop(event.qn, None)
                if entry is None:
                    continue
                self.outbox.acknowledge(entry.id)
                self.status.acknowledged += 1
                self.status.last_ack_at = self.clock.time()
                self.backoff.reset()  # the link has proved itself
                link.wake.set()
            elif isinstance(event, ev.UploadFailed):
                # stays in the outbox; LinkDown follows and the next connection resends it
                self._note(f"no 9014 for QN {event.qn} after {event.attempts} tries")
            elif isinstance(event, ev.LinkDown):
                raise LinkLost(
                    f"no 9014 after {link.session.config.re_count} retries "
                    f"{link.session.config.over_time:g} s apart: link down (HJ 212-2017 表 1)"
                )
            elif isinstance(event, ev.RequestReceived):
                request = event.request
                if request.cn in (2031, 2051, 2061):
                    self.status.history_requests += 1

                async def flush(link: _Link = link) -> None:
                    self._flush(link)
                    if self._writer is not None:
                        await self._writer.drain()

                self._spawn(link, self.commands.handle(link.session, request, flush))
            elif isinstance(event, ev.NotificationReceived) and event.packet.cn == 2012:
                self._spawn(link, self.commands.stop_realtime(event.packet))
            elif isinstance(event, ev.ProtocolError | ev.RequestRefused | ev.UnexpectedPacket):
                self.status.protocol_errors += 1
                self._note(f"{type(event).__name__}: {event}")
                log.warning("uplink %s: %s", self.centre.name, event)

    # ---- OverTime ------------------------------------------------------------------------
    async def _timers(self, link: _Link) -> None:
        while True:
            link.kick.clear()
            deadline = link.session.next_deadline()
            if deadline is None:
                await link.kick.wait()
                continue
            delay = (deadline - self._now()).total_seconds()
            if delay > 0:
                await first_of(self.clock.sleep(delay), link.kick.wait())
                continue
            link.session.handle_timer(self._now())
            self._events(link)
            self._flush(link)

    # ---- sending -------------------------------------------------------------------------
    async def _dispatch(self, link: _Link) -> None:
        window = self.centre.outbox.window
        while True:
            link.wake.clear()
            batch: list[Entry] = []
            while len(link.in_flight) + len(batch) < window:
                if link.live:  # live frames first: the schedule holds during a backfill
                    batch.append(link.live.popleft())
                    continue
                if not batch and len(link.in_flight) > window // 2:
                    # the backlog refills half a window at once: each refill is a store
                    # transaction (the QNs given), and acknowledgements come one by one
                    break
                if not link.backlog and not link.backlog_done:
                    await self._load_backlog(link)
                if not link.backlog:
                    break
                batch.append(link.backlog.popleft())
            self.status.backlog_left = bool(link.backlog) or not link.backlog_done
            if not batch:
                await link.wake.wait()
                continue
            resent = {e.id for e in batch if e.qn is not None}
            batch = await self.outbox.assign_qns(batch)
            now = self._now()
            for entry in batch:
                assert entry.qn is not None
                cp = entry.frame.cp(self.utc_offset_s)
                link.session.upload_as(entry.frame.cn, cp, entry.qn, now, resent=entry.id in resent)
                link.in_flight[entry.qn] = entry
            self.status.sent += len(batch)
            self.status.resent += len(resent)
            self.status.in_flight = len(link.in_flight)
            self._flush(link)
            link.kick.set()
            if self._writer is not None:
                await self._writer.drain()

    async def _load_backlog(self, link: _Link) -> None:
        chunk = await self.outbox.load(link.backlog_cursor, link.boundary, BACKLOG_CHUNK)
        if len(chunk) < BACKLOG_CHUNK:
            link.backlog_done = True
        if chunk:
            link.backlog_cursor = chunk[-1].frame.data_time, chunk[-1].id
            link.backlog.extend(chunk)

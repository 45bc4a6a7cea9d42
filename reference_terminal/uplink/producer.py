"""Turning stored data into a centre's frames, on the centre's schedule, exactly once.

Each stream has a cursor in the centre's upload state: for minute/hour/day/month data the last
``derived_values`` id taken (ids grow in commit order), for real-time data the last sampling
instant sent. A scan reads what lies past the cursor, builds the frames, inserts them into the
outbox and moves the cursor, all in one store transaction: whatever the store holds is either
behind the cursor and in the outbox (or acknowledged), or ahead of it and taken next time — a
kill at any instant loses nothing and enqueues nothing twice.

A period's rows that are committed after its frame was built (a late window) go in a second
frame with the same DataTime and the other codes; a platform merges by (MN, CN, DataTime, code).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection, select

from common.clock import Clock
from reference_terminal.config import CentreBase
from reference_terminal.model import Reading
from reference_terminal.storage.schema import (
    derived_top_id,
    derived_values,
    readings,
    row_derived,
    row_reading,
)
from reference_terminal.storage.store import Store
from reference_terminal.tasks import first_of
from reference_terminal.uplink.derived_scan import shared_reads
from reference_terminal.uplink.frames import (
    STREAM_CN,
    STREAM_KINDS,
    Coding,
    Frame,
    Stream,
    period_frames,
    realtime_frame,
)
from reference_terminal.uplink.outbox import (
    LIVE,
    Entry,
    Outbox,
    get_state,
    insert,
    room,
    set_state,
)
from reference_terminal.uplink.settings import CentreSettings
from reference_terminal.uplink.signing import RecordSigner

log = logging.getLogger(__name__)

#: Missed real-time instants made up after a long stop: one week (CPCIF §8.3); older ones are
#: left out (their minute/hour/day data still goes).
REALTIME_CATCH_UP_S = 7 * 86400
#: Real-time data is built this long after its instant (CPCIF §6.1: latency ≤ 2 s).
REALTIME_DELAY_S = 1.0
SCAN_EVERY_S = 60
#: How often the frames of an HJ 212 centre whose link is down are built: none can be sent,
#: and each scan is a store transaction with its sync; the client has the producer build what
#: is due as soon as the link is back, before it takes its backlog (``catch_up``). A 48-hour
#: outage: 288 scans a centre instead of 2 880, and one frame a minute instead of two (built
#: on the minute, a minute's frame had only the windows closed by then, the rest came later).
UNLINKED_SCAN_EVERY_S = 600


@dataclass(frozen=True, slots=True)
class Scan:
    entries: list[Entry]
    full: bool = False  # the outbox had no room: the cursor stayed
    more: bool = False  # a full chunk was taken: scan again


def _cursor_key(stream: Stream) -> str:
    return f"cursor.{stream.value}"


def next_tick(after: float, interval_s: int, utc_offset_s: int) -> float:
    """The first instant after ``after`` on the ``interval_s`` grid of plant-local time."""
    k = math.floor((after + utc_offset_s) / interval_s) + 1
    return k * interval_s - utc_offset_s


class Producer:
    """Builds a centre's frames from the store and puts them in its outbox."""

    def __init__(
        self,
        centre: CentreBase,
        coding: Coding,
        store: Store,
        clock: Clock,
        outbox: Outbox,
        settings: CentreSettings,
        *,
        utc_offset_s: int,
        grace_s: float,
        signer: RecordSigner | None = None,
    ) -> None:
        self.centre = centre
        self.coding = coding
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.settings = settings
        self.utc_offset_s = utc_offset_s
        self.grace_s = grace_s
        #: Signs every frame built (CSMT §7.4); None: the centre gets unsigned records.
        self.signer = signer
        self.wake = asyncio.Event()  # a setting changed, or "send now"
        #: Whether the centre's link is up (its client says so, once it has one).
        self.linked: Callable[[], bool] = lambda: True
        #: Scan every ``UNLINKED_SCAN_EVERY_S`` while the link is down: only for a client that
        #: knows when it is up and has the producer ``catch_up`` then (HJ 212's connection; an
        #: HTTPS client learns it only by sending).
        self.slow_while_unlinked = False
        self._minute_done = -math.inf  # last minute boundary whose minute data was scanned
        streams = centre.streams
        self.derived_streams = [
            s
            for s, on in (
                (Stream.MINUTE, streams.minute),
                (Stream.HOUR, streams.hourly),
                (Stream.DAY, streams.daily),
                (Stream.MONTH, streams.monthly),
            )
            if on
        ]

    def cn(self, stream: Stream) -> int:
        return self.centre.streams.monthly_cn if stream is Stream.MONTH else STREAM_CN[stream]

    # ---- start -------------------------------------------------------------------------
    async def prepare(self) -> None:
        """A new centre starts from now: its cursors are set to what the store holds, before
        acquisition writes anything more (so nothing stored after this is missed)."""
        now = self.clock.time()
        tick = next_tick(now, self.settings.realtime_interval_s, self.utc_offset_s)
        last_tick = tick - self.settings.realtime_interval_s
        name = self.centre.name

        def init(conn: Connection) -> None:
            top = derived_top_id(conn)
            for stream in (Stream.MINUTE, Stream.HOUR, Stream.DAY, Stream.MONTH):
                if get_state(conn, name, _cursor_key(stream)) is None:
                    set_state(conn, name, _cursor_key(stream), str(int(top)))
            if get_state(conn, name, _cursor_key(Stream.REALTIME)) is None:
                set_state(conn, name, _cursor_key(Stream.REALTIME), repr(last_tick))

        await self.store.run_in_writer(init)

    # ---- the schedule -------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            now = self.clock.time()
            await self.produce(now)
            due = self._next_due(now)
            self.wake.clear()
            await first_of(self.clock.sleep(max(0.0, due - now)), self.wake.wait())

    async def catch_up(self) -> None:
        """The link is up: build now what is due (the scans waited while it was down) and
        plan the next scan on the linked schedule."""
        self.wake.set()
        try:
            await self.produce(self.clock.time())
        except Exception:  # the schedule builds them later; the link must not wait on it
            log.exception("uplink %s: building the frames that waited failed", self.centre.name)

    def _next_due(self, now: float) -> float:
        linked = self.linked()
        if self.slow_while_unlinked and not linked:
            # every stream, real-time data included, is built late anyway: its catch-up
            # makes up the instants missed
            return next_tick(now, UNLINKED_SCAN_EVERY_S, 0)
        # The grace lets a period's late values into its frame. While the centre cannot be
        # reached nothing is sent anyway: scan on the grid instant itself, when acquisition
        # wakes too (one wake-up a minute instead of two; a period's values stored after the
        # scan go in the next one, as late values always do).
        grace = self.grace_s if linked else 0.0
        due = next_tick(now - grace, SCAN_EVERY_S, 0) + grace
        if self.centre.streams.realtime and self.settings.realtime_on:
            interval = self.settings.realtime_interval_s
            tick = next_tick(now - REALTIME_DELAY_S, interval, self.utc_offset_s)
            due = min(due, tick + REALTIME_DELAY_S)
        return due

    async def produce(self, now: float) -> list[Entry]:
        """Enqueue everything due by ``now``; returns the entries made. The due streams' scans
        share one store transaction (one commit a minute per centre, not one per stream)."""
        scans: list[Callable[[Connection], Scan]] = []
        if self.centre.streams.realtime and self.settings.realtime_on:
            scans.append(self._realtime(now))
        minute_period = self.settings.minute_interval_min * 60
        local_boundary = math.floor((now - self.grace_s + self.utc_offset_s) / minute_period)
        minute_due = local_boundary * minute_period - self.utc_offset_s
        for stream in self.derived_streams:
            if stream is Stream.MINUTE:
                if minute_due <= self._minute_done:
                    continue
                self._minute_done = minute_due
            scans.append(self._derived(stream, now))
        return await self._scan_loop(scans)

    # ---- real-time data (2011) -----------------------------------------------------------
    def _realtime(self, now: float) -> Callable[[Connection], Scan]:
        interval = self.settings.realtime_interval_s
        points = sorted(self.coding.codes)
        name, key = self.centre.name, _cursor_key(Stream.REALTIME)
        bound = self.outbox.bound

        def scan(conn: Connection) -> Scan:
            last = float(get_state(conn, name, key) or now)
            ticks: list[float] = []
            t = next_tick(max(last, now - REALTIME_CATCH_UP_S), interval, self.utc_offset_s)
            while t + REALTIME_DELAY_S <= now and len(ticks) < 500:
                ticks.append(t)
                t += interval
            if not ticks:
                return Scan([])
            frames = []
            for tick in ticks:
                latest = _latest(conn, points, tick - interval, tick)
                frame = realtime_frame(latest, tick, self.coding)
                if frame is not None:
                    frames.append(frame)
            frames = self._signed(frames)
            space = room(conn, name, bound)
            full = len(frames) > space
            if full:  # take what fits; the cursor stops at the last instant taken
                frames = frames[:space]
                if not frames:
                    return Scan([], full=True)
            entries = insert(conn, name, frames, LIVE, now)
            last = frames[-1].data_time if full else ticks[-1]
            set_state(conn, name, key, repr(last))
            return Scan(entries, full=full, more=not full and len(ticks) == 500)

        return scan

    # ---- minute, hour, day, month data ---------------------------------------------------
    def _derived(self, stream: Stream, now: float) -> Callable[[Connection], Scan]:
        name, key, cn = self.centre.name, _cursor_key(stream), self.cn(stream)
        coding, signer, bound = self.coding, self.signer, self.outbox.bound

        def scan(conn: Connection) -> Scan:
            # what the scans of other centres in this transaction read is read once
            with shared_reads(conn) as reads:
                cursor = int(get_state(conn, name, key) or 0)
                top = reads.top()
                if top <= cursor:
                    return Scan([])
                taken = reads.taken(stream, cursor, top, cn, coding)
                frames: Sequence[Frame] = taken.frames
                payloads: Sequence[str] | None = taken.payloads
                if signer is not None:
                    frames, payloads = signer.sign_all(frames), None
                new_cursor = taken.cursor_after
                space = room(conn, name, bound)
                full = len(frames) > space
                if full:
                    # take the oldest periods that fit; the cursor stops before the first row
                    # of a period left out, so it is read again once there is room
                    left_out = {f.data_time for f in frames[space:]}
                    frames = frames[:space]
                    payloads = None if payloads is None else payloads[:space]
                    new_cursor = min(i for i, start in taken.mains if start in left_out) - 1
                    if not frames:
                        return Scan([], full=True)
                entries = insert(conn, name, frames, LIVE, now, payloads)
                set_state(conn, name, key, str(new_cursor))
                return Scan(entries, full=full, more=taken.more and not full)

        return scan

    def _signed(self, frames: list[Frame]) -> list[Frame]:
        return frames if self.signer is None else self.signer.sign_all(frames)

    async def _scan_loop(self, scans: list[Callable[[Connection], Scan]]) -> list[Entry]:
        """Run ``scans`` in one writer transaction, again for those that took a full chunk,
        until none has more or the outbox is full."""
        made: list[Entry] = []
        while scans:
            results: list[Scan] = await self.store.run_in_writer(partial(_run_all, scans))
            entries = [e for result in results for e in result.entries]
            full = any(result.full for result in results)
            if entries:
                if not full:
                    await self.outbox.report_room()
                self.outbox.delivered(entries)
                made += entries
            if full:
                await self.outbox.report_full(0, LIVE)
                break
            scans = [scan for scan, result in zip(scans, results, strict=True) if result.more]
        return made

    # ---- frames on demand (history requests, manual resend) -------------------------------
    async def frames(self, stream: Stream, start: float, end: float) -> list[Frame]:
        """Frames of ``stream`` for periods starting in ``[start, end]`` (inclusive, as
        BeginTime/EndTime are), from what the store holds now."""
        if stream is Stream.REALTIME:
            return await self._realtime_frames(start, end)
        kinds = STREAM_KINDS[stream]
        points = sorted(self.coding.codes)
        cn = self.cn(stream)

        def read(conn: Connection) -> list[Frame]:
            c = derived_values.c
            query = select(derived_values).where(
                c.kind.in_(kinds),
                c.point.in_(points),
                c.period_start >= start,
                c.period_start <= end,
            )
            rows = [row_derived(r) for r in conn.execute(query).mappings()]
            return self._signed(period_frames(rows, stream, cn, self.coding))

        return await self.store.run_in_reader(read)

    async def _realtime_frames(self, start: float, end: float) -> list[Frame]:
        interval = self.settings.realtime_interval_s
        points = sorted(self.coding.codes)

        def read(conn: Connection) -> list[Frame]:
            frames = []
            t = next_tick(start - 1e-6, interval, self.utc_offset_s)
            while t <= end:
                frame = realtime_frame(_latest(conn, points, t - interval, t), t, self.coding)
                if frame is not None:
                    frames.append(frame)
                t += interval
            return self._signed(frames)

        return await self.store.run_in_reader(read)


def _run_all(scans: list[Callable[[Connection], Scan]], conn: Connection) -> list[Scan]:
    return [scan(conn) for scan in scans]


def _latest(conn: Connection, points: Sequence[str], after: float, upto: float) -> list[Reading]:
    """Each point's last reading with ``after < t <= upto``."""
    c = readings.c
    query = (
        select(readings)
        .where(c.point.in_(points), c.t > after, c.t <= upto)
        .order_by(c.point, c.t, c.id)
    )
    last: dict[str, Reading] = {}
    for row in conn.execute(query).mappings():
        last[row["point"]] = row_reading(row)
    return list(last.values())

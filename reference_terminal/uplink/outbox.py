"""A centre's durable outbox in the terminal's store (CPCIF §8.3, ISC-2 §7.2.4(4), CSMT §7.6).

The rules that make "every reading reaches every centre" survive a power cut at any instant:

- A frame is enqueued in a store transaction *after* the one that stored the data it reports,
  together with the cursor saying how far that data has been enqueued (``producer.py``): a
  kill before that commit leaves the cursor behind, and the next start enqueues it again.
- A frame gets its QN in a durable transaction *before* it is first sent, and keeps it: a frame
  resent after a restart carries the same QN and DataTime, so a platform can de-duplicate.
- A frame leaves the outbox only when acknowledged (9014 for HJ 212, a success reply over
  HTTPS). Duplicates are possible only for frames whose acknowledgement was not yet committed.
- A link coming up sends the entries up to a boundary read from the store as backlog and those
  enqueued past it as live (:class:`Feed`). The boundary is read by the store's writer, after
  any scan already committing, and entries enqueued while it is read are kept: an entry lies on
  one side or the other, never in between (a frame once stayed in the outbox until the next
  reconnection: committed after a boundary read that had started before it, and handed on
  before that read returned).
- The outbox is bounded (≥ one week of data, checked by the configuration). Reaching the bound
  is an alarm and an audit entry; the frames not taken stay as data in the store behind the
  cursor and are enqueued once room is made: nothing is ever dropped.

The functions taking a ``Connection`` run inside the store's writer or reader threads
(``Store.run_in_writer`` / ``run_in_reader``); :class:`Outbox` is the async face for one centre.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from sqlalchemy import Connection, bindparam, func, select, tuple_

from common.clock import Clock
from protocols.hj212.packet import make_qn, qn_to_datetime
from reference_terminal.model import Event
from reference_terminal.storage.schema import uplink_outbox, uplink_state
from reference_terminal.storage.statements import (
    SQLITE_JSON_SETS,
    Prepared,
    sqlite_connection,
)
from reference_terminal.storage.store import Store
from reference_terminal.uplink.frames import Frame, local_time

log = logging.getLogger(__name__)

#: Why a frame is in the outbox.
LIVE, RESEND, CORRECTED = "live", "resend", "corrected"


class OutboxFull(Exception):
    """The centre's outbox holds its bound of frames (CPCIF §8.3 asks ≥ 1 week while
    disconnected): new frames wait in the store until the centre acknowledges older ones."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    centre: str
    frame: Frame
    origin: str
    qn: str | None
    created_at: float
    first_sent_at: float | None = None


# ---- per-centre state (cursors, last QN, settings from the platform) ---------------------------

_s = uplink_state.c
_o = uplink_outbox.c
_GET_STATE = Prepared(
    select(_s.value).where(_s.centre == bindparam("centre"), _s.key == bindparam("key")),
    ("centre", "key"),
)
_DELETE_STATE = Prepared(
    uplink_state.delete().where(_s.centre == bindparam("centre"), _s.key == bindparam("key")),
    ("centre", "key"),
)
_INSERT_STATE = Prepared(
    uplink_state.insert().values(
        centre=bindparam("v_centre"), key=bindparam("v_key"), value=bindparam("v_value")
    ),
    ("v_centre", "v_key", "v_value"),
)


def get_state(conn: Connection, centre: str, key: str) -> str | None:
    row = _GET_STATE.run(conn, centre, key).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def set_state(conn: Connection, centre: str, key: str, value: str) -> None:
    # delete + insert: one statement for every backend (no dialect-specific upsert)
    _DELETE_STATE.run(conn, centre, key)
    _INSERT_STATE.run(conn, centre, key, value)


def all_state(conn: Connection, centre: str) -> dict[str, str]:
    rows = conn.execute(select(_s.key, _s.value).where(_s.centre == centre))
    return {str(k): str(v) for k, v in rows}


# ---- rows ---------------------------------------------------------------------------------------

_COUNT = Prepared(
    select(func.count()).select_from(uplink_outbox).where(_o.centre == bindparam("centre")),
    ("centre",),
)
_MAX_ID = Prepared(select(func.max(_o.id)).where(_o.centre == bindparam("centre")), ("centre",))
_INSERT_FIELDS = ("centre", "cn", "data_time", "payload", "origin", "qn", "created_at")
_INSERT = Prepared(
    uplink_outbox.insert().values({f: bindparam(f"v_{f}") for f in _INSERT_FIELDS}),
    tuple(f"v_{f}" for f in _INSERT_FIELDS),
)


#: The state key of how many entries a centre's outbox holds, kept by every insert and delete
#: in its transaction: counting the entries read the outbox's whole index, and it grows to a
#: week of frames while a centre is unreachable (a 48-hour works-fleet run counted 10 886
#: times, 6.6 s). A store from before it has none: counted then, once.
SIZE = "outbox_size"


def count(conn: Connection, centre: str) -> int:
    size = get_state(conn, centre, SIZE)
    return _counted(conn, centre) if size is None else int(size)


def _counted(conn: Connection, centre: str) -> int:
    return int(_COUNT.run(conn, centre).fetchone()[0] or 0)


def _resize(conn: Connection, centre: str, change: int) -> None:
    """The centre's outbox has ``change`` entries more (fewer) in this transaction."""
    kept = get_state(conn, centre, SIZE)
    # without a kept size, the count already includes this transaction's change
    size = _counted(conn, centre) if kept is None else int(kept) + change
    set_state(conn, centre, SIZE, str(size))


def max_id(conn: Connection, centre: str) -> int:
    return int(_MAX_ID.run(conn, centre).fetchone()[0] or 0)


def insert(
    conn: Connection,
    centre: str,
    frames: Sequence[Frame],
    origin: str,
    now: float,
    payloads: Sequence[str] | None = None,
) -> list[Entry]:
    """``payloads``: the frames' ``Frame.payload()``, when the caller has them already."""
    if payloads is None:
        payloads = [frame.payload() for frame in frames]
    sqlite = sqlite_connection(conn)
    entries = []
    for frame, payload in zip(frames, payloads, strict=True):
        values = (centre, frame.cn, frame.data_time, payload, origin, None, now)
        if sqlite is not None:
            entry_id = _INSERT.run(conn, *values).lastrowid
        else:  # the dialect knows how to get the key back (RETURNING, lastrowid …)
            key = conn.execute(
                uplink_outbox.insert().values(dict(zip(_INSERT_FIELDS, values, strict=True)))
            ).inserted_primary_key
            assert key is not None
            entry_id = key[0]
        entries.append(Entry(int(entry_id), centre, frame, origin, None, now))
    if entries:
        _resize(conn, centre, len(entries))
    return entries


def room(conn: Connection, centre: str, bound: int) -> int:
    """How many more frames the centre's outbox takes."""
    return max(0, bound - count(conn, centre))


def try_insert(
    conn: Connection, centre: str, frames: Sequence[Frame], origin: str, now: float, bound: int
) -> list[Entry] | None:
    """Insert ``frames`` unless the outbox would then hold more than ``bound``: None."""
    if not frames:
        return []
    if count(conn, centre) + len(frames) > bound:
        return None
    return insert(conn, centre, frames, origin, now)


#: Where a backlog read stopped: the last entry's (DataTime, id).
BacklogCursor = tuple[float, int]
START: BacklogCursor = (float("-inf"), 0)
#: No ``upto_id``: larger than any id.
_NO_BOUND = 2**63 - 1

_LOAD_FIELDS = ("id", "cn", "data_time", "payload", "origin", "qn", "created_at", "first_sent_at")


def _load_statement(first: bool) -> Prepared:
    """The entries of a chunk: their keys, in the order of the (centre, DataTime, id) index
    (sorted out of every entry of the centre, a chunk of a 48-hour backlog took ~0.2 s), then
    the rows of those keys."""
    where = [_o.centre == bindparam("centre"), _o.id <= bindparam("upto")]
    names = ["centre", "upto", "limit"]
    if not first:  # past START (-inf is not a number on every backend)
        where.append(
            tuple_(_o.data_time, _o.id) > tuple_(bindparam("after_t"), bindparam("after_id"))
        )
        names[2:2] = ["after_t", "after_id"]
    keys = (
        select(_o.id)
        .where(*where)
        .order_by(_o.data_time, _o.id)
        .limit(bindparam("limit"))
        .subquery("k")
    )
    query = select(*(_o[f] for f in _LOAD_FIELDS)).join_from(
        uplink_outbox, keys, _o.id == keys.c.id
    )
    return Prepared(query, names)


_LOAD_FIRST, _LOAD_AFTER = _load_statement(True), _load_statement(False)


def load(
    conn: Connection, centre: str, after: BacklogCursor, upto_id: int | None, limit: int
) -> list[Entry]:
    """Entries with ``id <= upto_id`` past ``after``, oldest DataTime first (ISC-2 §7.2.4(5)):
    a window that closed late (a meter gap held it open) still goes before later ones."""
    upto = _NO_BOUND if upto_id is None else upto_id
    if after == START:
        rows = _LOAD_FIRST.run(conn, centre, upto, limit).fetchall()
    else:
        rows = _LOAD_AFTER.run(conn, centre, upto, after[0], after[1], limit).fetchall()
    entries = [
        Entry(
            int(id_),
            centre,
            Frame.from_row(int(cn), float(data_time), payload),
            origin,
            qn,
            float(created_at),
            None if first_sent_at is None else float(first_sent_at),
        )
        for id_, cn, data_time, payload, origin, qn, created_at, first_sent_at in rows
    ]
    entries.sort(key=lambda e: (e.frame.data_time, e.id))
    return entries


_DELETE_ONE = Prepared(
    uplink_outbox.delete().where(_o.id == bindparam("id"), _o.centre == bindparam("centre")),
    ("id", "centre"),
)


def delete(conn: Connection, centre: str, ids: Sequence[int]) -> int:
    """Delete the centre's entries ``ids`` (an id of another centre's or none stays); how many
    were deleted."""
    sqlite = sqlite_connection(conn)
    if sqlite is not None:
        before = sqlite.total_changes
        if SQLITE_JSON_SETS:  # one statement, the ids as a JSON list (see _SQLITE_ASSIGN_QNS)
            sqlite.execute(_SQLITE_DELETE, (centre, orjson.dumps(list(ids)).decode())).close()
        else:
            _DELETE_ONE.run_many(conn, [(i, centre) for i in ids])
        done = sqlite.total_changes - before
    else:
        done = 0
        for at in range(0, len(ids), 500):  # keep IN lists short on every backend
            chunk = ids[at : at + 500]
            query = uplink_outbox.delete().where(_o.centre == centre, _o.id.in_(chunk))
            done += conn.execute(query).rowcount
    if done:
        _resize(conn, centre, -done)
    return done


# ---- QNs ---------------------------------------------------------------------------------------


class QnSource:
    """QNs (``YYYYMMDDhhmmsszzz``, plant-local time, HJ 212-2017 表 3) strictly increasing for a
    centre, across restarts (the last one is stored), and valid times even when several are
    issued in one millisecond (the next millisecond, not ``…59999 + 1``)."""

    def __init__(self, last: str | None = None) -> None:
        self.last = last

    def next(self, now: datetime) -> str:
        qn = make_qn(now)
        if self.last is not None and qn <= self.last:
            qn = make_qn(qn_to_datetime(self.last) + timedelta(milliseconds=1))
        self.last = qn
        return qn


LAST_QN = "last_qn"


_ASSIGN_QN = Prepared(
    uplink_outbox.update()
    .where(_o.id == bindparam("entry"))
    .values(qn=bindparam("v_qn"), first_sent_at=bindparam("v_now")),
    ("entry", "v_qn", "v_now"),
)


#: SQLite: the QNs of many entries in one statement, the (id, QN) pairs as one JSON text. Run
#: as ``executemany``, a statement per entry, each entry waited for the interpreter lock once
#: more while the event loop was busy sending (a drain's every window of frames).
_SQLITE_ASSIGN_QNS = (
    "UPDATE uplink_outbox SET qn = json_extract(a.value, '$[1]'), first_sent_at = ?"
    " FROM json_each(?) AS a WHERE uplink_outbox.id = json_extract(a.value, '$[0]')"
)
_SQLITE_DELETE = (
    "DELETE FROM uplink_outbox WHERE centre = ? AND id IN (SELECT value FROM json_each(?))"
)


def assign_qns(
    conn: Connection, centre: str, assigned: Sequence[tuple[int, str]], last: str, now: float
) -> None:
    sqlite = sqlite_connection(conn)
    if sqlite is not None and SQLITE_JSON_SETS:
        sqlite.execute(_SQLITE_ASSIGN_QNS, (now, orjson.dumps(assigned).decode())).close()
    else:
        _ASSIGN_QN.run_many(conn, [(entry_id, qn, now) for entry_id, qn in assigned])
    set_state(conn, centre, LAST_QN, last)


# ---- a link's feed ---------------------------------------------------------------------------


@dataclass(eq=False)
class Feed:
    """What one link sends: the backlog is every entry with ``id <= boundary`` (loaded from the
    store), the live entries are those enqueued past it, appended to ``live`` as they are."""

    boundary: int = -1  # -1 while it is read: every entry enqueued meanwhile is kept
    live: deque[Entry] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, entries: Sequence[Entry]) -> None:
        self.live.extend(e for e in entries if e.id > self.boundary)
        self.wake.set()


# ---- the async face ----------------------------------------------------------------------------


@dataclass(slots=True)
class OutboxStats:
    enqueued: int = 0
    acknowledged: int = 0
    full_episodes: int = 0


class Outbox:
    """One centre's outbox. The feed of the link that is up is given every entry enqueued (the
    client sends live frames at once instead of finding them in the store later)."""

    def __init__(
        self, store: Store, centre: str, bound: int, clock: Clock, utc_offset_s: int
    ) -> None:
        self.store = store
        self.centre = centre
        self.bound = bound
        self.clock = clock
        self.utc_offset_s = utc_offset_s
        self.qns = QnSource()
        self._feed: Feed | None = None
        self.full = False
        self.stats = OutboxStats()
        self._acks: list[int] = []
        self._alarm_lock = asyncio.Lock()
        self._ack_flush: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Read the last QN issued (QNs keep increasing across restarts)."""
        self.qns.last = await self.store.run_in_reader(lambda c: get_state(c, self.centre, LAST_QN))

    async def size(self) -> int:
        return await self.store.run_in_reader(lambda c: count(c, self.centre))

    async def open_feed(self) -> Feed:
        """The feed of a link coming up (one link at a time; see the module's rules)."""
        feed = Feed()
        self._feed = feed  # from now on: nothing enqueued while the boundary is read is missed
        try:
            # by the writer: a scan it is committing, even of a producer stopped before it
            # could hand its entries on (a reconfiguration), is behind the boundary
            boundary = await self.store.run_in_writer(lambda c: max_id(c, self.centre))
        except BaseException:
            self.close_feed(feed)
            raise
        feed.boundary = boundary
        feed.live = deque(e for e in feed.live if e.id > boundary)
        return feed

    def close_feed(self, feed: Feed) -> None:
        if self._feed is feed:
            self._feed = None

    async def load(self, after: BacklogCursor, upto_id: int | None, limit: int) -> list[Entry]:
        return await self.store.run_in_reader(lambda c: load(c, self.centre, after, upto_id, limit))

    async def enqueue(self, frames: Sequence[Frame], origin: str) -> list[Entry]:
        """Enqueue frames made outside the producer (manual resend, corrected data, CSMT §7.5);
        raises :class:`OutboxFull` (after the alarm) when there is no room."""
        now = self.clock.time()
        entries = await self.store.run_in_writer(
            lambda c: try_insert(c, self.centre, frames, origin, now, self.bound)
        )
        if entries is None:
            await self.report_full(len(frames), origin)
            raise OutboxFull(
                f"centre {self.centre}: the outbox holds its bound of {self.bound} frames; "
                f"{len(frames)} {origin} frame(s) not queued (CPCIF §8.3)"
            )
        self.delivered(entries)
        return entries

    def delivered(self, entries: list[Entry]) -> None:
        """Entries committed to the outbox: count them and hand them to the link that is up."""
        if entries:
            self.stats.enqueued += len(entries)
            if self._feed is not None:
                self._feed.offer(entries)

    async def report_full(self, waiting: int, origin: str) -> None:
        """The alarm and the audit entry for a full outbox, once per episode."""
        async with self._alarm_lock:
            await self._report_full(waiting, origin)

    async def _report_full(self, waiting: int, origin: str) -> None:
        if self.full:
            return
        self.full = True
        self.stats.full_episodes += 1
        now = self.clock.time()
        details = {
            "centre": self.centre,
            "bound": str(self.bound),
            "waiting": str(waiting),
            "origin": origin,
            "clause": "CPCIF §8.3",
            "effect": "new frames stay in the store until the centre acknowledges older ones",
        }
        log.error("uplink %s: outbox full (%d frames)", self.centre, self.bound)
        await self.store.write_events(
            [
                Event(now, "alarm", details={"alarm": "uplink_outbox_full", **details}),
                Event(now, "audit", details={"action": "uplink_outbox_full", **details}),
            ]
        )

    async def report_room(self) -> None:
        async with self._alarm_lock:
            await self._report_room()

    async def _report_room(self) -> None:
        if not self.full:
            return
        self.full = False
        now = self.clock.time()
        details = {"alarm": "uplink_outbox_full", "centre": self.centre}
        await self.store.write_events([Event(now, "alarm_cleared", details=details)])

    async def assign_qns(self, entries: Sequence[Entry]) -> list[Entry]:
        """Give each entry without a QN one, durably, before it is first sent."""
        fresh = [e for e in entries if e.qn is None]
        if not fresh:
            return list(entries)
        now = self.clock.time()
        when = local_time(now, self.utc_offset_s)
        assigned = [(e.id, self.qns.next(when)) for e in fresh]
        last = self.qns.last
        assert last is not None
        await self.store.run_in_writer(lambda c: assign_qns(c, self.centre, assigned, last, now))
        qn_of = dict(assigned)
        return [
            e
            if e.qn is not None
            else Entry(e.id, e.centre, e.frame, e.origin, qn_of[e.id], e.created_at, now)
            for e in entries
        ]

    def acknowledge(self, entry_id: int) -> None:
        """The centre acknowledged this entry: delete it (acks are committed in small groups,
        one transaction at a time, so a burst of 9014 costs a few commits)."""
        self._acks.append(entry_id)
        self.stats.acknowledged += 1
        if self._ack_flush is None or self._ack_flush.done():
            self._ack_flush = asyncio.create_task(self._flush_acks(), name="outbox acks")

    async def _flush_acks(self) -> None:
        while self._acks:
            ids, self._acks = self._acks, []
            await self.store.run_in_writer(functools.partial(delete, centre=self.centre, ids=ids))

    async def flush(self) -> None:
        """Wait until every acknowledgement so far is committed."""
        while self._ack_flush is not None and not self._ack_flush.done():
            await asyncio.shield(self._ack_flush)

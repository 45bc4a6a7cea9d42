"""The record of every frame a centre received and sent: the evidence the suites judge.

Two tables and a view, through SQLAlchemy (SQLite by default, in memory or a file; PostgreSQL
or any other database with a URL):

``platform_frames``
    one row per frame, either direction: ``id`` (order of recording), ``at`` (the centre's clock,
    POSIX seconds), ``centre``, ``transport`` (``hj212``/``https``), ``conn`` (connection number
    within the centre), ``peer`` (``host:port``), ``direction`` (``in``/``out``), ``mn``, ``cn``,
    ``qn``, ``data_time`` (``YYYYMMDDhhmmss`` as on the wire), ``ok`` (decoded cleanly),
    ``error_reason``/``error`` (the codec's reason code and message), ``note`` (what the centre
    did about it: ``ack``, ``nak QnRtn=2``, ``dropped`` …), ``raw`` (the frame's text), and
    for a data record checked against its device certificate (CSMT §7.4) ``signature``
    (``verified``, ``missing`` or ``failed``; null: not checked, or not a whole record yet) with
    ``signature_error`` (why it did not verify).
``platform_readings``
    one row per factor code of each data frame received (2011/2051/2061/2031 …, and HTTPS
    uploads): ``frame_id``, ``at``, ``centre``, ``mn``, ``cn``, ``qn``, ``data_time``, ``code``,
    ``value`` (Rtd, else Avg, else Cou, else the first number: the field the checker compares),
    ``flag``, ``fields`` (every field as JSON text, exact decimals as strings) and
    ``value_field`` (the name of the field ``value`` is, so that a check compares a named field
    without decoding ``fields``; null in a record written before the column existed).
``platform_readings_dedup``
    a view: one row per (centre, MN, CN, DataTime, code) with the first copy's value and fields,
    ``copies`` (how many arrived), ``qns`` (how many distinct QNs they carried) and ``n_values``
    (how many distinct values: above 1 the copies disagree).

Writes never wait for the database: ``add_frame``/``add_readings`` append to a list that a
writer thread commits every ``flush_interval`` seconds in one transaction (at the driver's
level: on SQLite multi-row INSERTs, a frame's readings in one; elsewhere ``executemany``).
That interval is real time on purpose — it paces disk I/O, not simulated behaviour. Queries
flush first, so they see everything recorded before they were called.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any, Final, Literal

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.pool import StaticPool

from protocols.hj212.cp import Pollutant

Direction = Literal["in", "out"]

metadata = MetaData()

frames = Table(
    "platform_frames",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("centre", String(64), nullable=False),
    Column("transport", String(8), nullable=False),
    Column("conn", Integer, nullable=False),
    Column("peer", String(64), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("mn", String(64)),
    Column("cn", Integer),
    Column("qn", String(20)),
    Column("data_time", String(17)),
    Column("ok", Boolean, nullable=False),
    Column("error_reason", String(32)),
    Column("error", Text),
    Column("note", Text),
    Column("raw", Text, nullable=False),
    Column("signature", String(8)),
    Column("signature_error", Text),
)

readings = Table(
    "platform_readings",
    metadata,
    Column("frame_id", Integer, primary_key=True, autoincrement=False),
    Column("code", String(64), primary_key=True),
    Column("at", Float, nullable=False),
    Column("centre", String(64), nullable=False),
    Column("mn", String(64), nullable=False),
    Column("cn", Integer, nullable=False),
    Column("qn", String(20)),
    Column("data_time", String(17), nullable=False),
    Column("value", String(40)),
    Column("flag", String(8)),
    Column("fields", Text, nullable=False),
    Column("value_field", String(16)),
    # A check asks for one centre's minutes of an hour or a day among the millions a long run
    # has received: without it each poll scanned all of that centre's (after the full
    # profile's 48 hours, a million readings and 0.4 s per poll). The MN at the end lets a
    # check find the MNs a centre heard from, and keep to one, in the index alone.
    Index("ix_platform_readings_centre_cn_time_mn", "centre", "cn", "data_time", "mn"),
)

DEDUP_VIEW: Final = "platform_readings_dedup"
_DEDUP_SELECT: Final = """
SELECT r.centre, r.mn, r.cn, r.data_time, r.code, r.value, r.flag, r.fields,
       g.copies, g.qns, g.n_values, g.first_at, g.last_at
FROM platform_readings r JOIN (
    SELECT centre, mn, cn, data_time, code, MIN(frame_id) AS first_frame,
           COUNT(*) AS copies, COUNT(DISTINCT qn) AS qns, COUNT(DISTINCT value) AS n_values,
           MIN(at) AS first_at, MAX(at) AS last_at
    FROM platform_readings GROUP BY centre, mn, cn, data_time, code
) g ON r.frame_id = g.first_frame AND r.code = g.code
"""

#: The field a reading's ``value`` is taken from, in order of preference: 2011 carries Rtd,
#: 2051/2061/2031 carry Avg (and Cou for totals). (``_own_values`` has it written out.)
VALUE_FIELDS: Final = ("Rtd", "Avg", "Cou")


# ---- what queries return ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameRow:
    id: int
    at: float
    centre: str
    transport: str
    conn: int
    peer: str
    direction: Direction
    mn: str | None
    cn: int | None
    qn: str | None
    data_time: datetime | None
    ok: bool
    error_reason: str | None
    error: str | None
    note: str | None
    raw: str
    signature: str | None = None  # verified | missing | failed; None: not checked
    signature_error: str | None = None


@dataclass(frozen=True, slots=True)
class ReadingRow:
    frame_id: int
    at: float
    centre: str
    mn: str
    cn: int
    qn: str | None
    data_time: datetime
    code: str
    value: Decimal | None
    flag: str | None
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DedupReading:
    centre: str
    mn: str
    cn: int
    data_time: datetime
    code: str
    value: Decimal | None
    flag: str | None
    fields: Mapping[str, str]
    copies: int
    qns: int
    n_values: int
    first_at: float
    last_at: float


#: One copy of a reading as :meth:`Record.copies` lists it: (item code, DataTime text as on
#: the wire, frame id, value text, where ``value`` comes from: the index of its field in
#: :data:`VALUE_FIELDS`, None for another field or when not known, every field as the JSON
#: text recorded: :func:`fields_json`). A plain tuple: a 48-hour scenario's check reads a
#: million of them, and building a ReadingRow (its fields decoded, its value a Decimal) was
#: most of that check's time.
Copy = tuple[str, str, int, str | None, int | None, str]


@dataclass(frozen=True, slots=True)
class CopyDetail:
    """What a check reads of a copy only when it needs it: the QN (of a duplicate's copies)
    and every field (a value compared in a field other than the one ``value`` is)."""

    qn: str | None
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Received:
    """Every copy a centre received, as the set check reads it: by (MN, CN), each group's
    copies (:data:`Copy`) in DataTime order; ``details`` gives the :class:`CopyDetail` of
    copies of these groups, in the order asked."""

    groups: Mapping[tuple[str, int], Sequence[Copy]]
    details: Callable[[Sequence[Copy]], list[CopyDetail]]

    @property
    def copies(self) -> int:
        return sum(len(group) for group in self.groups.values())

    @classmethod
    def of(cls, rows: Iterable[ReadingRow]) -> Received:
        """The readings ``rows`` (every copy) in this form."""
        groups: dict[tuple[str, int], list[Copy]] = {}
        details: dict[int, CopyDetail] = {}
        for row in sorted(rows, key=lambda r: (r.data_time, r.frame_id)):
            value = None if row.value is None else str(row.value)  # str gives back the Decimal
            copy = (
                row.code,
                time_text(row.data_time),
                row.frame_id,
                value,
                None,
                fields_json(row.fields),
            )
            groups.setdefault((row.mn, row.cn), []).append(copy)
            details[id(copy)] = CopyDetail(row.qn, row.fields)  # the groups keep each alive
        return cls(groups, lambda copies: [details[id(c)] for c in copies])


_FIELDS = json.JSONDecoder()
_json = encode_basestring_ascii  # what json.dumps does to each key and text


def field_json(name: str, text: str) -> str:
    """One field as :func:`fields_json` writes it: a check looks for it in the text."""
    return field_head(name) + text_json(text)


def field_head(name: str) -> str:
    """What :func:`field_json` writes before the field's text (``text_json``): made once, for
    a field written a million times."""
    return _json(name) + ":"


#: A text as :func:`fields_json` writes it.
text_json: Final = _json


def fields_json(fields: Mapping[str, str]) -> str:
    """What ``json.dumps(fields, separators=(",", ":"))`` gives, at a sixth of the cost:
    orjson's text where it is the same (ASCII without DEL, which orjson leaves unescaped;
    json escapes both)."""
    if type(fields) is dict:  # orjson takes no other mapping
        text = orjson.dumps(fields).decode()
        if text.isascii() and "\x7f" not in text:
            return text
    return "{" + ",".join([_json(k) + ":" + _json(v) for k, v in fields.items()]) + "}"


@functools.lru_cache(maxsize=1 << 16)
def parse_data_time(text: str) -> datetime:
    # Cached: every reading of a minute window carries the same DataTime, and a long run's
    # checks parse each of them again and again.
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S")


def format_data_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def time_text(moment: datetime) -> str:
    """``moment`` as the DataTime text a check keys readings by: as on the wire, a fraction of
    a second (which no wire DataTime has) after a dot, so the texts sort as the times do."""
    whole = format_data_time(moment)
    return f"{whole}.{moment.microsecond:06d}" if moment.microsecond else whole


def text_time(text: str) -> datetime:
    """The time of a :func:`time_text` (or a wire DataTime: milliseconds are not kept)."""
    moment = parse_data_time(text)
    if len(text) > 15 and text[14] == ".":
        moment = moment.replace(microsecond=int(text[15:]))
    return moment


def _in_range(query: Select[Any], since: datetime | None, before: datetime | None) -> Select[Any]:
    """``query`` of readings kept to those whose DataTime is in ``[since, before)`` (the
    YYYYMMDDhhmmss text sorts as the time it is)."""
    column = readings.c.data_time
    if since is not None:
        query = query.where(column >= _bound(since))
    if before is not None:
        query = query.where(column < _bound(before))
    return query


def _bound(moment: datetime) -> str:
    """``moment`` as a bound on the DataTime text, whose times are whole seconds: a fraction
    rounds up, so ``>=`` and ``<`` on the text mean what they mean on the time."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return format_data_time(moment)


def reading_value(fields: Mapping[str, Decimal]) -> Decimal | None:
    for name in VALUE_FIELDS:
        if name in fields:
            return fields[name]
    return next(iter(fields.values()), None)


# ---- the record ---------------------------------------------------------------------------

_FrameTuple = tuple[Any, ...]
_ReadingBatch = tuple[int, float, str, str, int, str | None, str, Iterable[Pollutant]]


class RecordError(RuntimeError):
    """The record could not be written (the writer thread keeps the first such error)."""


class Record:
    """Frames and readings of every centre, written in batches off the event loop."""

    def __init__(
        self, url: str = "sqlite://", *, flush_interval: float = 0.05, ids: tuple[int, int] = (0, 1)
    ) -> None:
        """``ids``: (k, n), this record's frame ids are those that leave k divided by n, so
        that n processes may record into one file."""
        k, n = ids
        if not 0 <= k < n:
            raise ValueError(f"ids: {k} is not a remainder of division by {n}")
        self.url = url
        #: in this process's memory: no other process can open it
        self.in_memory = url in _MEMORY_URLS
        self.flush_interval = flush_interval
        self.engine = _engine(url)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            _upgrade(conn)
            _create_view(conn)
            last = conn.execute(select(func.max(frames.c.id))).scalar()
        first = (last or 0) + 1
        self._ids = itertools.count(first + (k - first) % n, n)
        self._additions = 0
        self._frames: list[_FrameTuple] = []
        self._readings: list[_ReadingBatch] = []
        self._pending = threading.Lock()  # guards the two lists (taken briefly, by both sides)
        self._db = threading.Lock()  # one writer at a time; keeps batches in order
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._writer = threading.Thread(
            target=self._write_loop, name="platform-record", daemon=True
        )
        self._writer.start()

    # ---- writing (called on the event loop: cheap, never blocks on I/O) ------------------
    def add_frame(
        self,
        *,
        at: float,
        centre: str,
        transport: str,
        conn: int,
        peer: str,
        direction: Direction,
        raw: str,
        mn: str | None = None,
        cn: int | None = None,
        qn: str | None = None,
        data_time: str | None = None,
        ok: bool = True,
        error_reason: str | None = None,
        error: str | None = None,
        note: str | None = None,
        signature: str | None = None,
        signature_error: str | None = None,
    ) -> int:
        """Record one frame; returns its id (readings of the frame refer to it)."""
        frame_id = next(self._ids)
        self._additions += 1
        row: _FrameTuple = (frame_id, at, centre, transport, conn, peer, direction, mn, cn, qn)
        row += (data_time, ok, error_reason, error, note, raw, signature, signature_error)
        with self._pending:
            self._frames.append(row)
        return frame_id

    def add_readings(
        self,
        frame_id: int,
        *,
        at: float,
        centre: str,
        mn: str,
        cn: int,
        qn: str | None,
        data_time: str,
        pollutants: Iterable[Pollutant],
    ) -> None:
        """The factor values of a recorded data frame (expanded into rows by the writer)."""
        self._additions += 1
        with self._pending:
            self._readings.append((frame_id, at, centre, mn, cn, qn, data_time, pollutants))

    @property
    def writer(self) -> threading.Thread:
        """The thread that writes the record (queries flush what it has not written yet)."""
        return self._writer

    @property
    def additions(self) -> int:
        """How many times a frame or a frame's readings were added (since this object was
        made): while it stays the same, what a query found is still all there is."""
        return self._additions

    def flush(self) -> None:
        """Write everything recorded so far (blocks; for queries and shutdown)."""
        self._write_pending()
        if self._error is not None:
            raise RecordError(f"the record at {self._safe_url} failed: {self._error}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._writer.join()
        self._write_pending()
        self.engine.dispose()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- queries (blocking; they flush first) ---------------------------------------------
    def frames(
        self,
        *,
        centre: str | None = None,
        mn: str | None = None,
        cn: int | None = None,
        direction: Direction | None = None,
        qn: str | None = None,
        ok: bool | None = None,
    ) -> list[FrameRow]:
        query = _equal(
            select(frames).order_by(frames.c.id),
            (frames.c.centre, centre),
            (frames.c.mn, mn),
            (frames.c.cn, cn),
            (frames.c.direction, direction),
            (frames.c.qn, qn),
            (frames.c.ok, ok),
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            FrameRow(
                id=r.id,
                at=r.at,
                centre=r.centre,
                transport=r.transport,
                conn=r.conn,
                peer=r.peer,
                direction=r.direction,
                mn=r.mn,
                cn=r.cn,
                qn=r.qn,
                data_time=None if r.data_time is None else parse_data_time(r.data_time),
                ok=bool(r.ok),
                error_reason=r.error_reason,
                error=r.error,
                note=r.note,
                raw=r.raw,
                signature=r.signature,
                signature_error=r.signature_error,
            )
            for r in rows
        ]

    def count_frames(self, *, centre: str | None = None, direction: Direction | None = None) -> int:
        query = select(func.count()).select_from(frames)
        if centre is not None:
            query = query.where(frames.c.centre == centre)
        if direction is not None:
            query = query.where(frames.c.direction == direction)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def count_readings(
        self,
        *,
        centre: str | None = None,
        mn: str | None = None,
        cn: int | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        distinct: bool = False,
    ) -> int:
        """How many readings were received, each copy of a duplicate counted unless
        ``distinct`` (then each MN, CN, code and DataTime once); only those whose DataTime is
        in ``[since, before)``, if given."""
        c = readings.c
        which: Select[Any] = (
            select(c.mn, c.cn, c.code, c.data_time).distinct() if distinct else select(c.frame_id)
        )
        which = _in_range(_equal(which, (c.centre, centre), (c.mn, mn), (c.cn, cn)), since, before)
        query = select(func.count()).select_from(which.subquery())
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def keys(
        self, *, centre: str | None = None, mn: str | None = None, cn: int | None = None
    ) -> set[tuple[str, datetime]]:
        """The distinct (code, DataTime) of the readings received: what a drain compares with
        what it is owed, without building a row per copy."""
        c = readings.c
        query = _equal(
            select(c.code, c.data_time).distinct(), (c.centre, centre), (c.mn, mn), (c.cn, cn)
        )
        with self._read() as conn:
            return {(code, parse_data_time(t)) for code, t in conn.execute(query)}

    def copies(
        self,
        *,
        centre: str,
        cn: int,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> Received:
        """Every copy of the CN ``cn`` readings ``centre`` received (DataTime in ``[since,
        before)``, chosen as ``readings`` chooses) as the set check reads them: plain rows, one
        query per MN found, QNs and fields only when the check asks (``Received.details``)."""
        bounds = []
        if since is not None:
            bounds.append(("data_time >= ", _bound(since)))
        if before is not None:
            bounds.append(("data_time < ", _bound(before)))
        with self._read() as conn:
            mark = _mark(conn)
            where = f"centre = {mark} AND cn = {mark}" + "".join(
                f" AND {test}{mark}" for test, _ in bounds
            )
            params = (centre, cn, *(bound for _, bound in bounds))
            cursor = conn.connection.cursor()  # the driver's own rows: tuples, nothing wrapped
            try:
                cursor.execute(f"SELECT DISTINCT mn FROM {readings.name} WHERE {where}", params)
                mns = sorted(mn for (mn,) in cursor.fetchall())
                groups: dict[tuple[str, int], Sequence[Copy]] = {}
                for mn in mns:
                    cursor.execute(
                        f"SELECT code, data_time, frame_id, value, {_FIELD_INDEX}, fields"
                        f" FROM {readings.name} WHERE {where} AND mn = {mark}"
                        " ORDER BY data_time",
                        (*params, mn),
                    )
                    groups[(mn, cn)] = cursor.fetchall()
            finally:
                cursor.close()
        return Received(groups, self._details)

    def _details(self, copies: Sequence[Copy]) -> list[CopyDetail]:
        """The QN and fields of ``copies`` (of :meth:`copies`: a frame id and code are one)."""
        found: dict[tuple[int, str], CopyDetail] = {}
        frame_ids = sorted({c[2] for c in copies})
        c = readings.c
        with self._read() as conn:
            for start in range(0, len(frame_ids), 500):
                query = select(c.frame_id, c.code, c.qn, c.fields).where(
                    c.frame_id.in_(frame_ids[start : start + 500])
                )
                for frame_id, code, qn, fields in conn.execute(query):
                    found[(frame_id, code)] = CopyDetail(qn, _FIELDS.decode(fields))
        return [found[(c[2], c[0])] for c in copies]

    def readings(
        self,
        *,
        centre: str | None = None,
        mn: str | None = None,
        cn: int | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        after_frame: int | None = None,
    ) -> list[ReadingRow]:
        """Every reading received, each copy of a duplicate included, in arrival order; only
        those whose DataTime is in ``[since, before)``, if given (chosen in SQL: after a week
        offline the record holds millions of readings, and a check wants an hour of them),
        and only those of frames after ``after_frame`` (what arrived since a poll last read)."""
        c = readings.c
        query = _equal(
            select(
                c.frame_id, c.at, c.centre, c.mn, c.cn, c.qn, c.data_time, c.code, c.value,
                c.flag, c.fields,
            ).order_by(c.frame_id, c.code),
            (c.centre, centre),
            (c.mn, mn),
            (c.cn, cn),
        )  # fmt: skip
        query = _in_range(query, since, before)
        if after_frame is not None:
            query = query.where(c.frame_id > after_frame)
        with self._read() as conn:
            rows = conn.execute(query).all()
        # Positional and with the decoder at hand: a 48-hour scenario's check reads a million
        # of these, and attribute lookups on SQLAlchemy rows took a third of it.
        decode = _FIELDS.decode
        return [
            ReadingRow(
                frame_id, at, centre_, mn_, cn_, qn, parse_data_time(data_time), code,
                None if value is None else Decimal(value), flag, decode(fields),
            )
            for frame_id, at, centre_, mn_, cn_, qn, data_time, code, value, flag, fields in rows
        ]  # fmt: skip

    def codes(
        self,
        *,
        centre: str | None = None,
        mn: str | None = None,
        cn: int | None = None,
        since: datetime | None = None,
    ) -> set[str]:
        """The data item codes received (chosen as ``readings`` chooses), found in SQL: after a
        week offline a centre's record holds millions of readings of a few hundred codes."""
        c = readings.c
        query = _equal(select(c.code).distinct(), (c.centre, centre), (c.mn, mn), (c.cn, cn))
        query = _in_range(query, since, None)
        with self._read() as conn:
            return {code for (code,) in conn.execute(query)}

    def deduplicated(
        self, *, centre: str | None = None, mn: str | None = None, cn: int | None = None
    ) -> list[DedupReading]:
        """One row per (centre, MN, CN, DataTime, code), ordered by those, from the view."""
        where = []
        params: dict[str, Any] = {}
        for name, value in (("centre", centre), ("mn", mn), ("cn", cn)):
            if value is not None:
                where.append(f"{name} = :{name}")
                params[name] = value
        sql = f"SELECT * FROM {DEDUP_VIEW}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY centre, mn, cn, code, data_time"
        with self._read() as conn:
            rows = conn.execute(text(sql), params).all()
        return [
            DedupReading(
                centre=r.centre,
                mn=r.mn,
                cn=r.cn,
                data_time=parse_data_time(r.data_time),
                code=r.code,
                value=None if r.value is None else Decimal(r.value),
                flag=r.flag,
                fields=json.loads(r.fields),
                copies=int(r.copies),
                qns=int(r.qns),
                n_values=int(r.n_values),
                first_at=float(r.first_at),
                last_at=float(r.last_at),
            )
            for r in rows
        ]

    # ---- inside ----------------------------------------------------------------------------
    @property
    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self.flush()
        with self._db, self.engine.connect() as conn:
            yield conn

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._write_pending()
            except Exception as exc:  # kept and raised by the next flush() or query
                self._error = self._error or exc

    def _write_pending(self) -> None:
        with self._db:
            with self._pending:
                frame_rows, self._frames = self._frames, []
                batches, self._readings = self._readings, []
            if not frame_rows and not batches:
                return
            with self.engine.begin() as conn:
                if frame_rows:
                    _insert(conn, frames, frame_rows)
                if batches:
                    _insert_readings(conn, batches)


def _expand(batches: Sequence[_ReadingBatch]) -> Iterator[tuple[Any, ...]]:
    """Reading rows, in the column order of :data:`readings`."""
    for batch in batches:
        yield from _rows(batch[:7], _own_values(batch[7]))


#: A reading's own columns (the rest are its frame's): code, value, flag, fields, value_field.
_OWN: Final = 5


def _own_values(pollutants: Iterable[Pollutant]) -> list[Any]:
    """The own columns of each reading of a frame, one reading after another in one list.

    The writer thread runs this for every reading of a run (a million in 48 hours) while the
    event loop waits for the interpreter lock, so the JSON is orjson's (as :func:`fields_json`)
    and a decimal's text is ``str`` unless that is in exponent form (then ``format(v, "f")``),
    written out in the loop: calls to helpers were a third of its time (220 -> 150 µs a
    189-reading record)."""
    out: list[Any] = []
    extend = out.extend
    dumps = orjson.dumps
    for p in pollutants:
        values = p.values
        fields = {}
        for name, v in values.items():
            text = str(v)
            if "E" in text or "e" in text:
                text = format(v, "f")
            fields[name] = text
        if "Rtd" in values:  # VALUE_FIELDS, in its order
            value_field: str | None = "Rtd"
        elif "Avg" in values:
            value_field = "Avg"
        elif "Cou" in values:
            value_field = "Cou"
        else:
            value_field = next(iter(values), None)
        value = None if value_field is None else fields[value_field]
        flag = p.flag
        if flag is not None:
            fields["Flag"] = flag
        if p.eflag is not None:
            fields["EFlag"] = p.eflag
        if p.texts:
            fields.update(p.texts)
            if value_field is not None and fields[value_field] != value:
                value_field = None  # a text field of that name: fields no longer say it
        text = dumps(fields).decode()
        if not text.isascii() or "\x7f" in text:
            text = fields_json(fields)
        extend((p.code, value, flag, text, value_field))
    return out


#: ``value_field`` as its index in VALUE_FIELDS (a small int the driver does not allocate).
_FIELD_INDEX: Final = (
    "CASE value_field "
    + " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(VALUE_FIELDS))
    + " END"
)


def _mark(conn: Connection) -> str:
    """The driver's placeholder, for SQL run at the driver's level."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _insert_sql(conn: Connection, table: Table) -> str:
    # Driver-level executemany: SQLAlchemy's per-row parameter processing would cost the writer
    # more than the database does. Only the placeholder differs between drivers.
    mark = _mark(conn)
    names = ", ".join(c.name for c in table.columns)
    marks = ", ".join(mark for _ in table.columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})"


def _insert(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(_insert_sql(conn, table), rows)
        return
    # SQLite: many rows a statement. executemany takes the interpreter lock back after each
    # row's step, and this thread writes beside the event loop decoding frames: 300 batches
    # of 190 readings took 2.86 s that way beside a thread busy in Python, 0.40 s like this.
    # The driver's own cursor: SQLAlchemy's execution context costs tens of µs a statement.
    per = _SQLITE_PARAMS // len(table.columns)
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            cursor.execute(_values_sql(table, len(chunk)), list(_chain(chunk)))
    finally:
        cursor.close()


def _insert_readings(conn: Connection, batches: Sequence[_ReadingBatch]) -> None:
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(_insert_sql(conn, readings), list(_expand(batches)))
        return
    # SQLite: a frame's readings a statement (or _READINGS_PER of them), whose rows take the
    # frame's columns from the same numbered parameters (?1 … ?7): each frame value bound
    # once, not once a reading, and each reading's five own values not copied into a row
    # tuple first (a third of the writer's CPU per 189-reading minute record). Batches of a
    # few readings (one added at a time) go as whole rows, many batches a statement, as
    # before; either way the rows go in the order they were added.
    cursor = conn.connection.cursor()
    small: list[tuple[Any, ...]] = []
    try:
        for batch in batches:
            frame_id, at, centre, mn, cn, qn, data_time, pollutants = batch
            own = _own_values(pollutants)
            if len(own) < _OWN * _FEW:
                small.extend(_rows(batch[:7], own))
                continue
            if small:
                _insert(conn, readings, small)
                small = []
            shared = [frame_id, at, centre, mn, cn, qn, data_time]
            step = _READINGS_PER * _OWN
            for start in range(0, len(own), step):
                chunk = own[start : start + step]
                cursor.execute(_readings_sql(len(chunk) // _OWN), shared + chunk)
        if small:
            _insert(conn, readings, small)
    finally:
        cursor.close()


def _rows(shared: tuple[Any, ...], own: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Whole reading rows, in the column order of :data:`readings`, of a batch's frame columns
    (``shared``, in :data:`_SHARED` order) and its readings' own (:func:`_own_values`)."""
    frame_id, at, centre, mn, cn, qn, data_time = shared
    for i in range(0, len(own), _OWN):
        code, value, flag, fields, field = own[i : i + _OWN]
        yield (frame_id, code, at, centre, mn, cn, qn, data_time, value, flag, fields, field)


#: A batch of fewer readings goes as whole rows with others (a statement each would cost more).
_FEW: Final = 8

_chain = itertools.chain.from_iterable

#: Bound parameters a SQLite statement may carry (999 before 3.32, so any version takes it).
_SQLITE_PARAMS = 999

#: The frame's columns of a reading, bound once a statement as ?1 … ?7, in this order.
_SHARED: Final = ("frame_id", "at", "centre", "mn", "cn", "qn", "data_time")
#: Readings a statement of :func:`_readings_sql` takes at most.
_READINGS_PER: Final = (_SQLITE_PARAMS - len(_SHARED)) // _OWN


@functools.lru_cache(maxsize=256)
def _values_sql(table: Table, n: int) -> str:
    one = "(" + ", ".join("?" for _ in table.columns) + ")"
    names = ", ".join(c.name for c in table.columns)
    return f"INSERT INTO {table.name} ({names}) VALUES {', '.join([one] * n)}"


@functools.lru_cache(maxsize=256)
def _readings_sql(n: int) -> str:
    """INSERT of ``n`` readings of one frame: parameters ?1 … ?7 the frame's (:data:`_SHARED`),
    then each reading's own (code, value, flag, fields, value_field)."""
    own = ("code", "value", "flag", "fields", "value_field")
    rows = []
    for i in range(n):
        first = len(_SHARED) + 1 + _OWN * i
        mark = {name: f"?{k}" for k, name in enumerate(_SHARED, start=1)}
        mark.update({name: f"?{first + k}" for k, name in enumerate(own)})
        rows.append("(" + ", ".join(mark[c.name] for c in readings.columns) + ")")
    names = ", ".join(c.name for c in readings.columns)
    return f"INSERT INTO {readings.name} ({names}) VALUES {', '.join(rows)}"


_MEMORY_URLS: Final = ("sqlite://", "sqlite:///:memory:")


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in _MEMORY_URLS
        args: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if memory:  # one shared connection: each new one would be a new, empty database
            args["poolclass"] = StaticPool
        engine = create_engine(url, **args)
        if not memory:

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                # WAL: queries read while the writer commits. OFF: SQLite never waits for the
                # disk (no fsync at checkpoints). A killed process still leaves a consistent
                # record — a commit is in the WAL once the write returns, and the kernel keeps
                # it — only a host crash or power loss could lose or damage the last batches,
                # and the record is evidence of a run, not the system of record: a run cut
                # short by the host is run again. The checkpoints' fsyncs were half of a
                # drain's commit time (0.45 -> 0.25 ms a 189-reading minute record).
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _upgrade(conn: Connection) -> None:
    """Bring a record written by an older version up to this one's tables (reopened files)."""
    names = {c["name"] for c in inspect(conn).get_columns(readings.name)}
    if "value_field" not in names:
        conn.exec_driver_sql(f"ALTER TABLE {readings.name} ADD COLUMN value_field VARCHAR(16)")
    for index in readings.indexes:
        index.create(conn, checkfirst=True)


def _create_view(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"CREATE VIEW IF NOT EXISTS {DEDUP_VIEW} AS {_DEDUP_SELECT}")
    else:
        conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {DEDUP_VIEW} AS {_DEDUP_SELECT}")


def _equal(query: Select[Any], *conditions: tuple[ColumnElement[Any], object]) -> Select[Any]:
    """``query`` with ``column == value`` for each condition whose value is not None."""
    for column, value in conditions:
        if value is not None:
            query = query.where(column == value)
    return query

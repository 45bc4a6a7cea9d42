"""What the terminal acknowledged, and so what the platforms must receive.

Before every power cut, during the drain and at the end, the bench asks the terminal's store
which samples it holds (and between a snapshot and a torn cut, the store tells each write it
acknowledges): a gauge's usable readings, a counter's usable increments. The store
answers only after the commit, so each one is acknowledged, and the minute window it falls in
(CN 2051) is owed to every centre whatever happens to the disk afterwards, including the minute
the power failed in and windows whose figures were not yet written. The minute windows stored
are owed too. Values are checked against the windows the terminal finally holds.

A window is kept as it travels, (item code, DataTime text): a 48-hour run owes half a million
of them, read again at every snapshot, and compared with what each centre received as text."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, union_all

from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, Reading
from reference_terminal.storage.schema import (
    Derived,
    derived_recent,
    derived_settled,
    derived_values,
    readings,
    usable_values,
)
from reference_terminal.storage.statements import Prepared
from reference_terminal.uplink.frames import Stream, data_flag
from simulators.platform import Want
from simulators.platform.record import field_json, format_data_time, text_time

MINUTE_DATA = 2051
MINUTE = Stream.MINUTE.value  # a minute window's kind
SNAPSHOT_OVERLAP_S = 3600.0

#: A minute window owed: (item code, DataTime as on the wire: plant-local YYYYMMDDhhmmss).
Window = tuple[str, str]


@dataclass
class Acknowledged:
    """The union of the terminal's answers over the run."""

    codes: dict[str, str]  # point -> item code
    counters: frozenset[str]  # points whose samples are increments
    utc_offset: timedelta
    until: float  # POSIX: readings at or after this are outside the scenario's duration
    windows: set[Window] = field(default_factory=set)
    #: what each window the terminal finally holds must carry (``final_values``)
    values: dict[Window, Want] = field(default_factory=dict)
    _since: float = 0.0
    _local: dict[float, str] = field(default_factory=dict)  # minute -> wire DataTime

    @classmethod
    def of(cls, config: TerminalConfig, until: float) -> Acknowledged:
        offset = timedelta(seconds=config.uplink.utc_offset_s)
        whole = until - until % 60  # whole minutes only: the last, cut short, is not owed
        codes = {c.point: str(c.code) for c in config.uplink.codes}
        counters = frozenset(p.id for p in config.points if p.kind == "counter")
        return cls(codes, counters, offset, whole)

    @property
    def until_local(self) -> datetime:
        """``until`` as a wire DataTime (plant-local, naive)."""
        return text_time(self._minute(self.until))

    def _minute(self, t: float) -> str:
        """The DataTime of the minute window ``t`` (POSIX) falls in."""
        minute = t - t % 60
        local = self._local.get(minute)
        if local is None:  # every point's window of a minute has the same DataTime
            moment = datetime.fromtimestamp(minute, UTC) + self.utc_offset
            local = self._local[minute] = format_data_time(moment)
        return local

    async def snapshot(self, terminal: Terminal, now: float) -> None:
        """Add every minute window stored since the last snapshot (``now``: the clock's time)."""
        store = terminal.store
        if store is None:
            return
        since, until = self._since, self.until
        points = list(self.codes)
        gauges = [p for p in points if p not in self.counters]
        counters = [p for p in points if p in self.counters]

        def read(conn: Connection) -> tuple[list[Any], list[Any], list[Any]]:
            # one query per kind for every point (per point, each would scan the store's
            # recent rows of every point in the range again)
            return (
                _derived(conn, points, (MINUTE,), since, until),
                _derived(conn, counters, ("increment",), since - 3600, until),
                _usable_readings(conn, gauges, since, until),
            )

        windows, increments, readings = await store.run_in_reader(read)
        code_of, minute = self.codes, self._minute
        self.windows.update([(code_of[point], minute(start)) for point, start, *_ in windows])
        self._owe(readings, ((p, start, end) for p, start, end, *_ in increments), since)
        # The next snapshot overlaps this one by a margin (readings stamped by a collector may
        # come late); a set does not mind.
        self._since = max(self._since, now - SNAPSHOT_OVERLAP_S)

    def note(
        self, readings: Sequence[Reading], derived: Sequence[Derived], since: float = 0.0
    ) -> None:
        """Owe the minutes of acknowledged samples: a gauge's usable readings, a counter's
        increments (each counts in the window of its interval's middle, settlement.py). Also
        the store's ``on_durable`` hook, for what was promised between a snapshot and a cut."""
        self._owe(
            ((r.point, r.t) for r in readings if r.quality.usable and r.value is not None),
            ((d.point, d.start, d.end) for d in derived if d.kind == "increment"),
            since,
        )

    def _owe(
        self,
        readings: Iterable[tuple[str, float]],
        increments: Iterable[tuple[str, float, float]],
        since: float,
    ) -> None:
        """``readings``: (point, t) of usable readings; ``increments``: (point, start, end)."""
        for point, t in readings:
            code = self.codes.get(point)
            if code and point not in self.counters and t < self.until:
                self.windows.add((code, self._minute(t)))
        for point, start, end in increments:
            code = self.codes.get(point)
            if code and point in self.counters:
                mid = (start + end) / 2
                if since <= mid < self.until:
                    self.windows.add((code, self._minute(mid)))

    async def final_values(self, terminal: Terminal, config: TerminalConfig) -> None:
        """The minute windows the terminal holds at the end: what to compare, the main figure,
        the window's Min and Max and its flag (as the store's text: the same text on the wire
        needs no Decimal made of it)."""
        store = terminal.store
        assert store is not None
        counter = {p.id for p in config.points if p.kind == "counter"}
        wants = {p: (code, "Cou" if p in counter else "Avg") for p, code in self.codes.items()}
        until, minute = self.until, self._minute
        rows = await store.run_in_reader(lambda conn: _WINDOWS.run(conn, until).fetchall())
        flag_of = {q.value: field_json("Flag", data_flag(q)) for q in Quality}
        values = self.values
        for point, start, value, quality, low, high in rows:
            want = wants.get(point)
            if want is None:
                continue
            code, field_ = want
            # a window without its figure goes up with its flag alone (uplink/frames.py)
            extremes = (
                ()
                if value is None
                else tuple(
                    field_json(name, figure)
                    for name, figure in (("Max", high), ("Min", low))
                    if figure is not None
                )
            )
            values[(code, minute(start))] = Want(value, field_, (*extremes, flag_of[quality]))

    def owed(self) -> dict[Window, Want]:
        """Every window owed, with the value the terminal finally holds where it holds one
        (the same for every centre: :class:`ExpectedSet` takes it as it is, with the MN)."""
        value_of, arrival = self.values.get, Want(None)
        return {w: value_of(w, arrival) for w in self.windows}


def _window_rows(table: Table) -> Select[Any]:
    c = table.c
    return select(c.point, c.period_start, c.value, c.quality, c.window_min, c.window_max).where(
        c.kind == MINUTE, c.period_start < bindparam("until")
    )


#: Every minute window the terminal holds before ``until``, with its min and max: a window is
#: one row of the store, its figures beside its main one (read through ``derived_values``,
#: three values a window, a 48-hour run's final read took three times as long).
_WINDOWS = Prepared(
    union_all(_window_rows(derived_settled), _window_rows(derived_recent)), ("until",)
)


def _derived(
    conn: Connection, points: list[str], kinds: Sequence[str], start: float | None, end: float
) -> list[Any]:
    """(point, period start, period end, value text, kind, quality) of the values of ``kinds``
    of ``points``: only the columns a check uses, as the driver's rows (a 48-hour check reads
    millions; 216 000 windows' rows took 0.57–0.89 s as SQLAlchemy rows, 0.25–0.32 s so).

    Selected by time, the points picked out here: the settled table holds its rows in time
    order, a point's in every page, so reading point by point (its unique index) reads each
    page once per point. On the volatile disk, where every page read is a request to the
    file system, reading every window of a finished 48-hour store point by point took 48.9 s
    (cold), by a scan 2.8 s; a 48-hour run's own final read, 16.9 s against 2.4 s. A range
    is read through ``period_end``'s index, which ``period_end >= start`` lets the query use."""
    statement = _derived_statement(len(kinds), ranged=start is not None)
    ranged = () if start is None else (start,)
    wanted = set(points)
    return [row for row in statement.run(conn, *kinds, end, *ranged).fetchall() if row[0] in wanted]


@functools.cache
def _derived_statement(kinds: int, *, ranged: bool) -> Prepared:
    c = derived_values.c
    names = [f"kind{i}" for i in range(kinds)]
    query = select(c.point, c.period_start, c.period_end, c.value, c.kind, c.quality).where(
        c.kind.in_([bindparam(name) for name in names]), c.period_start < bindparam("end")
    )
    names.append("end")
    if ranged:
        query = query.where(
            c.period_end >= bindparam("start"), c.period_start >= bindparam("start")
        )
        names.append("start")
    return Prepared(query, names)


def _usable_readings(
    conn: Connection, points: list[str], start: float, end: float
) -> list[tuple[str, float]]:
    """(point, t) of the usable readings of ``points`` with a value in [start, end)."""
    c = readings.c
    query = select(c.point, c.t).where(
        c.point.in_(points),
        c.t >= start,
        c.t < end,
        *usable_values(c),
    )
    return list(conn.execute(query).all())

"""What the terminal acknowledged, and so what the platforms must receive.

The terminal's store tells the bench of every write it acknowledges (``Store.on_durable``,
from the first write of every boot): a gauge's usable readings, a counter's usable increments.
The minute window each falls in (CN 2051) is owed to every centre whatever happens to the disk
afterwards, including the minute the power failed in and windows whose figures were not yet
written. The minute windows stored are owed too: before every power cut the bench asks the
store which it holds, and at the end it reads them all with the values they are checked against.

A window is kept as it travels, (item code, DataTime text): a 48-hour run owes half a million
of them, read again at every snapshot, and compared with what each centre received as text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, bindparam, select, union_all

from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, Reading
from reference_terminal.storage.schema import (
    Derived,
    derived_recent,
    derived_settled,
)
from reference_terminal.storage.statements import Prepared
from reference_terminal.uplink.frames import Stream, data_flag
from simulators.platform import Want
from simulators.platform.record import (
    field_head,
    field_json,
    format_data_time,
    text_json,
    text_time,
)

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
        """Owe every minute window stored since the last snapshot (``now``: the clock's time)."""
        store = terminal.store
        if store is None:
            return
        since, until = self._since, self.until
        windows = await store.run_in_reader(
            lambda conn: _STORED_WINDOWS.run(conn, MINUTE, since, until).fetchall()
        )
        code_of, minute = self.codes.get, self._minute
        self.windows.update(
            (code, minute(start)) for point, start in windows if (code := code_of(point))
        )
        # The next snapshot overlaps this one by a margin (windows a restart recovers or a
        # late reading closes are stored after their minute); a set does not mind.
        self._since = max(self._since, now - SNAPSHOT_OVERLAP_S)

    def note(self, readings: Sequence[Reading], derived: Sequence[Derived]) -> None:
        """The store's ``on_durable`` hook: owe the minute windows of acknowledged samples, a
        gauge's usable readings and a counter's increments (each counts in the window of its
        interval's middle, settlement.py)."""
        code_of, counters, until, minute = self.codes.get, self.counters, self.until, self._minute
        owe = self.windows.add
        for r in readings:
            if r.value is not None and r.t < until and r.quality.usable:
                code = code_of(r.point)
                if code and r.point not in counters:
                    owe((code, minute(r.t)))
        for d in derived:
            if d.kind == "increment" and d.point in counters:
                code = code_of(d.point)
                mid = (d.start + d.end) / 2
                if code and mid < until:
                    owe((code, minute(mid)))

    async def final_values(self, terminal: Terminal, config: TerminalConfig) -> None:
        """The minute windows the terminal holds at the end: what to compare, the main figure,
        the window's Min and Max and its flag (as the store's text: the same text on the wire
        needs no Decimal made of it). Each is owed, as a snapshot from the start would owe it:
        the end needs no snapshot of its own."""
        store = terminal.store
        assert store is not None
        counter = {p.id for p in config.points if p.kind == "counter"}
        wants = {p: (code, "Cou" if p in counter else "Avg") for p, code in self.codes.items()}
        until, minute = self.until, self._minute
        rows = await store.run_in_reader(lambda conn: _WINDOWS.run(conn, until).fetchall())
        flag_of = {q.value: field_json("Flag", data_flag(q)) for q in Quality}
        high_head, low_head = field_head("Max"), field_head("Min")
        values, local = self.values, self._local
        # Half a million windows after 48 hours: each in a few plain operations.
        for point, start, value, quality, low, high in rows:
            want = wants.get(point)
            if want is None:
                continue
            code, field_ = want
            flag = flag_of[quality]
            # a window without its figure goes up with its flag alone (uplink/frames.py)
            if value is None:
                others: tuple[str, ...] = (flag,)
            elif high is not None and low is not None:
                others = (high_head + text_json(high), low_head + text_json(low), flag)
            else:
                others = (
                    *(
                        head + text_json(f)
                        for head, f in ((high_head, high), (low_head, low))
                        if f is not None
                    ),
                    flag,
                )
            window = (code, local.get(start) or minute(start))
            # tuple.__new__: the named tuple without its Python-level __new__
            values[window] = tuple.__new__(Want, (value, field_, others))
        self.windows.update(values)

    def owed(self) -> dict[Window, Want]:
        """Every window owed, with the value the terminal finally holds where it holds one
        (the same for every centre: :class:`ExpectedSet` takes it as it is, with the MN)."""
        owed = dict.fromkeys(self.windows, Want(None))
        owed.update(self.values)  # each owed already (``final_values``)
        return owed


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


def _stored_windows(table: Table) -> Select[Any]:
    c = table.c
    return select(c.point, c.period_start).where(
        c.kind == bindparam("kind"),
        c.period_end >= bindparam("since"),
        c.period_start >= bindparam("since"),
        c.period_start < bindparam("until"),
    )


#: (point, start) of the values of a kind stored from ``since`` to ``until``: from the tables,
#: two columns (through ``derived_values``, with the six a check once read, six hours' windows
#: took 0.13 s after 48 hours, 0.05 s so). Selected by time: the settled table holds its rows in
#: time order, a point's in every page, so reading point by point (its unique index) reads each
#: page once per point; on the volatile disk, where every page read is a request to the file
#: system, a 48-hour run's final read took 16.9 s so, 2.4 s by time. ``period_end >= since``
#: lets the settled table's range be read through ``period_end``'s index.
_STORED_WINDOWS = Prepared(
    union_all(_stored_windows(derived_settled), _stored_windows(derived_recent)),
    ("kind", "since", "until"),
)

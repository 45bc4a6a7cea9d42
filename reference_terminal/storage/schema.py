"""The store's tables (SQLAlchemy Core) and how the terminal's records map onto their rows.

Every table keeps what ISC-2 §9.3 and CSMT §9.2 ask for: the raw reading as the device sent it,
the converted value as *exact decimal text* (``Decimal("0.00")`` comes back ``"0.00"``, with the
meter's digits; a ``Numeric`` column would normalise the scale), its quality and digits.

Times are POSIX seconds in ``DOUBLE`` columns (not ``FLOAT``: MariaDB's FLOAT is single
precision). Identifiers use a binary collation on MariaDB/MySQL so ``EM1`` and ``em1`` are two
points, as they are in the configuration. Ids increase in commit order (one writer), so
``id > cursor`` finds what was stored since a cursor.

This module describes the *current* schema; ``migrations.py`` builds it step by step, and a
test checks that both agree.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeEngine

from reference_terminal.model import (
    COUNT,
    FIGURES,
    Event,
    Quality,
    Reading,
    figure_kind,
    figures_of,
    is_window_kind,
)


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to check."""


#: Width of identifier columns (point, device, kind): the configuration's ``Id`` is ≤ 64.
ID_LENGTH = 64
#: Width of the value column: exact decimal text, e.g. ``"-123456789.123456"``.
VALUE_LENGTH = 64

#: Table options: InnoDB and utf8mb4 on MariaDB/MySQL (Chinese notes), ignored elsewhere.
TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def identifier() -> TypeEngine[str]:
    """An identifier column type: case- and byte-exact on every backend."""
    return String(ID_LENGTH).with_variant(
        mysql.VARCHAR(ID_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def row_id() -> TypeEngine[int]:
    """A 64-bit autoincrement key (``INTEGER PRIMARY KEY`` on SQLite, the rowid)."""
    return BigInteger().with_variant(Integer(), "sqlite")


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Double, nullable=False),
    **TABLE_OPTIONS,
)

events = Table(
    "events",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("t", Double, nullable=False),
    Column("kind", identifier(), nullable=False),
    Column("point", identifier(), nullable=True),
    Column("device", identifier(), nullable=True),
    Column("period_start", Double, nullable=True),
    Column("period_end", Double, nullable=True),
    Column("details", Text, nullable=False),  # a JSON object of strings
    Index("ix_events_kind_t", "kind", "t"),
    Index("ix_events_t", "t"),
    Index("ix_events_point_t", "point", "t"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

# ---- recent and settled ----------------------------------------------------------------------
#
# Readings and derived values are each kept in two tables behind one view (``readings``,
# ``derived_values``), which is what every reader selects from; ``store.py`` ("Recent and
# settled") says how rows move between them. A new row goes to the *recent* table, keyed time
# first, so a minute of every point lands side by side on a few pages. Keyed point first, as a
# point's history must be, each row dirtied a page of its own: a thousand pages a minute on a
# 200-point plant, and the writes per row grew with the table. The writer moves the recent rows
# in bulk, sorted, into the *settled* table (point first), writing each of its pages once per
# move. The settled tables are the ones migrations 1 and 2 created, renamed: their indexes and
# constraints keep their names. Ids grow in commit order across both tables of a pair.


def _reading_columns() -> list[Column[Any]]:
    return [
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("point", identifier(), nullable=False),
        Column("t", Double, nullable=False),
        Column("raw", Text, nullable=False),
        Column("value", String(VALUE_LENGTH), nullable=True),
        Column("quality", String(16), nullable=False),
        Column("digits", SmallInteger, nullable=False),
        Column("device", identifier(), nullable=False),
        Column("note", Text, nullable=False),
    ]


def _derived_columns() -> list[Column[Any]]:
    return [
        Column("id", row_id(), primary_key=True, autoincrement=True),
        Column("point", identifier(), nullable=False),
        Column("kind", identifier(), nullable=False),
        Column("period_start", Double, nullable=False),
        Column("period_end", Double, nullable=False),
        Column("value", String(VALUE_LENGTH), nullable=True),
        Column("quality", String(16), nullable=False),
        Column("note", Text, nullable=False),
        Column("computed_at", Double, nullable=False),
    ]


def _figure_columns() -> list[Column[Any]]:
    """A window's figures beside its main one (``value``), in its row ("windows" below)."""
    return [Column(name, String(VALUE_LENGTH), nullable=True) for name in FIGURE_COLUMNS]


#: The columns of a window's figures, in ``model.FIGURES`` order and then its count.
FIGURE_COLUMNS = (*(f"window_{f}" for f in FIGURES), f"window_{COUNT}")


readings_recent = Table(
    "readings_recent",
    metadata,
    *_reading_columns(),
    Index("ix_readings_recent_t", "t", "point"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)
readings_settled = Table(
    "readings_settled",
    metadata,
    *_reading_columns(),
    Index("ix_readings_point_t", "point", "t"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)
derived_recent = Table(
    "derived_recent",
    metadata,
    *_derived_columns(),
    *_figure_columns(),
    UniqueConstraint("period_start", "kind", "point", name="uq_derived_recent_period"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)
derived_settled = Table(
    "derived_settled",
    metadata,
    *_derived_columns(),
    *_figure_columns(),
    UniqueConstraint("point", "kind", "period_start", name="uq_derived_values_period"),
    Index("ix_derived_values_period_end", "period_end"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

#: The latest period start of each kind in ``derived_settled``: a value starting later cannot
#: be there, so the writer puts it in ``derived_recent`` without looking.
derived_extent = Table(
    "derived_extent",
    metadata,
    Column("kind", identifier(), primary_key=True),
    Column("max_start", Double, nullable=False),
    **TABLE_OPTIONS,
)

# ---- windows ---------------------------------------------------------------------------------
#
# A closed window's figures (``model.py``) are kept in one row: the main figure in ``value``,
# the others in ``FIGURE_COLUMNS``. Stored as a row each, a minute's close of a 200-point plant
# was a thousand rows, and settling them (each figure at its own place in the point-first index)
# was most of what a 48-hour scenario wrote. Readers still see every figure as a value of its
# own kind (``minute_max`` …): ``derived_values`` shows each row of a window kind once more for
# each figure ``window_figures`` lists for that kind, which the writer fills in when it first
# stores a window of the kind. A figure is never written as a value of its own (``Derived``).

window_figures = Table(
    "window_figures",
    metadata,
    Column("kind", identifier(), primary_key=True),  # the figure as readers see it: minute_max
    Column("window_kind", identifier(), nullable=False),  # minute
    Column("figure", identifier(), nullable=False),  # max
    Index("ix_window_figures_window_kind", "window_kind"),
    **TABLE_OPTIONS,
)

#: Views, apart from ``metadata`` so that ``create_all`` does not make them tables.
views = MetaData()
readings = Table("readings", views, *_reading_columns())
derived_values = Table("derived_values", views, *_derived_columns())

#: (view, settled table, recent table)
RECENT_AND_SETTLED = (
    (readings, readings_settled, readings_recent),
    (derived_values, derived_settled, derived_recent),
)


def view_sql(view: Table, settled: Table, recent: Table) -> str:
    columns = ", ".join(c.name for c in view.columns)
    arms = [f"SELECT {columns} FROM {table.name}" for table in (settled, recent)]
    if view is derived_values:
        arms += [figures_arm(table.name) for table in (settled, recent)]
    return f"CREATE VIEW {view.name} AS " + " UNION ALL ".join(arms)


def figures_arm(table: str) -> str:
    """The part of ``derived_values`` that shows the figures of ``table``'s windows, each as
    a value of its own kind (migration 7 makes the same view, from a text of its own)."""
    value = (
        "CASE f.figure "
        + " ".join(f"WHEN '{figure}' THEN d.window_{figure}" for figure in FIGURES)
        + f" ELSE d.window_{COUNT} END"
    )
    picked = {"kind": "f.kind", "value": value}
    columns = ", ".join(picked.get(c.name, f"d.{c.name}") for c in derived_values.columns)
    return f"SELECT {columns} FROM window_figures f JOIN {table} d ON d.kind = f.window_kind"


def create_all(conn: Connection) -> None:
    """The current schema in an empty database, views included (what migrating gives)."""
    metadata.create_all(conn)
    for tables in RECENT_AND_SETTLED:
        conn.exec_driver_sql(view_sql(*tables))


def _top(conn: Connection, column: str, settled: Table, recent: Table) -> Any:
    tops = [conn.scalar(select(func.max(t.c[column]))) for t in (settled, recent)]
    return max((t for t in tops if t is not None), default=None)


def derived_top_id(conn: Connection) -> int:
    """The largest derived-value id, 0 if none: each table's maximum from its key (the same
    maximum over the view would read every row on SQLite and MariaDB)."""
    return int(_top(conn, "id", derived_settled, derived_recent) or 0)


def newest_reading_t(conn: Connection) -> float | None:
    """The time of the newest reading, None if none (each table's from its index)."""
    top = _top(conn, "t", readings_settled, readings_recent)
    return None if top is None else float(top)


#: QN ``YYYYMMDDhhmmsszzz`` (HJ 212-2017 表 3) or an HTTPS request id.
QN_LENGTH = 32

#: The upload outbox (``reference_terminal/uplink/outbox.py``): one row per frame a centre has
#: not acknowledged yet. ``qn`` is set (durably) before the frame is first sent, so a resend
#: after a restart carries the same QN and DataTime.
uplink_outbox = Table(
    "uplink_outbox",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("centre", identifier(), nullable=False),
    Column("cn", Integer, nullable=False),
    Column("data_time", Double, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the frame's items
    Column("origin", String(16), nullable=False),  # live, resend, corrected
    Column("qn", String(QN_LENGTH), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("first_sent_at", Double, nullable=True),
    Index("ix_uplink_outbox_centre_id", "centre", "id"),
    Index("ix_uplink_outbox_centre_time", "centre", "data_time", "id"),  # backlog order
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

#: Per-centre upload state: stream cursors, the last QN issued, intervals set by the platform.
uplink_state = Table(
    "uplink_state",
    metadata,
    Column("centre", identifier(), primary_key=True),
    Column("key", identifier(), primary_key=True),
    Column("value", String(VALUE_LENGTH), nullable=False),
    **TABLE_OPTIONS,
)

#: The security audit log (ISC-2 §7.4.1.3, ``reference_terminal/security/audit.py``): one row per
#: user action or security event, hash-chained with SM3 (``hash`` covers the row's content and
#: ``prev_hash``) and sealed (``seal``: HMAC-SM3 of ``hash`` under the terminal's key file), so
#: an edit, a single deleted row or a rewritten chain is found by ``verify_chain``. ``seq`` is
#: the position in the chain, never reused: a whole-log deletion starts the next chain after it.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("t", Double, nullable=False),
    Column("user_id", identifier(), nullable=False),
    Column("event_type", identifier(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("details", Text, nullable=False),  # a JSON object of strings
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("seal", String(64), nullable=False),
    Index("ix_audit_log_t", "t"),
    Index("ix_audit_log_user_t", "user_id", "t"),
    Index("ix_audit_log_type_t", "event_type", "t"),
    **TABLE_OPTIONS,
)

#: How far the database has applied the intake log (``intake_log.py``): one row, updated in
#: the transaction that applies a record, so a record is applied exactly once.
intake_state = Table(
    "intake_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("applied_seq", BigInteger, nullable=False),
    **TABLE_OPTIONS,
)

#: The tables holding data, in the order a backup copies them.
DATA_TABLES = (readings, events, derived_values)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """A closed window's figures beside its main one (``model.FIGURES``; the count only for
    windows of an hour or longer)."""

    max: Decimal | None
    min: Decimal | None
    first: Decimal | None
    last: Decimal | None
    count: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Derived:
    """A value processing derived for one point and period: an increment, an hourly/daily/
    monthly settlement, a daily max or min … (CSMT §8.2.1). Writing the same (point, kind,
    period start) again replaces it: processing recomputes a period after a backfill.

    A closed window is one value of its period's kind (``minute``, ``day`` …) with ``figures``;
    readers see each figure as a value of its own (``day_max`` …, "windows" above), but it is
    never written as one."""

    point: str
    kind: str  # "increment", "minute", "hour", "day", "month", "year", "co2" …
    start: float  # period start, POSIX seconds (inclusive)
    end: float  # period end (exclusive)
    value: Decimal | None
    quality: Quality
    note: str = ""  # how it was derived: formula, inputs, interpolation …
    computed_at: float = 0.0  # when processing computed it (terminal clock)
    figures: WindowFigures | None = None  # a window's, beside its main figure


# ---- records to rows ---------------------------------------------------------------------------


def _time(name: str, t: float) -> float:
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"{name} must be finite POSIX seconds, got {t!r}")
    return float(t)


def _ident(name: str, value: str, *, allow_empty: bool = False) -> str:
    if (
        not isinstance(value, str)
        or len(value) > ID_LENGTH
        or not (value or allow_empty)
        or "\x00" in value
    ):
        raise ValueError(
            f"{name} must be a {'' if allow_empty else 'non-empty '}string of "
            f"≤ {ID_LENGTH} characters without NUL, got {value!r}"
        )
    return value


def _text(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if "\x00" in value:  # PostgreSQL cannot store it; the same rule on every backend
        raise ValueError(f"{name} contains a NUL character: give binary data as hex text")
    return value


def _digits(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 32767:
        raise ValueError(f"{name} must be a whole number of decimal places, got {value!r}")
    return value


def decimal_text(name: str, value: Decimal | None) -> str | None:
    """The exact text of a decimal value; ``Decimal(text)`` gives back the same digits."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal or None, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    text = str(value)
    if len(text) > VALUE_LENGTH:
        raise ValueError(f"{name} has {len(text)} characters, more than {VALUE_LENGTH}")
    return text


#: Columns a reading fills, in the order of ``reading_values``.
READING_COLUMNS = ("point", "t", "raw", "value", "quality", "digits", "device", "note")


_QUALITIES = {q.value: q for q in Quality}
#: How the qualities whose values count (``Quality.usable``) are stored.
USABLE_QUALITIES = tuple(q.value for q in Quality if q.usable)
_QUALITY_TEXT = {q.value: q.value for q in Quality}  # Quality members and their text both hit


def usable_values(c: Any) -> list[ColumnElement[bool]]:
    """Conditions on a table's columns ``c`` keeping the values that count: a usable quality
    and a value. The qualities are literals: a prepared statement binds nothing for them."""
    return [c.quality.in_([literal(q) for q in USABLE_QUALITIES]), c.value.is_not(None)]


def reading_values(r: Reading) -> tuple[Any, ...]:
    """A reading's column values (``READING_COLUMNS``), checked.

    The writer calls this for every row: a fast path accepts the common well-formed reading,
    anything else goes through the slow path that says what is wrong."""
    if type(r) is not Reading:
        return _checked_reading_values(r)
    point, t, value, device = r.point, r.t, r.value, r.device
    quality = _QUALITY_TEXT.get(r.quality)
    if (
        type(point) is str
        and 0 < len(point) <= ID_LENGTH
        and "\x00" not in point
        and type(t) is float
        and t - t == 0.0  # finite
        and type(r.raw) is str
        and "\x00" not in r.raw
        and quality is not None
        and type(r.digits) is int
        and 0 <= r.digits <= 32767
        and type(device) is str
        and len(device) <= ID_LENGTH
        and "\x00" not in device
        and type(r.note) is str
        and "\x00" not in r.note
    ):
        if value is None:
            return (point, t, r.raw, None, quality, r.digits, device, r.note)
        if type(value) is Decimal and value.is_finite():
            text = str(value)
            if len(text) <= VALUE_LENGTH:
                return (point, t, r.raw, text, quality, r.digits, device, r.note)
    return _checked_reading_values(r)


def _checked_reading_values(r: Reading) -> tuple[Any, ...]:
    if not isinstance(r, Reading):
        raise TypeError(f"expected a Reading, got {type(r).__name__}")
    return (
        _ident("Reading.point", r.point),
        _time("Reading.t", r.t),
        _text("Reading.raw", r.raw),
        decimal_text(f"Reading.value of {r.point}", r.value),
        Quality(r.quality).value,
        _digits("Reading.digits", r.digits),
        _ident("Reading.device", r.device, allow_empty=True),
        _text("Reading.note", r.note),
    )


def reading_row(r: Reading) -> dict[str, Any]:
    return dict(zip(READING_COLUMNS, reading_values(r), strict=True))


def row_reading(row: Mapping[Any, Any]) -> Reading:
    return values_reading(*(row[name] for name in READING_COLUMNS))


def values_reading(
    point: str,
    t: float,
    raw: str,
    value: str | None,
    quality: str,
    digits: int,
    device: str,
    note: str,
) -> Reading:
    """A row's Reading (``READING_COLUMNS``, as the driver gives them)."""
    return Reading(
        point=point,
        t=t,
        raw=raw,
        value=None if value is None else Decimal(value),
        quality=_QUALITIES[quality],
        digits=digits,
        device=device,
        note=note,
    )


#: Columns an event fills, in the order of ``event_values``.
EVENT_COLUMNS = ("t", "kind", "point", "device", "period_start", "period_end", "details")


def event_values(e: Event) -> tuple[Any, ...]:
    """An event's column values (``EVENT_COLUMNS``), checked."""
    if not isinstance(e, Event):
        raise TypeError(f"expected an Event, got {type(e).__name__}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in e.details.items()):
        raise ValueError(f"Event.details of {e.kind!r} must map strings to strings")
    return (
        _time("Event.t", e.t),
        _ident("Event.kind", e.kind),
        None if e.point is None else _ident("Event.point", e.point),
        None if e.device is None else _ident("Event.device", e.device),
        None if e.start is None else _time("Event.start", e.start),
        None if e.end is None else _time("Event.end", e.end),
        json.dumps(e.details, ensure_ascii=False, sort_keys=True),
    )


def event_row(e: Event) -> dict[str, Any]:
    return dict(zip(EVENT_COLUMNS, event_values(e), strict=True))


def row_event(row: Mapping[Any, Any]) -> Event:
    return Event(
        t=row["t"],
        kind=row["kind"],
        point=row["point"],
        device=row["device"],
        start=row["period_start"],
        end=row["period_end"],
        details=json.loads(row["details"]),
    )


def derived_tuple(d: Derived) -> tuple[Any, ...]:
    """A derived value's column values (``DERIVED_COLUMNS``), checked: a fast path for the
    common well-formed value (the writer calls this for every row), as ``reading_values``."""
    if type(d) is not Derived:
        return _checked_derived_tuple(d)
    point, kind, start, end, value = d.point, d.kind, d.start, d.end, d.value
    quality = _QUALITY_TEXT.get(d.quality)
    if (
        type(point) is str
        and 0 < len(point) <= ID_LENGTH
        and "\x00" not in point
        and type(kind) is str
        and 0 < len(kind) <= ID_LENGTH
        and "\x00" not in kind
        and not kind.endswith(FIGURE_SUFFIXES)
        and type(start) is float
        and type(end) is float
        and start - start == 0.0  # finite
        and end - end == 0.0
        and start <= end
        and quality is not None
        and type(d.note) is str
        and "\x00" not in d.note
        and type(d.computed_at) is float
        and d.computed_at - d.computed_at == 0.0
    ):
        figures = (
            _NO_FIGURES
            if d.figures is None
            else _figure_texts(d.figures)
            if is_window_kind(kind)
            else None
        )
        if figures is not None:
            if value is None:
                return (point, kind, start, end, None, quality, d.note, d.computed_at, *figures)
            if type(value) is Decimal and value.is_finite():
                text = str(value)
                if len(text) <= VALUE_LENGTH:
                    return (point, kind, start, end, text, quality, d.note, d.computed_at, *figures)
    return _checked_derived_tuple(d)


_NO_FIGURES: tuple[None, ...] = (None,) * 5
#: How the kind of a window's figure ends (``minute_max``); no stored value's kind does.
FIGURE_SUFFIXES = tuple(f"_{f}" for f in (*FIGURES, COUNT))


def _figure_texts(f: WindowFigures) -> tuple[str | None, ...] | None:
    """The figures' texts, or None when one is not a plain finite Decimal that fits."""
    texts: list[str | None] = []
    for value in (f.max, f.min, f.first, f.last, f.count):
        if value is None:
            texts.append(None)
            continue
        if type(value) is not Decimal or not value.is_finite():
            return None
        text = str(value)
        if len(text) > VALUE_LENGTH:
            return None
        texts.append(text)
    return tuple(texts)


def _checked_derived_tuple(d: Derived) -> tuple[Any, ...]:
    if not isinstance(d, Derived):
        raise TypeError(f"expected a Derived, got {type(d).__name__}")
    start = _time("Derived.start", d.start)
    end = _time("Derived.end", d.end)
    if end < start:
        raise ValueError(f"Derived {d.point}/{d.kind}: period ends ({end}) before it starts")
    kind = _ident("Derived.kind", d.kind)
    figure = figure_kind(kind)
    if figure is not None:
        raise ValueError(
            f"Derived {d.point}/{kind}: the {figure[1]} of a {figure[0]} window is stored with "
            f"the window (a Derived of kind {figure[0]!r} with its figures), not as a value of "
            "its own"
        )
    if d.figures is None:
        figures: tuple[str | None, ...] = _NO_FIGURES
    elif not isinstance(d.figures, WindowFigures):
        raise TypeError(f"Derived.figures must be WindowFigures, got {type(d.figures).__name__}")
    elif not is_window_kind(kind):
        raise ValueError(
            f"Derived {d.point}/{kind}: only a window (of kind minute, hour, 300s, day, month, "
            "year …) has figures"
        )
    else:
        f = d.figures
        figures = tuple(
            decimal_text(f"Derived.figures.{name} of {d.point}/{kind}", value)
            for name, value in (
                ("max", f.max),
                ("min", f.min),
                ("first", f.first),
                ("last", f.last),
                ("count", f.count),
            )
        )
    return (
        _ident("Derived.point", d.point),
        kind,
        start,
        end,
        decimal_text(f"Derived.value of {d.point}/{kind}", d.value),
        Quality(d.quality).value,
        _text("Derived.note", d.note),
        _time("Derived.computed_at", d.computed_at),
        *figures,
    )


def as_shown(d: Derived) -> list[Derived]:
    """``d`` as readers see it: a window is its main figure and each figure beside it as a
    value of its own (``minute``, ``minute_max`` …; "windows" above)."""
    f = d.figures
    if f is None:
        return [d]
    plain = dataclasses.replace(d, figures=None)
    figures = {"max": f.max, "min": f.min, "first": f.first, "last": f.last, COUNT: f.count}
    return [
        plain,
        *(
            dataclasses.replace(plain, kind=f"{d.kind}_{name}", value=figures[name])
            for name in figures_of(d.kind)
        ),
    ]


def derived_row(d: Derived) -> dict[str, Any]:
    return dict(zip(DERIVED_COLUMNS, derived_tuple(d), strict=True))


def row_derived(row: Mapping[Any, Any]) -> Derived:
    return values_derived(*(row[name] for name in DERIVED_FIELDS))


#: The columns a Derived is read from, in the order of ``values_derived``'s arguments.
DERIVED_FIELDS = (
    "point", "kind", "period_start", "period_end", "value", "quality", "note", "computed_at"
)  # fmt: skip
#: ... and those a Derived is stored in (``derived_tuple``): its window's figures too.
DERIVED_COLUMNS = (*DERIVED_FIELDS, *FIGURE_COLUMNS)


def derived_columns(table: Table) -> list[Column[Any]]:
    """``table``'s ``DERIVED_FIELDS`` columns: selected as they are, with ``values_derived``
    (no row mapping), for the readers that take many rows."""
    return [table.c[name] for name in DERIVED_FIELDS]


def values_derived(
    point: str,
    kind: str,
    start: float,
    end: float,
    value: str | None,
    quality: str,
    note: str,
    computed_at: float,
    *figures: str | None,
) -> Derived:
    """A row's Derived (``DERIVED_FIELDS``, and a window's ``FIGURE_COLUMNS`` after them)."""
    window = None
    if figures and is_window_kind(kind):
        high, low, first, last, count = (None if f is None else Decimal(f) for f in figures)
        window = WindowFigures(high, low, first, last, count)
    return Derived(
        point,
        kind,
        start,
        end,
        None if value is None else Decimal(value),
        _QUALITIES[quality],
        note,
        computed_at,
        window,
    )

"""How the terminal's accounting figures are stored: derived values (``derived_values``) of the
activity point they belong to, so they are durable, survive restarts, go into backups and
exports, and can be uploaded like any derived figure (CSMT §9.2: "必须保留转换前后原始数据、碳
排放数据").

============== =================== ==============================================================
kind           period              value, and the note (a JSON object of decimal texts)
============== =================== ==============================================================
``co2``        the minute window   tCO2 of the minute; ``a`` activity, ``f`` factor (tCO2 per
                                   unit), ``first``/``last`` registers the activity spans
``co2_entry``  (previous entry,    tCO2 of a value entered by hand, converted at once (CSMT
               this entry]         §11.6); same note
``co2_cum``    the minute          cumulative tCO2 of the point since its accounting began
``co2_<p>``    a closed period     tCO2 of the period (``hour``, ``day``, ``week``, ``month``,
                                   ``quarter``, ``year``); ``a``, ``n`` minutes with data,
                                   ``first``/``last``
``basis``,     the minute, the     a point that only feeds an intensity basis: its activity
``basis_entry``, entry, a period   (same note without ``f``)
``basis_<p>``
============== =================== ==============================================================

Figures in tCO2 are stored rounded half up to :data:`PLACES` decimals (0.1 mg); activity is
exact (an integer count of the meter's resolution). A period's emission is its exact activity
sum times the rate, rounded once, so the sum of stored minutes may differ from it in the last
stored place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from reference_terminal.accounting.statistics import Period
from reference_terminal.accounting.units import CONTEXT, REPORT_ROUNDING
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, derived_values, row_derived
from reference_terminal.storage.store import select_newest

PLACES = 10
MINUTE = "co2"
ENTRY = "co2_entry"
CUMULATIVE = "co2_cum"
BASIS = "basis"
BASIS_ENTRY = "basis_entry"
PERIODS = tuple(Period)
_KINDS = {
    (p, basis): f"{'basis' if basis else 'co2'}_{p.value}"
    for p in Period
    for basis in (False, True)
}
#: :func:`~.units.round_report` to :data:`PLACES`, its quantum and context made once: it runs
#: twice per point and minute on the booking path
_QUANTUM = Decimal(1).scaleb(-PLACES)
_ROUNDING = CONTEXT.copy()
_ROUNDING.rounding = REPORT_ROUNDING


def period_kind(period: Period, *, basis: bool = False) -> str:
    return _KINDS[period, basis]


def stored(value: Decimal) -> Decimal:
    """A tCO2 figure as stored (rounded half up to :data:`PLACES`; no negative zero)."""
    rounded = value.quantize(_QUANTUM, context=_ROUNDING)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def note(**fields: Decimal | int | None) -> str:
    """The JSON note of a figure (decimals as exact text); written by hand, it is on the
    per-minute path and its values need no escaping."""
    parts = []
    for k, v in fields.items():
        if isinstance(v, Decimal):
            parts.append(f'"{k}":"{v:f}"')
        elif v is not None:
            parts.append(f'"{k}":{int(v)}')
    return "{" + ",".join(parts) + "}"


# The notes written on the booking path, every minute and at every period's close: decimals
# by ``%s`` (their str, a third of the cost of formatting), which is their fixed-point text
# unless it has an exponent (``1E+3``, ``1E-7``); then :func:`note` formats them.
_MINUTE_NOTE = '{"a":"%s","f":"%s","first":"%s","last":"%s"}'
_PERIOD_NOTE = '{"a":"%s","n":%d,"first":"%s","last":"%s"}'


def minute_note(activity: Decimal, factor: str, first: Decimal | None, last: Decimal | None) -> str:
    """``note(a=activity, f=factor, first=first, last=last)``, the factor already as text (a
    point's factor is the same every minute)."""
    if first is not None and last is not None:
        text = _MINUTE_NOTE % (activity, factor, first, last)
        if "E" not in text:
            return text
    return note(a=activity, f=Decimal(factor), first=first, last=last)


def period_note(
    activity: Decimal, minutes: int, first: Decimal | None, last: Decimal | None
) -> str:
    """``note(a=activity, n=minutes, first=first, last=last)``."""
    if first is not None and last is not None:
        text = _PERIOD_NOTE % (activity, minutes, first, last)
        if "E" not in text:
            return text
    return note(a=activity, n=minutes, first=first, last=last)


@dataclass(frozen=True, slots=True)
class Figure:
    """One stored accounting figure, read back."""

    point: str
    kind: str
    start: float
    end: float
    value: Decimal | None  # tCO2 (co2 kinds) or activity (basis kinds)
    quality: Quality
    activity: Decimal | None
    factor: Decimal | None
    minutes: int | None
    first: Decimal | None
    last: Decimal | None

    @property
    def t(self) -> float:
        """When the figure is booked: the minute's start, or the time of a hand entry."""
        return self.end if self.kind in (ENTRY, BASIS_ENTRY) else self.start

    @classmethod
    def of(cls, d: Derived) -> Figure:
        data: dict[str, Any] = {}
        if d.note.startswith("{"):
            try:
                data = json.loads(d.note)
            except ValueError:
                data = {}

        def dec(name: str) -> Decimal | None:
            text = data.get(name)
            return None if text is None else Decimal(str(text))

        n = data.get("n")
        return cls(
            d.point,
            d.kind,
            d.start,
            d.end,
            d.value,
            d.quality,
            dec("a") if "a" in data else (d.value if d.kind.startswith("basis") else None),
            dec("f"),
            None if n is None else int(n),
            dec("first"),
            dec("last"),
        )


def select_figures(
    conn: Connection, points: Sequence[str], kinds: Sequence[str], start: float, end: float
) -> list[Figure]:
    """Figures of ``points`` of ``kinds`` booked in ``[start, end)`` (see :attr:`Figure.t`)."""
    if not points:
        return []
    c = derived_values.c
    entries = [k for k in kinds if k in (ENTRY, BASIS_ENTRY)]
    others = [k for k in kinds if k not in entries]
    of_points = c.point.in_(list(points))
    # A query each, both bounded on the start: each reads only its range of the (point, kind,
    # start) index. One query with OR read every figure of the points' kinds, and one bounded
    # only above, every figure before the end: after 48 hours, a point's minutes of one hour
    # took 1.1 ms and 8 ms so, 0.1 ms this way (a boot's accounting reads them per point).
    queries = []
    if others:
        queries.append(
            select(derived_values).where(
                of_points, c.kind.in_(others), c.period_start >= start, c.period_start < end
            )
        )
    if entries:  # booked at its end, which is not before its start
        queries.append(
            select(derived_values).where(
                of_points,
                c.kind.in_(entries),
                c.period_start < end,
                c.period_end >= start,
                c.period_end < end,
            )
        )
    found = [Figure.of(row_derived(r)) for q in queries for r in conn.execute(q).mappings()]
    found.sort(key=lambda f: (f.t, f.point, f.kind))
    return found


def select_latest(conn: Connection, point: str, kind: str) -> Figure | None:
    newest = select_newest(conn, point, kind)
    return None if newest is None else Figure.of(newest)


def select_period(
    conn: Connection, points: Sequence[str], period: Period, start: float
) -> dict[tuple[str, str], Figure]:
    """The stored closed-period figures (co2 and basis) of ``points`` for the period starting
    at ``start``, by (point, kind)."""
    c = derived_values.c
    kinds = [period_kind(period), period_kind(period, basis=True)]
    query = select(derived_values).where(
        c.point.in_(list(points)), c.kind.in_(kinds), c.period_start == start
    )
    return {
        (f.point, f.kind): f
        for f in (Figure.of(row_derived(r)) for r in conn.execute(query).mappings())
    }

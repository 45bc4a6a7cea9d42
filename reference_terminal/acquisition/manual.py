"""Manual entry (ISC-2 §7.2.2, CSMT §11.6): a value typed in by an operator, or a CSV file of
period figures imported in one go. The value keeps its exact text.

:func:`enter_value` takes one value for a point: the text must spell a finite decimal
(``"1234.50"`` stays ``Decimal("1234.50")``; ``"1,234.5"`` is refused rather than guessed at).

:func:`import_csv` reads the bench's manual-entry files (UTF-8, a BOM tolerated, one header
line)::

    period_start,period_end,point,quantity,value,unit,entered_by,source
    2026-01-01T00:00:00+08:00,2026-02-01T00:00:00+08:00,clinker_received,clinker_in.mass_t,…

Each row's ``point`` is matched to the terminal point whose ``source.name`` equals it (only
points of ``device`` when one is given). A row is refused, with its line number and why, when
its point is unknown or ambiguous, a time lacks its UTC offset or the period is empty, the value
is not a number, the unit disagrees with the point's, ``entered_by`` is empty, or it repeats a
point and period already given. The good rows are kept: one bad line does not lose a file.

A manual value's ``RawValue.t`` is the end of its period (for a typed value, the time the
operator gives); the period itself, who entered it and where it came from travel with it in
:class:`ManualValue`. Quality (manual, flag S) is for processing to set.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final, TextIO

from common.clock import Clock
from reference_terminal.config import Point
from reference_terminal.model import RawValue

__all__ = [
    "COLUMNS",
    "ImportResult",
    "ManualEntryError",
    "ManualValue",
    "Rejected",
    "enter_value",
    "import_csv",
]

COLUMNS: Final = (
    "period_start",
    "period_end",
    "point",
    "quantity",
    "value",
    "unit",
    "entered_by",
    "source",
)


class ManualEntryError(ValueError):
    """A value or file that cannot be taken; the message says what and where."""


@dataclass(frozen=True, slots=True)
class ManualValue:
    """A value entered by hand or imported, with who, when and for which period."""

    reading: RawValue
    entered_by: str
    entered_at: float  # terminal clock, when the terminal took it
    period_start: float | None = None
    period_end: float | None = None
    unit: str = ""
    quantity: str = ""
    note: str = ""  # where the figure comes from (the CSV's source column, a ticket number …)
    line: int | None = None  # the CSV line it came from


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    row: tuple[str, ...] = ()


@dataclass
class ImportResult:
    values: list[ManualValue] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def _number(text: str) -> Decimal:
    cleaned = text.strip()
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise ManualEntryError(f"value {text!r} is not a number") from None
    if not number.is_finite() or not cleaned:
        raise ManualEntryError(f"value {text!r} is not a number")
    return number


def enter_value(
    point: Point,
    text: str,
    *,
    t: float,
    operator: str,
    clock: Clock,
    unit: str = "",
    note: str = "",
) -> ManualValue:
    """An operator's value for ``point`` at ``t`` (POSIX seconds). Raises
    :class:`ManualEntryError` for a text that is not a number, a missing operator, or a unit
    other than the point's."""
    if not operator.strip():
        raise ManualEntryError("operator: a manual value needs the name of who entered it")
    if unit and point.unit and unit != point.unit:
        raise ManualEntryError(f"unit {unit!r}: point {point.id} is in {point.unit!r}")
    value = _number(text)
    reading = RawValue(point.id, value, text.strip(), t, point.source.device)
    return ManualValue(reading, operator.strip(), clock.time(), unit=unit or point.unit, note=note)


#: 9999-01-01T00:00:00Z: the periods of a later time (its month, its year) are no dates.
LATEST_S = 253_370_764_800.0


def _when(text: str, column: str) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ManualEntryError(f"{column} {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ManualEntryError(f"{column} {text!r} has no UTC offset")
    try:
        t = when.timestamp()
    except (OverflowError, ValueError):  # year 1 at a positive offset is year 0 in UTC
        t = -1.0
    if not 0 <= t < LATEST_S:
        raise ManualEntryError(f"{column} {text!r} is not between 1970 and 9998")
    return t


def import_csv(
    source: str | Path | TextIO,
    points: Sequence[Point],
    *,
    clock: Clock,
    device: str | None = None,
) -> ImportResult:
    """Import a manual-entry CSV (a path, or an open text file). Raises
    :class:`ManualEntryError` only for a file that cannot be read at all (missing, not UTF-8,
    header without the columns); row problems are in :attr:`ImportResult.rejected`."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ManualEntryError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ManualEntryError(
                f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
        return _import(io.StringIO(text, newline=""), points, clock, device)
    return _import(source, points, clock, device)


def _import(
    stream: Iterable[str], points: Sequence[Point], clock: Clock, device: str | None
) -> ImportResult:
    by_name: dict[str, list[Point]] = {}
    for point in points:
        if point.source.name and (device is None or point.source.device == device):
            by_name.setdefault(point.source.name, []).append(point)
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise ManualEntryError("the file is empty: expected a header line " + ",".join(COLUMNS))
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ManualEntryError(
            f"header: missing column(s) {', '.join(missing)} (found {', '.join(header)})"
        )
    where = {c: header.index(c) for c in COLUMNS}
    result = ImportResult()
    seen: dict[tuple[str, float, float], int] = {}
    now = clock.time()
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        try:
            if len(row) < len(header):
                raise ManualEntryError(f"{len(row)} columns, the header has {len(header)}")
            cell = {c: row[where[c]] for c in COLUMNS}
            value = _row(cell, by_name, seen, line, now)
        except ManualEntryError as exc:
            result.rejected.append(Rejected(line, str(exc), tuple(row)))
            continue
        result.values.append(value)
    return result


def _row(
    cell: dict[str, str],
    by_name: dict[str, list[Point]],
    seen: dict[tuple[str, float, float], int],
    line: int,
    now: float,
) -> ManualValue:
    name = cell["point"].strip()
    candidates = by_name.get(name, [])
    if not candidates:
        raise ManualEntryError(f"point {name!r}: no terminal point has source.name {name!r}")
    if len(candidates) > 1:
        ids = ", ".join(p.id for p in candidates)
        raise ManualEntryError(f"point {name!r}: several terminal points take it ({ids})")
    point = candidates[0]
    start = _when(cell["period_start"], "period_start")
    end = _when(cell["period_end"], "period_end")
    if end <= start:
        raise ManualEntryError("period_end: the period must end after it starts")
    value = _number(cell["value"])
    unit = cell["unit"].strip()
    if unit and point.unit and unit != point.unit:
        raise ManualEntryError(f"unit {unit!r}: point {point.id} is in {point.unit!r}")
    operator = cell["entered_by"].strip()
    if not operator:
        raise ManualEntryError("entered_by: empty (a manual value needs who entered it)")
    key = (point.id, start, end)
    if key in seen:
        raise ManualEntryError(f"point {name!r}: this period is already given on line {seen[key]}")
    seen[key] = line
    reading = RawValue(point.id, value, cell["value"].strip(), end, point.source.device)
    return ManualValue(
        reading,
        operator,
        now,
        period_start=start,
        period_end=end,
        unit=unit or point.unit,
        quantity=cell["quantity"].strip(),
        note=cell["source"].strip(),
        line=line,
    )

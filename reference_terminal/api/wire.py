"""How values and times cross the API.

- A value is its **exact decimal text** as stored (``"1234.50"`` keeps its zero; the meter's
  digits are part of the reading, ISC-2 §9.3), never a JSON number: a float would lose them.
- A time goes out twice: ``t`` in POSIX seconds (exact, for programs) and ``time`` in ISO 8601
  with the plant's UTC offset (for people; the offset processing uses for days and months, so
  a daily settlement reads ``…T00:00:00+08:00``).
- A time comes in as either: ISO 8601 *with* an offset (a time without one is refused rather
  than guessed at) or POSIX seconds.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from reference_terminal.api.errors import ApiError
from reference_terminal.model import Event, RawValue, Reading
from reference_terminal.storage.schema import Derived

T = TypeVar("T")

#: Bounds for a range left open: far beyond any terminal's data, and exact as DOUBLE.
FAR_PAST = -(2.0**53)
FAR_FUTURE = 2.0**53
#: The times a request may name: 1970-01-01 to 9998-12-31T23:59:59Z (a period containing one,
#: its month, its year and the next, are all still dates).
EARLIEST, LATEST = 0.0, 253_370_764_799.0

# In a URL query "+" means a space, so "…T00:00:00+08:00" typed unencoded arrives as
# "…T00:00:00 08:00"; that space can only have been a plus.
_LOST_PLUS = re.compile(r" (\d\d(?::?\d\d)?)$")


def parse_time(text: str | float, name: str) -> float:
    """POSIX seconds from ISO 8601 with an offset, or from POSIX seconds (number or text),
    between 1970 and the end of 9998 (:data:`EARLIEST`, :data:`LATEST`)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        s = text.strip()
        try:
            seconds = float(s)
        except ValueError:
            seconds = _parse_iso(s, name)
    if not math.isfinite(seconds):
        raise ApiError(422, "invalid_time", f"{name}: {text!r} is not a finite time")
    if not EARLIEST <= seconds <= LATEST:
        raise ApiError(422, "invalid_time", f"{name}: {text!r} is not a time between 1970 and 9998")
    return seconds


def _parse_iso(s: str, name: str) -> float:
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        repaired = _LOST_PLUS.sub(r"+\1", s)
        try:
            when = datetime.fromisoformat(repaired)
        except ValueError:
            raise ApiError(
                422,
                "invalid_time",
                f"{name}: {s!r} is neither ISO 8601 nor POSIX seconds",
            ) from None
    if when.tzinfo is None:
        raise ApiError(
            422,
            "invalid_time",
            f"{name}: {s!r} has no UTC offset (write e.g. {s}+08:00, or POSIX seconds)",
        )
    return when.timestamp()


def time_range(
    start: str | None, end: str | None, *, default_start: float = FAR_PAST
) -> tuple[float, float]:
    """``[start, end)`` from query text; open ends are unbounded (start: ``default_start``)."""
    lo = default_start if start is None else parse_time(start, "start")
    hi = FAR_FUTURE if end is None else parse_time(end, "end")
    if hi <= lo:
        raise ApiError(422, "invalid_time", f"end ({end}) must be after start ({start})")
    return lo, hi


def optional_range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    """Like :func:`time_range` but an open end stays None (the store's own "unbounded")."""
    lo = None if start is None else parse_time(start, "start")
    hi = None if end is None else parse_time(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise ApiError(422, "invalid_time", f"end ({end}) must be after start ({start})")
    return lo, hi


def iso(t: float, offset_s: int) -> str:
    return datetime.fromtimestamp(t, timezone(timedelta(seconds=offset_s))).isoformat()


def iso_or_none(t: float | None, offset_s: int) -> str | None:
    return None if t is None else iso(t, offset_s)


# ---- what goes out -----------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReadingOut(Out):
    point: str
    t: float
    time: str
    raw: str
    value: str | None
    quality: str
    digits: int
    device: str
    note: str

    @classmethod
    def of(cls, r: Reading, offset_s: int) -> ReadingOut:
        return cls(
            point=r.point,
            t=r.t,
            time=iso(r.t, offset_s),
            raw=r.raw,
            value=None if r.value is None else str(r.value),
            quality=str(r.quality),
            digits=r.digits,
            device=r.device,
            note=r.note,
        )


class DerivedOut(Out):
    point: str
    kind: str
    start: float
    start_time: str
    end: float
    end_time: str
    value: str | None
    quality: str
    note: str
    computed_at: float
    computed_time: str

    @classmethod
    def of(cls, d: Derived, offset_s: int) -> DerivedOut:
        return cls(
            point=d.point,
            kind=d.kind,
            start=d.start,
            start_time=iso(d.start, offset_s),
            end=d.end,
            end_time=iso(d.end, offset_s),
            value=None if d.value is None else str(d.value),
            quality=str(d.quality),
            note=d.note,
            computed_at=d.computed_at,
            computed_time=iso(d.computed_at, offset_s),
        )


class EventOut(Out):
    t: float
    time: str
    kind: str
    point: str | None
    device: str | None
    start: float | None
    start_time: str | None
    end: float | None
    end_time: str | None
    details: dict[str, str]

    @classmethod
    def of(cls, e: Event, offset_s: int) -> EventOut:
        return cls(
            t=e.t,
            time=iso(e.t, offset_s),
            kind=e.kind,
            point=e.point,
            device=e.device,
            start=e.start,
            start_time=iso_or_none(e.start, offset_s),
            end=e.end,
            end_time=iso_or_none(e.end, offset_s),
            details=dict(e.details),
        )


class RawOut(Out):
    """What a device gave for one point, before processing."""

    point: str
    t: float
    time: str
    value: str | None
    raw: str
    device: str
    error: str | None

    @classmethod
    def of(cls, r: RawValue, offset_s: int) -> RawOut:
        return cls(
            point=r.point,
            t=r.t,
            time=iso(r.t, offset_s),
            value=None if r.value is None else str(r.value),
            raw=r.raw,
            device=r.device,
            error=r.error,
        )


class Page(Out, Generic[T]):
    """Up to ``limit`` items, oldest first; ``truncated``: more match (narrow the range or use
    ``/export``)."""

    items: list[T]
    count: int
    truncated: bool

    @classmethod
    def of(cls, items: list[T], limit: int) -> Page[T]:
        kept = items[:limit]
        return cls(items=kept, count=len(kept), truncated=len(items) > limit)

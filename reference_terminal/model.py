"""What flows through the terminal: readings with their raw form, value, quality and digits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Quality(StrEnum):
    """Why a stored value can (or cannot) be trusted; the HJ 212 data flag it maps to in brackets.

    A value is never passed off as measured: interpolated, manual and backup values say so.
    """

    GOOD = "good"  # measured by the primary device (N)
    BACKUP = "backup"  # measured by the backup device after a switch-over (N)
    MANUAL = "manual"  # entered by hand or imported (S)
    INTERPOLATED = "interpolated"  # filled across a fault gap, CSMT §12.4 (D)
    OUT_OF_RANGE = "out_of_range"  # outside the meter's min/max, CSMT §8.1.1 (T)
    SUSPECT = "suspect"  # failed the second check against history, CSMT §8.1.2
    COMM_FAULT = "comm_fault"  # no value: the device did not answer usably (B)

    @property
    def usable(self) -> bool:
        return self in (Quality.GOOD, Quality.BACKUP, Quality.MANUAL, Quality.INTERPOLATED)


@dataclass(frozen=True, slots=True)
class RawValue:
    """What a driver read for one point: the exact value as the device gave it, and its
    wire form for the record (register words, BCD digits, JSON text …)."""

    point: str
    value: Decimal | None
    raw: str
    t: float  # when the device answered (terminal clock, POSIX seconds)
    device: str
    error: str | None = None  # why there is no value (timeout, bad checksum, exception …)


@dataclass(frozen=True, slots=True)
class Reading:
    """A point's reading as processed and stored (ISC-2 §9.3: raw reading, converted value,
    quality and the meter's significant digits are all kept)."""

    point: str
    t: float
    raw: str
    value: Decimal | None
    quality: Quality
    digits: int  # decimal places the meter showed
    device: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """Something an operator or auditor must be able to find later: a gap, a switch-over, an
    interpolation, a rejected value, a meter replacement …"""

    t: float
    kind: str
    point: str | None = None
    device: str | None = None
    start: float | None = None
    end: float | None = None
    details: dict[str, str] = field(default_factory=dict)


# ---- windows and their figures ------------------------------------------------------------------
#
# A closed window (``processing/settlement.py``) has a main figure (a counter's increment, a
# gauge's mean), stored under its period's name (``minute``, ``hour``, ``300s``, ``day``,
# ``month``, ``year``), and figures beside it: ``<period>_max``, ``_min``, ``_first``, ``_last``,
# and ``_count`` for windows of an hour or longer. The store keeps a window in one row and shows
# each figure as a value of its own (``storage/schema.py``, "windows").

#: A window's figures beside its main one, every period's.
FIGURES = ("max", "min", "first", "last")
#: ... and the one of windows of an hour or longer (a restart merges them by their counts).
COUNT = "count"
_PERIOD = re.compile(r"(?:second|minute|hour|day|month|year|[1-9][0-9]*s)\Z")


def is_window_kind(kind: str) -> bool:
    """Whether ``kind`` names a window's main figure: a period's name."""
    return _PERIOD.match(kind) is not None


def counted(period: str) -> bool:
    """Whether a window of this period stores its sample count (an hour or longer)."""
    if period in ("second", "minute"):
        return False
    return not (period.endswith("s") and int(period[:-1]) < 3600)


def figures_of(period: str) -> tuple[str, ...]:
    """The figures a window of ``period`` has beside its main one."""
    return (*FIGURES, COUNT) if counted(period) else FIGURES


def figure_kind(kind: str) -> tuple[str, str] | None:
    """(window kind, figure) when ``kind`` names a window's figure (``hour_max`` → ``("hour",
    "max")``), else None."""
    window, _, figure = kind.rpartition("_")
    if is_window_kind(window) and figure in figures_of(window):
        return window, figure
    return None

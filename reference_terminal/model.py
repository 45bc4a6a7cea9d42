"""What flows through the terminal: readings with their raw form, value, quality and digits."""

from __future__ import annotations

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

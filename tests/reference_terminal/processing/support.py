"""Builders shared by the processing tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from reference_terminal.config import Point, Source
from reference_terminal.model import Quality, RawValue, Reading
from reference_terminal.processing.validation import digits_of

CST = timezone(timedelta(hours=8))
#: Local midnight starting 2025-11-21 in China (16:00 UTC the day before).
T0 = datetime(2025, 11, 21, tzinfo=CST).timestamp()


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: float = 0
) -> float:
    """POSIX seconds of a plant-local (UTC+8) time."""
    return datetime(year, month, day, hour, minute, tzinfo=CST).timestamp() + second


def point(pid: str = "P", kind: str = "gauge", **fields: Any) -> Point:
    return Point.model_validate(
        {"id": pid, "kind": kind, "group": "g", "source": Source(device="m1"), **fields}
    )


def reading(
    pid: str, t: float, value: str, quality: Quality = Quality.GOOD, device: str = "m1"
) -> Reading:
    v = Decimal(value)
    return Reading(pid, t, value, v, quality, digits_of(v), device)


def raw(
    pid: str, t: float, value: str | None, device: str = "m1", error: str | None = None
) -> RawValue:
    return RawValue(pid, None if value is None else Decimal(value), value or "", t, device, error)

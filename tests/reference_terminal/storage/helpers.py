"""Small builders shared by the store tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from reference_terminal.model import Event, Quality, Reading
from reference_terminal.storage.schema import Derived, WindowFigures

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def reading(
    point: str = "EM01.ep",
    t: float = T0,
    value: str | None = "1.00",
    *,
    raw: str = "33 33 34 33",
    quality: Quality = Quality.GOOD,
    digits: int = 2,
    device: str = "meter-01",
    note: str = "",
) -> Reading:
    return Reading(
        point=point,
        t=t,
        raw=raw,
        value=None if value is None else Decimal(value),
        quality=quality,
        digits=digits,
        device=device,
        note=note,
    )


def event(kind: str = "gap", t: float = T0, point: str | None = "EM01.ep", **details: str) -> Event:
    return Event(
        t=t, kind=kind, point=point, device="meter-01", start=t - 60, end=t, details=details
    )


def derived(
    point: str = "EM01.ep",
    kind: str = "hour",
    start: float = T0,
    value: str | None = "12.50",
    *,
    length: float = 3600.0,
    note: str = "",
) -> Derived:
    return Derived(
        point=point,
        kind=kind,
        start=start,
        end=start + length,
        value=None if value is None else Decimal(value),
        quality=Quality.GOOD,
        note=note,
        computed_at=start + length + 1,
    )


def window(
    point: str = "EM01.ep",
    kind: str = "minute",
    start: float = T0,
    value: str | None = "12.50",
    *,
    length: float = 60.0,
    count: int | None = None,
) -> Derived:
    """A closed window: its main figure ``value``, max one more, min one less, first and last
    the min and the max."""
    d = derived(point, kind, start, value, length=length)
    high = None if d.value is None else d.value + 1
    low = None if d.value is None else d.value - 1
    figures = WindowFigures(high, low, low, high, None if count is None else Decimal(count))
    return replace(d, figures=figures)


def steps(conn: Connection, ask: Callable[[Connection], object]) -> int:
    """SQLite virtual-machine steps (in hundreds) that ``ask`` takes: the work of its queries."""
    counted = 0

    def tick() -> int:
        nonlocal counted
        counted += 1
        return 0

    dbapi: Any = conn.connection.dbapi_connection
    dbapi.set_progress_handler(tick, 100)
    try:
        ask(conn)
    finally:
        dbapi.set_progress_handler(None, 100)
    return counted

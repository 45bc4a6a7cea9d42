"""A plant database read with the device's query (SQLAlchemy URL): ``(name, value)`` rows, and
``Source.name`` picks the row.

The query runs on a worker thread (SQLAlchemy's synchronous engine: every database the terminal
supports has a synchronous driver, not all an asynchronous one), bounded by ``timeout_s`` on the
terminal's clock and retried ``retries`` times on database errors before :class:`DriverError`.
A query still running when its time is up is left to finish on its thread; its result is
dropped.

Values keep the database's exactness: DECIMAL/NUMERIC and integers as they are, text as the
decimal it spells. A floating-point column (what historians store) carries no resolution of its
own: its value, the shortest decimal that is the same double (``Decimal(repr(x))``), is shown at
the point's configured decimals, half-even, as OPC UA doubles and Modbus floats are (ISC-2
§9.3). NULL, non-numbers, and a name found in several rows with different
values set ``RawValue.error``; a name found in no row too.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from common.clock import Clock
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.serial_port import within
from reference_terminal.config import Point, Source, SqlDevice
from reference_terminal.model import RawValue

__all__ = ["SqlDriver", "sql_value"]

Row = tuple[object, object]


def sql_value(value: object) -> tuple[Decimal, str]:
    """(exact value, its text) of a column value; ValueError for anything not a number."""
    if value is None:
        raise ValueError("NULL")
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a number: {value}")
        return value, str(value)
    if isinstance(value, int):
        return Decimal(value), str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a number: {value!r}")
        return Decimal(repr(value)), repr(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"not a number: {value!r}")
        return number, value
    raise ValueError(f"not a number: {type(value).__name__} {value!r}")


class SqlDriver:
    """One database query."""

    def __init__(self, device: SqlDevice, clock: Clock) -> None:
        self.device_id = device.id
        self.device = device
        self.clock = clock
        self._engine: Engine | None = None

    def _query(self) -> list[Row]:
        if self._engine is None:
            self._engine = create_engine(self.device.url, pool_pre_ping=True)
        with self._engine.connect() as connection:
            result = connection.execute(text(self.device.query))
            return [(row[0], row[1]) for row in result]

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        problem, kind = "", "error"
        attempts = self.device.retries + 1
        rows: list[Row] | None = None
        for _ in range(attempts):
            try:
                rows = await within(
                    self.clock, self.device.timeout_s, asyncio.to_thread(self._query)
                )
                break
            except TimeoutError:
                kind, problem = "timeout", f"no result within {self.device.timeout_s:g} s"
            except (SQLAlchemyError, IndexError, TypeError) as exc:
                # IndexError/TypeError: rows without two columns.
                kind, problem = "database", f"{type(exc).__name__}: {exc}".splitlines()[0]
        if rows is None:
            raise DriverError(self.device_id, f"{problem} ({attempts} attempt(s))", kind=kind)
        t = self.clock.time()
        found: dict[str, list[object]] = {}
        for name, value in rows:
            found.setdefault(str(name), []).append(value)
        return [self._value(point, source, found, t) for point, source in requests]

    def _value(
        self, point: Point, source: Source, found: dict[str, list[object]], t: float
    ) -> RawValue:
        name = source.name or ""
        values = found.get(name)
        if not values:
            return RawValue(point.id, None, "", t, self.device_id, f"no row named {name!r}")
        if len({repr(v) for v in values}) > 1:
            return RawValue(
                point.id,
                None,
                "",
                t,
                self.device_id,
                f"{len(values)} rows named {name!r} disagree: {values!r}",
            )
        try:
            value, raw = sql_value(values[0])
        except ValueError as exc:
            return RawValue(point.id, None, repr(values[0]), t, self.device_id, f"value: {exc}")
        if isinstance(values[0], float):
            value = value.quantize(Decimal(1).scaleb(-point.decimals), ROUND_HALF_EVEN)
        return RawValue(point.id, value, raw, t, self.device_id)

    async def close(self) -> None:
        if self._engine is not None:
            await asyncio.to_thread(self._engine.dispose)
            self._engine = None

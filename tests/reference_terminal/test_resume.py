"""After a restart, processing picks up from the store: a counter's first reading after it
gives the increment since its last usable reading before it (nothing used across the restart
goes uncounted), its stored months feed the second check again (CSMT §8.1.2), and the windows
open at the restart, or closed but never written, come back from the stored readings."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, event

from reference_terminal.app import Terminal, increment_rows, window_rows
from reference_terminal.config import Point, TerminalConfig
from reference_terminal.model import Quality, RawValue, Reading
from reference_terminal.processing.pipeline import Output, Processor
from reference_terminal.processing.settlement import Aggregate
from reference_terminal.resume import Resumed, resume, select_stored
from reference_terminal.storage.schema import Derived, derived_recent, derived_settled
from reference_terminal.storage.store import Store, sqlite_url

T0 = 1_767_578_400.0  # 2026-01-05 10:00 +08:00


def counter(point_id: str = "EM01.ep") -> Point:
    return Point.model_validate(
        {
            "id": point_id,
            "kind": "counter",
            "group": "g",
            "source": {"device": "EM01"},
            "decimals": 2,
            "full_scale": "1000000",
        }
    )


def restart_config(tmp_path: Path) -> TerminalConfig:
    """A terminal with one counter entered by hand, its store in ``tmp_path``."""
    return TerminalConfig.model_validate(
        {
            "name": "restart",
            "devices": [{"id": "EM01", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [counter().model_dump()],
            "storage": {"url": sqlite_url(tmp_path / "t.db")},
        }
    )


def reading(t: float, value: str, quality: Quality = Quality.GOOD) -> Reading:
    v = Decimal(value) if quality is not Quality.COMM_FAULT else None
    return Reading("EM01.ep", t, value, v, quality, 2, "EM01")


def test_the_first_increment_after_a_restart_spans_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            await store.write(
                [
                    reading(T0, "100.00"),
                    reading(T0 + 60, "101.50"),
                    reading(T0 + 120, "", Quality.COMM_FAULT),  # the latest, but not usable
                ]
            )
            processor = Processor([counter()])
            resumed = await resume(processor, store)
            assert resumed.baselines == 1
            out = processor.process(
                RawValue("EM01.ep", Decimal("104.00"), "104.00", T0 + 600, "EM01")
            )
            assert [(i.t0, i.t, i.value) for i in out.increments] == [
                (T0 + 60, T0 + 600, Decimal("2.50"))
            ]

    asyncio.run(main())


def jump_after(processor: Processor) -> Quality:
    """The quality of an increment of 5 000 (far beyond twice a 300 month)."""
    processor.process(RawValue("EM01.ep", Decimal("100.00"), "100.00", T0, "EM01"))
    out = processor.process(RawValue("EM01.ep", Decimal("5100.00"), "5100.00", T0 + 60, "EM01"))
    return out.increments[0].quality


def test_stored_months_feed_the_second_check_again(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            december = 1_764_518_400.0  # 2025-12-01 00:00 +08:00
            month = Derived(
                "EM01.ep", "month", december, T0 - 4 * 86400, Decimal("300"), Quality.GOOD, "", T0
            )
            await store.write_derived([month])
            fresh = Processor([counter()])
            assert jump_after(fresh) is Quality.GOOD  # no history: nothing to check against
            restarted = Processor([counter()])
            assert await resume(restarted, store) == Resumed(baselines=0, months=1)
            assert jump_after(restarted) is Quality.SUSPECT

    asyncio.run(main())


def gauge_reading(t: float, value: str) -> Reading:
    return Reading("FT01.q", t, value, Decimal(value), Quality.GOOD, 1, "FT01")


def gauge() -> Point:
    return Point.model_validate(
        {"id": "FT01.q", "kind": "gauge", "group": "g", "source": {"device": "FT01"}}
    )


def test_windows_the_power_cut_kept_from_the_store_come_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            # Readings every minute from 10:00:10 to 10:05:10 are durable; of the windows they
            # closed only 10:00's figures were written before the cut.
            await store.write([gauge_reading(T0 + 10 + 60 * k, f"{5 + k}.0") for k in range(6)])
            stored = Derived("FT01.q", "minute", T0, T0 + 60, Decimal("5.0"), Quality.GOOD)
            await store.write_derived([stored])
            processor = Processor([gauge()])
            resumed = await resume(processor, store)
            assert resumed.replayed == 6
            assert [(a.period, a.start, a.value) for a in resumed.recovered] == [
                ("minute", T0 + 60 * k, Decimal(f"{5 + k}.0")) for k in range(1, 5)
            ]
            # The minute open at the cut closes like any other once time moves on.
            out = processor.close_until(T0 + 400)
            assert [(a.period, a.start, a.value) for a in out.aggregates] == [
                ("minute", T0 + 300, Decimal("10.0"))
            ]
            # And the hour holds every reading of it, from before the restart and after.
            processor.process(RawValue("FT01.q", Decimal("2.0"), "2.0", T0 + 3590, "FT01"))
            hour = processor.close_until(T0 + 3600).aggregates[-1]
            assert (hour.period, hour.count, hour.mean) == ("hour", 7, Decimal("6.7"))  # 47 / 7

    asyncio.run(main())


def test_a_replay_finds_which_of_its_windows_are_stored_period_by_period(
    tmp_path: Path,
) -> None:
    def window(period: str, start: float, length: float) -> Aggregate:
        one = Decimal(1)
        return Aggregate(
            point="FT01.q", period=period, start=start, end=start + length, label="",
            kind="gauge", count=1, first=one, last=one, min=one, max=one, mean=one,
            increment=None, excluded=0, digits=1, quality=Quality.GOOD,
        )  # fmt: skip

    minutes = [window("minute", T0 + 60 * k, 60) for k in range(10)]
    hour, day = window("hour", T0, 3600), window("day", T0 - 36000, 86400)
    # the even minutes and the hour were written before the cut; so was a minute before any
    # the replay closed, which nobody asks about
    written = (*minutes[::2], hour, window("minute", T0 - 60, 60))

    async def main() -> set[tuple[str, str, float]]:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            await store.write_derived(window_rows(Output(aggregates=written), T0))
            return await store.run_in_reader(lambda c: select_stored(c, [*minutes, hour, day]))

    stored = asyncio.run(main())
    assert stored == {("FT01.q", "minute", T0 + 60 * k) for k in range(0, 10, 2)} | {
        ("FT01.q", "hour", T0)
    }


def test_a_new_store_resumes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            assert await resume(Processor([counter()]), store) == Resumed(0, 0)

    asyncio.run(main())


def test_a_restarted_terminal_counts_what_was_used_while_it_was_down(tmp_path: Path) -> None:
    config = restart_config(tmp_path)

    async def run_once(value: str, t: float) -> None:
        terminal = Terminal(config)
        task = asyncio.create_task(terminal.run())
        try:
            await asyncio.wait_for(terminal.ready.wait(), 30)
            await terminal.accept([RawValue("EM01.ep", Decimal(value), value, t, "EM01")])
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def main() -> None:
        await run_once("100.00", T0)
        await run_once("104.25", T0 + 3600)  # a new process: the power came back an hour later
        async with await Store.open(config.storage.url) as store:
            increments = await store.derived("EM01.ep", "increment")
        assert [(d.start, d.end, d.value) for d in increments] == [(T0, T0 + 3600, Decimal("4.25"))]

    asyncio.run(main())


def test_a_restart_reads_each_points_history_with_the_recent_rows_indexed_by_point(
    tmp_path: Path,
) -> None:
    """The recent tables are keyed time first; a restart's per-point queries would scan them
    once per point (boots of seconds with a few hundred points), so the terminal indexes them
    by point while processing and accounting resume, and drops the indexes afterwards."""
    config = restart_config(tmp_path)
    statements: list[str] = []

    def trace(dbapi_connection: sqlite3.Connection, record: object) -> None:
        # SQLite's own trace: statements run straight on the driver are seen too
        dbapi_connection.set_trace_callback(lambda s: statements.append(" ".join(s.split())))

    async def boot() -> None:
        terminal = Terminal(config)
        task = asyncio.create_task(terminal.run())
        try:
            await asyncio.wait_for(terminal.ready.wait(), 30)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(boot())
    event.listen(Engine, "connect", trace)
    try:
        asyncio.run(boot())
    finally:
        event.remove(Engine, "connect", trace)
    created = next(i for i, s in enumerate(statements) if "CREATE INDEX ix_boot_readings" in s)
    dropped = next(i for i, s in enumerate(statements) if "DROP INDEX ix_boot_readings" in s)
    history = [
        i
        for i, s in enumerate(statements)
        if s.startswith("SELECT") and "FROM readings " in s and "readings.point =" in s
    ]
    assert history and all(created < i < dropped for i in history)


def test_a_restart_just_past_midnight_still_settles_the_day_before(tmp_path: Path) -> None:
    """Windows close a little after their end: a restart at 00:00:10 finds the last hour's
    readings durable but neither that hour nor the day stored. Both are open again after it,
    with every increment (attributed at its middle) in them."""
    midnight = T0 + 14 * 3600  # 2026-01-06 00:00 +08:00
    values = [(midnight - 7200 + 600 * k, f"{100 + k}.00") for k in range(12)]  # 22:00–23:50
    values.append((midnight + 5, "112.00"))  # its increment's middle is 23:55:02

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            before = Processor([counter()])
            for t, v in values[:7]:  # 22:00–23:00: the 22 o'clock hour closed and stored
                before.process(RawValue("EM01.ep", Decimal(v), v, t, "EM01"))
            await store.write([reading(t, v) for t, v in values])
            await store.write_derived(window_rows(before.close_until(midnight - 3600), T0))
            processor = Processor([counter()])
            await resume(processor, store)
        closed = processor.close_until(midnight + 30).aggregates
        windows = {(a.period, a.start): a.increment for a in closed}
        assert windows[("hour", midnight - 3600)] == Decimal("6.00")  # 23:00 → 00:00:05
        assert windows[("day", midnight - 86400)] == Decimal("12.00")  # 22:00 → 00:00:05

    asyncio.run(main())


# ---- virtual points ---------------------------------------------------------------------------

VIRTUAL_CONFIG = TerminalConfig.model_validate(
    {
        "devices": [{"id": "m1", "protocol": "modbus-tcp", "host": "127.0.0.1"}],
        "groups": [{"id": "g", "period_s": 60}],
        "points": [
            {"id": p, "kind": "counter", "group": "g", "source": {"device": "m1"}}
            for p in ("E1", "E2", "E3")
        ]
        + [{"id": "F", "kind": "gauge", "group": "g", "source": {"device": "m1"}}],
        "virtual_points": [
            {"op": "add", "id": "T", "inputs": ["E1", "E2"]},
            {"op": "multiply", "id": "U", "inputs": ["T"], "factor": "0.5"},
            {
                "op": "allocate",
                "id": "A",
                "source": "E3",
                "targets": ["X", "Y"],
                "shares": ["0.3", "0.7"],
            },
            {"op": "integrate", "id": "H", "source": "F"},
        ],
    }
)
VIRTUAL = ("T", "U", "X", "Y", "H")
#: Each point is read once a minute, each at its own second (so their windows close apart).
PHASE = {"E1": 0.2, "E2": 40.2, "E3": 20.7, "F": 10.4}


def sample(point: str, k: int) -> RawValue:
    """The ``k``-th minute's reading of ``point``: counters advancing unevenly, a rate whose
    trapezoids are whole hundredths (so the integral's rounding cannot differ by where a
    restart falls)."""
    t = T0 + 60 * k + PHASE[point]
    if point == "F":
        value = f"{12 * (k % 5) + 1.2 * (k % 3):.2f}"
    else:
        value = f"{100 + 1.37 * k + 0.11 * (k % 7) + (5 if point == 'E2' else 0):.2f}"
    return RawValue(point, Decimal(value), value, t, "m1")


async def run_terminal(store: Store, minutes: range, processor: Processor) -> None:
    """What the terminal does minute by minute: values processed and stored as they come, and
    every minute the windows closed (30 s behind) and their figures stored."""
    for k in minutes:
        for point in sorted(PHASE, key=PHASE.__getitem__):
            out = processor.process(sample(point, k))
            await store.write(out.readings, derived=increment_rows(out, T0))
            await store.write_derived(window_rows(out, T0))
        await store.write_derived(window_rows(processor.close_until(T0 + 60 * k + 30), T0))


async def virtual_windows(store: Store) -> dict[tuple[str, str, float], tuple[object, ...]]:
    found: dict[tuple[str, str, float], tuple[object, ...]] = {}
    for point in VIRTUAL:
        for kind in ("minute", "hour", "day"):
            for d in await store.derived(point, kind):
                found[(point, kind, d.start)] = (d.value, d.quality)
    return found


@pytest.mark.parametrize("cut", [61, 97])  # just after 11:01:40, 11:37:40
def test_virtual_points_come_back_after_a_cut_as_if_there_had_been_none(
    tmp_path: Path, cut: int
) -> None:
    """A cut mid-minute, just after an hour or within one: the windows the cut kept from the
    store, those whose inputs closed on both sides of it, and the hour and day open across it
    come out for every virtual point (add, a multiply of it, an allocation, an integral) exactly
    as without it."""
    before, after = range(cut), range(cut, 240)  # minutes of values before and after the cut

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "whole.db")) as whole:
            await run_terminal(whole, range(240), Processor.from_config(VIRTUAL_CONFIG))
            expected = await virtual_windows(whole)
        async with await Store.open(sqlite_url(tmp_path / "cut.db")) as store:
            first = Processor.from_config(VIRTUAL_CONFIG)
            await run_terminal(store, before, first)

            # the write-behind queue lost the figures of the windows that ended in the last
            # three minutes with the power (readings and increments are durable)
            def lose(c: Connection) -> None:
                for table in (derived_recent, derived_settled):
                    c.execute(
                        table.delete().where(
                            table.c.period_end > T0 + 60 * (cut - 3),
                            table.c.kind.not_like("increment%"),
                        )
                    )

            await store.run_in_writer(lose)
            second = Processor.from_config(VIRTUAL_CONFIG)
            resumed = await resume(second, store)
            await store.write_derived(window_rows(Output(aggregates=resumed.recovered), T0))
            assert {a.point for a in resumed.recovered} >= set(VIRTUAL)
            await run_terminal(store, after, second)
            got = await virtual_windows(store)
        assert got == expected
        # every window has a value but the first minute's (E2's first increment is in the next)
        empty = sorted(start for (_, _, start), (value, _) in got.items() if value is None)
        assert empty == [T0, T0]  # T's and U's

    asyncio.run(main())

"""After a restart, processing picks up from the store: a counter's first reading after it
gives the increment since its last usable reading before it (nothing used across the restart
goes uncounted), its stored months feed the second check again (CSMT §8.1.2), and the windows
open at the restart, or closed but never written, come back from the stored readings."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path

from reference_terminal.app import Terminal, window_rows
from reference_terminal.config import Point, TerminalConfig
from reference_terminal.model import Quality, RawValue, Reading
from reference_terminal.processing.pipeline import Processor
from reference_terminal.resume import Resumed, resume
from reference_terminal.storage.schema import Derived
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


def test_a_new_store_resumes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            assert await resume(Processor([counter()]), store) == Resumed(0, 0)

    asyncio.run(main())


def test_a_restarted_terminal_counts_what_was_used_while_it_was_down(tmp_path: Path) -> None:
    config = TerminalConfig.model_validate(
        {
            "name": "restart",
            "devices": [{"id": "EM01", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [counter().model_dump()],
            "storage": {"url": sqlite_url(tmp_path / "t.db")},
        }
    )

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

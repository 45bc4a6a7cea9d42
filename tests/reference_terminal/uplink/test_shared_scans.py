"""Centres scanning at the same instant share one store transaction (the store's writer runs calls
queued together in one, each in a savepoint): what one centre's scan read and built serves the
next one's, and only while nothing can have changed it. Each centre still gets every window
exactly once, with the values the store holds when its own scan runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, update

from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, derived_recent
from reference_terminal.storage.statements import Prepared
from reference_terminal.storage.store import Store
from reference_terminal.uplink import derived_scan, producer
from reference_terminal.uplink.frames import Frame
from reference_terminal.uplink.outbox import Entry, delete, get_state, load
from reference_terminal.uplink.producer import Producer

from .helpers import MN_A, MN_B, T0, config, hj212_centre, minute_rows, producers

GOOD = Quality.GOOD
COUNTER = "C301103001e0101"  # P1's code


class Counting:
    """Counts the reads of derived rows a scan makes (``derived_scan._TAKE``)."""

    def __init__(self, inner: Prepared) -> None:
        self.inner = inner
        self.runs = 0

    def run(self, conn: Connection, *args: Any) -> Any:
        self.runs += 1
        return self.inner.run(conn, *args)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counting:
    counting = Counting(derived_scan._TAKE)
    monkeypatch.setattr(derived_scan, "_TAKE", counting)
    return counting


MINUTES = {"realtime": False, "minute": True, "hourly": False, "daily": False}


def _config(tmp_path: Path) -> TerminalConfig:
    return config(
        tmp_path,
        [
            hj212_centre("a", MN_A, 1, streams=MINUTES),
            hj212_centre("b", MN_B, 2, streams=MINUTES),
        ],
    )


async def _together(store: Store, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` (each making one writer call) queued together, in the order given: made in
    one turn of the event loop, they reach the writer as one group while it is held in a call
    of its own, so it takes them in one transaction."""
    release = threading.Event()
    held = asyncio.ensure_future(store.run_in_writer(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)  # the writer is waiting in that call
    tasks = [asyncio.ensure_future(call()) for call in calls]
    await asyncio.sleep(0.1)  # all queued behind it
    release.set()
    await held
    return list(await asyncio.gather(*tasks))


async def _outbox(store: Store, centre: str) -> list[Frame]:
    entries = await store.run_in_reader(lambda c: load(c, centre, (float("-inf"), 0), None, 1000))
    return [e.frame for e in entries]


def _counter_totals(frames: list[Frame]) -> dict[float, Decimal | None]:
    return {f.data_time: next(i.value for i in f.items if i.code == COUNTER) for f in frames}


async def _stored(store: Store, rows: list[Derived]) -> None:
    await store.write_derived(rows)
    await store.run_in_reader(lambda conn: None)  # applied to the database (a reader waits)


async def _prepared(
    store: Store, tmp_path: Path, bounds: tuple[int, int] = (10_000, 10_000)
) -> list[Producer]:
    """The producers of centres a and b (outboxes of ``bounds``), prepared: their cursors
    start at the store's top."""
    made = producers(store, _config(tmp_path), bounds=bounds)
    for one in made:
        await one.prepare()
    return made


async def _cursor(store: Store, centre: str) -> str | None:
    return await store.run_in_reader(lambda c: get_state(c, centre, "cursor.minute"))


def test_two_centres_scanning_together_read_the_rows_once_and_each_get_every_window(
    tmp_path: Path, reads: Counting
) -> None:
    async def main() -> None:
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, b = await _prepared(store, tmp_path)
            await _stored(store, minute_rows(T0, 3))
            now = T0 + 4 * 60
            made = await _together(store, lambda: a.produce(now), lambda: b.produce(now))
            assert reads.runs == 1  # read by the first scan, served to the second
            assert [len(m) for m in made] == [3, 3]
            frames_a, frames_b = await _outbox(store, "a"), await _outbox(store, "b")
            assert frames_a == frames_b
            assert [f.data_time for f in frames_a] == [T0, T0 + 60, T0 + 120]
            assert await _cursor(store, "a") == await _cursor(store, "b")
            # the next minute: read once more, and no window twice
            await _stored(store, minute_rows(T0 + 180, 1))
            made = await _together(store, lambda: a.produce(now + 60), lambda: b.produce(now + 60))
            assert reads.runs == 2
            assert [[e.frame.data_time for e in m] for m in made] == [[T0 + 180], [T0 + 180]]

    asyncio.run(main())


def test_a_value_rewritten_between_two_scans_of_one_transaction_is_read_anew(
    tmp_path: Path, reads: Counting
) -> None:
    async def main() -> None:
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, b = await _prepared(store, tmp_path)
            await _stored(store, minute_rows(T0, 1))
            now = T0 + 2 * 60

            def recompute(conn: Connection) -> None:  # in place: same id, same top id
                r = derived_recent.c
                conn.execute(
                    update(derived_recent)
                    .where(r.point == "P1", r.kind == "minute")
                    .values(value="9.75")
                )

            await _together(
                store,
                lambda: a.produce(now),
                lambda: store.run_in_writer(recompute),
                lambda: b.produce(now),
            )
            assert reads.runs == 2
            assert _counter_totals(await _outbox(store, "a")) == {T0: Decimal("1.25")}
            assert _counter_totals(await _outbox(store, "b")) == {T0: Decimal("9.75")}

    asyncio.run(main())


def test_what_a_scan_read_is_not_served_in_a_later_transaction(
    tmp_path: Path, reads: Counting
) -> None:
    # A full outbox keeps the cursor where it was, and a value recomputed meanwhile keeps its
    # id: the next scan has the very same cursor and top id, and must read the new value.
    async def main() -> None:
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, _ = await _prepared(store, tmp_path, bounds=(0, 0))
            await _stored(store, minute_rows(T0, 1))
            assert await a.produce(T0 + 120) == []  # no room
            assert await _cursor(store, "a") == "0"
            await _stored(store, [Derived("P1", "minute", T0, T0 + 60, Decimal("7.5"), GOOD)])
            a.outbox.bound = 10
            a._minute_done = float("-inf")  # due again
            made = await a.produce(T0 + 120)
            assert [e.frame.data_time for e in made] == [T0]
            assert _counter_totals([made[0].frame]) == {T0: Decimal("7.5")}
            assert reads.runs == 2

    asyncio.run(main())


def test_centres_with_their_own_code_tables_share_the_rows_but_not_the_frames(
    tmp_path: Path, reads: Counting
) -> None:
    async def main() -> None:
        cfg = config(
            tmp_path,
            [
                hj212_centre("a", MN_A, 1, streams=MINUTES),
                hj212_centre(
                    "b", MN_B, 2, streams=MINUTES, codes=[{"point": "P2", "code": "a99999"}]
                ),
            ],
        )
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, b = producers(store, cfg)
            assert a.coding != b.coding
            await a.prepare()
            await b.prepare()
            await _stored(store, minute_rows(T0, 2))
            now = T0 + 3 * 60
            await _together(store, lambda: a.produce(now), lambda: b.produce(now))
            assert reads.runs == 1
            (a0, _), (b0, _) = await _outbox(store, "a"), await _outbox(store, "b")
            assert [i.code for i in a0.items] == [COUNTER, "a05001"]
            assert [i.code for i in b0.items] == ["a99999"]

    asyncio.run(main())


def test_a_scan_that_fails_leaves_nothing_for_the_next(
    tmp_path: Path, reads: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, b = await _prepared(store, tmp_path)
            await _stored(store, minute_rows(T0, 1))
            now = T0 + 2 * 60
            real_insert = producer.insert  # type: ignore[attr-defined]

            def insert(conn: Connection, centre: str, *args: Any) -> list[Entry]:
                if centre == "a":
                    raise OSError("disk full")
                return real_insert(conn, centre, *args)

            monkeypatch.setattr(producer, "insert", insert)
            made = await _together(store, lambda: _caught(a.produce(now)), lambda: b.produce(now))
            assert isinstance(made[0], OSError)
            assert reads.runs == 2  # the failed scan's reads were not kept for b
            assert [e.frame.data_time for e in made[1]] == [T0]
            assert await _cursor(store, "a") == "0"  # rolled back alone: taken next time
            monkeypatch.setattr(producer, "insert", real_insert)
            a._minute_done = float("-inf")
            assert [e.frame.data_time for e in await a.produce(now)] == [T0]

    asyncio.run(main())


async def _caught(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except OSError as exc:
        return exc


def test_a_centre_without_room_takes_the_oldest_windows_and_the_rest_later(
    tmp_path: Path, reads: Counting
) -> None:
    async def main() -> None:
        async with await Store.open(f"sqlite:///{tmp_path / 't.db'}") as store:
            a, b = await _prepared(store, tmp_path, bounds=(1, 10))
            await _stored(store, minute_rows(T0, 3))
            now = T0 + 4 * 60
            made = await _together(store, lambda: a.produce(now), lambda: b.produce(now))
            assert reads.runs == 1
            assert [[e.frame.data_time for e in m] for m in made] == [
                [T0],
                [T0, T0 + 60, T0 + 120],
            ]
            acknowledged = [e.id for e in made[0]]
            await store.run_in_writer(lambda conn: delete(conn, "a", acknowledged))
            a.outbox.bound = 10  # acknowledged: room again
            a._minute_done = float("-inf")
            assert [e.frame.data_time for e in await a.produce(now)] == [T0 + 60, T0 + 120]
            assert await _cursor(store, "a") == await _cursor(store, "b")

    asyncio.run(main())

"""The outbox and the producer's scans on every backend the store runs on (SQLite, and PostgreSQL
and MariaDB when reachable): their statements are compiled once per dialect and run through
the driver, so each backend's own quoting, parameters and types are exercised here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from reference_terminal.storage.schema import uplink_outbox, uplink_state
from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink import outbox
from reference_terminal.uplink.frames import Frame, Item
from reference_terminal.uplink.outbox import (
    LIVE,
    SIZE,
    START,
    assign_qns,
    count,
    delete,
    get_state,
    insert,
    load,
    max_id,
    set_state,
)
from tests.reference_terminal.storage.conftest import BACKENDS, backend_url
from tests.reference_terminal.storage.helpers import steps

from .helpers import MN_A, MN_B, T0, config, hj212_centre, minute_rows, producers

MINUTES = {"realtime": False, "minute": True, "hourly": False, "daily": False}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from backend_url(request.param, tmp_path)


def _frame(t: float, value: str) -> Frame:
    return Frame(2051, t, (Item("a05001", (("Avg", Decimal(value)), ("Min", Decimal("0"))), "N"),))


def test_the_outbox_keeps_frames_state_and_qns_on_every_backend(url: str) -> None:
    async def main() -> None:
        async with await Store.open(url) as store:
            # a late window (enqueued after later ones) goes first; ties in DataTime by id
            frames = [_frame(T0 + 60, "1.5"), _frame(T0 + 120, "2.50"), _frame(T0, "0.25")]
            frames.append(_frame(T0 + 60, "-3"))
            made = await store.run_in_writer(lambda c: insert(c, "a", frames, LIVE, T0 + 200))
            other = await store.run_in_writer(lambda c: insert(c, "b", frames[:1], LIVE, T0))
            ids = [e.id for e in made]
            assert ids == sorted(ids) and other[0].id > ids[-1]

            first = await store.run_in_reader(lambda c: load(c, "a", START, None, 2))
            assert [e.id for e in first] == [ids[2], ids[0]]
            assert first[0].frame == frames[2] and first[0].created_at == T0 + 200
            rest = await store.run_in_reader(
                lambda c: load(c, "a", (first[-1].frame.data_time, first[-1].id), None, 10)
            )
            assert [e.id for e in rest] == [ids[3], ids[1]]
            upto = await store.run_in_reader(lambda c: load(c, "a", START, ids[1], 10))
            assert [e.id for e in upto] == [ids[0], ids[1]]  # the one enqueued later is left out
            assert await store.run_in_reader(lambda c: (count(c, "a"), max_id(c, "a"))) == (
                4,
                ids[3],
            )

            assigned = [(ids[2], "20270101000000001"), (ids[0], "20270101000000002")]
            await store.run_in_writer(
                lambda c: assign_qns(c, "a", assigned, "20270101000000002", T0 + 300)
            )
            again = await store.run_in_reader(lambda c: load(c, "a", START, None, 2))
            assert [(e.qn, e.first_sent_at) for e in again] == [
                ("20270101000000001", T0 + 300),
                ("20270101000000002", T0 + 300),
            ]
            assert await store.run_in_reader(lambda c: get_state(c, "a", "last_qn")) == (
                "20270101000000002"
            )
            await store.run_in_writer(lambda c: set_state(c, "a", "last_qn", "x"))
            assert await store.run_in_reader(lambda c: get_state(c, "a", "last_qn")) == "x"
            assert await store.run_in_reader(lambda c: get_state(c, "b", "last_qn")) is None

            assert await store.run_in_writer(lambda c: delete(c, "a", [ids[0], ids[2], 10**9])) == 2
            left = await store.run_in_reader(lambda c: load(c, "a", START, None, 10))
            assert [e.id for e in left] == [ids[3], ids[1]]
            assert await store.run_in_reader(lambda c: count(c, "b")) == 1

    asyncio.run(main())


def test_an_outbox_knows_its_size_without_counting_its_entries(url: str) -> None:
    """Kept in the transaction of each insert and delete, so it is what a count would say; a
    store from before it was kept counts once, at the first change."""

    async def main() -> None:
        async with await Store.open(url) as store:
            frames = [_frame(T0 + 60 * i, "1.5") for i in range(5)]

            def rows(c: Connection, centre: str) -> int:
                query = select(func.count()).where(uplink_outbox.c.centre == centre)
                return int(c.scalar(query) or 0)

            async def sizes() -> list[tuple[int, int]]:
                return await store.run_in_reader(
                    lambda c: [(count(c, n), rows(c, n)) for n in ("a", "b")]
                )

            made = await store.run_in_writer(lambda c: insert(c, "a", frames, LIVE, T0))
            await store.run_in_writer(lambda c: insert(c, "b", frames[:2], LIVE, T0))
            assert await sizes() == [(5, 5), (2, 2)]
            ids = [e.id for e in made]
            # an id of another centre's, or of none, is not deleted and not counted
            b_first = ids[-1] + 1
            gone = await store.run_in_writer(lambda c: delete(c, "a", [ids[0], b_first, 10**9]))
            assert gone == 1
            assert await sizes() == [(4, 4), (2, 2)]

            # a store from before the size was kept: counted, then kept again
            forget = uplink_state.delete().where(uplink_state.c.key == SIZE)
            await store.run_in_writer(lambda c: c.execute(forget))
            assert await sizes() == [(4, 4), (2, 2)]
            await store.run_in_writer(lambda c: delete(c, "a", ids[1:3]))
            await store.run_in_writer(lambda c: insert(c, "b", frames, LIVE, T0))
            assert await sizes() == [(2, 2), (7, 7)]
            kept = await store.run_in_reader(lambda c: get_state(c, "a", SIZE))
            assert kept == "2"

    asyncio.run(main())


def test_a_backlog_chunk_costs_the_same_however_long_the_backlog(tmp_path: Path) -> None:
    """A centre unreachable for a week has a week of frames waiting (CPCIF §8.3): each chunk
    of them is read in DataTime order from an index, not sorted out of all of them."""

    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:

            async def cost_with(backlog: int) -> int:
                frames = [_frame(T0 + 60 * i, "1.5") for i in range(backlog)]
                await store.run_in_writer(lambda c: insert(c, "a", frames, LIVE, T0))
                return await store.run_in_reader(
                    lambda c: steps(c, lambda conn: load(conn, "a", (T0, 0), None, 10))
                )

            short = await cost_with(100)
            long = await cost_with(4_900)  # 5 000 frames waiting
        assert long <= short + 2, (short, long)

    asyncio.run(main())


def test_two_centres_get_every_window_once_on_every_backend(url: str, tmp_path: Path) -> None:
    async def main() -> None:
        cfg = config(
            tmp_path,
            [
                hj212_centre("a", MN_A, 1, streams=MINUTES),
                hj212_centre("b", MN_B, 2, streams=MINUTES),
            ],
        )
        async with await Store.open(url) as store:
            made = producers(store, cfg)
            for producer in made:
                await producer.prepare()
            for minute in range(3):
                await store.write_derived(minute_rows(T0 + 60 * minute, 1))
                now = T0 + 60 * minute + 65
                await asyncio.gather(*(p.produce(now) for p in made))
            for name in ("a", "b"):
                entries = await store.run_in_reader(
                    lambda c, name=name: load(c, name, START, None, 10)  # type: ignore[misc]
                )
                assert [e.frame.data_time for e in entries] == [T0, T0 + 60, T0 + 120]
                values = [i.values for i in entries[2].frame.items]
                assert values == [
                    (("Cou", Decimal("1.25")), ("Min", Decimal("0.25")), ("Max", Decimal("2.25"))),
                    (
                        ("Avg", Decimal("400.5")),
                        ("Min", Decimal("399.5")),
                        ("Max", Decimal("401.5")),
                    ),
                ]

    asyncio.run(main())


@pytest.mark.parametrize("json_sets", [True, False], ids=["json-sets", "row-at-a-time"])
def test_sqlite_assigns_qns_and_deletes_alike_as_one_statement_or_one_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_sets: bool
) -> None:
    """An SQLite without ``json_each`` or ``UPDATE … FROM`` runs a statement per entry."""
    monkeypatch.setattr(outbox, "SQLITE_JSON_SETS", json_sets)
    test_the_outbox_keeps_frames_state_and_qns_on_every_backend(sqlite_url(tmp_path / "a.db"))
    test_an_outbox_knows_its_size_without_counting_its_entries(sqlite_url(tmp_path / "b.db"))

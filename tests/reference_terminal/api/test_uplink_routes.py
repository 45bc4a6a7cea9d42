"""``/uplink``: every centre's state, and the operator's manual uploads (CSMT §7.5) — "send now",
resending a range (frames with their original DataTime), and the audited backfill of corrected
data (ISC-2 §7.2.4(5)) to the centres chosen; unknown centres, bad ranges, a terminal still
starting and a caller without the right are refused.

Two HJ 212 centres: ``a`` listens on a loopback socket, ``b``'s port refuses connections (what is
queued for it stays in its outbox). The store already holds three minutes of data from an hour
before the terminal starts: older than the centres' cursors, so only a manual upload sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_terminal.api import create_app, security
from reference_terminal.api.security import Action, Principal
from reference_terminal.app import Terminal
from reference_terminal.storage.store import Store
from tests.reference_terminal.api.harness import client_for, running_api
from tests.reference_terminal.uplink.helpers import (
    MN_A,
    MN_B,
    T0,
    Centre,
    ScaledClock,
    config,
    hj212_centre,
    minute_rows,
    posix,
)

SPEED = 60.0  # one virtual minute per wall second
EARLIER = T0 - 3600  # the first of the three stored minutes
MINUTES = [EARLIER, EARLIER + 60, EARLIER + 120]
CODES = ("C301103001e0101", "a05001")


def _china(t: float) -> str:
    return datetime.fromtimestamp(t, timezone(timedelta(hours=8))).isoformat()


def _minutes_at(centre: Centre) -> list[float]:
    return [posix(u.data_time) for u in centre.uploads if u.cn == 2051 and u.data_time]


@contextlib.asynccontextmanager
async def uplink_api(
    tmp_path: Path, **b_settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Centre]]:
    """The terminal's API once ``a`` is connected and ``b`` has been refused once (b then waits
    an hour of the terminal's time: no connection attempt is under way when a test ends)."""
    a = Centre(MN_A)
    await a.start()
    probe = Centre(MN_B)
    b_port = await probe.start()
    await probe.stop()  # nobody listens there any more: centre b refuses connections
    b_backoff = {"initial_s": 3600, "max_s": 3600}
    b = hj212_centre("b", MN_B, b_port, backoff=b_backoff, **b_settings)
    cfg = config(tmp_path, [hj212_centre("a", MN_A, a.port), b])
    async with await Store.open(cfg.storage.url) as store:
        await store.write_derived(minute_rows(EARLIER, 3))
    clock = ScaledClock(SPEED)
    try:
        async with running_api(cfg, terminal_factory=lambda c: Terminal(c, clock=clock)) as (
            _,
            client,
        ):

            async def settled() -> bool:
                centres = await _centres(client)
                return bool(
                    centres["a"]["link"]["connected"] and centres["b"]["link"]["connect_failures"]
                )

            await _until(settled)
            yield client, a
    finally:
        await a.stop()


async def _centres(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/uplink")
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["centres"]}


async def _until(test: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await test():
            await asyncio.sleep(0.05)


def test_status_lists_every_centre_with_its_outbox_and_link(tmp_path: Path) -> None:
    async def main() -> None:
        async with uplink_api(tmp_path) as (client, _a):
            centres = await _centres(client)
            assert list(centres) == ["a", "b"]
            for centre in centres.values():
                assert centre["protocol"] == "hj212"
                assert (centre["outbox"], centre["outbox_full"]) == (0, False)
            assert centres["a"]["link"]["connects"] >= 1
            assert centres["b"]["link"]["last_error"]
            assert centres["b"]["link"]["connected"] is False

    asyncio.run(main())


def test_resend_queues_a_range_the_centre_receives_with_its_original_datatime(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with uplink_api(tmp_path) as (client, a):
            # ISO 8601 with the offset, or POSIX seconds; both ends included.
            body = {"stream": "minute", "start": _china(MINUTES[0]), "end": MINUTES[-1]}
            response = await client.post("/uplink/a/resend", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["frames"] == {"a": 3}
            assert (answer["start"], answer["end"]) == (MINUTES[0], MINUTES[-1])
            assert answer["start_time"] == _china(MINUTES[0])

            await a.wait_for(lambda: len(_minutes_at(a)) == 3)
            assert _minutes_at(a) == MINUTES
            assert {u.codes for u in a.uploads} == {CODES}

            # Again: the same periods once more, under new QNs.
            again = await client.post("/uplink/a/resend", json=body)
            assert again.json()["frames"] == {"a": 3}
            await a.wait_for(lambda: len(_minutes_at(a)) == 6)
            assert _minutes_at(a) == MINUTES * 2
            assert len({u.qn for u in a.uploads}) == 6

            # A single instant is a range of one period; a range holding no data queues nothing.
            one = {"stream": "minute", "start": MINUTES[1], "end": MINUTES[1]}
            assert (await client.post("/uplink/b/resend", json=one)).json()["frames"] == {"b": 1}
            none = {"stream": "hour", "start": MINUTES[0], "end": MINUTES[-1]}
            assert (await client.post("/uplink/b/resend", json=none)).json()["frames"] == {"b": 0}
            assert (await _centres(client))["b"]["outbox"] == 1

    asyncio.run(main())


def test_backfill_is_audited_and_queued_for_the_chosen_centres(tmp_path: Path) -> None:
    async def main() -> None:
        async with uplink_api(tmp_path) as (client, a):
            body = {
                "stream": "minute",
                "start": MINUTES[0],
                "end": MINUTES[-1],
                "centres": ["a"],
                "reason": "flow meter recalibrated, ticket 4711",
            }
            response = await client.post("/uplink/backfill", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["frames"] == {"a": 3}
            await a.wait_for(lambda: len(_minutes_at(a)) == 3)
            assert _minutes_at(a) == MINUTES
            assert (await _centres(client))["b"]["outbox"] == 0  # b was not chosen

            # No centres named: every one.
            del body["centres"]
            response = await client.post("/uplink/backfill", json=body)
            assert response.json()["frames"] == {"a": 3, "b": 3}
            assert (await _centres(client))["b"]["outbox"] == 3

            audit = (await client.get("/events?kind=audit")).json()["items"]
            assert [(e["details"]["action"], e["details"]["centre"]) for e in audit] == [
                ("uplink_corrected", "a"),
                ("uplink_corrected", "a"),
                ("uplink_corrected", "b"),
            ]
            for event in audit:
                assert event["details"]["reason"] == "flow meter recalibrated, ticket 4711"
                assert (event["details"]["stream"], event["details"]["frames"]) == ("minute", "3")

    asyncio.run(main())


def test_a_full_outbox_refuses_the_backfill_and_says_what_was_queued(tmp_path: Path) -> None:
    async def main() -> None:
        # b keeps only daily data: its outbox may be as small as a week of it, 7 frames.
        small = {"streams": {"realtime": False, "hourly": False}, "outbox": {"max_entries": 7}}
        async with uplink_api(tmp_path, **small) as (client, _a):
            three = {"stream": "minute", "start": MINUTES[0], "end": MINUTES[-1]}
            for _ in range(2):
                response = await client.post("/uplink/b/resend", json=three)
                assert response.json()["frames"] == {"b": 3}
            response = await client.post("/uplink/b/resend", json=three)
            assert response.status_code == 409, response.text
            assert "CPCIF §8.3" in response.json()["detail"]

            response = await client.post("/uplink/backfill", json={**three, "reason": "fixed"})
            assert response.status_code == 409, response.text
            body = response.json()
            assert (body["error"], body["queued"]) == ("outbox_full", {"a": 3})
            assert "CSMT §7.5" in body["detail"]
            centres = await _centres(client)
            assert (centres["b"]["outbox"], centres["b"]["outbox_full"]) == (6, True)

    asyncio.run(main())


def test_send_now_answers_the_centre_status(tmp_path: Path) -> None:
    async def main() -> None:
        async with uplink_api(tmp_path) as (client, _a):
            response = await client.post("/uplink/a/send-now")
            assert response.status_code == 200, response.text
            assert (response.json()["name"], response.json()["protocol"]) == ("a", "hj212")

    asyncio.run(main())


def test_unknown_centres_and_bad_ranges_are_refused_with_the_clause(tmp_path: Path) -> None:
    async def main() -> None:
        async with uplink_api(tmp_path) as (client, a):
            good = {"stream": "minute", "start": MINUTES[0], "end": MINUTES[-1]}

            for response in (
                await client.post("/uplink/nowhere/resend", json=good),
                await client.post("/uplink/nowhere/send-now"),
                # one unknown name: nothing is queued for the known one either
                await client.post(
                    "/uplink/backfill", json={**good, "centres": ["a", "nowhere"], "reason": "x"}
                ),
            ):
                assert response.status_code == 404, response.text
                assert response.json()["error"] == "unknown_centre"
                assert "CSMT §7.5" in response.json()["detail"]
                assert "'nowhere'" in response.json()["detail"]

            async def refused(url: str, body: dict[str, Any], field: str) -> str:
                response = await client.post(url, json=body)
                assert response.status_code == 422, response.text
                assert field in response.json()["detail"]
                return str(response.json()["detail"])

            resend = "/uplink/a/resend"
            await refused(resend, {**good, "stream": "weekly"}, "stream")
            await refused(resend, {**good, "start": "yesterday"}, "start")
            await refused(resend, {**good, "end": "2027-01-15T08:00:00"}, "end")  # no offset
            await refused(resend, {**good, "end": "1e999"}, "end")
            await refused(resend, {"stream": "minute", "start": MINUTES[0]}, "end")
            await refused(resend, {**good, "centre": "a"}, "centre")  # not a field of resend
            backwards = {**good, "start": MINUTES[-1], "end": MINUTES[0]}
            assert "CSMT §7.5" in await refused(resend, backwards, "end")

            backfill = "/uplink/backfill"
            await refused(backfill, good, "reason")
            assert "§7.2.4(5)" in await refused(backfill, {**good, "reason": "   "}, "reason")
            await refused(backfill, {**good, "reason": "x", "centres": []}, "centres")
            await refused(backfill, {**backwards, "reason": "x"}, "end")

            assert (await _centres(client))["a"]["outbox"] == 0
            assert (await client.get("/events?kind=audit")).json()["items"] == []
            await asyncio.sleep(0.5)
            assert a.uploads == []

    asyncio.run(main())


def test_a_terminal_still_starting_answers_503(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = Terminal(config(tmp_path, [hj212_centre("a", MN_A, 1)]))  # never run
        range_ = {"stream": "minute", "start": 0, "end": 60}
        async with client_for(create_app(terminal)) as client:
            for response in (
                await client.get("/uplink"),
                await client.post("/uplink/a/send-now"),
                await client.post("/uplink/a/resend", json=range_),
                await client.post("/uplink/backfill", json={**range_, "reason": "x"}),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "not_ready"

    asyncio.run(main())


def test_a_reader_sees_the_centres_but_may_not_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status is a READ, every upload an OPERATE (ISC-2 §7.4.1.2): a caller allowed only to read
    sees the centres and is refused the rest."""

    def read_only(principal: Principal, action: Action) -> bool:
        return action is Action.READ

    monkeypatch.setattr(security, "permits", read_only)

    async def main() -> None:
        async with uplink_api(tmp_path) as (client, a):
            assert list(await _centres(client)) == ["a", "b"]
            good = {"stream": "minute", "start": MINUTES[0], "end": MINUTES[-1]}
            for response in (
                await client.post("/uplink/a/send-now"),
                await client.post("/uplink/a/resend", json=good),
                await client.post("/uplink/backfill", json={**good, "reason": "x"}),
            ):
                assert response.status_code == 403, response.text
                assert response.json()["error"] == "forbidden"
            assert (await client.get("/events?kind=audit")).json()["items"] == []
            assert a.uploads == []

    asyncio.run(main())


def test_openapi_documents_the_uplink_routes(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = Terminal(config(tmp_path, []))
        async with client_for(create_app(terminal)) as client:
            paths = (await client.get("/openapi.json")).json()["paths"]
            assert {p: set(ops) for p, ops in paths.items() if p.startswith("/uplink")} == {
                "/uplink": {"get"},
                "/uplink/{centre}/send-now": {"post"},
                "/uplink/{centre}/resend": {"post"},
                "/uplink/backfill": {"post"},
            }

    asyncio.run(main())

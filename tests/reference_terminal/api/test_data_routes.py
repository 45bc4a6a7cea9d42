"""Manual data in (one value, a CSV file), and the stored history out: points, readings,
latest, derived values, events; times in both notations, values as exact text."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from pathlib import Path

from tests.reference_terminal.api.harness import CONFIG, make_config, running_api

JAN = datetime.fromisoformat("2026-01-31T00:00:00+08:00").timestamp()
FEB = datetime.fromisoformat("2026-02-28T00:00:00+08:00").timestamp()

CSV = """period_start,period_end,point,quantity,value,unit,entered_by,source
2026-01-01T00:00:00+08:00,2026-02-01T00:00:00+08:00,lime.mass_t,lime.mass_t,120.5,t,张三,scale log
2026-02-01T00:00:00+08:00,2026-03-01T00:00:00+08:00,lime.mass_t,lime.mass_t,abc,t,张三,scale log
2026-02-01T00:00:00+08:00,2026-03-01T00:00:00+08:00,heat,heat,5.00,GJ,张三,invoice
2026-02-01T00:00:00+08:00,2026-03-01T00:00:00+08:00,lime.mass_t,lime.mass_t,98.0,t,张三,scale log
"""


def test_manual_entry_keeps_digits_and_is_manual(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (terminal, client):
            first = await client.post(
                "/manual",
                json={
                    "point": "coal_t",
                    "value": "1234.50",
                    "time": "2026-01-31T00:00:00+08:00",
                    "operator": "王工",
                    "note": "delivery note 17",
                },
            )
            assert first.status_code == 200, first.text
            body = first.json()
            assert body["t"] == JAN
            assert body["time"] == "2026-01-31T00:00:00+08:00"
            reading = body["reading"]
            assert reading["value"] == "1234.50"  # the trailing zero is a digit of the meter
            assert reading["quality"] == "manual"
            assert reading["digits"] == 2
            second = await client.post(
                "/manual",
                json={"point": "coal_t", "value": "1300.00", "time": FEB, "operator": "王工"},
            )
            assert second.status_code == 200, second.text

            latest = (await client.get("/points/coal_t/latest")).json()
            assert (latest["value"], latest["t"], latest["quality"]) == ("1300.00", FEB, "manual")

            # ISO start (its "+" sent unencoded, as people type it), POSIX end.
            page = (
                await client.get(
                    f"/points/coal_t/readings?start=2026-01-01T00:00:00+08:00&end={FEB + 1}"
                )
            ).json()
            assert [r["value"] for r in page["items"]] == ["1234.50", "1300.00"]
            assert page["truncated"] is False
            page = (await client.get("/points/coal_t/readings", params={"limit": 1})).json()
            assert (page["count"], page["truncated"]) == (1, True)

            increments = (
                await client.get("/points/coal_t/derived", params={"kind": "increment"})
            ).json()["items"]
            assert [d["value"] for d in increments] == ["65.50"]
            assert increments[0]["start"] == JAN and increments[0]["end"] == FEB
            assert increments[0]["start_time"] == "2026-01-31T00:00:00+08:00"

            events = (await client.get("/events", params={"kind": "manual_entry"})).json()
            assert events["count"] == 2
            assert events["items"][0]["details"]["operator"] == "王工"
            assert events["items"][0]["details"]["value"] == "1234.50"
            assert events["items"][0]["details"]["note"] == "delivery note 17"
            assert events["items"][0]["point"] == "coal_t"
            store = terminal.store
            assert store is not None
            assert len(await store.events(kind="manual_entry")) == 2

    asyncio.run(main())


def test_manual_entry_refusals(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            base = {"point": "coal_t", "value": "1.00", "time": JAN, "operator": "li"}

            async def refused(status: int, error: str, **change: object) -> str:
                response = await client.post("/manual", json={**base, **change})
                assert response.status_code == status, response.text
                body = response.json()
                assert body["error"] == error, body
                return str(body["detail"])

            assert "not a number" in await refused(422, "invalid_manual_value", value="1,234.5")
            assert "value" in await refused(422, "invalid_request", value=12.5)  # not text
            assert "UTC offset" in await refused(422, "invalid_time", time="2026-01-31T00:00:00")
            assert "operator" in await refused(422, "invalid_manual_value", operator="  ")
            assert "unit" in await refused(422, "invalid_manual_value", unit="kg")
            assert "collector" in await refused(422, "not_manual", point="heat_gj")
            await refused(404, "unknown_point", point="nope")
            assert (await client.get("/points/coal_t/readings")).json()["count"] == 0

    asyncio.run(main())


def test_csv_import_takes_good_rows_and_lists_rejected_lines(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            response = await client.post(
                "/manual/csv",
                content=CSV.encode("utf-8-sig"),
                headers={"Content-Type": "text/csv"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert [(a["line"], a["point"], a["value"]) for a in body["accepted"]] == [
                (2, "lime_t", "120.5"),
                (5, "lime_t", "98.0"),
            ]
            rejected = {r["line"]: r["reason"] for r in body["rejected"]}
            assert set(rejected) == {3, 4}
            assert "not a number" in rejected[3]
            assert "heat_gj" in rejected[4] and "not entered by hand" in rejected[4]

            items = (await client.get("/points/lime_t/readings")).json()["items"]
            assert [(r["value"], r["quality"]) for r in items] == [
                ("120.5", "manual"),
                ("98.0", "manual"),
            ]
            assert items[0]["time"] == "2026-02-01T00:00:00+08:00"  # a period's value: its end
            events = (await client.get("/events", params={"kind": "manual_entry"})).json()
            assert [e["details"]["line"] for e in events["items"]] == ["2", "5"]
            assert events["items"][0]["start_time"] == "2026-01-01T00:00:00+08:00"

            header_only = await client.post("/manual/csv", content=b"a,b\n1,2\n")
            assert header_only.status_code == 422
            assert "missing column" in header_only.json()["detail"]
            latin1 = await client.post("/manual/csv", content="Ä".encode("latin-1"))
            assert (latin1.status_code, latin1.json()["error"]) == (422, "invalid_csv")

    asyncio.run(main())


def test_points_and_query_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            points = {p["id"]: p for p in (await client.get("/points")).json()}
            assert set(points) == {"coal_t", "lime_t", "heat_gj"}
            assert points["coal_t"]["acquisition"] == "manual"
            assert points["heat_gj"]["acquisition"] == "pushed"
            assert points["lime_t"]["max"] == "1000"
            assert points["coal_t"]["period_s"] == 10800

            none_yet = await client.get("/points/coal_t/latest")
            assert (none_yet.status_code, none_yet.json()["error"]) == (404, "no_reading")
            for path in ("/points/nope/latest", "/points/nope/readings", "/points/nope/derived"):
                response = await client.get(path)
                assert (response.status_code, response.json()["error"]) == (404, "unknown_point")
            bad_time = await client.get("/points/coal_t/readings", params={"start": "yesterday"})
            assert (bad_time.status_code, bad_time.json()["error"]) == (422, "invalid_time")
            backwards = await client.get("/events", params={"start": "200", "end": "100"})
            assert backwards.status_code == 422
            too_many = await client.get("/events", params={"limit": 0})
            assert too_many.status_code == 422
            assert too_many.json()["errors"][0]["field"] == "limit"
            missing = await client.get("/no/such/route")
            assert (missing.status_code, missing.json()["error"]) == (404, "not_found")

    asyncio.run(main())


def test_points_form_the_activity_data_source_list(tmp_path: Path) -> None:
    """ISC-2 §7.3.1: each point with what it measures and its instrument's model, location,
    accuracy and calibration interval, as the configuration's meter ledger gives them."""
    data = copy.deepcopy(CONFIG)
    data["devices"][1].update(
        model="EMS v4",
        location="energy centre",
        accuracy="0.5S",
        calibration_interval_days=730,
        calibrated_on="2026-03-02",
    )
    data["points"][2]["activity"] = "purchased heat"

    async def main() -> None:
        async with running_api(make_config(tmp_path, data)) as (_, client):
            heat = {p["id"]: p for p in (await client.get("/points")).json()}["heat_gj"]
        listed = {k: heat[k] for k in ("activity", "model", "location", "accuracy")}
        assert listed == {
            "activity": "purchased heat",
            "model": "EMS v4",
            "location": "energy centre",
            "accuracy": "0.5S",
        }
        assert heat["calibration_interval_days"] == 730

    asyncio.run(main())


def test_virtual_points_are_listed_with_their_rule_and_inputs(tmp_path: Path) -> None:
    data = copy.deepcopy(CONFIG)
    data["virtual_points"] = [
        {"id": "coal_kiln_t", "op": "multiply", "inputs": ["coal_t"], "factor": "0.6"},
        {
            "id": "coal_split",
            "op": "allocate",
            "source": "coal_t",
            "targets": ["kiln_t", "calciner_t"],
            "shares": ["0.7", "0.3"],
        },
    ]

    async def main() -> None:
        async with running_api(make_config(tmp_path, data)) as (_, client):
            points = {p["id"]: p for p in (await client.get("/points")).json()}
        assert points["coal_kiln_t"]["virtual"] == "multiply"
        assert points["coal_kiln_t"]["inputs"] == ["coal_t"]
        assert points["coal_kiln_t"]["kind"] == "counter"
        assert (points["kiln_t"]["virtual"], points["calciner_t"]["unit"]) == ("allocate", "t")
        assert "coal_split" not in points  # the rule's name, not a point
        assert points["coal_t"]["virtual"] is None

    asyncio.run(main())

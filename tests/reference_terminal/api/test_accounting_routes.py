"""The accounting routes of the management API: the methods each point is bound to, the
boundary, emissions per entry and minute, period statistics with YoY and MoM, reports, the
factor library (list, export, import back, import a new vintage, refuse one that breaks a
binding) and the meter ledger."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from tests.reference_terminal.accounting.terminal_config import LIBRARY, VINTAGE
from tests.reference_terminal.api.harness import CONFIG, make_config, running_api

JAN = datetime.fromisoformat("2026-01-31T00:00:00+08:00").timestamp()
PROCESS = Decimal("0.527")  # tCO2/t, the coal_t source's explicit factor


def with_accounting(tmp_path: Path) -> dict[str, Any]:
    data = copy.deepcopy(CONFIG)
    data["devices"][0].update(model="weighbridge WB-60", location="gate", level=1)
    data["devices"][0].update(calibrated_on="2025-03-01", calibration_interval_days=365)
    data["accounting"] = {
        "enterprise": {"name": "测试水泥厂", "sector": "cement"},
        "library": [str(LIBRARY)],
        "imports_dir": str(tmp_path / "factors"),
        "vintage": VINTAGE,
        "units": [
            {
                "id": "kiln",
                "name": "Kiln",
                "sources": [
                    {"id": "raw", "kind": "process", "factor": "0.527 tCO2/t", "points": ["coal_t"]}
                ],
            },
            {
                "id": "utilities",
                "sources": [
                    {
                        "id": "heat",
                        "kind": "heat",
                        "factor": "purchased_heat",
                        "points": ["heat_gj"],
                    }
                ],
            },
        ],
        "bases": {"heat": {"points": ["heat_gj"]}},
    }
    return data


async def enter(client: Any, value: str, t: float) -> None:
    answer = await client.post(
        "/manual", json={"point": "coal_t", "value": value, "time": t, "operator": "王工"}
    )
    assert answer.status_code == 200, answer.text


def test_a_value_entered_by_hand_is_an_emission_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path, with_accounting(tmp_path))
        async with running_api(config) as (_, client):
            await enter(client, "1000.00", JAN)
            await enter(client, "1032.00", JAN + 600)
            page = (await client.get("/accounting/emissions", params={"point": "coal_t"})).json()
            (row,) = page["items"]
            assert (row["kind"], row["start"], row["end"], row["t"]) == (
                "entry",
                JAN,
                JAN + 600,
                JAN + 600,
            )
            assert Decimal(row["activity"]) == Decimal("32.00")
            assert Decimal(row["emission"]) == Decimal("32.00") * PROCESS
            assert Decimal(row["cumulative"]) == Decimal("32.00") * PROCESS
            assert (row["first"], row["last"]) == ("1000.00", "1032.00")

            stats = (
                await client.get(
                    "/accounting/statistics", params={"period": "day", "at": JAN + 600}
                )
            ).json()
            assert Decimal(stats["total"]) == Decimal("16.864")
            assert stats["by_scope"] == {"scope1": stats["total"], "scope2": "0"}
            assert Decimal(stats["by_category"]["scope1"]["process"]) == Decimal("16.864")
            assert set(stats["by_category"]["scope2"]) == {"electricity", "heat"}
            assert stats["key_sources"] == ["raw"]
            assert stats["mom"]["base_label"] == "2026-01-30" and stats["mom"]["base"] is None
            assert stats["span"]["label"] == "2026-01-31"

            report = (await client.get("/accounting/reports/2026-01")).json()
            assert Decimal(report["total"]) == Decimal("16.864")
            assert report["enterprise"]["name"] == "测试水泥厂"
            html = await client.get("/accounting/reports/2026-01", params={"format": "html"})
            assert html.status_code == 200 and "测试水泥厂" in html.text
            csv = await client.get("/accounting/reports/day/export", params={"at": JAN + 600})
            assert csv.status_code == 200 and "coal_t" in csv.text

    asyncio.run(main())


def test_methods_and_boundary_describe_every_binding(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path, with_accounting(tmp_path))
        async with running_api(config) as (_, client):
            methods = (await client.get("/accounting/methods")).json()
            assert [m["kind"] for m in methods["methods"]] == [
                "single-point",
                "boundary",
                "classified",
            ]
            bound = {b["point"]: b for b in methods["bindings"]}
            heat = bound["heat_gj"]
            assert (heat["gas"], heat["source"], heat["source_category"], heat["scope"]) == (
                "CO2",
                "heat",
                "heat",
                2,
            )
            assert heat["formula"] == "E = AD × EF" and Decimal(heat["factor"]) == Decimal("0.11")
            assert {i["name"] for i in heat["items"]} == {"AD", "factor"}
            boundary = (await client.get("/accounting/boundaries")).json()
            assert [u["id"] for u in boundary["units"]] == ["kiln", "utilities"]
            assert {s["id"]: s["meters"] for s in boundary["sources"]} == {
                "raw": ["desk"],
                "heat": ["collector"],
            }
            assert "flowchart" in boundary["drawing"]["text"]

    asyncio.run(main())


def test_the_factor_library_exports_imports_and_refuses_what_breaks_a_binding(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        config = make_config(tmp_path, with_accounting(tmp_path))
        async with running_api(config) as (terminal, client):
            factors = (await client.get("/accounting/factors")).json()
            gas = next(f for f in factors if f["name"] == "natural_gas")
            assert gas["unit"] == "tCO2/GJ" and gas["version"] == 1 and gas["to_confirm"]
            exported = await client.get("/accounting/factors/export")
            back = await client.post("/accounting/factors/import", content=exported.content)
            assert back.status_code == 200 and back.json()["changed"] is False

            data = yaml.safe_load(exported.text)
            vintage = next(v for v in data["vintages"] if v["vintage"] == VINTAGE)
            heat = next(f for f in vintage["factors"] if f["name"] == "purchased_heat")
            heat["factor"] = "0.12 tCO2/GJ"
            vintage["revision"] = 2
            update = await client.post(
                "/accounting/factors/import", content=yaml.safe_dump({"vintages": [vintage]})
            )
            assert update.status_code == 200, update.text
            assert update.json()["changed"] is True
            methods = (await client.get("/accounting/methods")).json()
            heat_binding = next(b for b in methods["bindings"] if b["point"] == "heat_gj")
            assert Decimal(heat_binding["factor"]) == Decimal("0.12")
            assert terminal.store is not None
            logs = await terminal.store.events(kind="method_import")
            assert [e.details["changed"] for e in logs] == ["false", "true"]

            vintage["factors"] = [f for f in vintage["factors"] if f["name"] != "purchased_heat"]
            broken = await client.post(
                "/accounting/factors/import", content=yaml.safe_dump({"vintages": [vintage]})
            )
            assert broken.status_code == 422
            assert "accounting.units[1].sources[0].factor" in broken.json()["detail"]

    asyncio.run(main())


def test_the_meter_ledger_lists_calibration_due_dates(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path, with_accounting(tmp_path))
        async with running_api(config) as (_, client):
            ledger = {m["id"]: m for m in (await client.get("/meters")).json()}
            desk = ledger["desk"]
            assert desk["calibration_due"] == "2026-03-01" and desk["level"] == 1
            assert desk["frequency"] == "manual" and desk["sources"] == ["raw"]
            assert [m["id"] for m in (await client.get("/meters", params={"level": 1})).json()] == [
                "desk"
            ]
            csv = await client.get("/meters/export")
            assert csv.status_code == 200 and csv.text.startswith("id,protocol,model")

    asyncio.run(main())


def test_a_terminal_without_accounting_says_so(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            answer = await client.get("/accounting/methods")
            assert answer.status_code == 404 and answer.json()["error"] == "no_accounting"

    asyncio.run(main())

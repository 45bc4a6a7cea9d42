"""``/health``, on-command reads (a Modbus TCP meter of a tiny simulated fleet), the HTTPS push
intake, a terminal still starting, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import Fleet
from tests.reference_terminal.api.harness import CONFIG, client_for, make_config, running_api

FLEET = Fleet.model_validate(
    {
        "name": "api",
        "start": "2026-01-01T00:00:00+08:00",
        "plant": {
            "industry": "cement",
            "name": "kiln",
            "utc_offset_hours": 8,
            "sources": [
                {"id": "stack", "kind": "cems", "name": "stack", "rated_nm3_h": 20000, "co2_pct": 8}
            ],
        },
        "meters": [
            {
                "id": "plc",
                "protocol": "modbus-tcp",
                "port": 0,
                "registers": [
                    {"address": 0, "type": "float32", "quantity": "stack.co2_pct", "decimals": 2}
                ],
            }
        ],
    }
)


def _with_plc(port: int) -> dict[str, Any]:
    data = copy.deepcopy(CONFIG)
    data["devices"].append(
        {"id": "plc", "protocol": "modbus-tcp", "host": "127.0.0.1", "port": port}
    )
    # Polled every 3 h: within the test, values come only from the on-command read.
    data["groups"].append({"id": "slow", "period_s": 10800})
    register = {"address": 0, "type": "float32"}
    data["points"].append(
        {
            "id": "co2_pct",
            "group": "slow",
            "decimals": 2,
            "source": {"device": "plc", "register": register},
        }
    )
    return data


def test_health_of_a_running_terminal(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            response = await client.get("/health")
            assert response.status_code == 200
            body = response.json()
            assert body["state"] == "running"
            assert body["name"] == "api test terminal"
            assert body["uptime_s"] >= 0
            assert body["time"].endswith("+08:00")
            assert body["scheduler"]["failures"] == 0
            assert body["open_gaps"] == []
            assert body["store"]["backend"] == "sqlite"
            assert "journal_mode=wal" in body["store"]["durability"]
            assert body["intake"]["collector"]["messages"] == 0

    asyncio.run(main())


def test_on_command_read(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_fleet(FLEET) as fleet:
            port = int(fleet.endpoints[0].address.split(":")[1].split()[0])
            async with running_api(make_config(tmp_path, _with_plc(port))) as (_, client):
                response = await client.post("/points/co2_pct/read")
                assert response.status_code == 200, response.text
                [raw] = response.json()
                assert raw["point"] == "co2_pct" and raw["device"] == "plc"
                assert raw["error"] is None
                sent = {o.value for o in fleet.observations if o.meter == "plc"}
                latest = (await client.get("/points/co2_pct/latest")).json()
                assert latest["value"] == raw["value"]
                assert latest["quality"] == "good"
                assert Decimal(raw["value"]) in sent  # digit for digit what the meter showed
                health = (await client.get("/health")).json()
                assert health["scheduler"]["reads"] == 1

                manual = await client.post("/points/coal_t/read")
                assert (manual.status_code, manual.json()["error"]) == (409, "not_polled")
                assert "entered by hand" in manual.json()["detail"]
                pushed = await client.post("/points/heat_gj/read")
                assert pushed.status_code == 409
                unknown = await client.post("/points/nope/read")
                assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_point")

    asyncio.run(main())


def test_push_intake_delivers_to_the_terminal(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            document = {
                "collector": "collector",
                "time": "2026-01-01T08:00:05+08:00",
                "values": {"heat": {"value": "10.10", "unit": "GJ"}},
            }
            response = await client.post("/intake/collector", json=document)
            assert response.status_code == 200, response.text
            assert response.json() == {"accepted": 1}
            latest = (await client.get("/points/heat_gj/latest")).json()
            assert (latest["value"], latest["quality"]) == ("10.10", "good")
            assert latest["time"] == "2026-01-01T08:00:05+08:00"
            assert (await client.post("/intake/desk", json=document)).status_code == 404
            assert (await client.post("/intake/collector", content=b"{")).status_code == 400
            intake = (await client.get("/health")).json()["intake"]["collector"]
            assert (intake["messages"], intake["malformed"]) == (2, 1)

    asyncio.run(main())


def test_a_terminal_still_starting_answers_503(tmp_path: Path) -> None:
    async def main() -> None:
        # Never run: no store, no scheduler (and the PLC is never dialled).
        terminal = Terminal(make_config(tmp_path, _with_plc(1)))
        async with client_for(create_app(terminal)) as client:
            health = await client.get("/health")
            assert (health.status_code, health.json()["state"]) == (503, "stopped")
            for response in (
                await client.get("/points"),
                await client.get("/export"),
                await client.post("/points/co2_pct/read"),
                await client.post(
                    "/manual", json={"point": "coal_t", "value": "1", "operator": "li"}
                ),
                await client.post(
                    "/intake/collector",
                    json={"collector": "c", "time": "2026-01-01T00:00:00Z", "values": {}},
                ),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "not_ready"
            assert (await client.get("/config")).status_code == 200

    asyncio.run(main())


def test_openapi_lists_every_route(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = Terminal(make_config(tmp_path))
        async with client_for(create_app(terminal)) as client:
            paths = (await client.get("/openapi.json")).json()["paths"]
            expected = {
                "/health": {"get"},
                "/uplink": {"get"},
                "/uplink/{centre}/send-now": {"post"},
                "/uplink/{centre}/resend": {"post"},
                "/uplink/backfill": {"post"},
                "/config": {"get", "put", "patch"},
                "/config/validate": {"post"},
                "/monitor": {"get"},
                "/logs": {"get"},
                "/apps": {"get", "post"},
                "/apps/{name}": {"get", "put", "delete"},
                "/apps/{name}/rollback": {"post"},
                "/points": {"get"},
                "/points/{point_id}/latest": {"get"},
                "/points/{point_id}/readings": {"get"},
                "/points/{point_id}/derived": {"get"},
                "/points/{point_id}/read": {"post"},
                "/events": {"get"},
                "/manual": {"post"},
                "/manual/csv": {"post"},
                "/export": {"get"},
                "/backup": {"post"},
                "/restore": {"post"},
                "/intake/{device}": {"post"},
                "/accounting/methods": {"get"},
                "/accounting/boundaries": {"get"},
                "/accounting/statistics": {"get"},
                "/accounting/emissions": {"get"},
                "/accounting/reports/{period}": {"get"},
                "/accounting/reports/{period}/export": {"get"},
                "/accounting/factors": {"get"},
                "/accounting/factors/export": {"get"},
                "/accounting/factors/import": {"post"},
                "/accounting/factors/download": {"post"},
                "/meters": {"get"},
                "/meters/export": {"get"},
            }
            assert {p: set(ops) for p, ops in paths.items()} == expected

    asyncio.run(main())

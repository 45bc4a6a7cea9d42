"""``/monitor``, ``/logs``, ``PATCH /config`` and ``/apps`` on a running terminal, open and
secured."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from pathlib import Path
from typing import Any

from bench.adapters.apps import BROKEN, WELL, package
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Event
from reference_terminal.storage.store import sqlite_url
from tests.reference_terminal.accounting.terminal_config import config_data
from tests.reference_terminal.api.harness import CONFIG, make_config, running_api
from tests.reference_terminal.security.harness import secured_terminal

KEY = Sm2PrivateKey.generate()


def with_apps(tmp_path: Path) -> TerminalConfig:
    public = tmp_path / "vendor.pem"
    public.write_text(KEY.public_key().to_pem())
    data = copy.deepcopy(CONFIG)
    data["storage"] = {"url": sqlite_url(tmp_path / "terminal.db")}
    data["apps"] = {"enabled": True, "dir": str(tmp_path / "apps"), "trusted_keys": [str(public)]}
    return TerminalConfig.model_validate(data)


def change(op: str, path: str, value: object = None) -> dict[str, Any]:
    return {"changes": [{"op": op, "path": path, "value": value}]}


def body(version: str, main: str = WELL, *, name: str = "probe") -> dict[str, str]:
    data = package(name, version, main)
    return {
        "package": base64.b64encode(data).decode(),
        "signature": base64.b64encode(KEY.sign_der(data)).decode(),
    }


def test_monitor_shows_resources_points_and_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (terminal, client):
            logging.getLogger("reference_terminal.test").error("disk almost full (a test)")
            await terminal.record(
                [
                    Event(
                        terminal.clock.time(),
                        "notification",
                        "lime_t",
                        "desk",
                        details={"message": "lime_t silent for 600 s"},
                    )
                ]
            )
            response = await client.get("/monitor")
            assert response.status_code == 200, response.text
            doc = response.json()
        system = doc["system"]
        assert 0 <= system["cpu"]["percent"] <= 100
        assert system["memory"]["total_bytes"] > 0
        assert system["disk"][0]["role"] == "store" and system["disk"][0]["total_bytes"] > 0
        assert system["os"]["type"] and system["os"]["release"]
        application = doc["application"]
        assert application["state"] == "running" and application["version"]
        assert "upload log" in application["tasks"]
        points = {p["point"]: p for p in doc["acquisition"]["points"]}
        assert set(points) == {"coal_t", "lime_t", "heat_gj"}
        assert points["lime_t"]["problems_24h"] == 1
        assert points["heat_gj"]["acquisition"] == "pushed"
        assert doc["upload"]["centres"] == []
        errors = doc["error_log"]["items"]
        assert {(e["source"], e["kind"]) for e in errors} >= {
            ("event", "notification"),
            ("log", "reference_terminal.test"),
        }
        assert any("lime_t silent" in e["message"] for e in errors)

    asyncio.run(main())


def test_logs_by_category(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (terminal, client):
            t = terminal.clock.time()
            await terminal.record(
                [
                    Event(t, "gap", "lime_t", start=t - 60, end=t),
                    Event(t, "uplink_link_down", details={"centre": "provincial"}),
                    Event(t, "alarm", details={"alarm": "uplink_outbox_full"}),
                    Event(t, "alarm", details={"alarm": "something_else"}),
                    Event(t, "method_download", details={"method": "cement-2024"}),
                    Event(t, "app_installed", details={"app": "probe"}),
                ]
            )
            answers = {
                c: (await client.get("/logs", params={"category": c})).json()
                for c in ("acquisition", "upload", "method", "configuration", "apps")
            }
            everything = (await client.get("/logs")).json()
            one = (await client.get("/logs", params={"limit": 1})).json()
            bad = await client.get("/logs", params={"category": "nonsense"})
        kinds = {c: [i["kind"] for i in page["items"]] for c, page in answers.items()}
        assert kinds == {
            "acquisition": ["gap"],
            "upload": ["uplink_link_down", "alarm"],
            "method": ["method_download"],
            "configuration": [],
            "apps": ["app_installed"],
        }
        assert len(everything["items"]) == 5
        assert one["count"] == 1 and one["truncated"] is True
        assert bad.status_code == 422

    asyncio.run(main())


def test_patch_config_applies_named_fields_and_logs_them(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (terminal, client):
            started = terminal.started_at
            applied = await client.patch(
                "/config",
                json={
                    "changes": [{"op": "replace", "path": "/points/lime_t/max", "value": "2000"}]
                },
            )
            assert applied.status_code == 200, applied.text
            assert applied.json()["changed"] == ["/points/lime_t/max: 1000 → 2000"]
            assert str(terminal.config.points[1].max) == "2000"
            assert terminal.started_at == started, "applied without a restart"
            invalid = await client.patch(
                "/config",
                json={
                    "changes": [{"op": "replace", "path": "/groups/pushed/period_s", "value": 0}]
                },
            )
            unfit = await client.patch(
                "/config",
                json={"changes": [{"op": "replace", "path": "/points/none/max", "value": "1"}]},
            )
            start_only = await client.patch(
                "/config",
                json={"changes": [{"op": "replace", "path": "/apps/enabled", "value": True}]},
            )
            api = await client.patch(
                "/config",
                json={"changes": [{"op": "add", "path": "/api", "value": {"port": 8481}}]},
            )
            logs = (await client.get("/logs", params={"category": "configuration"})).json()
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["field"] == "groups[1].period_s"
        assert (unfit.status_code, unfit.json()["error"]) == (422, "invalid_change")
        assert "none" in unfit.json()["detail"]
        assert (start_only.status_code, start_only.json()["errors"][0]["field"]) == (422, "apps")
        assert api.status_code == 200 and api.json()["restart_required"] == ["api"]
        entries = logs["items"]
        assert [e["details"]["how"] for e in entries] == [
            "PATCH /config /points/lime_t/max",
            "PATCH /config /api",
        ]
        assert entries[0]["details"]["changed"] == "/points/lime_t/max: 1000 → 2000"
        assert entries[1]["details"]["restart_required"] == "api"

    asyncio.run(main())


def test_apps_over_the_api(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(with_apps(tmp_path)) as (_terminal, client):
            installed = await client.post("/apps", json=body("1.0.0"))
            assert installed.status_code == 201, installed.text
            listed = (await client.get("/apps")).json()
            upgraded = await client.put("/apps/probe", json=body("1.1.0"))
            failed = await client.put("/apps/probe", json=body("1.2.0", BROKEN))
            one = (await client.get("/apps/probe")).json()
            rolled = await client.post("/apps/probe/rollback")
            wrong_name = await client.put("/apps/probe", json=body("2.0.0", name="other"))
            not_base64 = await client.post("/apps", json={"package": "%%%%", "signature": "AAAA"})
            core = await client.delete("/apps/terminal")
            removed = await client.delete("/apps/probe")
            unknown = await client.delete("/apps/probe")
            logs = (await client.get("/logs", params={"category": "apps"})).json()
        assert [(a["name"], a["kind"], a["version"]) for a in listed] == [
            ("terminal", "core", "0.1.0"),
            ("probe", "app", "1.0.0"),
        ]
        assert listed[1]["state"] == "running" and len(listed[1]["sm3"]) == 64
        assert upgraded.status_code == 200 and upgraded.json()["version"] == "1.1.0"
        assert failed.status_code == 422 and failed.json()["rolled_back_to"] == "1.1.0"
        assert (one["version"], one["state"]) == ("1.1.0", "running")
        assert rolled.json()["version"] == "1.0.0"
        assert (wrong_name.status_code, wrong_name.json()["error"]) == (422, "manifest")
        assert (not_base64.status_code, not_base64.json()["errors"][0]["field"]) == (422, "package")
        assert core.status_code == 409
        assert removed.json() == {"name": "probe", "version": "1.0.0", "uninstalled": True}
        assert unknown.status_code == 404
        assert [e["kind"] for e in logs["items"]] == [
            "app_installed",
            "app_upgraded",
            "app_rolled_back",
            "app_rolled_back",
            "app_refused",
            "app_uninstalled",
        ]

    asyncio.run(main())


def test_secured_operations_follow_the_roles(tmp_path: Path) -> None:
    public = tmp_path / "vendor.pem"
    public.write_text(KEY.public_key().to_pem())
    apps: dict[str, Any] = {
        "enabled": True,
        "dir": str(tmp_path / "apps"),
        "trusted_keys": [str(public)],
    }

    async def main() -> None:
        async with secured_terminal(tmp_path) as s:
            s.terminal.apps.settings = s.terminal.apps.settings.model_copy(update=apps)
            s.terminal.apps.root = tmp_path / "apps"
            async with (
                await s.session("admin") as admin,
                await s.session("operator") as operator,
                await s.session("auditor") as auditor,
            ):
                answers = {
                    "operator GET /monitor": await operator.get("/monitor"),
                    "admin GET /logs": await admin.get("/logs"),
                    "auditor GET /monitor": await auditor.get("/monitor"),
                    "operator POST /apps": await operator.post("/apps", json=body("1.0.0")),
                    "admin POST /apps unconfirmed": await admin.post(
                        "/apps", json=body("1.0.0"), headers={"X-Confirm": "wrong"}
                    ),
                    "admin POST /apps": await admin.post("/apps", json=body("1.0.0")),
                    "admin DELETE /apps/probe": await admin.delete("/apps/probe"),
                }
            entries = await s.audit_entries()
        codes = {k: r.status_code for k, r in answers.items()}
        assert codes == {
            "operator GET /monitor": 200,
            "admin GET /logs": 200,
            "auditor GET /monitor": 403,
            "operator POST /apps": 403,
            "admin POST /apps unconfirmed": 403,
            "admin POST /apps": 201,
            "admin DELETE /apps/probe": 200,
        }
        installs = [e for e in entries if e.details.get("path") == "/apps"]
        assert [(e.user, e.type, e.outcome) for e in installs] == [
            ("operator", "configure", "failure"),
            ("admin", "configure", "failure"),
            ("admin", "configure", "success"),
        ]

    asyncio.run(main())


def test_emission_factors_and_formulas_are_configured_remotely(tmp_path: Path) -> None:
    """ISC-2 §8.3: an emission factor (accounting) and a formula (a virtual point) changed by
    PATCH, applied at once and logged."""
    factor = "/accounting/units/utilities/sources/grid/factor"
    formula = {"id": "em.mwh", "op": "multiply", "inputs": ["em.ep"], "factor": "0.001"}

    async def main() -> None:
        config = TerminalConfig.model_validate(config_data(tmp_path))
        async with running_api(config) as (terminal, client):
            changed = await client.patch(
                "/config",
                json={
                    "changes": [
                        {"op": "replace", "path": factor, "value": "0.5810 tCO2/MWh"},
                        {"op": "add", "path": "/virtual_points/-", "value": formula},
                    ]
                },
            )
            assert changed.status_code == 200, changed.text
            accounting = terminal.config.accounting
            assert accounting is not None
            assert str(accounting.units[0].sources[0].factor) == "0.5810 tCO2/MWh"
            assert [v.id for v in terminal.config.virtual_points] == ["em.mwh"]
            assert terminal.accounting is not None, "accounting runs the new configuration"
            logs = (await client.get("/logs", params={"category": "configuration"})).json()
        assert sorted(changed.json()["changed"]) == [
            f"{factor}: 0.5703 tCO2/MWh → 0.5810 tCO2/MWh",
            "/virtual_points/em.mwh added",
        ]
        assert "0.5810 tCO2/MWh" in logs["items"][0]["details"]["changed"]

    asyncio.run(main())

"""``/config``: read, validate (each field in error named), replace (file written only once the
terminal took the configuration; 501 while the Terminal cannot apply one)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import yaml

from reference_terminal.app import Terminal
from reference_terminal.config import ConfigError, TerminalConfig, load_config
from tests.reference_terminal.api.harness import CONFIG, make_config, running_api


class ReconfigurableTerminal(Terminal):
    """The real terminal, recording what it applied and refusing on demand (a serial port
    that does not open is the refusal a gateway would meet)."""

    def __init__(self, config: TerminalConfig, *, config_path: Path) -> None:
        super().__init__(config, config_path=config_path)
        self.applied: list[TerminalConfig] = []
        self.refusal: str | None = None

    async def apply_config(self, config: TerminalConfig) -> None:
        if self.refusal is not None:
            raise ConfigError(self.refusal)
        await super().apply_config(config)
        self.applied.append(config)


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"]}


def test_get_config_round_trips_with_exact_decimals(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path)
        async with running_api(config) as (_, client):
            response = await client.get("/config")
            assert response.status_code == 200
            body = response.json()
            assert body["points"][1]["max"] == "1000"  # decimal text, not a float
            assert TerminalConfig.model_validate(body) == config
            check = await client.post("/config/validate", json=body)
            assert check.status_code == 200
            assert check.json()["valid"] is True

    asyncio.run(main())


def test_validation_names_each_field_in_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            bad = copy.deepcopy(CONFIG)
            bad["groups"][0]["period_s"] = 0.5  # below 1 s (ISC-2 §9.1)
            bad["devices"].append({"id": "plc", "protocol": "modbus-tcp", "host": "x", "port": 0})
            bad["points"][0]["decimals"] = 9
            response = await client.post("/config/validate", json=bad)
            assert response.status_code == 422
            body = response.json()
            assert body["error"] == "invalid_request"
            fields = _fields(body)
            assert "groups[0].period_s" in fields
            assert "points[0].decimals" in fields
            assert any(f.startswith("devices[2]") and f.endswith(".port") for f in fields)
            assert "groups[0].period_s" in body["detail"]

            # A cross-reference error (the model's own check) names its field too.
            dangling = copy.deepcopy(CONFIG)
            dangling["points"][0]["group"] = "weekly"
            response = await client.post("/config/validate", json=dangling)
            assert response.status_code == 422
            assert "no group 'weekly'" in _fields(response.json())["points[0].group"]

            response = await client.put("/config", json={"points": [{"id": "x"}]})
            assert response.status_code == 422
            assert {"points[0].group", "points[0].source"} <= set(_fields(response.json()))

    asyncio.run(main())


def test_put_config_applies_then_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "terminal.yaml"
    config = make_config(tmp_path)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    terminals: list[ReconfigurableTerminal] = []

    def factory(c: TerminalConfig) -> Terminal:
        terminals.append(ReconfigurableTerminal(c, config_path=path))
        return terminals[-1]

    async def main() -> None:
        async with running_api(config, terminal_factory=factory) as (_, client):
            terminal = terminals[0]
            data = config.model_dump(mode="json")
            data["name"] = "line 2 terminal"
            data["groups"].append({"id": "hourly", "period_s": 3600})
            response = await client.put("/config", json=data)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["applied"] is True
            assert body["written_to"] == str(path)
            assert terminal.applied[-1].name == "line 2 terminal"
            assert load_config(path) == terminal.applied[-1]
            assert (await client.get("/config")).json()["name"] == "line 2 terminal"

            # Refused by the terminal: 422, and the file keeps what runs.
            terminal.refusal = "buses[0].port: /dev/ttyUSB9 does not open"
            data["name"] = "never"
            response = await client.put("/config", json=data)
            assert response.status_code == 422
            assert response.json()["error"] == "config_not_applied"
            assert "/dev/ttyUSB9" in response.json()["detail"]
            assert load_config(path).name == "line 2 terminal"
            assert list(tmp_path.glob("*.part")) == []

    asyncio.run(main())

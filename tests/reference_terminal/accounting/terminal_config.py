"""A small terminal configuration with an accounting section, for the accounting tests: a grid
meter (kWh), a gas meter (Nm³), a product scale (t, the intensity basis), a weighbridge whose
tickets are entered by hand (t), and a water meter that no source uses."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

from reference_terminal.config import TerminalConfig

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
VINTAGE = "2015 guidelines / GB/T 32150"


def _point(pid: str, device: str, unit: str, kind: str = "counter") -> dict[str, Any]:
    return {"id": pid, "unit": unit, "kind": kind, "group": "g", "source": {"device": device}}


def config_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "devices": [
            {"id": "em", "protocol": "modbus-tcp", "host": "127.0.0.1", "level": 1},
            {"id": "gm", "protocol": "modbus-tcp", "host": "127.0.0.1"},
            {"id": "scale", "protocol": "modbus-tcp", "host": "127.0.0.1"},
            {"id": "ticket", "protocol": "manual"},
        ],
        "groups": [{"id": "g", "period_s": 60}],
        "points": [
            _point("em.ep", "em", "kWh"),
            _point("gm.vol", "gm", "Nm³"),
            _point("scale.t", "scale", "t"),
            _point("ticket.clinker", "ticket", "t"),
            _point("wm.vol", "gm", "m³"),
            _point("em.kw", "em", "kW", "gauge"),
        ],
        "storage": {"url": f"sqlite:///{tmp_path / 'terminal.db'}"},
        "accounting": {
            "enterprise": {"name": "Test works", "sector": "cement"},
            "library": [str(LIBRARY)],
            "imports_dir": str(tmp_path / "factors"),
            "vintage": VINTAGE,
            "units": [
                {
                    "id": "utilities",
                    "name": "Utilities",
                    "sources": [
                        {
                            "id": "grid",
                            "kind": "electricity",
                            "factor": "0.5703 tCO2/MWh",
                            "points": ["em.ep"],
                        },
                        {
                            "id": "boiler",
                            "kind": "combustion",
                            "fuel": "natural_gas",
                            "points": ["gm.vol"],
                        },
                    ],
                },
                {
                    "id": "materials",
                    "sources": [
                        {
                            "id": "clinker",
                            "kind": "process",
                            "factor": "0.527 tCO2/t",
                            "points": ["ticket.clinker"],
                        }
                    ],
                },
            ],
            "bases": {
                "electricity": {"points": ["em.ep"]},
                "product": {"name": "cement", "unit": "t", "points": ["scale.t"]},
            },
            "alarms": [
                {
                    "id": "grid-jump",
                    "type": "anomaly",
                    "point": "em.ep",
                    "period": "minute",
                    "ratio": "5",
                    "min_history": 3,
                },
            ],
        },
    }


def make_config(tmp_path: Path, **changes: Any) -> TerminalConfig:
    data = deepcopy(config_data(tmp_path))
    data["accounting"].update(changes)
    return TerminalConfig.model_validate(data)

"""The ``no-readings`` mutation: the reference terminal wired to nothing, as a vendor's box is
when nobody told it where the bench's meters are (every address chosen at run time, and
none printed). It boots, connects to its centres and uploads on schedule — every item with a
flag and no value. A suite that passes it judges nothing.

Only the terminal's configuration changes (its public schema): every device points where no
meter answers.
"""

from __future__ import annotations

from typing import Any

#: A loopback port nothing listens on (TCPMUX, unassigned here): a connection is refused.
NOWHERE_PORT = 1


def unwired(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a terminal configuration as JSON data) with every device's address changed
    to one where no meter answers; a new mapping, ``config`` untouched."""
    out = dict(config)
    out["buses"] = [{**bus, "port": "/dev/null"} for bus in config.get("buses", [])]
    out["devices"] = [_nowhere(device) for device in config.get("devices", [])]
    return out


def _nowhere(device: dict[str, Any]) -> dict[str, Any]:
    changed = dict(device)
    match device.get("protocol"):
        case "modbus-tcp":
            changed["port"] = NOWHERE_PORT
        case "opcua":
            changed["endpoint"] = f"opc.tcp://127.0.0.1:{NOWHERE_PORT}/"
        case "mqtt":
            changed["topic"] = f"{device['topic']}/nobody-publishes-here"
        case "https":
            if device.get("url"):
                changed["url"] = f"https://127.0.0.1:{NOWHERE_PORT}/"
        case "sql":
            changed["url"] = "sqlite:///:memory:"
    return changed

"""Configuration changes (``conformance.dut.Change``) applied to a terminal configuration in the
carbench management profile's form (what ``GET /config`` gives and ``PUT /config`` takes: the
reference terminal's schema), so both adapters change a terminal the same way: read it back,
change it, send it whole."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from conformance.dut import (
    AddVirtualPoint,
    Change,
    DutError,
    MoveCentre,
    RemoveVirtualPoint,
    SetBackup,
    SetPeriod,
    SetRange,
)
from conformance.verdicts import Inconclusive


def _find(items: list[dict[str, Any]], key: str, value: str, what: str) -> dict[str, Any]:
    for item in items:
        if item.get(key) == value:
            return item
    raise DutError(f"the terminal's configuration has no {what} {value!r}")


def apply_changes(config: dict[str, Any], changes: tuple[Change, ...]) -> dict[str, Any]:
    """``config`` with ``changes`` made (a new dict; the argument is left alone)."""
    out = copy.deepcopy(config)
    points: list[dict[str, Any]] = out.setdefault("points", [])
    for change in changes:
        match change:
            case SetPeriod(group=group, seconds=seconds):
                _find(out.setdefault("groups", []), "id", group, "point group")["period_s"] = (
                    seconds
                )
            case SetRange(point=point, low=low, high=high):
                found = _find(points, "id", point, "point")
                found["min"] = None if low is None else str(low)
                found["max"] = None if high is None else str(high)
            case SetBackup(point=point, backup_point=None):
                _find(points, "id", point, "point")["backup"] = None
            case SetBackup(point=point, backup_point=str(backup)):
                source = copy.deepcopy(_find(points, "id", backup, "point")["source"])
                _find(points, "id", point, "point")["backup"] = source
            case AddVirtualPoint(point=point):
                rules = _virtual_points(out)
                rules[:] = [r for r in rules if r.get("id") != point]
                rules.append(virtual_entry(change))
            case RemoveVirtualPoint(point=point):
                rules = _virtual_points(out)
                rules[:] = [r for r in rules if r.get("id") != point]
            case MoveCentre(centre=centre, host=host, port=port):
                found = _find(out.get("uplink", {}).get("centres", []), "name", centre, "centre")
                if found.get("protocol") == "https":
                    parts = urlsplit(str(found["url"]))
                    found["url"] = urlunsplit(parts._replace(netloc=f"{host}:{port}"))
                else:
                    found["host"], found["port"] = host, port
    return out


def _virtual_points(config: dict[str, Any]) -> list[dict[str, Any]]:
    rules = config.get("virtual_points")
    if not isinstance(rules, list):
        raise Inconclusive(
            "the terminal's configuration (carbench profile) has no virtual_points section: "
            "it cannot be given a virtual point through its management interface",
            "CSMT §8.3.2",
        )
    return rules


def virtual_entry(change: AddVirtualPoint) -> dict[str, Any]:
    """A virtual point in the carbench profile's form (``virtual_points`` of the reference
    terminal's configuration schema)."""
    entry: dict[str, Any] = {"id": change.point, "op": change.operation}
    inputs = list(change.inputs)

    def arity(n: int) -> None:
        if len(inputs) != n:
            raise DutError(f"{change.operation} {change.point}: {n} input(s), got {inputs}")

    match change.operation:
        case "add":
            entry["inputs"] = inputs
        case "subtract":
            entry["minuend"], entry["subtrahends"] = inputs[0], inputs[1:]
        case "multiply":
            entry |= {"inputs": inputs, "factor": str(change.factor)}
        case "divide":
            arity(2)
            entry |= {"numerator": inputs[0], "denominator": inputs[1]}
            entry["factor"] = str(change.factor)
        case "allocate":
            arity(1)
            entry |= {"source": inputs[0], "targets": list(change.targets)}
            entry["shares"] = [str(s) for s in change.shares]
        case "integrate":
            arity(1)
            entry |= {"source": inputs[0], "per_s": change.per_s}
    return entry


def render_code(code: Any) -> str:
    """A data item code as it goes on the wire (a structured CSMT §7.2 code or an HJ 212 one)."""
    if isinstance(code, dict):
        return (
            f"{code['industry']}{code['activity']}{code['source']}{code['parameter']}"
            f"{int(code['point']):02d}"
        )
    return str(code)

"""The target's emission parameters (PIXIT ``parameters.emissions``) as the reference
terminal's accounting: what a lab sets up on a box before the run, done for the bench's own.

Its accounting units and sources become the declared ones (each source read by the terminal
points that read the declared meters, with the declared method), its emission figures go up
under the declared codes (``accounting.uploads``), and it looks for a new factor publication
as often as declared (``factor_download.every_s``). A PIXIT naming a meter this terminal does
not read changes nothing (one written for another fleet never gets here:
``Parameters.set_up_for``): the tests say why.
"""

from __future__ import annotations

from typing import Any

from bench.terminal_for_fleet import METHOD_FIELDS
from conformance.target import Emissions


def declared_emissions(data: dict[str, Any], emissions: Emissions | None) -> None:
    """Set ``data`` (a terminal configuration as JSON data) up as ``emissions`` declares."""
    accounting = data.get("accounting")
    if emissions is None or accounting is None:
        return
    by_read = {(p["source"]["device"], p["name"]): p["id"] for p in data["points"]}
    reads = [(r.meter, r.quantity) for s in emissions.sources for r in s.reads]
    if not all(read in by_read for read in reads):
        return
    had = {s["id"]: s for unit in accounting["units"] for s in unit["sources"]}
    names = {unit["id"]: unit.get("name", "") for unit in accounting["units"]}
    units: dict[str, list[dict[str, Any]]] = {}
    for source in emissions.sources:
        entry: dict[str, Any] = {
            "id": source.id,
            "name": had.get(source.id, {}).get("name", ""),
            "kind": source.kind,
            "points": [by_read[(r.meter, r.quantity)] for r in source.reads],
        }
        entry |= {f: getattr(source, f) for f in METHOD_FIELDS if getattr(source, f)}
        if source.category is not None:
            entry["category"] = source.category
        units.setdefault(source.unit, []).append(entry)
    accounting["units"] = [
        {"id": unit, "name": names.get(unit, ""), "sources": sources}
        for unit, sources in units.items()
    ]
    bound = {p for sources in units.values() for s in sources for p in s["points"]}
    bound |= {p for basis in accounting.get("bases", {}).values() for p in basis["points"]}
    # an alarm on a point no longer accounted would refuse the configuration
    accounting["alarms"] = [
        a for a in accounting.get("alarms", []) if a.get("point") is None or a["point"] in bound
    ]
    if emissions.vintage is not None:
        accounting["vintage"] = emissions.vintage
    accounting["uploads"] = [{"code": c.code, "of": c.of, "id": c.id} for c in emissions.codes]
    download = accounting.get("factor_download")
    if download is not None and emissions.factor_poll_s is not None:
        download["every_s"] = emissions.factor_poll_s

"""Storage and interfaces, item by item: data stored classified by emission source, imported
and exported (ISC-2 §7.2.3); an interface to third-party carbon platforms (CSMT §11.13)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from conformance.bench import Bench, local
from conformance.dut import PointBinding
from conformance.evidence import TestLog, step
from conformance.verdicts import Inconclusive

#: CSMT §11.13: what a third-party platform must be able to get besides the activity data,
#: and where the carbench profile serves it.
THIRD_PARTY_ROUTES = {
    "accounting methods": "/accounting/methods",
    "emission boundaries": "/accounting/boundaries",
    "statistics": "/accounting/statistics",
}


def _by_source(bench: Bench) -> dict[str, list[PointBinding]]:
    sources = {s.id for s in bench.rig.fleet.spec.plant.sources}
    out: dict[str, list[PointBinding]] = {}
    for binding in bench.dut.points():
        if binding.quantity is None:
            continue
        source = binding.quantity.split(".")[0]
        if source in sources:
            out.setdefault(source, []).append(binding)
    return out


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.clause("ISC-2 §7.2.3")
@pytest.mark.requires("feature:export", "feature:manual-entry")
async def test_store_by_source_import_and_export(bench: Bench, evidence: TestLog) -> None:
    """Stored data are listed and exported source by source (each source's points alone, every
    stored row), and data imported as a file are stored and exported again."""
    await bench.history(900)
    listed = {p["id"]: p for p in await bench.management.points()}
    by_source = _by_source(bench)
    if not by_source:
        raise Inconclusive("no point of the terminal reads a source of the bench's plant")
    end = bench.now() - 60
    start = end - 900
    problems = []
    for source, bindings in sorted(by_source.items()):
        ids = [b.point for b in bindings]
        unlisted = [i for i in ids if i not in listed]
        if unlisted:
            problems.append(f"{source}: points {unlisted} not in the terminal's list")
            continue
        with step(f"export the readings of source {source} ({len(ids)} points)"):
            response = await bench.management.export("readings", "csv", start, end, ids)
        rows = _rows(response.text)
        foreign = sorted({r["point"] for r in rows} - set(ids))
        if foreign:
            problems.append(f"{source}: the export also holds {foreign}")
        for point in ids:
            stored = await bench.management.readings(point, start, end)
            got = sum(1 for r in rows if r["point"] == point)
            if got != len(stored):
                problems.append(f"{source}/{point}: {got} rows exported, {len(stored)} stored")
    assert not problems, "\n".join(problems[:20])
    manual = bench.points(acquisition="manual")
    if not manual:
        raise Inconclusive("no manual point to import a file into", "ISC-2 §7.2.3")
    binding = manual[0]
    name = _fleet_name(bench, binding)
    day = local(bench.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    iso = "%Y-%m-%dT%H:%M:%S+08:00"
    period = (day - timedelta(days=1)).strftime(iso), day.strftime(iso)
    body = (
        "period_start,period_end,point,quantity,value,unit,entered_by,source\n"
        f"{period[0]},{period[1]},{name},{binding.quantity},96.25,{binding.unit},carbench,"
        "conformance import\n"
    )
    with step(f"import a day's figure for {binding.point} as a file"):
        answer = await bench.management.request(
            "POST", "/manual/csv", content=body.encode(), headers={"Content-Type": "text/csv"}
        )
    evidence.attach("import-answer.json", answer.text, "application/json")
    assert answer.status_code < 300, f"the import was refused: HTTP {answer.status_code}"
    accepted = answer.json().get("accepted") or []
    assert accepted, f"nothing accepted: {answer.text[:300]}"
    t = float(accepted[0]["t"])
    exported = await bench.management.export("readings", "csv", t - 1, t + 1, [binding.point])
    values = [r.get("value") for r in _rows(exported.text)]
    assert "96.25" in values, f"{binding.point}: the imported value is not exported: {values}"


def _fleet_name(bench: Bench, binding: PointBinding) -> str:
    for meter in bench.rig.fleet.spec.meters:
        if meter.id == binding.meter:
            for point in getattr(meter, "points", []):
                if getattr(point, "quantity", None) == binding.quantity:
                    return str(point.name)
    raise Inconclusive(f"the fleet does not name {binding.point}'s source", "ISC-2 §7.2.3")


@pytest.mark.clause("CSMT §11.13")
async def test_interface_to_third_party_platforms(bench: Bench, evidence: TestLog) -> None:
    """Activity data reach a third-party platform over an authenticated, encrypted interface
    (HTTPS), and the accounting methods, emission boundaries and statistics are offered to
    such platforms too."""
    await bench.history(1200)
    https = [c for c in bench.rig.centres if c.protocol == "https"]
    if not https:
        raise Inconclusive("the terminal uploads to no HTTPS platform of the bench")
    centre = https[0].name
    frames = bench.frames_in(centre)
    evidence.record_measurement("frames_at_" + centre, len(frames))
    assert frames, f"{centre} (HTTPS, TLS): no activity data arrived from the terminal"
    missing = {}
    for what, path in THIRD_PARTY_ROUTES.items():
        response = await bench.management.request("GET", path)
        evidence.record_measurement(f"status {path}", response.status_code)
        if response.status_code >= 400:
            missing[what] = f"{path}: HTTP {response.status_code}"
    assert not missing, (
        "the terminal offers third-party platforms its activity data but not "
        + "; ".join(f"{k} ({v})" for k, v in missing.items())
    )

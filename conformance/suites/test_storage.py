"""Storage and retention: data kept across power loss (a scenario of power cuts while the uplink
is down), history queried and exported, raw readings kept, backup and restore."""

from __future__ import annotations

import csv
import io
import sqlite3
import tempfile
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import pytest

from conformance.bench import Bench
from conformance.evidence import TestLog, step
from conformance.scenario_play import play, scenario_file
from conformance.verdicts import Inconclusive

SCENARIOS = {"quick": "retention-48h-small.yaml", "full": "retention-48h.yaml"}
#: ISC-2 §7.2.3(4): history kept on the terminal at least six months.
SIX_MONTHS_DAYS = 183


@pytest.mark.clause("ISC-2 §9.2", "CSMT §7.6", "SSEA §5.1.5.3")
async def test_data_survives_48_hours_without_power(bench: Bench, evidence: TestLog) -> None:
    """Every minute window the terminal acknowledged before power cuts (one of them 48 hours
    long) while its uplink was down reaches every centre, exactly once, once it is back."""
    await bench.warm()
    path = scenario_file(SCENARIOS[bench.profile])
    with step(f"play {path.name}"):
        if bench.profile == "quick":  # the small fleet: the cuts meet the meters' wire too
            played = await play(bench, path)
        else:  # 48 hours of the works fleet judge storage; its wire took 36 of 46 minutes
            async with bench.dut.unattended():
                played = await play(bench, path)
    evidence.attach("timeline.jsonl", played.timeline_jsonl(), "application/x-ndjson")
    evidence.attach("check.txt", played.summary())
    evidence.attach_json("power-cuts.json", [asdict(c) for c in played.cuts])
    evidence.record_measurement("acknowledged_windows", played.windows)
    evidence.record_measurement("power_cuts", len(played.cuts))
    evidence.record_measurement("torn_cuts", sum(c.torn for c in played.cuts))
    lost = sum(len(r.lost) for r in played.results.values())
    evidence.record_measurement("lost", lost)
    assert played.cuts, "the scenario cut no power"
    assert played.windows > 0, "the terminal acknowledged nothing before the cuts"
    assert played.passed(), played.summary()
    modes = {c.mode for c in played.cuts}
    if "kill" in modes:
        raise Inconclusive(
            "nothing was lost, but the cuts only killed the terminal: its operating system kept "
            f"what it had not made durable ({played.cuts[0].note})",
            "ISC-2 §9.2",
        )


@pytest.mark.clause("ISC-2 §7.2.3(4)", "ISC-2 §9.1")
@pytest.mark.requires("feature:export")
async def test_history_is_queryable_and_exportable(bench: Bench, evidence: TestLog) -> None:
    """The stored history answers queries and exports as a file with the same rows, and the
    terminal keeps at least six months of it."""
    await bench.history(1800)
    end = bench.now() - 60
    start = end - 1800
    points = [b.point for b in bench.points(acquisition="polled")][:6]
    with step("query the readings of the last 30 minutes"):
        queried = {p: await bench.management.readings(p, start, end) for p in points}
    with step("export the same range as CSV"):
        response = await bench.management.export("readings", "csv", start, end, points)
    evidence.attach("export.csv", response.content, "text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows, "the export is empty"
    columns = set(rows[0])
    assert {"point", "value"} <= columns, f"export columns {sorted(columns)}"
    exported: dict[str, list[str]] = {}
    for row in rows:
        exported.setdefault(row["point"], []).append(row["value"])
    for point, readings in queried.items():
        want = sorted(str(r.value) for r in readings if r.value is not None)
        got = sorted(v for v in exported.get(point, []) if v not in ("", "None"))
        assert got == want, f"{point}: exported {len(got)} values, stored {len(want)}"
    config = await bench.management.config()
    days = (
        config.get("storage", {}).get("retention_days") or bench.dut.target.parameters.history_days
    )
    if days is None:
        raise Inconclusive("the terminal states no history retention", "ISC-2 §7.2.3(4)")
    evidence.record_measurement("retention_days", float(days))
    assert int(days) >= SIX_MONTHS_DAYS, f"history kept {days} days; ISC-2 §7.2.3(4): ≥ 6 months"


@pytest.mark.clause("ISC-2 §7.2.3(2)", "CSMT §9.2")
async def test_raw_readings_are_kept_beside_converted_values(bench: Bench) -> None:
    """Every measured reading keeps the raw form the device gave next to its converted value
    and the meter's digits."""
    await bench.history(900)
    end = bench.now()
    problems = []
    for binding in bench.points(acquisition="polled"):
        for r in await bench.management.readings(binding.point, end - 900, end):
            if r.quality in ("good", "backup", "out_of_range") and not r.raw:
                problems.append(f"{binding.point} @ {r.t:.0f}: no raw form kept ({r.value})")
            if r.value is not None and r.digits != _digits(r.value):
                problems.append(f"{binding.point} @ {r.t:.0f}: digits {r.digits} for {r.value}")
    assert not problems, "\n".join(problems[:20])


def _digits(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@pytest.mark.clause("ISC-2 §4.4", "ISC-2 §7.4.1.4(4)")
@pytest.mark.requires("feature:backup")
async def test_backup_holds_every_record_and_the_configuration_round_trips(
    bench: Bench, evidence: TestLog
) -> None:
    """A backup holds every stored reading; the configuration read out can be put back."""
    await bench.history(600)
    end = bench.now()
    point = bench.points(acquisition="polled")[0].point
    stored = await bench.management.readings(point, bench.t0, end)
    with step("make a backup"):
        response = await bench.management.backup()
    assert response.content, "the backup is empty"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "backup.db"
        copy.write_bytes(response.content)
        with sqlite3.connect(copy) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            assert "readings" in tables, f"no readings in the backup: tables {sorted(tables)}"
            n = db.execute(
                "SELECT count(*) FROM readings WHERE point = ? AND t >= ? AND t < ?",
                (point, bench.t0, end),
            ).fetchone()[0]
    evidence.record_measurement("backup_bytes", len(response.content))
    assert n >= len(stored), f"{point}: {n} readings in the backup, {len(stored)} stored"
    with step("put the configuration back as it was read"):
        config = await bench.management.config()
        applied = await bench.management.put_config(config)
    assert applied.get("applied") is True, applied


@pytest.mark.clause("ISC-2 §4.4")
@pytest.mark.requires("feature:restore")
async def test_a_backup_can_be_restored(bench: Bench) -> None:
    """A backup made through the management interface can be restored through it: the readings
    it holds are there again, and the terminal goes on acquiring afterwards."""
    await bench.history(300)
    made = bench.now()
    point = bench.points(acquisition="polled")[0].point
    stored = {r.t for r in await bench.management.readings(point, bench.t0, made)}
    with step("make a backup"):
        backup = await bench.management.backup()
    await bench.wait(60)  # readings the restore will take away
    with step("restore it"):
        response = await bench.management.restore(backup.content)
    assert response.status_code < 300, f"restore answered {response.status_code}: {response.text}"
    restored = {r.t for r in await bench.management.readings(point, bench.t0, made)}
    missing = sorted(stored - restored)
    assert not missing, f"{point}: {len(missing)} readings of the backup not restored"
    resumed = bench.now()

    async def acquiring() -> bool:
        return bool(await bench.management.readings(point, resumed, bench.now() + 1))

    assert await bench.until(acquiring, within=300), (
        f"{point}: no reading stored in the 300 s after the restore"
    )

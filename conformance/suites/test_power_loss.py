"""Power loss: every minute window the terminal acknowledged before power cuts (one of them 48
hours long, with the uplink down all along) reaches every centre exactly once when power and
link are back — whatever the cuts did to its disk."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from conformance.bench import Bench
from conformance.evidence import TestLog, step
from conformance.scenario_play import play, scenario_file
from conformance.verdicts import Inconclusive

SCENARIOS = {"quick": "retention-48h-small.yaml", "full": "retention-48h.yaml"}


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

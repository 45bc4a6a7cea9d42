"""Acceptance (issue 6, scaled down for the suite): the reference terminal keeps every minute
window it acknowledged through power cuts that lose unsynced writes while its uplink is down,
and delivers them all once the link returns — and the same scenario catches a terminal whose
store runs with synchronous=OFF. (The full 48-hour scenario runs with `carbench scenario run
fixtures/scenarios/retention-48h.yaml`.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bench.scenario import Outcome, Scenario, load_scenario, run_scenario
from simulators.fleet.loader import load_fleet
from simulators.platform.record import format_data_time
from simulators.power import PowerCutMode, power_cut_mode

WALL_LIMIT_S = 300.0
SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"

needs_fuse = pytest.mark.skipif(
    power_cut_mode().mode is not PowerCutMode.FUSE,
    reason=f"power cuts that lose unsynced writes need FUSE: {power_cut_mode().reason}",
)


def run_within_limit(scenario: Scenario, out: Path) -> Outcome:
    """The scenario, failing rather than hanging if the bench stalls (wall seconds)."""
    return asyncio.run(asyncio.wait_for(run_scenario(scenario, out), WALL_LIMIT_S))


def scenario_file(
    tmp_path: Path, synchronous: str, meters: str = "wire", centres: str = "bench"
) -> Path:
    spec = {
        "name": f"retention-small-{synchronous.lower()}",
        "fleet": str(SMALL),
        "meters": meters,
        "platforms_process": centres == "process",
        "seed": 11,
        "duration": "50m",
        "drain": "1h",
        "power": {"mode": "fuse"},
        "terminal": {
            "periods": {"serial": 60, "network": 60, "push": 60},
            "synchronous": synchronous,
        },
        "platforms": {
            "centres": [
                {"name": "provincial", "protocol": "hj212", "passwords": "any"},
                {"name": "group", "protocol": "hj212", "passwords": "any"},
            ]
        },
        "timeline": [
            {"at": "0s", "do": "link_down", "centre": "all"},
            {"do": "power_cuts", "count": 2, "between": ["10m", "45m"], "off_for": ["20s", "3m"]},
            {"at": "50m", "do": "link_up", "centre": "all"},
        ],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


#: The meters over their protocols, and through the model link the long scenarios use.
METERS = pytest.mark.parametrize("meters", ["wire", "model"])


@needs_fuse
@pytest.mark.parametrize(
    ("meters", "centres"),
    [("wire", "bench"), ("model", "bench"), ("model", "process")],
    ids=["wire", "model", "model-centres-in-a-process"],
)
def test_every_acknowledged_window_arrives_once_at_both_centres_after_power_cuts(
    tmp_path: Path, meters: str, centres: str, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = load_scenario(scenario_file(tmp_path, "FULL", meters, centres))
    outcome = run_within_limit(scenario, tmp_path / "run")

    assert outcome.power_cut_mode == "fuse" and outcome.power_cuts == 2
    assert outcome.meters == meters
    assert outcome.expected > 0 and set(outcome.centres) == {"provincial", "group"}
    for name, centre in outcome.centres.items():
        assert centre.lost == 0, (name, centre.first_lost)
        assert centre.unexpected == 0 and centre.duplicated == 0, (name, centre)
        assert centre.wrong_value == 0 and centre.received == centre.expected, (name, centre)
    assert outcome.passed
    # The run directory holds the evidence.
    run = tmp_path / "run"
    for part in (
        "outcome.json",
        "timeline.jsonl",
        "platform-record.sqlite",
        "terminal.db",
        "truth.csv.gz",
        "run.log",
    ):
        assert (run / part).exists(), part
    # what the terminal logged, at the virtual instants it did: each of its three boots
    boots = [
        datetime.fromisoformat(line.split(" ", 1)[0])
        for line in (run / "run.log").read_text(encoding="utf-8").splitlines()
        if "resumed from the store" in line
    ]
    start = load_fleet(SMALL).start
    assert len(boots) == 3 and boots == sorted(boots), boots
    assert boots[0] == start and boots[-1] < start + timedelta(minutes=50), boots
    assert json.loads((run / "outcome.json").read_text())["passed"] is True
    # ... and says where the wall time went, and how much CPU time it took
    assert list(outcome.phases) == ["setup", "timeline", "drain", "check", "teardown"]
    assert all(s >= 0 for s in outcome.phases.values())
    assert sum(outcome.phases.values()) == pytest.approx(outcome.wall_seconds, abs=0.1)
    assert outcome.cpu_seconds > 0
    # ... phase by phase, by thread and by child process (the event loop is the main thread)
    assert list(outcome.cpu_by_phase) == list(outcome.phases)
    assert outcome.cpu_by_phase["timeline"]["MainThread"] > 0
    # ... and how long the store writer was busy (over all three boots), the work a step waits for
    assert set(outcome.store_busy_s) == {"apply", "behind", "calls", "settle"}
    assert outcome.store_busy_s["apply"] > 0 and outcome.store_busy_s["calls"] > 0
    assert sum(outcome.store_busy_s.values()) < outcome.wall_seconds
    steps = [json.loads(line)["what"] for line in (run / "timeline.jsonl").read_text().splitlines()]
    actions = [step.split()[0] for step in steps]
    assert actions.count("power_off") == 2 and actions.count("power_on") == 2
    # each cut landed inside the terminal's writes (a torn commit), not between them
    assert steps.count("torn cut") == 2, steps
    # dying of its disk's death is no fault of the terminal's
    assert not [r for r in caplog.records if "stopped by itself" in r.getMessage()]


@needs_fuse
@METERS
def test_the_same_cuts_catch_a_terminal_whose_store_does_not_sync(
    tmp_path: Path, meters: str
) -> None:
    """A fault injector that cannot make a weak terminal fail proves nothing."""
    scenario = load_scenario(scenario_file(tmp_path, "OFF", meters))
    outcome = run_within_limit(scenario, tmp_path / "run")

    assert outcome.bytes_dropped_by_cuts > 0
    assert outcome.lost > 0 and not outcome.passed


@needs_fuse
@pytest.mark.parametrize("centres", ["bench", "process"])
def test_every_kind_of_step_plays_against_the_reference_terminal(
    tmp_path: Path, centres: str
) -> None:
    """Toxics, a refusing centre, a meter fault, a link down, a power cut, a configuration
    change and a clock jump: each is played, and still nothing acknowledged goes missing;
    with the centres in the bench's process or in one of their own."""
    every = SMALL.parents[1] / "scenarios" / "every-step-small.yaml"
    overrides = [f"platforms_process={centres == 'process'}"]
    outcome = run_within_limit(load_scenario(every, overrides=overrides), tmp_path / "run")

    played = {
        json.loads(line)["what"].split()[0]
        for line in (tmp_path / "run" / "timeline.jsonl").read_text().splitlines()
    }
    assert {
        "toxic_on",
        "toxic_off",
        "platform",
        "link_down",
        "link_up",
        "power_off",
        "power_on",
        "config",
        "clock_jump",
    } <= played
    assert outcome.passed, outcome.centres


def played(run: Path) -> list[tuple[float, str]]:
    """What happened when, in virtual time (the hourly pace notes carry wall-time figures)."""
    entries = [json.loads(line) for line in (run / "timeline.jsonl").read_text().splitlines()]
    return [(e["virtual_s"], e["what"]) for e in entries if e["what"] not in {"start", "pace"}]


def delivered(run: Path, before: str) -> list[tuple[str, ...]]:
    """Every reading the centres hold of a window before the DataTime ``before``, once. (The
    drain runs on until the centres hold all that is owed, and how many minutes past the
    timeline that takes follows the pace of real sockets and of the record's writer.)"""
    query = (
        "SELECT centre, cn, data_time, code, value FROM platform_readings_dedup WHERE data_time < ?"
    )
    with contextlib.closing(sqlite3.connect(run / "platform-record.sqlite")) as db:
        return sorted(db.execute(query, (before,)).fetchall())


@needs_fuse
def test_one_seed_is_one_run(tmp_path: Path) -> None:
    """Two runs of a seed cut the power at the same instants, inside the same acknowledgement,
    and owe and deliver the same readings: a lab reproduces a failure by its seed."""
    scenario = load_scenario(scenario_file(tmp_path, "FULL", meters="model"))
    first = run_within_limit(scenario, tmp_path / "first")
    second = run_within_limit(scenario, tmp_path / "second")

    assert played(tmp_path / "first") == played(tmp_path / "second")
    assert [what for _, what in played(tmp_path / "first")].count("torn cut") == 2
    assert first.expected == second.expected and first.passed and second.passed
    start = load_fleet(SMALL).start.replace(tzinfo=None)  # the plant's own time, as DataTime
    end = format_data_time(start + scenario.duration)
    assert delivered(tmp_path / "first", end) == delivered(tmp_path / "second", end)
    assert len(delivered(tmp_path / "first", end)) >= first.expected

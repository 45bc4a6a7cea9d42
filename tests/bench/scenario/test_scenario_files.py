"""Scenario files: validated with errors that name the field; a timeline is a pure function of
the scenario and its seed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bench.scenario import RunDirectoryError, ScenarioError, load_scenario, run_scenario
from bench.scenario.outcome import Outcome
from conformance.scenario.schema import parse_duration
from conformance.scenario.timeline import expand

SCENARIOS = Path(__file__).resolve().parents[3] / "fixtures" / "scenarios"

BASE = {
    "name": "t",
    "fleet": str(SCENARIOS.parent / "fleets" / "small.yaml"),
    "duration": "2h",
    "platforms": {"centres": [{"name": "a", "protocol": "hj212", "passwords": "any"}]},
}


def write(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_is_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.fleet.exists()
    assert expand(scenario)


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("48h") == timedelta(hours=48)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(1.5) == timedelta(seconds=1.5)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 fortnights")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"duration": "soon"}, "duration: .*not a duration"),
        ({"timeline": [{"at": "1h", "do": "explode"}]}, "timeline.0: .*does not match any"),
        ({"timeline": [{"at": "3h", "do": "link_down"}]}, "outside the duration"),
        ({"timeline": [{"at": "1h", "do": "link_down", "centre": "b"}]}, "no centre 'b'"),
        (
            {
                "timeline": [
                    {
                        "do": "power_cuts",
                        "count": 10,
                        "between": ["0s", "1h"],
                        "off_for": ["1m", "10m"],
                    }
                ]
            },
            "do not fit",
        ),
        ({"terminal": {"synchronous": "SOMETIMES"}}, "terminal.synchronous"),
        (
            {"timeline": [{"at": "1m", "do": "operator", "path": "uplink"}]},
            r"timeline.0.operator.path: String should match pattern",
        ),
        (
            {"timeline": [{"at": "1m", "do": "operator", "path": "/uplink", "method": "BREW"}]},
            "timeline.0.operator.method",
        ),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, **changes))


def test_the_same_seed_gives_the_same_timeline_and_another_seed_another(tmp_path: Path) -> None:
    cuts = [{"do": "power_cuts", "count": 5, "between": ["10m", "110m"], "off_for": ["10s", "5m"]}]
    path = write(tmp_path, timeline=cuts, seed=3)
    first, again = expand(load_scenario(path)), expand(load_scenario(path))
    other = expand(load_scenario(path, seed=4))
    assert first == again
    assert [e.at for e in first] != [e.at for e in other]


def test_a_run_directory_holding_an_earlier_run_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    """The terminal would boot on the store the earlier run left on its disk."""
    out = tmp_path / "run"
    (out / "disk-backing").mkdir(parents=True)
    (out / "disk-backing" / "terminal.db").write_bytes(b"an earlier run's store")
    with pytest.raises(RunDirectoryError, match="not empty"):
        asyncio.run(run_scenario(load_scenario(write(tmp_path)), out))
    assert (out / "disk-backing" / "terminal.db").read_bytes() == b"an earlier run's store"


def test_power_cuts_fall_inside_their_window_alternate_and_never_overlap(tmp_path: Path) -> None:
    cuts = [{"do": "power_cuts", "count": 8, "between": ["10m", "110m"], "off_for": ["1m", "12m"]}]
    for seed in range(20):
        events = expand(load_scenario(write(tmp_path, timeline=cuts), seed=seed))
        assert [e.action for e in events] == ["power_off", "power_on"] * 8
        assert all(timedelta(minutes=10) <= e.at <= timedelta(minutes=110) for e in events)
        offs = [b.at - a.at for a, b in zip(events[::2], events[1::2], strict=True)]
        assert all(timedelta(minutes=1) <= d <= timedelta(minutes=12) for d in offs)


def test_a_toxic_for_a_while_is_switched_off_again(tmp_path: Path) -> None:
    step = {
        "at": "10m",
        "do": "toxic",
        "type": "latency",
        "attributes": {"latency": 500},
        "for": "5m",
    }
    events = expand(load_scenario(write(tmp_path, timeline=[step])))
    assert [(e.action, e.at) for e in events] == [
        ("toxic_on", timedelta(minutes=10)),
        ("toxic_off", timedelta(minutes=15)),
    ]
    assert events[0].detail is not None and events[0].detail["latency"] == 500


def test_an_operator_request_is_a_timeline_event_with_what_it_expects(tmp_path: Path) -> None:
    step = {"at": "5m", "do": "operator", "path": "/manual", "body": {"point": "p", "value": "1"}}
    (event,) = expand(load_scenario(write(tmp_path, timeline=[step])))
    assert (event.at, event.action) == (timedelta(minutes=5), "operator")
    assert event.detail == {
        "method": "POST",
        "path": "/manual",
        "expect": 200,
        "body": {"point": "p", "value": "1"},
    }


def test_a_refused_operator_request_or_a_revised_window_fails_the_run() -> None:
    outcome = Outcome(
        scenario="t",
        seed=1,
        power_cut_mode="fuse",
        power_note="fuse",
        meters="wire",
        expected=1,
        received=1,
        lost=0,
        duplicated=0,
        unexpected=0,
        gaps=0,
        power_cuts=0,
        bytes_dropped_by_cuts=0,
        wall_seconds=1.0,
        virtual_seconds=60.0,
        clock_steps=1,
        centres={},
    )
    assert outcome.passed
    refused = replace(outcome, failed_steps=["operator POST /manual: 422 (expected 200)"])
    assert not refused.passed
    assert not replace(outcome, wrong_value=1).passed  # a sent window revised afterwards


def test_a_setting_is_overridden_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path)
    weak = load_scenario(path, overrides=["terminal.synchronous=OFF", "seed=9"])
    assert (weak.terminal.synchronous, weak.seed) == ("OFF", 9)  # OFF stays a word, not False
    with pytest.raises(ScenarioError, match=r"dotted\.key=value"):
        load_scenario(path, overrides=["synchronous"])
    with pytest.raises(ScenarioError, match=r"terminal\.synchronous"):
        load_scenario(path, overrides=["terminal.synchronous=SOMETIMES"])

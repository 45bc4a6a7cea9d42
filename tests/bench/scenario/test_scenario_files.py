"""Scenario files: validated with errors that name the field; a timeline is a pure function of
the scenario and its seed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bench.scenario import ScenarioError, load_scenario
from bench.scenario.schema import parse_duration
from bench.scenario.timeline import expand

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

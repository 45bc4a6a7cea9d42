"""The gap watchdog (ISC-2 §7.2.3(1)): silence past the threshold switches to the backup and
tells the operator once; every missing segment is recorded; the primary is probed again."""

from __future__ import annotations

from reference_terminal.acquisition.watchdog import PROBE_EVERY, GapWatchdog
from reference_terminal.config import Point

POINT = Point.model_validate(
    {"id": "p", "group": "g", "source": {"device": "main"}, "backup": {"device": "spare"}}
)
LONE = Point.model_validate({"id": "q", "group": "g", "source": {"device": "main"}})


def watchdog() -> GapWatchdog:
    return GapWatchdog(threshold_s=10, periods={"p": 1.0, "q": 1.0})


def test_a_short_silence_is_a_recorded_gap_but_no_switch() -> None:
    w = watchdog()
    assert w.observe(POINT, 100, True, from_backup=False) == []
    assert w.observe(POINT, 105, False, from_backup=False) == []
    (gap,) = w.observe(POINT, 106, True, from_backup=False)
    assert (gap.kind, gap.start, gap.end) == ("gap", 100, 106)
    assert w.source_of(POINT)[0].device == "main"


def test_ten_seconds_of_silence_switches_to_the_backup_and_notifies_once() -> None:
    w = watchdog()
    w.observe(POINT, 100, True, from_backup=False)
    events = [e for t in range(101, 115) for e in w.observe(POINT, t, False, from_backup=False)]
    assert [e.kind for e in events] == ["switch_to_backup", "notification"]
    assert events[0].t == 110 and events[0].device == "spare"
    assert "ISC-2 §7.2.3(1)" in events[1].details["message"]
    source, is_backup = w.source_of(POINT)
    assert (source.device, is_backup) == ("spare", True)


def test_the_primary_is_probed_and_taken_back_when_it_answers() -> None:
    w = watchdog()
    w.observe(POINT, 100, True, from_backup=False)
    for t in range(101, 111):
        w.observe(POINT, t, False, from_backup=False)
    picks = [w.source_of(POINT) for _ in range(PROBE_EVERY)]
    assert [backup for _, backup in picks].count(False) == 1  # one probe of the primary
    events = w.observe(POINT, 130, True, from_backup=False)
    assert [e.kind for e in events] == ["gap", "switch_to_primary"]
    assert events[0].start == 100 and events[0].end == 130


def test_a_point_without_backup_only_notifies() -> None:
    w = watchdog()
    w.observe(LONE, 0, True, from_backup=False)
    events = [e for t in range(1, 30) for e in w.observe(LONE, t, False, from_backup=False)]
    assert [e.kind for e in events] == ["notification"]
    assert w.open_gaps() == {"q": 0}

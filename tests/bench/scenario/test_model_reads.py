"""What the model link reads never changes by making it faster: 100 virtual minutes of the works
fleet, every polled point once a minute, with every kind of fault on meters of every polled
protocol, give the same values, failures, observations and fault events as the code they
were recorded from (the digest below; a change that means to change a read updates it, and
says why in its commit)."""

from __future__ import annotations

from typing import Any

from benchmarks.bench_model_reads import read_minutes

#: Minutes are offsets from the fleet's start; the reads begin an hour in, at minute 60.
FAULTS: list[dict[str, Any]] = [
    {"meter": "em-grid-1", "kind": "frozen", "start": "PT70M", "end": "PT90M"},
    {"meter": "em-grid-2", "kind": "rollover", "start": "PT75M", "headroom": "0.5"},
    {"meter": "em-whr", "kind": "replaced", "start": "PT80M"},
    {"meter": "em97-crusher", "kind": "spike", "start": "PT65M", "end": "PT67M", "factor": 3},
    {"meter": "pm-crusher", "kind": "spike", "start": "PT62M", "quantities": ["crusher.power_kw"]},
    {"meter": "pm-raw_mill", "kind": "no_answer", "start": "PT60M", "probability": 0.3},
    {"meter": "bs-coal_kiln", "kind": "exception", "start": "PT100M", "end": "PT110M"},
    {"meter": "bs-coal_calciner", "kind": "garbled", "probability": 0.5},
    {"meter": "bs-raw_meal", "kind": "rollover", "start": "PT90M", "headroom": "2"},
    {"meter": "wm-1", "kind": "bad_checksum", "start": "PT120M", "end": "PT130M"},
    {"meter": "wm-2", "kind": "truncated", "probability": 0.2},
    {"meter": "wm-3", "kind": "slow", "probability": 0.5},
    {"meter": "dcs", "kind": "frozen", "start": "PT61M"},
    {"meter": "dcs", "kind": "spike", "start": "PT64M", "end": "PT70M", "factor": 0.5},
    {"meter": "iot-1", "kind": "exception", "probability": 0.5},
    {"meter": "iot-2", "kind": "replaced", "start": "PT95M"},
    {"meter": "ems", "kind": "no_answer", "start": "PT140M", "end": "PT150M"},
    {"meter": "ai-steam", "kind": "spike", "start": "PT66M", "end": "PT99M", "factor": 40},
    {"meter": "ai-steam", "kind": "frozen", "start": "PT120M"},
    {"meter": "mes-historian", "kind": "frozen", "start": "PT70M", "end": "PT80M"},
    {"meter": "mes-historian", "kind": "clock_drift", "drift_s_per_day": 100},
]

#: Recorded from the link before any of its speed-ups (commit 6f64290's code).
DIGEST_FAULTLESS = "9bd1c8cf845973b1a0f374d8626f5b27c2d8d7a727f578e714e36364ba1ba5c2"
DIGEST_FAULTS = "7f0ff70f47a62ce431d2f5a5fb56b0a8c09eb29e331d4ec703b6acfbb564550b"


def test_the_reads_of_a_faultless_fleet_are_what_they_were() -> None:
    assert read_minutes([], 100) == DIGEST_FAULTLESS


def test_the_reads_of_a_faulty_fleet_are_what_they_were() -> None:
    assert read_minutes(FAULTS, 100) == DIGEST_FAULTS

"""A scenario run's verdict, as ``outcome.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulators.platform import CheckResult


@dataclass
class CentreOutcome:
    expected: int
    received: int  # distinct readings of the scenario's duration, after de-duplication
    lost: int
    duplicated: int  # copies under a new QN (resends under the same QN are de-duplicated)
    resends: int
    unexpected: int
    wrong_value: int  # readings with a wrong value or field
    conflicting: int
    out_of_order: int
    gaps: int
    first_lost: list[str] = field(default_factory=list)
    first_unexpected: list[str] = field(default_factory=list)
    first_wrong_value: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, result: CheckResult) -> CentreOutcome:
        return cls(
            expected=result.expected,
            received=result.distinct,
            lost=len(result.lost),
            duplicated=result.new_qn_copies,
            resends=result.resends,
            unexpected=len(result.unexpected),
            wrong_value=result.wrong_readings,
            conflicting=len(result.conflicting),
            out_of_order=len(result.out_of_order),
            gaps=len(result.gaps),
            first_lost=[str(k) for k in sorted(result.lost)[:10]],
            first_unexpected=[str(k) for k in sorted(result.unexpected)[:10]],
            first_wrong_value=[
                f"{w.what}: sent {w.received}, holds {w.expected}"
                for w in sorted(result.wrong_value, key=lambda w: w.key)[:10]
            ],
        )


@dataclass
class Outcome:
    scenario: str
    seed: int
    power_cut_mode: str  # "fuse" (unsynced writes lost) or "stop" (said why in power_note)
    power_note: str
    meters: str  # "wire" or "model": how the terminal read the meters (Scenario.meters)
    expected: int
    received: int
    lost: int
    duplicated: int
    unexpected: int
    gaps: int
    power_cuts: int
    bytes_dropped_by_cuts: int
    wall_seconds: float
    virtual_seconds: float
    clock_steps: int
    centres: dict[str, CentreOutcome]
    #: windows whose value at a centre is not the one the terminal finally holds (it sent a
    #: window and later changed it: a sent figure must never be revised silently)
    wrong_value: int = 0
    #: timeline steps the terminal did not take as they should (an operator request refused)
    failed_steps: list[str] = field(default_factory=list)
    #: wall seconds of each part of the run: setup, timeline, drain, check, teardown
    phases: dict[str, float] = field(default_factory=dict)
    #: CPU seconds (user + system) of the bench process and the children it waited for (the
    #: volatile disk's): on a shared host, steadier than the wall time for comparing runs
    cpu_seconds: float = 0.0
    #: CPU seconds of each phase by thread of the bench's process (the event loop is
    #: ``MainThread``) and by child process (``cpu.py``): what a phase's wall time is made of
    cpu_by_phase: dict[str, dict[str, float]] = field(default_factory=dict)
    #: wall seconds the terminal's store writer spent on each kind of work, over all its boots
    #: (``StoreStats.busy_s``): in virtual time a step waits while the writer is busy
    store_busy_s: dict[str, float] = field(default_factory=dict)
    passed: bool = False

    def __post_init__(self) -> None:
        self.passed = (
            self.lost == 0
            and self.duplicated == 0
            and self.unexpected == 0
            and self.wrong_value == 0
            and not self.failed_steps
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")

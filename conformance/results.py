"""What a conformance run found: one record per test, each naming the clauses it judges.

The pytest plugin (``conformance.plugin``) writes ``RunResults`` as JSON next to pytest's own
outputs; ``carbench run`` reads it back to render the reports and the clause matrix. Keeping
the record plain data lets a lab re-render or re-verify a run years later without re-running it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class Verdict(enum.StrEnum):
    """DESIGN.md "Terms used throughout": the six verdicts, worst first for roll-ups."""

    ERROR = "error"  # the bench itself failed; says nothing about the terminal
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # could not be judged (e.g. uncertainty straddles the limit)
    PENDING_OPERATOR = "pending-operator"  # a lab step awaits a person
    PASS = "pass"
    NOT_APPLICABLE = "not-applicable"  # the implementation statement does not declare it

    @classmethod
    def worst(cls, verdicts: list[Verdict]) -> Verdict:
        """A clause's verdict from its tests': the worst one (no tests → not applicable)."""
        order = list(cls)
        return min(verdicts, key=order.index) if verdicts else cls.NOT_APPLICABLE


@dataclass(frozen=True)
class Step:
    """One announced step of a test (Matter-style), with how long it took."""

    title: str
    seconds: float
    outcome: str = "passed"  # passed | failed | broken | skipped


@dataclass(frozen=True)
class Attachment:
    """Evidence: a file under the run directory (frames, timings, a chart), path relative."""

    name: str
    path: str
    media_type: str = "text/plain"


@dataclass(frozen=True)
class TestRecord:
    """One test's verdict and the evidence behind it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    title: str
    clauses: tuple[str, ...]  # IDs as in CLAUSES.md: "ISC-2 §9.2", "ISC-2 §7.2.4(4)"
    suite: str  # acquisition | processing | accuracy | latency | storage | upload | ...
    verdict: Verdict
    reason: str = ""  # why: the failed assertion, the undeclared feature, the bench error
    seconds: float = 0.0
    steps: tuple[Step, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    #: figures the test measured, for charts and the JSON report (e.g. {"p99_ms": 3.1})
    measurements: dict[str, float] = field(default_factory=dict)
    #: the stable test-case ID reports cite (``TC-ISC2-9.4-3f2a``, ``TC-ISC2-7.1.2-OP``)
    case: str = ""


@dataclass
class RunResults:
    """Every test of one run, plus what is needed to reproduce it."""

    tests: list[TestRecord]
    #: bench version, git revision, target and its declaration, seeds, fleet, scenario files,
    #: profile, clock mode, start/end times, durations
    manifest: dict[str, Any] = field(default_factory=dict)

    def clause_verdicts(self) -> dict[str, Verdict]:
        by_clause: dict[str, list[Verdict]] = {}
        for test in self.tests:
            for clause in test.clauses:
                by_clause.setdefault(clause, []).append(test.verdict)
        return {clause: Verdict.worst(v) for clause, v in sorted(by_clause.items())}

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "tests": [asdict(t) for t in self.tests]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResults:
        tests = [
            TestRecord(
                **{
                    **t,
                    "clauses": tuple(t["clauses"]),
                    "verdict": Verdict(t["verdict"]),
                    "steps": tuple(Step(**s) for s in t.get("steps", ())),
                    "attachments": tuple(Attachment(**a) for a in t.get("attachments", ())),
                }
            )
            for t in data["tests"]
        ]
        return cls(tests, dict(data.get("manifest", {})))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), "utf-8")

    @classmethod
    def load(cls, path: Path) -> RunResults:
        return cls.from_json(json.loads(path.read_text("utf-8")))

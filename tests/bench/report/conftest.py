"""Results and catalogue views built by hand, so the reports are tested without a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.catalogue_view import CatalogueLoad, CatalogueView, ClauseInfo, Coverage
from bench.report.summary import standard_of
from conformance.results import Attachment, RunResults, Step, TestRecord, Verdict

# one test per verdict, each judging its own clause
CLAUSE_OF = {
    Verdict.PASS: "ISC-2 §9.2",
    Verdict.FAIL: "ISC-2 §9.10",
    Verdict.ERROR: "CSMT §8.2.2",
    Verdict.INCONCLUSIVE: "SSEA §6.4 b)",
    Verdict.PENDING_OPERATOR: "ISC-2 §7.1.1",
    Verdict.NOT_APPLICABLE: "CSMT §7.3",
}


def record(verdict: Verdict, **changes: object) -> TestRecord:
    name = f"test_{verdict.value.replace('-', '_')}"
    fields: dict[str, object] = {
        "nodeid": f"conformance/suites/test_storage.py::{name}",
        "title": name,
        "clauses": (CLAUSE_OF[verdict],),
        "suite": "storage",
        "verdict": verdict,
        "reason": "" if verdict is Verdict.PASS else f"why {verdict.value}",
        "seconds": 1.5,
        "steps": (Step("cut the power", 0.2), Step("read back", 0.1, "failed")),
        "measurements": {"latency_ms": 4.25},
    }
    fields.update(changes)
    return TestRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def results() -> RunResults:
    manifest = {
        "target": {"path": "fixtures/targets/reference.yaml", "sm3": "ab" * 32},
        "profile": "quick",
        "clock": "virtual",
        "bench": {"name": "carbench", "version": "0.1.0"},
        "git": {"revision": "0123456789abcdef", "dirty": True},
        "durations": {"wall_s": 12.5, "pytest_s": 11.0},
        "declaration": {"vendor": "Acme", "model": "CT-9", "version": "2.4.1", "serial": "SN042"},
        "lab": {"name": "Test Lab 1", "operator": "Li Wei"},
    }
    return RunResults([record(v) for v in Verdict], manifest)


def _info(clause_id: str, level: str = "shall", testability: str = "auto") -> ClauseInfo:
    return ClauseInfo(
        clause_id, standard_of(clause_id), level, testability, f"summary of {clause_id}", "应……"
    )


@pytest.fixture
def catalogue() -> CatalogueLoad:
    clauses = {c: _info(c) for c in CLAUSE_OF.values()}
    clauses["ISC-2 §9.3"] = _info("ISC-2 §9.3")  # auto, untested
    clauses["ISC-2 §7.1.3"] = _info("ISC-2 §7.1.3", testability="declared")  # untested, not auto
    coverage = {
        "ISC-2": Coverage("ISC-2", 3, 2),
        "CSMT": Coverage("CSMT", 2, 2),
        "SSEA": Coverage("SSEA", 1, 1),
    }
    documents = {"ISC-2": ("T/ISC XXX 第 2 部分: 碳排放在线监测终端技术要求", "Part 2: terminal")}
    return CatalogueLoad(CatalogueView(clauses, coverage, (), documents), "catalogue: 8 clauses")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "evidence").mkdir()
    return tmp_path


def attach(*attachments: Attachment) -> TestRecord:
    return record(Verdict.PASS, attachments=attachments)

"""Every conformance test gives the verdict alone that it gives in a whole run: a test that
passes only after another has run would pass a terminal in one order and fail it in another.

Each run of the bench's tests draws ``SAMPLE`` of the suites' tests at random (the seed is in
pytest's header; ``CARBENCH_ALONE_SEED=N`` draws the same ones again) and runs each by itself,
in a process of its own, against the reference terminal: it must pass, or be not applicable,
as it is in the whole quick run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from conformance.coverage_scan import scan
from conformance.results import Verdict
from tests.conformance.suite_runs import ALONE_SEED_ENV, TARGETS, run_tests

SAMPLE = 20
WALL_LIMIT_S = 600
_FOUND = scan()
#: the tests of the quick profile that use the bench (others are marked for a profile of their
#: own; the records of lab and declared clauses need none and take no bench time)
QUICK = sorted(
    t for t in _FOUND.tests - _FOUND.procedure_tests if "quick" in _FOUND.profiles.get(t, {"quick"})
)
#: the same on every xdist worker: the root conftest draws the seed before they start
CHOSEN = random.Random(int(os.environ.get(ALONE_SEED_ENV, "0"))).sample(QUICK, SAMPLE)


@pytest.mark.timeout(WALL_LIMIT_S + 60)
@pytest.mark.parametrize("test", CHOSEN)
def test_a_conformance_test_run_alone_passes_the_reference_terminal(
    test: str, tmp_path: Path
) -> None:
    results = run_tests([test], TARGETS / "reference.yaml", tmp_path, wall_limit_s=WALL_LIMIT_S)
    assert results.tests, f"{test} did not run"
    wrong = {
        t.nodeid: f"{t.verdict.value}: {t.reason[:600]}"
        for t in results.tests
        if t.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)
    }
    assert not wrong, wrong

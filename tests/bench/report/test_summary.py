"""The exit status: 0 only when every applicable mandatory clause passes."""

from __future__ import annotations

from bench.report import summary
from bench.report.summary import clause_key, judge, standard_of
from conformance.results import RunResults, Verdict
from tests.bench.report.conftest import CLAUSE_OF, record


def run(*verdicts: Verdict) -> RunResults:
    return RunResults([record(v) for v in verdicts])


def test_all_pass_or_not_applicable() -> None:
    outcome = judge(run(Verdict.PASS, Verdict.NOT_APPLICABLE), None)
    assert (outcome.status, outcome.label) == (0, "PASS")


def test_a_failing_clause_fails() -> None:
    outcome = judge(run(Verdict.PASS, Verdict.FAIL, Verdict.ERROR), None)
    assert outcome.status == 1 and outcome.deciding == (CLAUSE_OF[Verdict.FAIL],)


def test_error_is_a_bench_error() -> None:
    assert judge(run(Verdict.PASS, Verdict.ERROR), None).status == 2


def test_inconclusive_and_pending_do_not_pass() -> None:
    assert judge(run(Verdict.INCONCLUSIVE), None).status == 1
    assert judge(run(Verdict.PENDING_OPERATOR), None).status == 1


def test_a_test_that_fails_fails_the_run_under_any_clause() -> None:
    results = run(Verdict.PASS, Verdict.FAIL)
    shall = {CLAUSE_OF[Verdict.PASS]}  # the failing one is a "should"
    outcome = judge(results, shall)
    assert (outcome.status, outcome.label) == (1, "FAIL")
    assert outcome.explanation == "1 optional (should/may) clause(s) fail"
    assert judge(results, shall | {CLAUSE_OF[Verdict.FAIL]}).status == 1


def test_only_mandatory_clauses_must_be_judged() -> None:
    shall = {CLAUSE_OF[Verdict.PASS]}  # the inconclusive one is a "should"
    assert judge(run(Verdict.PASS, Verdict.INCONCLUSIVE), shall).status == 0


def test_a_subset_never_passes_for_the_target() -> None:
    outcome = judge(run(Verdict.PASS), None, subset="--suite upload")
    assert (outcome.status, outcome.label) == (0, "SUBSET")
    assert (
        "--suite upload" in outcome.explanation
        and "no verdict on the target" in outcome.explanation
    )
    assert judge(run(Verdict.FAIL), None, subset="--suite upload").label == "FAIL"


def test_an_interrupted_run_is_interrupted_whatever_passed_before() -> None:
    outcome = judge(run(Verdict.PASS), None, interrupted="17 of 137 tests never ran")
    assert (outcome.status, outcome.label) == (2, "INTERRUPTED")
    assert outcome.explanation == "17 of 137 tests never ran"


def test_a_run_that_judged_nothing_does_not_pass() -> None:
    outcome = judge(run(Verdict.NOT_APPLICABLE), None)
    assert (outcome.status, outcome.label) == (1, "NOT-JUDGED")


def test_a_subset_of_optional_clauses_that_pass_is_a_subset_pass() -> None:
    results = run(Verdict.PASS)
    shall: set[str] = set()  # the clause it judges is a "should"
    assert judge(results, shall).label == "NOT-JUDGED"  # a whole run of it judges nothing
    outcome = judge(results, shall, subset="--test x")
    assert (outcome.status, outcome.label) == (0, "SUBSET")
    assert "no mandatory clause" in outcome.explanation
    assert judge(run(Verdict.ERROR), shall, subset="--test x").label == "NOT-JUDGED"


def test_bench_error_and_empty_runs() -> None:
    assert judge(run(Verdict.PASS), None, bench_error="pytest died").status == 2
    assert judge(RunResults([]), None).status == 2


def test_clause_ids() -> None:
    assert standard_of("ISC-2 §7.2.4(4)") == "ISC-2"
    ids = ["CSMT §7.3", "ISC-2 §9.10", "ISC-2 §9.2", "ISC-2 §7.2.4(10)", "ISC-2 §7.2.4(4)"]
    assert sorted(ids, key=clause_key) == [
        "ISC-2 §7.2.4(4)",
        "ISC-2 §7.2.4(10)",
        "ISC-2 §9.2",
        "ISC-2 §9.10",
        "CSMT §7.3",
    ]


def test_tested_ids_include_tests_the_profile_left_out() -> None:
    results = run(Verdict.PASS)
    results.manifest["not_run"] = [{"nodeid": "x", "clauses": ["ISC-2 §9.3"], "why": "full"}]
    assert summary.tested_clause_ids(results) == {CLAUSE_OF[Verdict.PASS], "ISC-2 §9.3"}

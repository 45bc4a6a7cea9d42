"""The conformance plugin itself (pytester): verdict mapping, gating by the implementation
statement, steps and evidence, the results JSON and its manifest."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("pytester",)

TARGET = """
name: plugin test target
adapter: {kind: reference}
implementation:
  vendor: test
  model: test
  protocols: [modbus-tcp]
  features: [export]
  notes: {"protocol:dlt645-2007": "no such meter here"}
clocks: [virtual]
"""


def run(pytester: pytest.Pytester, source: str, *args: str) -> tuple[Any, dict[str, Any]]:
    """Run ``source`` as a test module under the plugin; the outcome and the results JSON."""
    pytester.makepyfile(test_suite=source)
    target = pytester.path / "target.yaml"
    target.write_text(TARGET, encoding="utf-8")
    results = pytester.path / "out" / "results.json"
    # In a child process: the plugin keeps per-run state at module level (the bench loop, the
    # running test's evidence), which an in-process run would share with the outer session.
    outcome = pytester.runpytest_subprocess(
        "-p",
        "conformance.plugin",
        "-p",
        "no:cacheprovider",
        f"--target={target}",
        f"--results-json={results}",
        f"--evidence-dir={pytester.path / 'evidence'}",
        *args,
    )
    data = json.loads(results.read_text("utf-8")) if results.exists() else {}
    return outcome, data


def verdicts(data: dict[str, Any]) -> dict[str, str]:
    return {t["nodeid"].split("::")[-1]: t["verdict"] for t in data["tests"]}


def record(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tests"] if t["nodeid"].endswith(f"::{name}"))


VERDICTS = """
import pytest
from conformance.verdicts import Inconclusive, NotApplicable, PendingOperator, ClauseFailure
import helper

@pytest.mark.clause("ISC-2 §9.2")
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.clause("ISC-2 §9.2", "CSMT §8.2.2")
def test_fails_an_assertion_about_the_terminal():
    stored = 3
    assert stored == 4, "the terminal stored 3"

@pytest.mark.clause("ISC-2 §9.3")
def test_inconclusive():
    raise Inconclusive("uncertainty straddles the limit", "ISC-2 §9.3")

@pytest.mark.clause("ISC-2 §9.3")
def test_pending_operator():
    raise PendingOperator("nobody cut the power", "ISC-2 §9.2")

@pytest.mark.clause("ISC-2 §9.3")
def test_not_applicable_from_the_test():
    raise NotApplicable("not declared", "ISC-2 §9.3")

@pytest.mark.clause("ISC-2 §9.3")
def test_bench_crash_is_an_error():
    raise RuntimeError("the proxy died")

@pytest.mark.clause("ISC-2 §9.3")
def test_an_assert_inside_the_bench_is_an_error():
    helper.internal_check()

@pytest.mark.clause("ISC-2 §9.3")
def test_a_helper_judging_the_terminal_is_a_fail():
    helper.judge_terminal()

@pytest.fixture
def broken_rig():
    raise OSError("address already in use")

@pytest.mark.clause("ISC-2 §9.3")
def test_setup_error_is_an_error(broken_rig):
    pass

@pytest.fixture
def undeclared():
    raise NotApplicable("the fixture needs a feature", "ISC-2 §9.3")

@pytest.mark.clause("ISC-2 §9.3")
def test_fixture_not_applicable(undeclared):
    pass

@pytest.fixture
def messy():
    yield
    raise RuntimeError("could not restore the link")

@pytest.mark.clause("ISC-2 §9.3")
def test_teardown_error_after_a_pass(messy):
    pass

@pytest.mark.clause("ISC-2 §9.3")
def test_pytest_skip_is_not_applicable():
    pytest.skip("nothing to judge here")
"""

HELPER = """
from conformance.verdicts import judge

def internal_check():
    queue = []
    assert queue, "the bench's own queue was empty"

def judge_terminal():
    judge(False, "the terminal answered 503", "ISC-2 §8.1")
"""


def test_each_outcome_maps_to_its_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(helper=HELPER)
    outcome, data = run(pytester, VERDICTS)
    assert verdicts(data) == {
        "test_passes": "pass",
        "test_fails_an_assertion_about_the_terminal": "fail",
        "test_inconclusive": "inconclusive",
        "test_pending_operator": "pending-operator",
        "test_not_applicable_from_the_test": "not-applicable",
        "test_bench_crash_is_an_error": "error",
        "test_an_assert_inside_the_bench_is_an_error": "error",
        "test_a_helper_judging_the_terminal_is_a_fail": "fail",
        "test_setup_error_is_an_error": "error",
        "test_fixture_not_applicable": "not-applicable",
        "test_teardown_error_after_a_pass": "error",
        "test_pytest_skip_is_not_applicable": "not-applicable",
    }
    failed = record(data, "test_fails_an_assertion_about_the_terminal")
    assert "the terminal stored 3" in failed["reason"]
    assert failed["clauses"] == ["ISC-2 §9.2", "CSMT §8.2.2"]
    assert failed["suite"] == "suite"
    pending = record(data, "test_pending_operator")
    assert pending["reason"].startswith("ISC-2 §9.2: nobody cut the power")
    assert (
        "bench failed an internal check"
        in record(data, "test_an_assert_inside_the_bench_is_an_error")["reason"]
    )
    assert "OSError" in record(data, "test_setup_error_is_an_error")["reason"]
    # pytest's own view: verdicts it has no word for are skips, with the verdict in the reason
    outcomes = outcome.parseoutcomes()
    assert outcomes["passed"] == 2  # the teardown error's call passed; its teardown errs
    assert outcomes["skipped"] == 5


def test_a_test_without_a_clause_stops_the_collection(pytester: pytest.Pytester) -> None:
    outcome, _ = run(pytester, "def test_unmarked():\n    assert True\n")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*every conformance test names the clauses it judges*"])


GATED = """
import pytest

@pytest.mark.clause("ISC-2 §6.2")
@pytest.mark.requires("protocol:modbus-tcp")
def test_declared_protocol():
    assert True

@pytest.mark.clause("ISC-2 §6.2")
@pytest.mark.requires("protocol:dlt645-2007")
def test_undeclared_protocol():
    raise AssertionError("must not run: the terminal does not declare DL/T 645")

@pytest.mark.clause("ISC-2 §7.2.4(5)")
@pytest.mark.requires("feature:export", "transport:https")
def test_one_of_two_undeclared():
    raise AssertionError("must not run")

@pytest.mark.clause("CPCIF §8.3")
@pytest.mark.profile("full")
def test_long_clause():
    raise AssertionError("must not run in the quick profile")
"""


def test_undeclared_features_are_not_applicable(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, GATED, "--profile=quick")
    assert verdicts(data) == {
        "test_declared_protocol": "pass",
        "test_undeclared_protocol": "not-applicable",
        "test_one_of_two_undeclared": "not-applicable",
    }
    reason = record(data, "test_undeclared_protocol")["reason"]
    assert "does not declare protocol:dlt645-2007" in reason
    assert "no such meter here" in reason  # the target's note says why
    assert "transport:https" in record(data, "test_one_of_two_undeclared")["reason"]
    not_run = data["manifest"]["not_run"]
    assert [n["nodeid"].split("::")[-1] for n in not_run] == ["test_long_clause"]
    assert not_run[0]["clauses"] == ["CPCIF §8.3"] and "full profile" in not_run[0]["why"]


def test_the_full_profile_runs_long_clauses(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, GATED, "--profile=full")
    assert verdicts(data)["test_long_clause"] == "fail"


def test_an_evidence_directory_already_used_is_refused(pytester: pytest.Pytester) -> None:
    """A run's platform record and the terminal's disk live in its evidence directory: a second
    run there would judge the first one's frames as its own."""
    earlier = pytester.path / "evidence"
    earlier.mkdir()
    (earlier / "platform-record.sqlite").write_bytes(b"an earlier run's frames")
    outcome, data = run(pytester, GATED)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR and not data
    outcome.stderr.fnmatch_lines(["*already holds a run's evidence; give each run a new one*"])


HIL = """
import pytest
from conformance.verdicts import LeftOut

@pytest.mark.clause("ISC-2 §9.1")
@pytest.mark.hil
def test_short():
    pass

@pytest.mark.clause("ISC-2 §9.2")
@pytest.mark.hil
def test_that_runs_out_of_time():
    raise LeftOut("needs 900 s of plant time, more than the hil profile gives a test")

@pytest.mark.clause("ISC-2 §9.3 a)")
def test_long():
    raise AssertionError("must not run in the hil profile")
"""


def test_the_hil_profile_runs_the_marked_tests_and_lists_what_it_left_out(
    pytester: pytest.Pytester,
) -> None:
    _, data = run(pytester, HIL, "--profile=hil", "--clock=real")
    assert verdicts(data) == {"test_short": "pass"}  # no verdict for what was left out
    why = {n["nodeid"].split("::")[-1]: n["why"] for n in data["manifest"]["not_run"]}
    assert set(why) == {"test_that_runs_out_of_time", "test_long"}
    assert "needs 900 s" in why["test_that_runs_out_of_time"]
    assert "not in the hil profile" in why["test_long"]


EVIDENCE = """
import asyncio, threading
import pytest
from conformance.evidence import attach, record_measurement, step

@pytest.mark.clause("ISC-2 §9.4")
async def test_steps_attachments_and_measurements_on_the_bench_loop(evidence):
    assert threading.current_thread() is not threading.main_thread()  # the bench's loop
    with step("read the meter"):
        await asyncio.sleep(0.01)
    with step("compare"):
        pass
    attach("frames.txt", "##0101QN=...", "text/plain")
    evidence.attach("raw.bin", b"\\x01\\x02", "application/octet-stream")
    record_measurement("p95_ms", 3.5)

@pytest.mark.clause("ISC-2 §9.4")
def test_a_failing_step(evidence):
    with step("look at the frames"):
        pass
    with step("judge"):
        assert False, "late"

@pytest.fixture
def evidence():
    from conformance.evidence import current
    return current()
"""


def test_steps_attachments_and_measurements_are_recorded(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, EVIDENCE)
    good = record(data, "test_steps_attachments_and_measurements_on_the_bench_loop")
    assert good["verdict"] == "pass"
    assert [s["title"] for s in good["steps"]] == ["read the meter", "compare"]
    assert good["steps"][0]["seconds"] >= 0.01
    assert {s["outcome"] for s in good["steps"]} == {"passed"}
    assert good["measurements"] == {"p95_ms": 3.5}
    names = {a["name"]: a for a in good["attachments"]}
    assert set(names) == {"frames.txt", "raw.bin"}
    root = pytester.path / "evidence"
    assert (root / names["frames.txt"]["path"]).read_text() == "##0101QN=..."
    assert (root / names["raw.bin"]["path"]).read_bytes() == b"\x01\x02"
    assert names["raw.bin"]["media_type"] == "application/octet-stream"
    bad = record(data, "test_a_failing_step")
    assert bad["verdict"] == "fail"
    assert [(s["title"], s["outcome"]) for s in bad["steps"]] == [
        ("look at the frames", "passed"),
        ("judge", "failed"),
    ]


def test_the_results_carry_a_manifest(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, GATED, "--profile=quick", "--clock=real")
    manifest = data["manifest"]
    assert manifest["target"] == "plugin test target"
    assert manifest["declaration"]["protocols"] == ["modbus-tcp"]
    assert manifest["adapter"]["kind"] == "reference"
    assert manifest["profile"] == "quick" and manifest["clock"] == "real"
    assert manifest["started"] <= manifest["ended"]
    assert manifest["wall_seconds"] >= 0
    for key in ("bench_version", "git_revision", "python", "machine", "evidence_dir"):
        assert key in manifest


def test_junit_carries_the_verdicts(pytester: pytest.Pytester) -> None:
    junit = pytester.path / "junit.xml"
    run(pytester, VERDICTS_SMALL, f"--junitxml={junit}")
    text = junit.read_text("utf-8")
    assert 'name="verdict" value="inconclusive"' in text
    assert 'name="clauses" value="ISC-2 §9.3"' in text


VERDICTS_SMALL = """
import pytest
from conformance.verdicts import Inconclusive

@pytest.mark.clause("ISC-2 §9.3")
def test_inconclusive():
    raise Inconclusive("could not judge", "ISC-2 §9.3")
"""


def test_a_broken_target_file_names_the_field(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from conformance.target import TargetError, load_target

    bad = tmp_path / "bad.yaml"
    bad.write_text(TARGET.replace("protocols: [modbus-tcp]", "protocols: [modbus-tcpp]"))
    with pytest.raises(TargetError, match=r"implementation\.protocols\.0"):
        load_target(bad)
    child = tmp_path / "child.yaml"
    child.write_text("extends: bad.yaml\nname: child\n")
    with pytest.raises(TargetError, match=r"child\.yaml: invalid target\n.*protocols\.0"):
        load_target(child)


AGEING = """
import pytest

@pytest.mark.clause("ISC-2 §7.4.1.3(3)")
@pytest.mark.ages_terminal
def test_ages_the_terminal():
    pass

@pytest.mark.clause("ISC-2 §9.4")
def test_an_ordinary_one():
    pass

@pytest.mark.clause("ISC-2 §9.2")
def test_another_ordinary_one():
    pass
"""


def test_a_test_that_ages_the_terminal_runs_after_all_others(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, AGEING)
    assert [t["nodeid"].split("::")[-1] for t in data["tests"]] == [
        "test_an_ordinary_one",
        "test_another_ordinary_one",
        "test_ages_the_terminal",
    ]


CASES = '''
import pytest

@pytest.mark.clause("ISC-2 §7.2.4(4)", "CSMT §7.6")
def test_retransmits():
    """Resends what the centre did not acknowledge. Then more words."""

@pytest.mark.clause("ISC-2 §7.1.2")
@pytest.mark.parametrize("case", [pytest.param(1, id="TC-ISC2-7.1.2-OP")])
def test_recorded(case):
    pass
'''


def test_every_test_carries_a_stable_case_id_and_its_whole_first_sentence(
    pytester: pytest.Pytester,
) -> None:
    _, first = run(pytester, CASES)
    cases = {t["nodeid"].split("::")[-1]: t["case"] for t in first["tests"]}
    assert re.fullmatch(r"TC-ISC2-7\.2\.4\(4\)-[0-9a-f]{4}", cases["test_retransmits"])
    assert cases["test_recorded[TC-ISC2-7.1.2-OP]"] == "TC-ISC2-7.1.2-OP"
    assert record(first, "test_retransmits")["title"] == (
        "Resends what the centre did not acknowledge."
    )
    (pytester.path / "out" / "results.json").unlink()
    shutil.rmtree(pytester.path / "evidence", ignore_errors=True)  # a second run needs a new one
    _, again = run(pytester, CASES)
    assert {t["nodeid"].split("::")[-1]: t["case"] for t in again["tests"]} == cases

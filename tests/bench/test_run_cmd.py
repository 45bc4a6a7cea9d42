"""``carbench run`` end to end against a tiny suite directory with a stand-in plugin.

The stand-in (a conftest in the temporary suite directory) honours the same command-line
contract as ``conformance.plugin`` — ``--target --profile --clock --results-json
--evidence-dir`` — and writes ``RunResults``, so these tests exercise the real subprocess,
progress pipe, signing and rendering without depending on the real suites.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.report import signing
from conformance.results import RunResults, Verdict

STAND_IN_PLUGIN = """
import os
from pathlib import Path

import pytest

from conformance.results import Attachment, RunResults, Step, TestRecord, Verdict

RECORDS = []


def pytest_addoption(parser):
    for name in ("--target", "--profile", "--clock", "--results-json", "--evidence-dir"):
        parser.addoption(name)


def pytest_configure(config):
    config.addinivalue_line("markers", "clause(*ids): the clauses a test judges")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    marker = item.get_closest_marker("clause")
    verdict = {"passed": Verdict.PASS, "failed": Verdict.FAIL, "skipped": Verdict.NOT_APPLICABLE}
    evidence = Path(item.config.getoption("--evidence-dir"))
    name = f"{item.name}.txt"
    (evidence / name).write_text(f"frames seen by {item.name}\\n")
    RECORDS.append(
        TestRecord(
            nodeid=item.nodeid,
            title=item.name,
            clauses=tuple(marker.args) if marker else (),
            suite=Path(item.nodeid.split("::")[0]).stem.removeprefix("test_"),
            verdict=verdict[report.outcome],
            reason="" if report.passed else str(report.longrepr)[-300:],
            seconds=report.duration,
            steps=(Step("send a frame", 0.01),),
            attachments=(Attachment("frames", f"evidence/{name}"),),
            measurements={"latency_ms": 3.5},
        )
    )


def pytest_sessionfinish(session):
    path = session.config.getoption("--results-json")
    if path:
        manifest = {"seeds": {"plant": 7}, "profile_seen": session.config.getoption("--profile")}
        RunResults(RECORDS, manifest).save(Path(path))
"""

PASSING = """
import pytest


@pytest.mark.clause("ISC-2 §9.2")
def test_keeps_data():
    assert True


@pytest.mark.clause("ISC-2 §9.4")
def test_fast_enough():
    assert 1 + 1 == 2
"""

FAILING = """
import pytest


@pytest.mark.clause("CSMT §8.2.2")
def test_rollover():
    assert 9999 + 1 == 0, "rollover <b>not</b> handled"
"""

CRASHING = """
import os


def test_dies():
    os._exit(3)
"""


@pytest.fixture(autouse=True)
def _own_key_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # never touch the user's real bench key
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _suites(tmp_path: Path, **files: str) -> Path:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "conftest.py").write_text(STAND_IN_PLUGIN)
    for name, body in files.items():
        (suites / f"test_{name}.py").write_text(textwrap.dedent(body))
    return suites


def _target(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text("meters: []\n")
    target = tmp_path / "tiny.yaml"
    target.write_text("name: tiny terminal\nseed: 11\nfleet: fleet.yaml\n")
    return target


def _run(tmp_path: Path, suites: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "run"
    args = ["run", "--target", str(_target(tmp_path)), "--out", str(out)]
    args += ["--suites-dir", str(suites), "--plugin", "", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output, out


def test_passing_run_writes_all_four_outputs_and_exits_0(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING))
    assert code == 0, output
    assert output.splitlines()[0] == f"report will be at {out / 'report.html'}"
    assert "test_keeps_data" in output and "passed" in output  # progress as tests finish
    for name in ("report.html", "results.json", "junit.xml", "pytest.log"):
        assert (out / name).is_file(), name
    assert any((out / "allure-results").glob("*-result.json"))
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.find("testsuite") is not None
    assert suites.find("testsuite").get("tests") == "2"  # type: ignore[union-attr]
    document = signing.read(out / "results.json")
    signing.verify(document, run_dir=out)  # evidence, junit and allure files hashed too
    results = RunResults.from_json(document)
    assert {t.verdict for t in results.tests} == {Verdict.PASS}
    manifest = results.manifest
    assert manifest["seeds"] == {"plant": 7}  # the plugin's, kept
    assert manifest["profile"] == "quick" and manifest["clock"] == "virtual"
    assert manifest["target"]["declaration"]["name"] == "tiny terminal"
    assert [Path(f["path"]).name for f in manifest["target"]["referenced_files"]] == ["fleet.yaml"]
    assert "evidence/test_keeps_data.txt" in manifest["files_sm3"]
    assert manifest["outcome"] == {"status": 0, "label": "PASS"}
    html = (out / "report.html").read_text()
    assert "frames seen by test_keeps_data" in html  # text evidence inlined


def test_failing_clause_exits_1_and_is_reported(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING, processing=FAILING))
    assert code == 1, output
    assert "CSMT §8.2.2" in output and "FAIL" in output
    html = (out / "report.html").read_text()
    assert "rollover &lt;b&gt;not&lt;/b&gt; handled" in html


def test_a_failing_test_fails_the_run_whatever_clause_it_judges(tmp_path: Path) -> None:
    should = FAILING.replace("CSMT §8.2.2", "ISC-2 §4.2")  # a "should" clause
    code, output, _ = _run(tmp_path, _suites(tmp_path, storage=PASSING, design=should))
    assert code == 1, output
    assert "FAIL: 1 optional (should/may) clause(s) fail" in output and "ISC-2 §4.2" in output


def test_suite_selection_runs_only_that_file(tmp_path: Path) -> None:
    suites = _suites(tmp_path, storage=PASSING, processing=FAILING)
    code, output, out = _run(tmp_path, suites, "--suite", "storage")
    assert code == 0, output
    results = RunResults.load(out / "results.json")
    assert {t.suite for t in results.tests} == {"storage"}
    assert results.manifest["suites"] == ["storage"]


def test_a_selection_by_name_runs_only_the_matching_tests(tmp_path: Path) -> None:
    suites = _suites(tmp_path, storage=PASSING, processing=FAILING)
    code, output, out = _run(tmp_path, suites, "--select", "keeps_data or rollover")
    assert code == 1, output  # the rollover test fails
    results = RunResults.load(out / "results.json")
    assert sorted(t.title for t in results.tests) == ["test_keeps_data", "test_rollover"]
    command = results.manifest["command"]
    assert command[command.index("--select") + 1] == "keeps_data or rollover"  # reproducible


def test_single_tests_and_the_tests_of_a_clause_can_be_chosen(tmp_path: Path) -> None:
    suites = _suites(tmp_path, storage=PASSING, processing=FAILING)
    one = f"{suites.name}/test_storage.py::test_fast_enough"
    code, output, out = _run(tmp_path, suites, "--test", one, "--clause", "CSMT §8.2.2")
    assert code == 1, output  # the rollover test judges CSMT §8.2.2, and fails
    results = RunResults.load(out / "results.json")
    assert sorted(t.title for t in results.tests) == ["test_fast_enough", "test_rollover"]
    command = results.manifest["command"]
    assert command[command.index("--test") + 1] == one  # reproducible
    assert command[command.index("--clause") + 1] == "CSMT §8.2.2"


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--test", "test_storage.py::test_none", "--test test_storage.py::test_none: no such"),
        ("--clause", "ISC-2 §7.9", "--clause ISC-2 §7.9: no such clause in the catalogue"),
        ("--clause", "ISC-2 §4.3", "--clause ISC-2 §4.3: no test judges it (a auto clause"),
    ],
)
def test_a_test_or_clause_naming_nothing_is_a_usage_error(
    tmp_path: Path, option: str, value: str, said: str
) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING), option, value)
    assert code == 2
    assert said in output and "Traceback" not in output
    assert not out.exists()


def test_a_rerun_of_the_failed_runs_only_what_did_not_pass(tmp_path: Path) -> None:
    suites = _suites(tmp_path, storage=PASSING, processing=FAILING)
    code, output, first = _run(tmp_path, suites, "--lab", "Lab 7", "--operator", "Li Wei")
    assert code == 1, output
    again = tmp_path / "again"
    args = ["rerun", str(first), "--failed", "--out", str(again)]
    result = CliRunner().invoke(main, [*args, "--suites-dir", str(suites), "--plugin", ""])
    assert result.exit_code == 1, result.output  # still failing: the vendor fixed nothing
    results = RunResults.load(again / "results.json")
    assert [t.title for t in results.tests] == ["test_rollover"]
    assert "--test" in results.manifest["command"]
    assert results.manifest["lab"] == {"name": "Lab 7", "operator": "Li Wei"}  # kept


def test_a_rerun_of_edited_results_is_refused(tmp_path: Path) -> None:
    code, output, first = _run(tmp_path, _suites(tmp_path, storage=PASSING))
    assert code == 0, output
    text = (first / "results.json").read_text()
    (first / "results.json").write_text(text.replace('"pass"', '"fail"', 1))
    result = CliRunner().invoke(main, ["rerun", str(first), "--failed"])
    assert result.exit_code == 2
    assert f"carbench rerun: {first / 'results.json'}:" in result.output
    assert "Traceback" not in result.output


def test_diff_names_each_clause_whose_verdict_changed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, before = _run(tmp_path / "a", _suites(tmp_path / "a", storage=PASSING))
    broken = PASSING.replace("1 + 1 == 2", "1 + 1 == 3")
    _, _, after = _run(tmp_path / "b", _suites(tmp_path / "b", storage=broken))
    result = CliRunner().invoke(main, ["diff", str(before), str(after), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["outcome"] == {"a": "PASS", "b": "FAIL"}
    assert data["clauses"] == [{"clause": "ISC-2 §9.4", "a": "pass", "b": "fail"}]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no Chromium: the PDF is not printed")
def test_a_dossier_is_made_signed_and_verified_with_its_run(tmp_path: Path) -> None:
    code, output, run = _run(tmp_path, _suites(tmp_path, storage=PASSING))
    assert code == 0, output
    made = CliRunner().invoke(main, ["dossier", str(run)])
    assert made.exit_code == 0, made.output
    page, pdf = run / "dossier" / "dossier.html", run / "dossier" / "dossier.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-") and "Sign-off" in page.read_text()
    assert CliRunner().invoke(main, ["verify", str(run / "results.json")]).exit_code == 0
    page.write_text(page.read_text().replace("PASS", "FAIL"))
    checked = CliRunner().invoke(main, ["verify", str(run / "results.json")])
    assert checked.exit_code == 1 and "dossier.html changed after signing" in checked.output


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no OpenSSL CLI to verify with")
def test_openssl_alone_verifies_the_results_and_the_report(tmp_path: Path) -> None:
    code, output, run = _run(tmp_path, _suites(tmp_path, storage=PASSING))
    assert code == 0, output
    public = tmp_path / "config" / "carbench" / "bench-signing-key.pub.pem"
    for name in ("results.json", "report.html"):
        checked = subprocess.run(
            ["openssl", "dgst", "-sm3", "-verify", str(public), "-sigopt",
             "distid:1234567812345678", "-signature", str(run / f"{name}.sig.der"),
             str(run / name)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr
    (run / "results.json").write_text((run / "results.json").read_text() + " ")
    verified = CliRunner().invoke(main, ["verify", str(run / "results.json")])
    assert verified.exit_code == 1 and "results.json changed after signing" in verified.output


def test_unknown_suite_is_a_usage_error(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING), "--suite", "nope")
    assert code == 2
    assert "unknown suite(s) nope; available: storage" in output
    assert not out.exists()


def test_crash_in_pytest_is_an_error_verdict_in_a_report(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING, zcrash=CRASHING))
    assert code == 2, output
    results = RunResults.load(out / "results.json")
    crash = results.tests[-1]
    assert crash.verdict is Verdict.ERROR and "without writing results.json" in crash.reason
    # the tests that finished before the crash are still listed
    assert [t.title for t in results.tests[:-1]] == ["test_keeps_data", "test_fast_enough"]
    assert (out / "report.html").is_file()
    signing.verify(signing.read(out / "results.json"), run_dir=out)


def test_verify_command(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING))
    assert code == 0, output
    runner = CliRunner()
    pub = tmp_path / "config" / "carbench" / signing.PUBLIC_KEY_FILE
    ok = runner.invoke(main, ["verify", str(out / "results.json"), "--pubkey", str(pub)])
    assert ok.exit_code == 0 and ok.output.startswith("OK "), ok.output
    (out / "evidence" / "test_keeps_data.txt").write_text("forged frames\n")
    bad = runner.invoke(main, ["verify", str(out / "results.json")])
    assert bad.exit_code == 1
    assert "evidence/test_keeps_data.txt: changed" in bad.output
    content_only = runner.invoke(main, ["verify", "--content-only", str(out / "results.json")])
    assert content_only.exit_code == 0, content_only.output
    text = (out / "results.json").read_text()
    (out / "results.json").write_text(text.replace('"pass"', '"fail"', 1))
    tampered = runner.invoke(main, ["verify", "--content-only", str(out / "results.json")])
    assert tampered.exit_code == 1 and "content changed after signing" in tampered.output
    json.loads((out / "results.json").read_text())  # still valid JSON: caught by the hash


def test_a_broken_target_file_is_refused_before_the_run(tmp_path: Path) -> None:
    """A misspelt key or an impossible parameter is one clear message and exit status 2, not
    an error in every test."""
    reference = Path(__file__).resolve().parents[2] / "fixtures" / "targets" / "reference.yaml"
    target = tmp_path / "typo.yaml"
    target.write_text(
        f"extends: {reference}\nimplementaton: {{}}\nparameters:\n  periods: {{serial: 0}}\n"
    )
    out = tmp_path / "run"
    args = ["run", "--target", str(target), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "implementaton: Extra inputs are not permitted" in result.output
    assert "parameters.periods.serial: Input should be greater than 0" in result.output
    assert not out.exists()


STOPPED = """
import pytest


@pytest.mark.clause("ISC-2 §9.3 a)")
def test_stops_the_run():
    pytest.exit("the operator pressed Ctrl-C")


@pytest.mark.clause("ISC-2 §9.3 b)")
def test_never_reached():
    pass
"""


def test_an_interrupted_run_says_so_and_lists_what_never_ran(tmp_path: Path) -> None:
    """Tests that passed before the interruption must not make it a PASS: INTERRUPTED, exit 2,
    the tests that never ran listed on the console and in the results."""
    code, output, out = _run(tmp_path, _suites(tmp_path, storage=PASSING, zstop=STOPPED))
    assert code == 2, output
    assert "INTERRUPTED: " in output and "PASS" not in output
    assert "suites/test_zstop.py::test_never_reached" in output
    results = RunResults.load(out / "results.json")
    assert results.manifest["outcome"]["label"] == "INTERRUPTED"
    assert any(n.endswith("::test_never_reached") for n in results.manifest["never_ran"])
    assert "INTERRUPTED" in (out / "report.html").read_text()


def test_an_edited_report_fails_verification(tmp_path: Path) -> None:
    """The page a certifier reads is signed with the run's key (report.html.sig): changing its
    banner after the run makes `carbench verify` fail."""
    code, output, out = _run(tmp_path, _suites(tmp_path, processing=FAILING))
    assert code == 1, output
    verify = ["verify", str(out / "results.json")]
    assert CliRunner().invoke(main, verify).exit_code == 0
    report = out / "report.html"
    page = report.read_text()
    assert "FAIL — " in page
    report.write_text(page.replace("FAIL — ", "PASS — ", 1))
    result = CliRunner().invoke(main, verify)
    assert result.exit_code != 0
    assert "report.html changed after signing" in result.output

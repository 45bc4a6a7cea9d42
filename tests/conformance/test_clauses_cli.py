"""``carbench clauses``: list, show, check and coverage, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from bench.cli import main
from conformance.catalogue import SEEDS_DIR, load_catalogue
from tests.conformance.test_catalogue import BASE, requirement, write_catalogue
from tests.conformance.test_coverage_scan import suite


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["clauses", *args])


def test_list_filters_and_prints_json() -> None:
    result = run("list", "--standard", "ISC-2", "--testability", "auto", "--json")
    assert result.exit_code == 0, result.output
    clauses = json.loads(result.stdout)
    assert clauses and {(c["standard"], c["testability"]) for c in clauses} == {("ISC-2", "auto")}
    latency = next(c for c in clauses if c["id"] == "ISC-2 §9.4")
    assert latency["parameters"][0] == {
        "name": "processing_latency",
        "op": "<=",
        "value": 20,
        "unit": "ms",
        "note": None,
    }
    assert "计算处理的时延要求在20ms以内" in latency["text"][0]


def test_list_prints_a_table_with_counts() -> None:
    result = run("list", "--standard", "CSMT", "--area", "upload", "--level", "shall")
    assert result.exit_code == 0, result.output
    assert "CSMT §7.6" in result.stdout and "CSMT §7.2 " not in result.stdout  # §7.2 is should
    expected = load_catalogue().filter(standard="CSMT", area="upload", level="shall")
    assert result.stdout.rstrip().endswith(f"{len(expected)} entries (auto {len(expected)})")


def test_headings_are_listed_only_on_request() -> None:
    plain = json.loads(run("list", "--standard", "ISC-2", "--json").stdout)
    full = json.loads(run("list", "--standard", "ISC-2", "--headings", "--json").stdout)
    assert "ISC-2 §9.3" not in {c["id"] for c in plain}
    assert "ISC-2 §9.3" in {c["id"] for c in full}


def test_show_gives_every_field_with_the_chinese_text() -> None:
    result = run("show", "ISC-2 § 7.2.3 (1)")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("ISC-2 §7.2.3(1)")
    assert "shall (陈述) · auto · acquisition" in out
    assert "如果出现 10s" in out  # the seed's words
    assert "no_data_gap_for_switchover >= 10 s" in out
    assert "ISC-2 §9.1: a 10 s no-data limit" in out  # the conflict
    assert "Part of" in out and "Unclear" in out and "Tests" in out


def test_show_as_json_lists_items_and_tests(tmp_path: Path) -> None:
    suite(tmp_path, "test_x.py", "import pytest\n\n@pytest.mark.clause('ISC-2 §7.2.4')\n"
          "def test_hj212(): ...\n")  # fmt: skip
    result = run("show", "ISC-2 §7.2.4", "--json", "--suites", str(tmp_path))
    record = json.loads(result.stdout)
    assert record["children"] == [f"ISC-2 §7.2.4({n})" for n in range(1, 6)]
    assert record["tests"] == [f"{(tmp_path / 'test_x.py').as_posix()}::test_hj212"]
    assert record["conflicts"][0]["id"] == "ISC-2 §7.2.3(6)"


def test_show_an_unknown_clause_exits_1_with_a_suggestion() -> None:
    result = run("show", "CSMT §8.2.3")
    assert result.exit_code == 1
    assert "no clause 'CSMT §8.2.3' in the catalogue; did you mean CSMT §8.2.2" in result.stderr


def test_check_passes_on_the_catalogue() -> None:
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("catalogue valid: ")
    seeds = "quotes found in" if SEEDS_DIR.is_dir() else "quotes not checked: no seeds"
    assert seeds in result.stdout


def test_check_fails_listing_located_errors(tmp_path: Path) -> None:
    write_catalogue(tmp_path, [*BASE, requirement("ISC-2 §9.3", testability="maybe")])
    result = run("--catalogue", str(tmp_path), "check", "--seeds", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert "the clause catalogue is invalid:" in result.stderr
    assert "ISC-2.yaml:" in result.stderr and "ISC-2 §9.3: testability: 'maybe'" in result.stderr


def test_check_without_seeds_says_quotes_were_not_checked(tmp_path: Path) -> None:
    write_catalogue(tmp_path, BASE)
    result = run("--catalogue", str(tmp_path), "check", "--seeds", str(tmp_path / "none"))
    assert result.exit_code == 0, result.output
    assert "quotes not checked: no seeds at" in result.stdout


def test_coverage_reports_per_standard_and_what_covers_nothing(tmp_path: Path) -> None:
    write_catalogue(tmp_path / "cat", [*BASE, {"id": "ISC-2 §9.3", "kind": "heading"}])
    suite(
        tmp_path / "suites",
        "test_perf.py",
        """
        import pytest

        @pytest.mark.clause("ISC-2 §9.4", "ISC-2 §9.3", "ISC-2 §99")
        def test_latency(): ...
        """,
    )
    args = ["--catalogue", str(tmp_path / "cat"), "coverage", "--suites", str(tmp_path / "suites")]
    data = json.loads(run(*args, "--json").stdout)
    isc2 = next(s for s in data["standards"] if s["standard"] == "ISC-2")
    assert isc2 == {
        "standard": "ISC-2",
        "auto": 2,
        "covered": 1,
        "percent": 50.0,
        "untested": ["ISC-2 §9.2"],
        "lab_procedures": 0,
        "declarations": 0,
        "not_applicable": 0,
        "without_procedure": [],
        "with_procedure_percent": 50.0,
        "judged_in_part": [],
    }
    assert data["headings"] == ["ISC-2 §9.3"]
    assert list(data["unknown"]) == ["ISC-2 §99"] and data["tests"] == 1
    table = run(*args, "--standard", "ISC-2").stdout
    assert "ISC-2 untested (1)" in table and "ISC-2 §9.2" in table
    assert "Named headings" in table and "Named but not in the catalogue" in table


def test_coverage_can_gate_a_build(tmp_path: Path) -> None:
    write_catalogue(tmp_path, BASE)
    empty = tmp_path / "suites"
    result = run("--catalogue", str(tmp_path), "coverage", "--suites", str(empty),
                 "--standard", "ISC-2", "--fail-under", "80")  # fmt: skip
    assert result.exit_code == 1
    assert "coverage under 80 %: ISC-2 0.0 %" in result.stderr


def test_show_prints_a_lab_clauses_procedure(tmp_path: Path) -> None:
    procedure = {"steps": ["Count the RS485 ports."], "observe": "At least two.", "evidence": True}
    write_catalogue(tmp_path, [*BASE, requirement("ISC-2 §9.5", testability="lab",
                                                  procedure=procedure)])  # fmt: skip
    shown = run("--catalogue", str(tmp_path), "show", "ISC-2 §9.5").stdout
    assert "Operator procedure" in shown and "1. Count the RS485 ports." in shown
    assert "Passes when: At least two." in shown and "evidence: FILE" in shown
    assert "test case TC-ISC2-9.5-OP" in shown

"""report.html: every verdict, the clause matrix, evidence, escaping and self-containment."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bench.report import html
from bench.report.catalogue_view import CatalogueLoad
from bench.report.summary import Outcome, judge
from conformance.results import Attachment, RunResults, Verdict
from tests.bench.report.conftest import CLAUSE_OF, attach, record

# a tiny valid PNG (1×1, transparent)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
NO_CATALOGUE = CatalogueLoad(None, "catalogue not available (No module named 'x')")


def render(results: RunResults, run_dir: Path, catalogue: CatalogueLoad = NO_CATALOGUE) -> str:
    mandatory = catalogue.view.mandatory() if catalogue.view else None
    return html.render(results.to_json(), run_dir, judge(results, mandatory), catalogue)


def test_every_verdict_kind_is_shown(results: RunResults, run_dir: Path) -> None:
    page = render(results, run_dir)
    for verdict in Verdict:
        assert f'data-verdict="{verdict.value}"' in page
        assert f"why {verdict.value}" in page or verdict is Verdict.PASS
    assert 'class="banner FAIL"' in page
    assert "cut the power" in page and "read back" in page  # steps
    assert "latency_ms" in page and "4.25" in page  # measurements
    assert "0123456789ab (dirty)" in page and "quick" in page and "12.5 s" in page


def test_a_certifier_finds_the_box_the_lab_the_standards_and_where_to_sign(
    results: RunResults, run_dir: Path, catalogue: CatalogueLoad
) -> None:
    page = render(results, run_dir, catalogue)
    assert "<b>Acme CT-9</b> · version 2.4.1 · serial SN042" in page
    assert "Test Lab 1 · Li Wei" in page
    standards = page[page.index('id="standards"') :]
    assert "碳排放在线监测终端技术要求" in standards[:600]  # named in full, as printed
    assert "Tested by</th><td>Li Wei" in page and "Approved by" in page
    assert "4.25 ms" in page  # a measurement with its unit
    assert "@media print" in page and "size: A4" in page


def test_a_clause_judged_in_part_says_what_was_not_judged(
    results: RunResults, run_dir: Path, catalogue: CatalogueLoad
) -> None:
    assert catalogue.view is not None
    kept = catalogue.view.clauses["ISC-2 §9.2"]
    catalogue.view.clauses["ISC-2 §9.2"] = dataclasses.replace(
        kept, judged_in_part="the 5-year capacity is not shown"
    )
    page = render(results, run_dir, catalogue)
    row = page[page.index('id="clause-c-ISC-2-9-2"') :]
    row = row[: row.index("</tr>")]
    assert "v-pass" in row and ">partial<" in row
    assert "Not judged:</b> the 5-year capacity is not shown" in row


def test_banner_pass(run_dir: Path) -> None:
    results = RunResults([record(Verdict.PASS), record(Verdict.NOT_APPLICABLE)])
    page = render(results, run_dir)
    assert 'class="banner PASS"' in page and "exit status 0" in page


def test_clause_matrix_with_catalogue(
    results: RunResults, run_dir: Path, catalogue: CatalogueLoad
) -> None:
    page = render(results, run_dir, catalogue)
    # natural order: §9.2 before §9.10; standards in the order
    assert page.index('id="clause-c-ISC-2-9-2"') < page.index('id="clause-c-ISC-2-9-10"')
    assert page.index("<h3>ISC-2") < page.index("<h3>CSMT") < page.index("<h3>SSEA")
    assert "coverage 67 %" in page and "2 of 3 auto clauses have a test" in page
    untested = page[page.index("Untested auto clauses") :]
    assert "ISC-2 §9.3" in untested[:400] and "ISC-2 §7.1.3" not in untested[:400]
    # a clause the terminal does not implement: listed with its verdict and reason
    row = page[page.index('id="clause-c-ISC-2-9-10"') :]
    row = row[: row.index("</tr>")]
    assert "v-fail" in row and "why fail" in row and "summary of ISC-2 §9.10" in row
    # an untested catalogue clause is listed, never hidden
    assert 'id="clause-c-ISC-2-7-1-3"' in page and "v-untested" in page
    assert "应……" in page  # the Chinese text
    assert "catalogue not available" not in page


def test_clause_matrix_without_catalogue_says_so(results: RunResults, run_dir: Path) -> None:
    page = render(results, run_dir)
    assert "catalogue not available" in page
    for clause in CLAUSE_OF.values():
        assert f">{clause}<" in page


def test_hostile_text_is_escaped(run_dir: Path) -> None:
    evil = "<script>alert(1)</script>"
    bad = record(
        Verdict.FAIL,
        nodeid=f"suites/test_x.py::test_{evil}",
        title=evil,
        clauses=(f"ISC-2 §9.2{evil}",),
        suite=evil,
        reason=f"</pre>{evil}<img src=x onerror=alert(1)>",
        steps=(),
        measurements={evil: 1.0},
        attachments=(Attachment(evil, "evidence/e.txt", "text/plain"),),
    )
    (run_dir / "evidence" / "e.txt").write_text(f"frame {evil}")
    page = render(RunResults([bad], {"profile": evil}), run_dir)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert page.count("<script") == 1  # the report's own filter script, nothing else
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_self_contained(results: RunResults, run_dir: Path, catalogue: CatalogueLoad) -> None:
    (run_dir / "evidence" / "shot.png").write_bytes(PNG)
    results.tests.append(attach(Attachment("screen", "evidence/shot.png", "image/png")))
    results.tests.append(record(Verdict.FAIL, reason="see https://example.com/x and http://y"))
    page = render(results, run_dir, catalogue)
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert external == []
    assert "@import" not in page and "url(" not in page
    assert "<link" not in page


def test_evidence_inlined_embedded_linked_or_refused(run_dir: Path) -> None:
    (run_dir / "evidence" / "frames.txt").write_text("##0101QN=1;CN=2011\n")
    (run_dir / "evidence" / "shot.png").write_bytes(PNG)
    (run_dir / "evidence" / "capture.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    (run_dir / "evidence" / "t1").mkdir()
    (run_dir / "evidence" / "t1" / "log.txt").write_text("relative to evidence/")
    (run_dir.parent / "secret.txt").write_text("not evidence")
    test = attach(
        Attachment("frames", "evidence/frames.txt"),
        Attachment("screen", "evidence/shot.png", "image/png"),
        Attachment("capture", "evidence/capture.pcap", "application/vnd.tcpdump.pcap"),
        Attachment("escape", "../secret.txt"),
        Attachment("absolute", "/etc/passwd"),
        Attachment("gone", "evidence/none.txt"),
        Attachment("plugin-style", "t1/log.txt"),
    )
    page = render(RunResults([test]), run_dir)
    assert "##0101QN=1;CN=2011" in page
    assert 'src="data:image/png;base64,iVBORw0KGgo' in page
    assert 'href="evidence/capture.pcap"' in page
    assert "not evidence" not in page and "root:" not in page
    assert page.count("refused: outside the run directory") == 2
    assert "file missing from the run directory" in page
    assert "relative to evidence/" in page and 'href="evidence/t1/log.txt"' in page


def test_long_text_evidence_is_cut(run_dir: Path) -> None:
    (run_dir / "evidence" / "big.txt").write_text("x" * (html.MAX_TEXT + 10))
    page = render(RunResults([attach(Attachment("big", "evidence/big.txt"))]), run_dir)
    assert f"first 64 KiB of {html.MAX_TEXT + 10} bytes shown" in page


def test_charts(results: RunResults, run_dir: Path) -> None:
    page = render(results, run_dir)
    assert page.count("<svg") >= 3  # verdicts per suite, slowest tests, latency_ms
    assert 'aria-label="verdicts per suite"' in page
    assert 'aria-label="latency_ms"' in page


def test_write_returns_size(results: RunResults, run_dir: Path) -> None:
    path = run_dir / "report.html"
    outcome = Outcome(1, "FAIL", "x")
    size = html.write(path, results.to_json(), outcome, NO_CATALOGUE)
    assert size == path.stat().st_size > 5000


def test_tests_left_out_by_the_profile_are_listed(
    results: RunResults, run_dir: Path, catalogue: CatalogueLoad
) -> None:
    results.manifest["not_run"] = [
        {
            "nodeid": "suites/test_storage.py::test_retention_48h",
            "clauses": ["ISC-2 §9.3"],
            "why": "runs in the full profile only (this run: quick)",
        }
    ]
    page = render(results, run_dir, catalogue)
    row = page[page.index('id="clause-c-ISC-2-9-3"') :]
    row = row[: row.index("</tr>")]
    assert "v-not-run" in row and "full profile only" in row and "test_retention_48h" in row
    assert "Not run <span" in page
    untested = page[page.index("Untested auto clauses") :] if "Untested auto" in page else ""
    assert "ISC-2 §9.3" not in untested[:300]  # it has a test, just not in this profile

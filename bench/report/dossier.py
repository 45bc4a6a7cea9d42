"""The dossier a lab hands a certifier: one document per run, as HTML and as PDF (printed by
headless Chromium), each signed beside it (``.sig``) with the key that signed the run.

It holds what a certifier reads: the device and the lab, the standards named in full, the
implementation statement and test parameters, the operator records and declarations with
their evidence, the clause matrix, the measurements with their units, what was not run and
why, a sign-off table, and how to verify it all. It is made from a sealed run whose signature
is checked first, and it names that run's SM3, so it cannot describe another run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from bench.report import html, signing
from bench.report.catalogue_view import CatalogueLoad
from bench.report.manifest import redacted, sm3_file
from bench.report.summary import not_run
from common import yaml_input
from conformance.results import RunResults, Verdict
from protocols.smcrypto import Sm2PrivateKey

HTML, PDF = signing.DOSSIER_HTML, signing.DOSSIER_PDF
DIRECTORY = Path(HTML).parent.name
PROCEDURES = "conformance/suites/test_lab_procedures.py::"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT_S = 180


class DossierError(Exception):
    """The dossier cannot be made (one line: why)."""


@dataclass(frozen=True)
class RecordRow:
    case: str
    clause: str
    verdict: str
    reason: str
    record: Mapping[str, Any]
    evidence: list[str]


def _records(results: RunResults, run_dir: Path) -> list[RecordRow]:
    rows = []
    for t in results.tests:
        if not t.nodeid.startswith(PROCEDURES):
            continue
        record: Mapping[str, Any] = {}
        evidence = []
        for a in t.attachments:
            path = run_dir / "evidence" / a.path
            if a.name == "record.json" and path.is_file():
                record = json.loads(path.read_text("utf-8"))
            elif a.name != "record.json":
                evidence.append(f"../evidence/{a.path}")
        case = t.nodeid.partition("[")[2].rstrip("]")
        rows.append(RecordRow(case, ", ".join(t.clauses), t.verdict.value, t.reason, record,
                              evidence))  # fmt: skip
    return rows


def _read_from(target: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The YAML files the target file drew on (``extends``: the statement and parameters it
    inherits), each as it is now if it is still the file the run read (secrets redacted)."""
    out = []
    for entry in target.get("referenced_files") or []:
        path, digest = Path(str(entry.get("path", ""))), str(entry.get("sm3", ""))
        if path.suffix not in (".yaml", ".yml"):
            continue
        if not path.is_file() or sm3_file(path) != digest:
            out.append((str(path), digest, "(changed or gone since the run: its SM3 is above)"))
            continue
        data = yaml_input.load(path.read_text("utf-8"))
        out.append((str(path), digest, yaml.safe_dump(redacted(data), allow_unicode=True,
                                                      sort_keys=False)))  # fmt: skip
    return out


def render(document: Mapping[str, Any], run_dir: Path, catalogue: CatalogueLoad) -> str:
    results = RunResults.from_json(dict(document))
    manifest = results.manifest
    anchors = {t.nodeid: f"t{i}" for i, t in enumerate(results.tests)}
    target = html.mapping_of(manifest.get("target"))
    declaration = target.get("declaration")
    measured = [
        (t.title, t.case, name, f"{value:g}", html.unit_of(name))
        for t in results.tests
        for name, value in t.measurements.items()
        if name != "plant_s" and t.verdict is not Verdict.NOT_APPLICABLE
    ]
    integrity = document.get("integrity")
    judged = {c.split(" ", 1)[0] for c in results.clause_verdicts()}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    from bench.report.dossier_template import TEMPLATE  # noqa: PLC0415 — a large string

    return env.from_string(TEMPLATE).render(
        outcome=manifest.get("outcome") or {},
        manifest=manifest,
        dut=html.mapping_of(manifest.get("declaration")),
        lab=html.mapping_of(manifest.get("lab")),
        target=target,
        statement=yaml.safe_dump(redacted(declaration), allow_unicode=True, sort_keys=False)
        if declaration
        else "",
        read_from=_read_from(target),
        documents=html.standard_documents(results, catalogue),
        standards=[
            s for s in html.standard_sections(results, anchors, catalogue) if s.name in judged
        ],
        records=_records(results, run_dir),
        measured=measured,
        not_run=not_run(results),
        integrity=integrity if isinstance(integrity, Mapping) else {},
        duration=html.duration_text(manifest),
    )


def chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise DossierError("no Chromium to print the PDF with (scripts/debian-packages.txt has it)")


def print_pdf(page: Path, out: Path) -> None:
    """Headless Chromium prints ``page`` to ``out`` (A4, the page's own print stylesheet)."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--no-pdf-header-footer",
        f"--print-to-pdf={out}",
        page.resolve().as_uri(),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DossierError(f"Chromium did not print {page} in {PRINT_TIMEOUT_S} s") from None
    if done.returncode != 0 or not out.is_file() or out.read_bytes()[:5] != b"%PDF-":
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DossierError(f"Chromium could not print {page}: {tail[0]}")


def make(
    run_dir: Path, document: Mapping[str, Any], catalogue: CatalogueLoad, key: Sm2PrivateKey
) -> tuple[Path, Path]:
    """Write and sign ``dossier/dossier.html`` and ``dossier/dossier.pdf`` in ``run_dir``."""
    (run_dir / DIRECTORY).mkdir(exist_ok=True)
    page, pdf = run_dir / HTML, run_dir / PDF
    page.write_text(render(document, run_dir, catalogue), encoding="utf-8")
    print_pdf(page, pdf)
    for path in (page, pdf):
        signing.sign_file(path, key)
    return page, pdf

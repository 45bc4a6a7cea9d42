"""report.html: one self-contained page rendered from a (signed) results.json.

Rendering reads only the results document and the files under the run directory, so a lab can
re-render an archived run. Jinja2 autoescaping is on: test names, reasons and evidence are
untrusted text (a vendor's device chooses what it sends).
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import jinja2

from bench.report import charts
from bench.report.catalogue_view import CatalogueLoad, ClauseInfo, Coverage
from bench.report.summary import (
    NotRun,
    Outcome,
    clause_key,
    not_run,
    sorted_standards,
    standard_key,
    standard_of,
)
from conformance.results import RunResults, TestRecord, Verdict

TEXT_TYPES = ("application/json", "application/xml", "application/x-ndjson", "application/csv")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
MAX_TEXT = 64 * 1024  # per attachment shown inline; the file stays linked
MAX_IMAGE = 2 * 1024 * 1024
UNTESTED = "untested"
NOT_RUN = "not-run"  # the profile left its tests out (quick run of a long clause)


@dataclass(frozen=True)
class AttachmentView:
    name: str
    path: str
    media_type: str
    kind: str  # text | image | link | missing
    href: str = ""
    text: str = ""
    data_uri: str = ""
    note: str = ""


@dataclass(frozen=True)
class TestLink:
    anchor: str
    short: str
    verdict: str


@dataclass(frozen=True)
class ClauseLink:
    id: str
    anchor: str


@dataclass(frozen=True)
class ClauseRow:
    id: str
    anchor: str
    level: str
    testability: str
    summary: str
    quote: str
    tests: list[TestLink]
    verdict: str
    reason: str
    partial: str = ""  # what the tests leave unjudged (a judged clause's verdict is partial)


@dataclass(frozen=True)
class StandardSection:
    name: str
    coverage: Coverage | None
    rows: list[ClauseRow]
    untested: list[ClauseInfo]


@dataclass(frozen=True)
class TestView:
    anchor: str
    nodeid: str
    case: str
    title: str
    verdict: str
    seconds: float
    clauses: tuple[str, ...]
    clause_links: list[ClauseLink]
    reason: str
    steps: tuple[Any, ...]
    measurements: list[tuple[str, str, str]]  # name, value, unit
    attachments: list[AttachmentView]
    open: bool


@dataclass(frozen=True)
class ManifestValue:
    text: str
    multiline: bool


def anchor(prefix: str, text: str) -> str:
    """An id that is valid HTML and stable across renders of the same results."""
    return prefix + re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _locate(run_dir: Path, path: str) -> Path | None:
    """Where an attachment is: relative to the run directory (the contract), else to its
    evidence/ directory (how a plugin may record it); None when outside the run directory."""
    if Path(path).is_absolute():
        return None
    inside = [
        target
        for base in (run_dir.resolve(), (run_dir / "evidence").resolve())
        # a hostile or buggy record must not make the report embed files from elsewhere
        if (target := (base / path).resolve()).is_relative_to(base)
    ]
    if not inside:
        return None
    return next((c for c in inside if c.is_file()), inside[0])


def _attachment(run_dir: Path, path: str, name: str, media_type: str) -> AttachmentView:
    base = AttachmentView(name, path, media_type, "missing")
    target = _locate(run_dir, path)
    if target is None:
        return AttachmentView(**{**base.__dict__, "note": "refused: outside the run directory"})
    href = url_quote(target.relative_to(run_dir.resolve()).as_posix())
    if not target.is_file():
        return AttachmentView(**{**base.__dict__, "note": "file missing from the run directory"})
    size = target.stat().st_size
    if media_type.startswith("text/") or media_type in TEXT_TYPES:
        with target.open("rb") as f:
            raw = f.read(MAX_TEXT)
        note = f"first {MAX_TEXT // 1024} KiB of {size} bytes shown" if size > MAX_TEXT else ""
        text = raw.decode("utf-8", errors="replace")
        return AttachmentView(name, path, media_type, "text", href=href, text=text, note=note)
    if media_type in IMAGE_TYPES and size <= MAX_IMAGE:
        data = base64.b64encode(target.read_bytes()).decode("ascii")
        uri = f"data:{media_type};base64,{data}"
        return AttachmentView(name, path, media_type, "image", href=href, data_uri=uri)
    return AttachmentView(name, path, media_type, "link", href=href, note=f"{size} bytes")


#: a measurement's unit, from the suffix its name ends with (``worst_s``, ``p99_ms``)
UNITS = {"_s": "s", "_ms": "ms", "_pct": "%", "_bytes": "B", "_mib": "MiB", "_kib": "KiB"}


def unit_of(name: str) -> str:
    return next((unit for suffix, unit in UNITS.items() if name.endswith(suffix)), "")


def _short(test: TestRecord) -> str:
    name = test.nodeid.rsplit("::", 1)[-1]
    return name if len(name) <= 28 else name[:27] + "…"


def standard_sections(
    results: RunResults, anchors: dict[str, str], catalogue: CatalogueLoad
) -> list[StandardSection]:
    tests_of: dict[str, list[TestRecord]] = defaultdict(list)
    for t in results.tests:
        for c in t.clauses:
            tests_of[c].append(t)
    skipped: dict[str, list[NotRun]] = defaultdict(list)
    for entry in not_run(results):
        for c in entry.clauses:
            skipped[c].append(entry)
    verdicts = results.clause_verdicts()
    view = catalogue.view
    known = view.clauses if view else {}
    # headings and annexes state no requirement: listed only when a test names one
    ids = set(tests_of) | set(skipped) | {c for c, info in known.items() if info.requirement}

    def standard(cid: str) -> str:
        return known[cid].standard if cid in known else standard_of(cid)

    sections: list[StandardSection] = []
    for name in sorted_standards(map(standard, ids)):
        rows: list[ClauseRow] = []
        for cid in sorted((c for c in ids if standard(c) == name), key=clause_key):
            info = known.get(cid)
            tests = tests_of.get(cid, [])
            links = [TestLink(anchors[t.nodeid], _short(t), t.verdict.value) for t in tests]
            if cid in verdicts:
                verdict = verdicts[cid].value
                # the reason shown is that of a test that decided the clause's verdict
                deciding = next((t for t in tests if t.verdict.value == verdict and t.reason), None)
                reason = deciding.reason if deciding else ""
            elif cid in skipped:
                verdict, reason = NOT_RUN, "; ".join(dict.fromkeys(e.why for e in skipped[cid]))
            else:
                verdict, reason = UNTESTED, ""
            links += [
                TestLink("", e.nodeid.rsplit("::", 1)[-1][:28], NOT_RUN)
                for e in skipped.get(cid, [])
            ]
            rows.append(
                ClauseRow(
                    id=cid,
                    anchor=anchor("c-", cid),
                    level=info.level if info else "",
                    testability=info.testability if info else "",
                    summary=info.summary if info else ("not in the catalogue" if view else ""),
                    quote=info.quote if info else "",
                    tests=links,
                    verdict=verdict,
                    reason=reason,
                    partial=info.judged_in_part if info and cid in verdicts else "",
                )
            )
        tested = set(tests_of) | set(skipped)
        untested = [c for c in view.untested_auto(tested) if c.standard == name] if view else []
        coverage = view.coverage.get(name) if view else None
        sections.append(StandardSection(name, coverage, rows, untested))
    return sections


def _test_views(results: RunResults, anchors: dict[str, str], run_dir: Path) -> list[TestView]:
    return [
        TestView(
            anchor=anchors[t.nodeid],
            nodeid=t.nodeid,
            case=t.case,
            title=t.title or t.nodeid,
            verdict=t.verdict.value,
            seconds=t.seconds,
            clauses=t.clauses,
            clause_links=[ClauseLink(c, anchor("c-", c)) for c in t.clauses],
            reason=t.reason,
            steps=t.steps,
            measurements=[
                (k, f"{v:g}" if isinstance(v, float) else str(v), unit_of(k))
                for k, v in t.measurements.items()
            ],
            attachments=[_attachment(run_dir, a.path, a.name, a.media_type) for a in t.attachments],
            open=t.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE),
        )
        for t in results.tests
    ]


def _manifest_rows(manifest: Mapping[str, Any]) -> list[tuple[str, ManifestValue]]:
    rows: list[tuple[str, ManifestValue]] = []
    for key, value in manifest.items():
        if key == "files_sm3" and isinstance(value, Mapping):
            text = "\n".join(f"{v[:16]}…  {k}" for k, v in value.items())
            rows.append((f"files ({len(value)}, SM3)", ManifestValue(text, True)))
        elif isinstance(value, Mapping | list):
            text = json.dumps(value, ensure_ascii=False, indent=1, default=str)
            rows.append((key, ManifestValue(text, "\n" in text)))
        else:
            rows.append((key, ManifestValue(str(value), False)))
    return rows


def duration_text(manifest: Mapping[str, Any]) -> str:
    durations = manifest.get("durations")
    if not isinstance(durations, Mapping):
        return "?"
    parts = [
        f"{k.replace('_s', '')} {float(v):.1f} s"
        for k, v in durations.items()
        if isinstance(v, int | float)
    ]
    return " · ".join(parts) or "?"


def _git_text(git: Any) -> str:
    if not isinstance(git, Mapping) or not git.get("revision"):
        return "unknown"
    return f"{str(git['revision'])[:12]}{' (dirty)' if git.get('dirty') else ''}"


def mapping_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def standard_documents(results: RunResults, catalogue: CatalogueLoad) -> list[tuple[str, str, str]]:
    """The standards this run judged clauses of, named in full."""
    if catalogue.view is None:
        return []
    judged = {c.split(" ", 1)[0] for c in results.clause_verdicts()}
    return [
        (standard, *catalogue.view.documents[standard])
        for standard in sorted(judged, key=standard_key)
        if standard in catalogue.view.documents
    ]


def render(
    document: Mapping[str, Any], run_dir: Path, outcome: Outcome, catalogue: CatalogueLoad
) -> str:
    results = RunResults.from_json(dict(document))
    manifest = results.manifest
    anchors: dict[str, str] = {}
    for i, t in enumerate(results.tests):
        anchors.setdefault(t.nodeid, f"t{i}-" + anchor("", t.nodeid.rsplit("::", 1)[-1])[:40])
    views = _test_views(results, anchors, run_dir)
    suites: dict[str, list[TestView]] = defaultdict(list)
    for record, view in zip(results.tests, views, strict=True):
        suites[record.suite].append(view)
    order = list(Verdict)
    test_counts = Counter(t.verdict for t in results.tests)
    clause_counts = Counter(results.clause_verdicts().values())
    target = mapping_of(manifest.get("target"))
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    from bench.report.template import TEMPLATE  # noqa: PLC0415 — large string, load on use

    coverage = list(catalogue.view.coverage.values()) if catalogue.view else []
    return env.from_string(TEMPLATE).render(
        outcome=outcome,
        manifest=manifest,
        target=target,
        target_name=Path(str(target.get("path", "unknown target"))).stem,
        bench=mapping_of(manifest.get("bench")),
        git_text=_git_text(manifest.get("git")),
        duration=duration_text(manifest),
        tests=views,
        suites=sorted(suites.items()),
        test_counts=[(v.value, test_counts[v]) for v in order if test_counts[v]],
        clause_counts=[(v.value, clause_counts[v]) for v in order if clause_counts[v]],
        clause_total=sum(clause_counts.values()),
        coverage=sorted(coverage, key=lambda c: standard_key(c.standard)),
        catalogue_loaded=catalogue.view is not None,
        catalogue_note=catalogue.note,
        documents=standard_documents(results, catalogue),
        dut=mapping_of(manifest.get("declaration")),
        lab=mapping_of(manifest.get("lab")),
        unknown_clauses=catalogue.view.unknown if catalogue.view else (),
        standards=standard_sections(results, anchors, catalogue),
        not_run=not_run(results),
        chart_suites=charts.verdicts_per_suite(results),
        chart_slowest=charts.slowest_tests(results),
        chart_measurements=charts.measurement_charts(results),
        manifest_rows=_manifest_rows(manifest),
        integrity=document.get("integrity")
        if isinstance(document.get("integrity"), Mapping)
        else None,
    )


def write(
    path: Path, document: Mapping[str, Any], outcome: Outcome, catalogue: CatalogueLoad
) -> int:
    """Render next to results.json (attachments are relative to that directory); bytes written."""
    text = render(document, path.parent, outcome, catalogue)
    data = text.encode("utf-8")
    path.write_bytes(data)
    return len(data)

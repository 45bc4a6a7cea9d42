"""The clause catalogue as the reports need it, loaded lazily and never required.

The catalogue (``conformance.catalogue``) is built in parallel with the reports and may be
absent or invalid; a report must still render and must say why coverage is missing rather
than silently drop it. Its objects are read by attribute name with a few accepted spellings,
so a field renamed there degrades to "unknown" here instead of breaking every run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.report.summary import clause_key, sorted_standards, standard_of


@dataclass(frozen=True)
class ClauseInfo:
    id: str
    standard: str
    level: str  # "shall" | "should" | "" (unknown)
    testability: str  # "auto" | "lab" | "declared" | "n/a" | ""
    summary: str
    quote: str = ""  # the Chinese text of the seed: the authority, shown beside the summary
    requirement: bool = True  # headings and annexes state none and are not in the matrix
    #: what its tests leave unjudged (its verdict is partial), "" when they judge it whole
    judged_in_part: str = ""


@dataclass(frozen=True)
class Coverage:
    """Share of a standard's auto clauses that have at least one automated test."""

    standard: str
    auto_total: int
    auto_tested: int

    @property
    def percent(self) -> float | None:
        """None when the standard has no auto clause (0 of 0 is not "100 % covered")."""
        return 100.0 * self.auto_tested / self.auto_total if self.auto_total else None


@dataclass(frozen=True)
class CatalogueView:
    clauses: dict[str, ClauseInfo]
    coverage: dict[str, Coverage]
    #: clause IDs that tests name but the catalogue does not know
    unknown: tuple[str, ...] = ()
    #: standard → its document's title (as printed, and in English)
    documents: dict[str, tuple[str, str]] = field(default_factory=dict)

    def mandatory(self, tested: Iterable[str] = ()) -> set[str]:
        """The "shall" clauses, plus any tested ID the catalogue does not know (a misspelt
        marker must not turn a failure into an optional one) and any tested heading with a
        "shall" below it (a test marked with the heading judges what its items require)."""
        shall = {c.id for c in self.clauses.values() if c.level == "shall"}
        out = shall | {c for c in tested if c not in self.clauses}
        for heading in tested:
            info = self.clauses.get(heading)
            if (
                info is not None
                and not info.requirement
                and any(_within(s, heading) for s in shall)
            ):
                out.add(heading)
        return out

    def untested_auto(self, tested: Iterable[str]) -> list[ClauseInfo]:
        seen = set(tested)
        return sorted(
            (
                c
                for c in self.clauses.values()
                if c.testability == "auto" and c.requirement and c.id not in seen
            ),
            key=lambda c: clause_key(c.id),
        )

    def standards(self) -> list[str]:
        return sorted_standards(c.standard for c in self.clauses.values())


@dataclass(frozen=True)
class CatalogueLoad:
    view: CatalogueView | None
    note: str  # why it is missing, or where it came from


def _within(clause_id: str, heading: str) -> bool:
    """Whether ``clause_id`` lies under ``heading`` (its items, subsections, lettered items)."""
    return clause_id.startswith(heading) and clause_id[len(heading) : len(heading) + 1] in " (."


def _attr(obj: Any, *names: str, default: Any = "") -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _text(value: Any) -> str:
    # enums (Level.SHALL) and plain strings both end up as their lower-case value
    return str(getattr(value, "value", value) or "").strip().lower()


def _clause(obj: Any) -> ClauseInfo:
    clause_id = str(_attr(obj, "id", "clause_id", "clause"))
    quote = _attr(obj, "text", "quote", "chinese", default="")
    return ClauseInfo(
        id=clause_id,
        standard=str(_attr(obj, "standard", default="") or standard_of(clause_id)),
        level=_text(_attr(obj, "level", "obligation")),
        testability=_text(_attr(obj, "testability", "testable", "test_class")),
        summary=str(_attr(obj, "summary", "english", "summary_en", "title", default="") or ""),
        quote=" ".join(quote) if isinstance(quote, list) else str(quote or ""),
        requirement=bool(_attr(obj, "is_requirement", default=True)),
        judged_in_part=str(_attr(obj, "judged_in_part", default="") or ""),
    )


def _clause_objects(catalogue: Any) -> list[Any]:
    clauses = _attr(catalogue, "clauses", default=None)
    if clauses is None:
        clauses = list(catalogue)
    if isinstance(clauses, Mapping):
        clauses = list(clauses.values())
    out: list[Any] = []
    for item in clauses:
        # a catalogue may hold standards that hold clauses (one YAML file per standard)
        inner = _attr(item, "clauses", default=None)
        out.extend(inner.values() if isinstance(inner, Mapping) else inner or [item])
    return out


def _own_coverage(clauses: dict[str, ClauseInfo], tested: set[str]) -> dict[str, Coverage]:
    out: dict[str, Coverage] = {}
    for standard in sorted_standards(c.standard for c in clauses.values()):
        auto = [
            c
            for c in clauses.values()
            if c.standard == standard and c.testability == "auto" and c.requirement
        ]
        out[standard] = Coverage(standard, len(auto), sum(c.id in tested for c in auto))
    return out


def _their_coverage(
    catalogue: Any, tested: set[str]
) -> tuple[dict[str, Coverage], tuple[str, ...]] | None:
    """The catalogue's own ``coverage(tested_ids)`` (it normalises ID spellings) when its
    answer has a shape we know, with the tested IDs it does not know."""
    method = getattr(catalogue, "coverage", None)
    if method is None:
        return None
    answer = method(tested)
    unknown = tuple(str(i) for i in _attr(answer, "unknown", default=()) or ())
    per_standard = _attr(answer, "standards", default=answer)
    if not isinstance(per_standard, Mapping):
        per_standard = {_attr(a, "standard"): a for a in per_standard}
    out: dict[str, Coverage] = {}
    for standard, value in per_standard.items():
        total = _attr(value, "auto_total", "auto", "total", "testable", default=None)
        covered = _attr(value, "auto_tested", "covered", "tested", default=None)
        if isinstance(total, int) and isinstance(covered, int):
            out[str(standard)] = Coverage(str(standard), total, covered)
        elif isinstance(total, Iterable) and isinstance(covered, Iterable):
            out[str(standard)] = Coverage(str(standard), len(list(total)), len(list(covered)))
        else:
            return None  # a bare percentage: recompute, so counts can be shown too
    return out, unknown


def load(tested: Iterable[str]) -> CatalogueLoad:
    """The catalogue view, or None with the reason (never raises: the report must render)."""
    tested_ids = set(tested)
    try:
        # by name, so this module type-checks and runs whether or not the catalogue exists yet
        module = importlib.import_module("conformance.catalogue")
    except ImportError as exc:
        return CatalogueLoad(None, f"catalogue not available ({exc})")
    try:
        catalogue = module.load_catalogue()
        clauses = {c.id: c for c in map(_clause, _clause_objects(catalogue))}
    except Exception as exc:  # a broken catalogue must not lose the run's report
        lines = str(exc).splitlines() or [""]
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        return CatalogueLoad(
            None, f"catalogue not available: {type(exc).__name__}: {lines[0]}{more}"
        )
    try:
        theirs = _their_coverage(catalogue, tested_ids)
    except Exception:  # its coverage() changed shape: our own count is still right
        theirs = None
    if theirs is None:
        unknown = tuple(sorted(i for i in tested_ids if i not in clauses))
        theirs = _own_coverage(clauses, tested_ids), unknown
    coverage, unknown = theirs
    files = getattr(catalogue, "files", {})
    documents = {
        str(k): (str(getattr(f, "document", "")), str(getattr(f, "document_en", "")))
        for k, f in files.items()
    }
    view = CatalogueView(clauses, coverage, unknown, documents)
    return CatalogueLoad(view, f"catalogue: {len(clauses)} clauses")

"""The catalogue as the reports read it: optional, and never able to break a report."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from bench.report import catalogue_view


@dataclass(frozen=True)
class FakeClause:
    id: str
    level: str | None
    testability: str | None
    summary: str = "s"
    text: list[str] = field(default_factory=lambda: ["应保存"])
    kind: str = "clause"

    @property
    def standard(self) -> str:
        return self.id.split()[0]

    @property
    def is_requirement(self) -> bool:
        return self.kind in ("clause", "item")


@dataclass(frozen=True)
class FakeStandardCoverage:
    standard: str
    auto: int
    covered: int


@dataclass(frozen=True)
class FakeCoverage:
    standards: list[FakeStandardCoverage]
    unknown: list[str]


class FakeCatalogue:
    clauses = (
        FakeClause("ISC-2 §9", None, None, kind="heading"),
        FakeClause("ISC-2 §9.2", "shall", "auto"),
        FakeClause("ISC-2 §9.3", "should", "auto"),
        FakeClause("ISC-2 §7.1.1", "shall", "declared"),
    )

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.clauses)

    def coverage(self, tested: set[str]) -> FakeCoverage:
        return FakeCoverage([FakeStandardCoverage("ISC-2", 2, 1)], ["ISC-2 §99"])


def _install(monkeypatch: pytest.MonkeyPatch, load: object) -> None:
    module = types.ModuleType("conformance.catalogue")
    module.load_catalogue = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "conformance.catalogue", module)


def test_reads_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, FakeCatalogue)
    loaded = catalogue_view.load(["ISC-2 §9.2", "ISC-2 §99"])
    view = loaded.view
    assert view is not None and loaded.note == "catalogue: 4 clauses"
    assert view.mandatory() == {"ISC-2 §9.2", "ISC-2 §7.1.1"}
    assert view.mandatory(["ISC-2 §9.3", "ISC-2 §99"]) == {
        "ISC-2 §9.2",
        "ISC-2 §7.1.1",
        "ISC-2 §99",
    }
    # a heading with a "shall" below it decides the run as its items do
    assert "ISC-2 §9" in view.mandatory(["ISC-2 §9"])
    assert view.clauses["ISC-2 §9.2"].quote == "应保存"
    assert not view.clauses["ISC-2 §9"].requirement
    assert [c.id for c in view.untested_auto(["ISC-2 §9.2"])] == ["ISC-2 §9.3"]
    cov = view.coverage["ISC-2"]
    assert (cov.auto_total, cov.auto_tested, cov.percent) == (2, 1, 50.0)
    assert view.unknown == ("ISC-2 §99",)


def test_counts_itself_when_coverage_has_another_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    class Odd(FakeCatalogue):
        def coverage(self, tested: set[str]) -> float:  # type: ignore[override]
            return 0.5

    _install(monkeypatch, Odd)
    view = catalogue_view.load(["ISC-2 §9.3", "nope"]).view
    assert view is not None
    cov = view.coverage["ISC-2"]
    assert (cov.auto_total, cov.auto_tested) == (2, 1) and view.unknown == ("nope",)


def test_broken_catalogue_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ValueError("ISC-2.yaml:3: level: 'must' is not one of shall, should\nISC-2.yaml:9: x")

    _install(monkeypatch, broken)
    loaded = catalogue_view.load([])
    assert loaded.view is None
    assert loaded.note == (
        "catalogue not available: ValueError: ISC-2.yaml:3: level: 'must' is not one of "
        "shall, should (and 1 more problems)"
    )


def test_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "conformance.catalogue", None)
    loaded = catalogue_view.load([])
    assert loaded.view is None and loaded.note.startswith("catalogue not available (")


def test_zero_auto_clauses_is_no_percentage() -> None:
    assert catalogue_view.Coverage("ISC-1", 0, 0).percent is None


def test_the_real_catalogue_is_read() -> None:
    loaded = catalogue_view.load(["ISC-2 §9.2"])
    if loaded.view is None:
        pytest.skip(loaded.note)  # the catalogue is someone else's work in progress
    view = loaded.view
    assert set(view.coverage) >= {"ISC-2", "CSMT"}
    assert view.coverage["ISC-2"].auto_total > 0 and view.coverage["ISC-2"].auto_tested == 1
    assert "ISC-2 §9.2" in view.mandatory()
    assert view.clauses["ISC-2 §9.2"].quote  # the Chinese text travels to the report

"""Clause coverage: which auto clauses have at least one test, counted per standard.

The rule is exact: a test covers the IDs its clause marker names. An item does not cover its
clause, a clause does not cover its items, and headings (no requirement of their own) are
neither counted nor covered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.catalogue import Catalogue, load_catalogue
from conformance.coverage_scan import scan, scan_clause_markers
from tests.conformance.test_catalogue import heading, requirement, write_catalogue
from tests.conformance.test_coverage_scan import suite


@pytest.fixture
def small(tmp_path: Path) -> Catalogue:
    """ISC-2: four auto requirements (a clause with two items, and one more), one lab clause,
    headings; CSMT: one auto clause. 5 auto in ISC-2, 1 in CSMT."""
    write_catalogue(
        tmp_path,
        [
            heading("ISC-2 §7"),
            requirement("ISC-2 §7.2"),
            requirement("ISC-2 §7.2(1)"),
            requirement("ISC-2 §7.2(2)"),
            heading("ISC-2 §7.3"),
            requirement("ISC-2 §7.3 a)"),
            requirement("ISC-2 §7.4"),
            requirement("ISC-2 §7.5", testability="lab"),
        ],
    )
    write_catalogue(tmp_path, [requirement("CSMT §7")], standard="CSMT")
    return load_catalogue(tmp_path)


def test_counts_per_standard(small: Catalogue) -> None:
    result = small.coverage({"ISC-2 §7.2(1)", "ISC-2 §7.4", "CSMT §7"})
    isc2, csmt = result.for_standard("ISC-2"), result.for_standard("CSMT")
    assert (isc2.auto, isc2.covered, isc2.percent) == (5, 2, 40.0)
    assert isc2.untested == ["ISC-2 §7.2", "ISC-2 §7.2(2)", "ISC-2 §7.3 a)"]
    assert (csmt.auto, csmt.covered, csmt.percent, csmt.untested) == (1, 1, 100.0, [])


def test_an_item_does_not_cover_its_clause_nor_the_clause_its_items(small: Catalogue) -> None:
    only_item = small.coverage({"ISC-2 §7.2(1)"}).for_standard("ISC-2")
    assert "ISC-2 §7.2" in only_item.untested
    only_clause = small.coverage({"ISC-2 §7.2"}).for_standard("ISC-2")
    assert {"ISC-2 §7.2(1)", "ISC-2 §7.2(2)"} <= set(only_clause.untested)


def test_ids_that_cover_nothing_are_listed_apart(small: Catalogue) -> None:
    result = small.coverage({"ISC-2 §7.3", "ISC-2 §7.5", "ISC-2 §8.1", "ISC-2 § 7.4"})
    assert result.headings == ["ISC-2 §7.3"]  # name its items instead
    assert result.not_auto == ["ISC-2 §7.5"]  # tested, but lab clauses are not counted
    assert result.unknown == ["ISC-2 §8.1"]
    assert result.for_standard("ISC-2").covered == 1  # "ISC-2 § 7.4" is ISC-2 §7.4


def test_a_standard_without_auto_clauses_has_no_percentage(small: Catalogue) -> None:
    ssea = small.coverage(set()).for_standard("SSEA")
    assert (ssea.auto, ssea.covered, ssea.percent) == (0, 0, None)


def test_coverage_of_a_suites_directory(small: Catalogue, tmp_path: Path) -> None:
    suite(
        tmp_path / "suites",
        "test_upload.py",
        """
        import pytest

        pytestmark = pytest.mark.clause("ISC-2 §7.2")

        @pytest.mark.clause("ISC-2 §7.2(1)", "ISC-2 §7.2(2)")
        def test_items(): ...

        @pytest.mark.clause("ISC-2 §7.3 a)")
        def test_lettered_item(): ...
        """,
    )
    isc2 = small.coverage(scan_clause_markers([tmp_path / "suites"])).for_standard("ISC-2")
    assert (isc2.covered, isc2.untested) == (4, ["ISC-2 §7.4"])


def test_the_real_catalogue_counts_only_requirements() -> None:
    catalogue = load_catalogue()
    result = catalogue.coverage({"ISC-2 §9.3", "ISC-2 §9.3 b)"})
    assert result.headings == ["ISC-2 §9.3"]
    isc2 = result.for_standard("ISC-2")
    assert isc2.auto == len(catalogue.filter(standard="ISC-2", testability="auto"))
    assert isc2.covered == 1


def test_every_test_of_the_suites_names_requirements_and_never_a_heading() -> None:
    """A heading is no requirement: a test under it would judge nothing, and its failure
    would change no clause's verdict. Every marker is read, and names items or clauses."""
    found = scan()
    assert [str(p) for p in found.problems] == []
    assert found.untagged == []
    result = load_catalogue().coverage(found.tests_by_clause)
    assert result.unknown == []
    assert result.headings == []


def test_lab_and_declared_clauses_count_as_covered_by_their_procedure(tmp_path: Path) -> None:
    procedure = {"steps": ["Count the ports."], "observe": "At least two.", "values": []}
    write_catalogue(
        tmp_path,
        [
            heading("ISC-2 §7"),
            requirement("ISC-2 §7.2"),
            requirement("ISC-2 §7.5", testability="lab", procedure=procedure),
            requirement("ISC-2 §7.6", testability="declared"),  # no procedure yet
            requirement("ISC-2 §7.7", testability="n/a"),
        ],
    )
    isc2 = load_catalogue(tmp_path).coverage({"ISC-2 §7.2"}).for_standard("ISC-2")
    assert (isc2.covered, isc2.lab, isc2.declared, isc2.not_applicable) == (1, 1, 0, 1)
    assert isc2.without_procedure == ["ISC-2 §7.6"]
    assert isc2.with_procedure_percent == pytest.approx(200 / 3)

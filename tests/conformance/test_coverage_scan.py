"""Reading the clause markers of conformance tests from their source, without pytest."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conformance.coverage_scan import scan, scan_clause_markers


def suite(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), "utf-8")
    return path


def test_a_decorated_test_names_its_clauses(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        "test_upload.py",
        """
        import pytest

        @pytest.mark.clause("ISC-2 §7.2.4(4)", "CSMT §7.6")
        async def test_retransmits_after_a_network_error(): ...

        @pytest.mark.requires("transport:hj212")
        @pytest.mark.clause("ISC-2 §7.2.4(3)")
        def test_two_centres(): ...
        """,
    )
    name = path.as_posix()
    assert scan_clause_markers([tmp_path]) == {
        "ISC-2 §7.2.4(4)": {f"{name}::test_retransmits_after_a_network_error"},
        "CSMT §7.6": {f"{name}::test_retransmits_after_a_network_error"},
        "ISC-2 §7.2.4(3)": {f"{name}::test_two_centres"},
    }


def test_an_alias_of_the_marker_counts(tmp_path: Path) -> None:
    suite(
        tmp_path,
        "test_alias.py",
        """
        import pytest as pt
        from pytest import mark

        clause = pt.mark.clause
        also = mark.clause

        @clause("ISC-2 §9.2")
        def test_one(): ...

        @also("ISC-2 §9.4")
        def test_two(): ...

        @mark.clause("ISC-2 §9.1")
        def test_three(): ...
        """,
    )
    assert set(scan_clause_markers([tmp_path])) == {"ISC-2 §9.2", "ISC-2 §9.4", "ISC-2 §9.1"}


def test_module_and_class_marks_reach_every_test_below_them(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        "test_storage.py",
        """
        import pytest

        pytestmark = [pytest.mark.clause("ISC-2 §9.2"), pytest.mark.profile("full")]

        def test_a(): ...

        @pytest.mark.clause("ISC-2 §7.2.3(4)")
        class TestHistory:
            pytestmark = pytest.mark.clause("SSEA §5.2.3.2")

            def test_b(self): ...

            class TestNested:
                def test_c(self): ...

            def helper(self): ...

        def helper(): ...
        """,
    )
    name = path.as_posix()
    found = scan_clause_markers([tmp_path])
    assert found["ISC-2 §9.2"] == {
        f"{name}::test_a",
        f"{name}::TestHistory::test_b",
        f"{name}::TestHistory::TestNested::test_c",
    }
    assert (
        found["ISC-2 §7.2.3(4)"]
        == found["SSEA §5.2.3.2"]
        == {
            f"{name}::TestHistory::test_b",
            f"{name}::TestHistory::TestNested::test_c",
        }
    )


def test_marks_on_parameter_sets_and_constants_are_read(tmp_path: Path) -> None:
    suite(
        tmp_path,
        "test_params.py",
        """
        import pytest

        LATENCY = "ISC-2 §9.4"
        CENTRES = ("ISC-2 §7.2.4(3)", "CSMT §7.3")

        @pytest.mark.clause(LATENCY, *CENTRES)
        def test_constants(): ...

        @pytest.mark.parametrize(
            "protocol",
            [
                pytest.param("dlt645", marks=pytest.mark.clause("ISC-2 §7.2.2(2)")),
                pytest.param("mqtt", marks=[pytest.mark.clause("CSMT §11.3 b)")]),
            ],
        )
        def test_protocols(protocol): ...
        """,
    )
    assert set(scan_clause_markers([tmp_path])) == {
        "ISC-2 §9.4",
        "ISC-2 §7.2.4(3)",
        "CSMT §7.3",
        "ISC-2 §7.2.2(2)",
        "CSMT §11.3 b)",
    }


def test_spellings_of_one_id_are_merged(tmp_path: Path) -> None:
    suite(
        tmp_path,
        "test_spelling.py",
        """
        import pytest

        @pytest.mark.clause("ISC-2 § 7.2.4 (4)")
        def test_a(): ...

        @pytest.mark.clause("ISC-2 §7.2.4(4)")
        def test_b(): ...
        """,
    )
    assert list(scan_clause_markers([tmp_path])) == ["ISC-2 §7.2.4(4)"]


def test_what_cannot_be_read_without_running_is_reported_not_guessed(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        "test_dynamic.py",
        """
        import pytest

        N = 2

        @pytest.mark.clause(f"ISC-2 §9.{N}")
        def test_fstring(): ...

        @pytest.mark.clause
        def test_bare(): ...

        def test_untagged(): ...
        """,
    )
    suite(tmp_path, "test_broken.py", "def test_(:\n")
    result = scan([tmp_path])
    assert result.tests_by_clause == {}
    assert [(p.path.rsplit("/", 1)[-1], p.line) for p in result.problems] == [
        ("test_broken.py", 1),
        ("test_dynamic.py", 6),
        ("test_dynamic.py", 9),
    ]
    assert "not written literally: f'ISC-2 §9.{N}'" in result.problems[1].message
    assert result.problems[2].message == "a clause marker without IDs"
    assert result.untagged == sorted(
        f"{path.as_posix()}::{t}" for t in ("test_bare", "test_fstring", "test_untagged")
    )


def test_only_test_files_are_read(tmp_path: Path) -> None:
    def marked(clause_id: str) -> str:
        return f"import pytest\n\n@pytest.mark.clause({clause_id!r})\ndef test_x(): ...\n"

    suite(tmp_path, "conftest.py", marked("ISC-2 §9.2"))
    suite(tmp_path, "helpers.py", marked("ISC-2 §9.4"))
    suite(tmp_path, "sub/check_test.py", marked("ISC-2 §9.1"))  # pytest's other pattern
    assert set(scan_clause_markers([tmp_path])) == {"ISC-2 §9.1"}


def test_a_missing_or_empty_suites_directory_is_an_empty_scan(tmp_path: Path) -> None:
    assert scan_clause_markers([tmp_path / "absent"]) == {}
    assert scan_clause_markers([tmp_path]) == {}
    assert scan([tmp_path]).tests == set()


def test_files_in_the_repository_are_named_as_pytest_names_them() -> None:
    found = scan([Path("tests/conformance/test_coverage_scan.py")])
    assert "tests/conformance/test_coverage_scan.py::test_only_test_files_are_read" in found.tests


def test_params_built_from_a_table_name_every_value_of_their_column(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        "test_table.py",
        """
        import pytest

        ITEMS = (("combustion", "CSMT §9.4 a) 1)"), ("heat", "CSMT §9.4 b) 2)"))

        @pytest.mark.parametrize(
            "category",
            [pytest.param(c, marks=pytest.mark.clause(item), id=c) for c, item in ITEMS],
        )
        def test_filed(category): ...
        """,
    )
    result = scan([tmp_path])
    assert result.problems == []
    test = f"{path.as_posix()}::test_filed"
    assert result.tests_by_clause == {"CSMT §9.4 a) 1)": {test}, "CSMT §9.4 b) 2)": {test}}


def test_the_profiles_a_test_is_marked_for_are_read(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        "test_long.py",
        """
        import pytest

        @pytest.mark.clause("CPCIF §8.3 b)")
        @pytest.mark.profile("full")
        async def test_a_week_offline(): ...

        @pytest.mark.clause("ISC-2 §9.2")
        def test_short(): ...
        """,
    )
    assert scan([tmp_path]).profiles == {f"{path.as_posix()}::test_a_week_offline": {"full"}}

"""The clause catalogue: what it holds, how it is looked up, and how it says what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.catalogue import (
    STANDARDS,
    Catalogue,
    CatalogueError,
    CatalogueInvalid,
    canonical_id,
    load_catalogue,
    parent_id,
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# Building small catalogues for the error cases ------------------------------------------------


def requirement(clause_id: str, **fields: Any) -> dict[str, Any]:
    """A valid clause (or item, by its ID) with every required field; ``fields`` override."""
    entry: dict[str, Any] = {
        "id": clause_id,
        "kind": "item" if clause_id.endswith(")") else "clause",
        "text": ["数据本地存储能力应不低于5年。"],
        "summary": "Keep data for at least 5 years.",
        "level": "shall",
        "testability": "auto",
        "area": "storage",
    }
    entry.update(fields)
    return entry


def heading(clause_id: str, title: str = "性能要求") -> dict[str, Any]:
    return {"id": clause_id, "kind": "heading", "title": title}


def write_catalogue(
    directory: Path, clauses: list[dict[str, Any]], standard: str = "ISC-2"
) -> Path:
    """One standard's YAML file in ``directory`` (created), as a drafter would write it."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "standard": standard,
        "document": "测试文件",
        "document_en": "A test document",
        "seed": f"{standard}.txt",
        "clauses": clauses,
    }
    path = directory / f"{standard}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
    return directory


def errors_of(directory: Path) -> list[CatalogueError]:
    with pytest.raises(CatalogueInvalid) as raised:
        load_catalogue(directory)
    return raised.value.errors


BASE = [heading("ISC-2 §9"), requirement("ISC-2 §9.2"), requirement("ISC-2 §9.4")]


# The real catalogue --------------------------------------------------------------------------


def test_the_catalogue_loads_and_holds_every_standard(catalogue: Catalogue) -> None:
    assert set(catalogue.files) == set(STANDARDS)
    for standard in STANDARDS:
        requirements = catalogue.filter(standard=standard, requirements_only=True)
        assert len(requirements) > 50, standard
        assert catalogue.filter(standard=standard, testability="auto"), standard


def test_every_requirement_quotes_chinese_text_and_says_what_it_asks(
    catalogue: Catalogue,
) -> None:
    for clause in catalogue.filter(requirements_only=True):
        assert clause.text and clause.summary and clause.level and clause.testability
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in q) for q in clause.text), clause.id


def test_clauses_are_in_document_order_per_standard(catalogue: Catalogue) -> None:
    ids = [c.id for c in catalogue.filter(standard="ISC-2")]
    assert ids.index("ISC-2 §7.2.8") < ids.index("ISC-2 §7.3") < ids.index("ISC-2 §7.3.1")
    assert ids.index("ISC-2 §7.4.2.1") < ids.index("ISC-2 §7.4.2.1bis") < ids.index("ISC-2 §8")
    assert ids.index("ISC-2 §7.2.4") < ids.index("ISC-2 §7.2.4(1)") < ids.index("ISC-2 §7.2.4(5)")
    csmt = [c.id for c in catalogue.filter(standard="CSMT")]
    assert csmt.index("CSMT §11.9") < csmt.index("CSMT §11.10")


@pytest.mark.parametrize(
    ("clause_id", "name", "op", "value", "unit"),
    [
        ("ISC-2 §9.4", "processing_latency", "<=", 20, "ms"),
        ("ISC-2 §9.2", "power_loss_retention", ">=", 48, "h"),
        ("ISC-2 §9.2", "local_storage", ">=", 5, "year"),
        ("ISC-2 §7.2.4(1)", "realtime_indicator_interval", "==", 15, "min"),
        ("ISC-2 §7.2.4(3)", "data_centres", ">=", 2, "count"),
        ("ISC-2 §7.2.3(1)", "no_data_gap_for_switchover", ">=", 10, "s"),
        ("ISC-2 §9.1", "acquisition_period", "between", [1, 180], "min"),
        ("CSMT §7.3", "data_centres_besides_internet_platform", ">=", 2, "count"),
        ("CSMT §12.4", "fault_outage", "<=", 3, "working day"),
        ("CPCIF §8.3 b)", "disconnected_buffer", ">=", 1, "week"),
        ("CPCIF §6.1 c)", "refresh_interval", "<=", 5, "min"),
        ("SSEA §6.4 a)", "query_response", "<=", 5, "s"),
        ("SSEA §6.4 b)", "data_accuracy", ">=", 99, "%"),
    ],
)
def test_a_clause_carries_the_numbers_it_sets(
    catalogue: Catalogue, clause_id: str, name: str, op: str, value: object, unit: str
) -> None:
    parameters = {p.name: p for p in catalogue.get(clause_id).parameters}
    assert (parameters[name].op, parameters[name].value, parameters[name].unit) == (
        op,
        value,
        unit,
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ISC-2 §7.2.3(6)", "ISC-2 §7.2.4"),  # HTTPS versus HJ 212; unbounded versus bounded retry
        ("ISC-2 §7.2.3(6)", "CSMT §7.4"),  # HTTPS versus SM2 fingerprints
        ("ISC-2 §7.2.4(3)", "CSMT §7.3"),  # ≥ 2 centres versus internet platform + ≥ 2
        ("ISC-2 §7.2.4(1)", "CPCIF §6.1 c)"),  # every 15 min versus at least every 5 min
        ("ISC-2 §7.2.3(1)", "ISC-2 §9.1"),  # 10 s without data versus 1-minute periods
        ("ISC-2 §9.2", "CPCIF §8.3 b)"),  # 48 h across power loss versus 1 week disconnected
        ("ISC-2 §7.2.3(4)", "ISC-2 §9.2"),  # 6 months versus 5 years
        ("ISC-2 §7.2.3(4)", "SSEA §5.2.3.2"),
        ("ISC-2 §9.1", "ISC-2 §9.2"),  # 1-year backup versus 5 years
    ],
)
def test_the_conflicts_clauses_md_lists_are_recorded_both_ways(
    catalogue: Catalogue, one: str, other: str
) -> None:
    assert other in {k.id for k in catalogue.get(one).conflicts}
    assert one in {k.id for k in catalogue.get(other).conflicts}


@pytest.mark.parametrize(
    ("clause_id", "words"),
    [
        ("CSMT §8.1.2", "increments"),
        ("ISC-2 §9.4", "start and end point"),
        ("ISC-2 §9.1", "Second-level"),
        ("ISC-2 §9.5", "no clause 9.5"),
        ("CSMT §8.2.2", "modulus"),
    ],
)
def test_unclear_wording_is_recorded_for_drafters(
    catalogue: Catalogue, clause_id: str, words: str
) -> None:
    assert any(words in note for note in catalogue.get(clause_id).unclear)


def test_repeated_numbers_of_the_seed_get_bis(catalogue: Catalogue) -> None:
    # ISC-2 numbers 7.4.2.1 twice; the second list of §7.2.3 restarts at (1)
    assert catalogue.get("ISC-2 §7.4.2.1").title == "网络传输安全"
    assert catalogue.get("ISC-2 §7.4.2.1bis").title == "数据交互安全"
    # CLAUSES.md's §7.2.3(4) is the 6-month history and §7.2.3(1) the 10-second gap
    assert "6个月" in catalogue.get("ISC-2 §7.2.3(4)").text[0]
    assert "10s" in catalogue.get("ISC-2 §7.2.3(1)").text[0]
    assert "数据统计转换" in catalogue.get("ISC-2 §7.2.3(1bis)").text[0]


# Looking clauses up ---------------------------------------------------------------------------


def test_get_accepts_the_spellings_people_type(catalogue: Catalogue) -> None:
    assert catalogue.get("ISC-2 § 7.2.4 (4)").id == "ISC-2 §7.2.4(4)"
    assert catalogue.get("ISC-2 §7.2.4（4）").id == "ISC-2 §7.2.4(4)"
    assert "CSMT  §8.2.2" in catalogue
    assert canonical_id(" CPCIF §8.3  b) ") == "CPCIF §8.3 b)"


def test_an_unknown_id_is_a_key_error_naming_close_matches(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError, match=r"did you mean .*ISC-2 §9\.2"):
        catalogue.get("ISC-2 §9.21")


def test_items_know_their_parent_and_parents_their_items(catalogue: Catalogue) -> None:
    assert parent_id("ISC-2 §7.2.4(4)") == "ISC-2 §7.2.4"
    assert parent_id("CSMT §9.4 a) 1)") == "CSMT §9.4 a)"
    assert parent_id("ISC-2 §7.2.3(2bis) a)") == "ISC-2 §7.2.3(2bis)"
    assert parent_id("ISC-2 §7.4.2.1bis") == "ISC-2 §7.4.2"
    assert parent_id("CSMT §4") is None
    items = [c.id for c in catalogue.children("ISC-2 §7.2.4")]
    assert items == [f"ISC-2 §7.2.4({n})" for n in range(1, 6)]


def test_filter_combines_standard_area_testability_and_level(catalogue: Catalogue) -> None:
    found = catalogue.filter(standard="CSMT", area="upload", testability="auto", level="shall")
    assert found and all(
        (c.standard, c.area, c.testability, c.level) == ("CSMT", "upload", "auto", "shall")
        for c in found
    )
    assert "CSMT §7.6" in {c.id for c in found}
    assert not any(c.kind == "heading" for c in catalogue.filter(requirements_only=True))


# Errors name the file, the line, the clause and the field ------------------------------------


def test_a_valid_small_catalogue_loads(tmp_path: Path) -> None:
    assert [c.id for c in load_catalogue(write_catalogue(tmp_path, BASE))] == [
        "ISC-2 §9",
        "ISC-2 §9.2",
        "ISC-2 §9.4",
    ]


def test_a_duplicate_id_names_both_places(tmp_path: Path) -> None:
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, requirement("ISC-2 §9.2")]))
    assert (error.file, error.clause_id, error.field) == ("ISC-2.yaml", "ISC-2 §9.2", "id")
    assert "duplicate ID (first at ISC-2.yaml:" in error.message
    assert error.line is not None and str(error).startswith(f"ISC-2.yaml:{error.line}: ")


def test_a_duplicate_across_files_is_caught_too(tmp_path: Path) -> None:
    write_catalogue(tmp_path, BASE)
    (tmp_path / "copy.yaml").write_text((tmp_path / "ISC-2.yaml").read_text("utf-8"), "utf-8")
    errors = errors_of(tmp_path)
    assert any(e.file == "copy.yaml" and e.field == "standard" for e in errors)
    assert any(e.clause_id == "ISC-2 §9.2" and "duplicate ID" in e.message for e in errors)


def test_a_bad_testability_class_lists_the_allowed_ones(tmp_path: Path) -> None:
    bad = requirement("ISC-2 §9.3", testability="automatic")
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, bad]))
    assert (error.file, error.clause_id, error.field) == ("ISC-2.yaml", "ISC-2 §9.3", "testability")
    assert error.message == "'automatic' is not one of 'auto', 'lab', 'declared' or 'n/a'"


def test_a_dangling_cross_reference_is_named(tmp_path: Path) -> None:
    bad = requirement("ISC-2 §9.3", cross_refs=["ISC-2 §9.2", "CSMT §99"])
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, bad]))
    assert (error.clause_id, error.field) == ("ISC-2 §9.3", "cross_refs")
    assert error.message == "CSMT §99 is not in the catalogue"


def test_a_malformed_id_says_what_an_id_looks_like(tmp_path: Path) -> None:
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, requirement("ISC-2 9.3")]))
    assert (error.clause_id, error.field) == ("ISC-2 9.3", "id")
    assert "is not an ID like 'ISC-2 §9.2'" in error.message


def test_a_conflict_must_be_listed_by_both_clauses(tmp_path: Path) -> None:
    one_sided = requirement("ISC-2 §9.3", conflicts=[{"id": "ISC-2 §9.2", "why": "5 y vs 6 m"}])
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, one_sided]))
    assert (error.clause_id, error.field) == ("ISC-2 §9.3", "conflicts")
    assert error.message == "ISC-2 §9.2 does not list this conflict back"


def test_an_item_needs_its_clause(tmp_path: Path) -> None:
    (error,) = errors_of(write_catalogue(tmp_path, [*BASE, requirement("ISC-2 §9.3 a)")]))
    assert (error.clause_id, error.field) == ("ISC-2 §9.3 a)", "id")
    assert error.message == "its parent ISC-2 §9.3 is not in the catalogue"


def test_a_clause_of_another_standard_is_in_the_wrong_file(tmp_path: Path) -> None:
    errors = errors_of(write_catalogue(tmp_path, [*BASE, requirement("CSMT §9.3")]))
    located = [(e.file, e.clause_id, e.field) for e in errors if e.message == "not a ISC-2 ID"]
    assert located == [("ISC-2.yaml", "CSMT §9.3", "id")]


def test_a_misspelt_field_and_a_bad_unit_are_named(tmp_path: Path) -> None:
    typo = requirement("ISC-2 §9.3", sumary="typo")
    unit = requirement(
        "ISC-2 §9.5", parameters=[{"name": "x", "op": "<=", "value": 2, "unit": "hr"}]
    )
    errors = errors_of(write_catalogue(tmp_path, [*BASE, typo, unit]))
    assert [(e.clause_id, e.field) for e in errors] == [
        ("ISC-2 §9.3", "sumary"),
        ("ISC-2 §9.5", "parameters.0.unit"),
    ]
    assert errors[0].message == "unknown field"
    assert errors[1].message.startswith("unknown unit 'hr'")


def test_a_requirement_without_class_or_a_heading_with_one_is_refused(tmp_path: Path) -> None:
    no_class = requirement("ISC-2 §9.3")
    del no_class["testability"]
    classed_heading = heading("ISC-2 §9.5") | {"testability": "auto"}
    errors = errors_of(write_catalogue(tmp_path, [*BASE, no_class, classed_heading]))
    assert [e.clause_id for e in errors] == ["ISC-2 §9.3", "ISC-2 §9.5"]
    assert errors[0].message == "a requirement needs testability"
    assert errors[1].message == "a heading states no requirement: drop level and testability"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = [requirement("ISC-2 §9.3", level="must"), requirement("ISC-2 §9.5", area="cloud")]
    errors = errors_of(write_catalogue(tmp_path, [*BASE, *bad]))
    assert [(e.clause_id, e.field) for e in errors] == [
        ("ISC-2 §9.3", "level"),
        ("ISC-2 §9.5", "area"),
    ]


def test_an_empty_directory_is_an_error_not_an_empty_catalogue(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path)
    assert error.message == "no *.yaml files"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"testability": "auto"}, "a procedure is for lab and declared clauses"),
        ({"testability": "lab", "procedure": {"steps": ["x"], "observe": "y", "values": ["v"]}},
         "procedure.values ['v']: not a numeric parameter of this clause"),
    ],
)  # fmt: skip
def test_a_procedure_fits_its_clause(tmp_path: Path, fields: dict[str, Any], said: str) -> None:
    fields = {"procedure": {"steps": ["Count the ports."], "observe": "At least two."}, **fields}
    write_catalogue(tmp_path, [heading("ISC-2 §9"), requirement("ISC-2 §9.2", **fields)])
    with pytest.raises(CatalogueInvalid) as caught:
        load_catalogue(tmp_path)
    assert said in str(caught.value)

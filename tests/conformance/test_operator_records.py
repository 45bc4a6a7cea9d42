"""Operator records: a lab or declared clause passes only on a record that saw what its
procedure asks, with each number it asks for within the clause's limits and the evidence it
asks for; without one it awaits an operator. A bad answers file is one line naming its line
and key."""

from __future__ import annotations

import contextlib
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.catalogue import Clause, load_catalogue
from conformance.operator_records import Answer, AnswersError, judge_record, load_answers
from conformance.target import load_target
from tests.conformance.suite_runs import TARGETS

CATALOGUE = load_catalogue()
SUPPLY = CATALOGUE.get("ISC-2 §7.1.2")  # between 198 and 242 V, 49 and 51 Hz; no evidence
PORTS = CATALOGUE.get("CSMT §10.2.1 a)")  # at least 4 serial ports, with evidence


def record(clause: Clause, result: str = "yes", **values: tuple[str, ...]) -> Answer:
    numbers = {k: tuple(Decimal(x) for x in v) for k, v in values.items()}
    return Answer(clause.id, result, "Li Wei", "2026-11-29T10:00:00+08:00", numbers)  # type: ignore[arg-type]


def test_every_lab_and_declared_clause_of_the_terminal_standards_has_a_procedure() -> None:
    for standard in ("ISC-2", "CSMT"):
        lacking = [
            c.id
            for c in CATALOGUE.filter(standard=standard, requirements_only=True)
            if c.testability in ("lab", "declared") and c.procedure is None
        ]
        assert lacking == [], standard


def test_no_record_awaits_an_operator() -> None:
    assert judge_record(SUPPLY, None).verdict == "pending-operator"


def test_a_record_covering_the_range_passes() -> None:
    judged = judge_record(
        SUPPLY, record(SUPPLY, supply_voltage=("198", "242"), supply_frequency=("49", "51"))
    )
    assert judged.verdict == "pass", judged.reason


def test_a_range_not_covered_fails_naming_the_limit() -> None:
    judged = judge_record(
        SUPPLY, record(SUPPLY, supply_voltage=("200", "242"), supply_frequency=("49", "51"))
    )
    assert judged.verdict == "fail"
    assert "supply_voltage 200…242 against the range 198…242 V to cover" in judged.reason


def test_seen_otherwise_fails() -> None:
    values = {"supply_voltage": ("198", "242"), "supply_frequency": ("49", "51")}
    assert judge_record(SUPPLY, record(SUPPLY, "no", **values)).verdict == "fail"


def test_a_record_missing_a_number_or_its_evidence_still_awaits_one() -> None:
    assert judge_record(SUPPLY, record(SUPPLY, supply_voltage=("198", "242"))).verdict == (
        "pending-operator"
    )
    judged = judge_record(PORTS, record(PORTS, serial_ports=("4",)))
    assert judged.verdict == "pending-operator" and "evidence" in judged.reason


def test_a_count_below_its_limit_fails() -> None:
    answer = record(PORTS, serial_ports=("3",))
    answer = Answer(**{**answer.__dict__, "evidence": Path(__file__)})
    assert judge_record(PORTS, answer).verdict == "fail"


def answers_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_an_answers_file_gives_records_by_clause(tmp_path: Path) -> None:
    (tmp_path / "ports.jpg").write_bytes(b"\xff\xd8")
    path = answers_file(
        tmp_path,
        """\
        operator: Li Wei
        answers:
          "CSMT §10.2.1 a)":
            result: yes
            values: {serial_ports: 4}
            evidence: ports.jpg
          "CSMT §10.1 b)":
            result: n/a
            note: an industrial PC, not a gateway
        """,
    )
    records = load_answers(path)
    assert records["CSMT §10.2.1 a)"].by == "Li Wei"
    assert judge_record(PORTS, records["CSMT §10.2.1 a)"]).verdict == "pass"
    gateway = CATALOGUE.get("CSMT §10.1 b)")
    assert judge_record(gateway, records["CSMT §10.1 b)"]).verdict == "not-applicable"


def test_an_answer_for_no_lab_or_declared_clause_is_refused_at_its_line(tmp_path: Path) -> None:
    path = answers_file(tmp_path, 'operator: Li\nanswers:\n  "ISC-2 §7.1.22":\n    result: yes\n')
    with pytest.raises(AnswersError) as caught:
        load_answers(path, known=["ISC-2 §7.1.2", "CSMT §10.3"])
    assert str(caught.value) == (
        f"{path}:3: ISC-2 §7.1.22: expected a lab or declared clause ID "
        "(this is none; did you mean ISC-2 §7.1.2?)"
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("answers: [1]\n", ":1: answers: expected a mapping of clause ID"),
        ("answers:\n  X:\n    result: maybe\n", ":3: X.result: expected yes, no or n/a"),
        ("answers:\n  X:\n    result: n/a\n", ":3: X.note: expected why the clause does not"),
        ("answers:\n  X:\n    result: yes\n    values: {v: abc}\n", ":4: X.values.v: expected a"),
        ("answers:\n  X:\n    result: yes\n    evidence: none.jpg\n", ":4: X.evidence: expected a"),
        ("operator: a\nanswer: {}\n", ":2: the file.answer: expected one of answers, operator"),
        ("answers:\n  X: {result: yes}\n", ":2: X.by: expected who recorded it"),
        ("answers: {X: [\n", "not YAML"),
    ],
)
def test_a_bad_answers_file_is_one_line_naming_line_and_key(
    tmp_path: Path, text: str, said: str
) -> None:
    path = answers_file(tmp_path, text)
    with pytest.raises(AnswersError) as caught:
        load_answers(path)
    assert str(caught.value).startswith(str(path)) and said in str(caught.value)
    assert "\n" not in str(caught.value)


@given(text=st.text(max_size=300))
def test_any_text_loads_or_is_refused_with_answers_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.getbasetemp() / "answers-fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(AnswersError):  # the only error it may raise
        load_answers(path)


def test_the_reference_terminal_has_a_record_for_every_lab_and_declared_clause() -> None:
    (records,) = load_target(TARGETS / "reference.yaml").records
    given = load_answers(Path(records))
    owed = {c.id for c in CATALOGUE if c.procedure and c.standard in ("ISC-2", "CSMT")}
    assert owed <= set(given), sorted(owed - set(given))

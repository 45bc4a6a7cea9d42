"""Lab and declared clauses of the terminal standards: each gets its verdict from a record, an
operator's (testability ``lab``: the steps of the clause's procedure, done on the box) or the
vendor's (``declared``), judged against the clause's procedure and parameters
(``conformance.operator_records``). The records come from ``--answers FILE`` or, with
``--ask``, from a person at the run's terminal; a clause with none is *pending-operator* until
``carbench answer RUN_DIR`` records it.

The procedures live beside the clauses in ``fixtures/clauses/*.yaml``, so the clause markers
here are built from the catalogue (``@pytest.mark.procedures`` tells the source scan so).
"""

from __future__ import annotations

import pytest

from conformance.catalogue import load_catalogue
from conformance.evidence import TestLog
from conformance.operator_records import ask_at_terminal, case_id, judge_record, keep
from conformance.plugin import state_of
from conformance.verdicts import NotApplicable, PendingOperator

#: the standards a terminal answers to (the platform standards' lab clauses are not its own)
TERMINAL_STANDARDS = ("ISC-2", "CSMT")
CATALOGUE = load_catalogue()
CLAUSES = [c for c in CATALOGUE if c.procedure is not None and c.standard in TERMINAL_STANDARDS]


@pytest.mark.procedures
@pytest.mark.parametrize(
    "clause_id",
    [pytest.param(c.id, marks=pytest.mark.clause(c.id), id=case_id(c)) for c in CLAUSES],
)
def test_a_lab_or_declared_clause_is_judged_from_its_record(
    clause_id: str, request: pytest.FixtureRequest, evidence: TestLog
) -> None:
    """The record (an operator's for a lab clause, the vendor's for a declared one) says what
    the procedure asks to observe was seen, carries each number it asks for within the
    clause's limits, and the evidence it asks for."""
    clause = CATALOGUE.get(clause_id)
    state = state_of(request.config)
    answer = state.answers.get(clause.id)
    if answer is None and state.ask:
        answer = ask_at_terminal(clause, state.operator)
    if answer is not None:
        keep(answer, evidence)
    judged = judge_record(clause, answer)
    if judged.verdict == "pending-operator":
        raise PendingOperator(judged.reason)
    if judged.verdict == "not-applicable":
        raise NotApplicable(judged.reason)
    assert judged.verdict == "pass", judged.reason

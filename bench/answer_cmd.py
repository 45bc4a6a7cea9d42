"""``carbench answer RUN_DIR``: complete a finished run's operator records. Each lab or
declared clause the run left *pending-operator* gets its verdict from a record (``--answers
FILE``, or asked at the terminal), judged as the run itself would have judged it; the record
and its evidence join the run's evidence, and results.json and report.html are signed again.

Only records are added: a test that needed a person while the bench was running (a power cut
by hand) cannot be answered after the fact and stays pending until the run is repeated.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from bench import cli_options, run_cmd
from bench.report import signing
from bench.report.summary import EXIT_BENCH_ERROR
from conformance.catalogue import load_catalogue
from conformance.evidence import TestLog
from conformance.operator_records import (
    Answer,
    AnswersError,
    ask_at_terminal,
    judge_record,
    keep,
    load_answers,
    recordable,
)
from conformance.results import RunResults, TestRecord, Verdict

PROCEDURES = "conformance/suites/test_lab_procedures.py::"


class AnswerError(Exception):
    """The run cannot take records (one line: which file and why)."""


def pending_records(results: RunResults) -> list[TestRecord]:
    """The run's lab and declared clauses still awaiting a record."""
    return [
        t
        for t in results.tests
        if t.nodeid.startswith(PROCEDURES) and t.verdict is Verdict.PENDING_OPERATOR
    ]


def recorded(record: TestRecord, answer: Answer, run_dir: Path) -> TestRecord:
    """``record`` judged from ``answer``, the record and its evidence kept with the run."""
    clause = load_catalogue().get(record.clauses[0])
    judged = judge_record(clause, answer)
    log = TestLog(record.nodeid, run_dir / run_cmd.EVIDENCE)
    keep(answer, log)
    return dataclasses.replace(
        record,
        verdict=Verdict(judged.verdict),
        reason=f"{judged.reason} (recorded after the run by carbench answer)",
        attachments=(*record.attachments, *log.attachments),
    )


def answer_run(
    run_dir: Path, answers: dict[str, Answer], *, operator: str, at_terminal: bool
) -> tuple[RunResults, int, list[str]]:
    """The run with every pending clause judged whose record is whole; how many were, and
    why each record that was not whole still leaves its clause pending."""
    try:
        results = RunResults.from_json(signing.read_sealed(run_dir))
    except signing.VerificationError as exc:
        raise AnswerError(str(exc)) from None
    if results.manifest.get("interrupted"):
        raise AnswerError(f"{run_dir}: the run was interrupted; run it again (carbench rerun)")
    catalogue = load_catalogue()
    given = 0
    incomplete: list[str] = []
    tests = list(results.tests)
    for i, test in enumerate(tests):
        if test not in pending_records(results):
            continue
        clause = catalogue.get(test.clauses[0])
        answer = answers.get(clause.id)
        if answer is None and at_terminal:
            answer = ask_at_terminal(clause, operator)
        if answer is None:
            continue
        judged = judge_record(clause, answer)
        if judged.verdict == "pending-operator":
            incomplete.append(judged.reason)
            continue
        tests[i] = recorded(test, answer, run_dir)
        given += 1
    return dataclasses.replace(results, tests=tests), given, incomplete


@click.command("answer")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@cli_options.answers
@cli_options.operator
@cli_options.ask
@cli_options.key
def answer_command(
    run_dir: Path, answers: Path | None, operator: str, ask: bool | None, key: Path | None
) -> None:
    """Give a finished run the operator records it awaits, and sign it again."""
    try:
        given = {} if answers is None else load_answers(answers, recordable())
        at_terminal = cli_options.at_terminal(ask)
        results, count, incomplete = answer_run(
            run_dir, given, operator=operator, at_terminal=at_terminal
        )
        private, _, _ = signing.load_or_create_key(key)
    except (AnswersError, AnswerError, signing.SigningError) as exc:
        click.echo(f"carbench answer: {exc}", err=True)
        sys.exit(EXIT_BENCH_ERROR)
    left = len(pending_records(results))
    click.echo(f"{count} record(s) given; {left} clause(s) still await one")
    for why in incomplete:
        click.echo(f"  not taken: {why}")
    if not count:  # nothing to judge again: the signed run stays as it is
        click.echo("nothing changed: the run and its dossier stay as they were")
        sys.exit(int(results.manifest.get("outcome", {}).get("status", 1)))
    results.manifest.setdefault("answered", []).append(
        {"records": count, "by": operator or "(as recorded)", "answers": str(answers or "")}
    )
    sys.exit(
        run_cmd.seal(
            run_dir,
            results,
            private,
            bench_error=str(results.manifest.get("bench_error", "")),
        )
    )

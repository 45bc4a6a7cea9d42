"""Operator records: the verdict of a clause the bench cannot measure (testability ``lab``: an
operator's steps; ``declared``: the vendor's declaration), from what a person records.

A record says whether what the clause's procedure asks to observe was seen (``result: yes``
or ``no``; ``n/a`` with a note when the clause does not apply to the box), the numbers it
asks for (judged against the clause's own parameters), the evidence (a photo, a test report),
who recorded it and when. Records come from an answers file (YAML,
for CI and for repeating a lab's run), from a person at the run's terminal (``/dev/tty``:
pytest captures stdin, not the terminal), or later, from ``carbench answer RUN_DIR``. With
none, the verdict is *pending-operator*, never a pass.

An answers file::

    operator: Li Wei                      # who recorded, unless an answer says otherwise
    answers:
      "ISC-2 §7.1.2":
        result: yes
        values: {supply_voltage: [198, 242]}   # the range it ran across
        evidence: photos/ac-source.jpg          # relative to this file
        note: Chroma 61505, 10 min at each end
        at: 2026-11-29T10:00:00+08:00
"""

from __future__ import annotations

import difflib
import io
import mimetypes
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

import yaml

from conformance.catalogue import Clause, Parameter, canonical_id, compact_id, load_catalogue
from conformance.evidence import TestLog

MAX_ANSWERS_BYTES = 1_000_000
MAX_TEXT = 2_000  # characters of a note, a name or a path


class AnswersError(Exception):
    """An answers file that cannot be used: file, line, key and what was expected."""


@dataclass(frozen=True)
class Answer:
    """One clause's record."""

    clause: str
    result: Literal["yes", "no", "n/a"]  # n/a: the clause does not apply to this box (note why)
    by: str
    at: str  # ISO 8601, as recorded
    values: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)
    evidence: Path | None = None
    note: str = ""

    def data(self) -> dict[str, Any]:
        return {
            "clause": self.clause,
            "result": self.result,
            "by": self.by,
            "at": self.at,
            "values": {k: [str(v) for v in vs] for k, vs in self.values.items()},
            "evidence": None if self.evidence is None else self.evidence.name,
            "note": self.note,
        }


@dataclass(frozen=True)
class Judged:
    verdict: Literal["pass", "fail", "pending-operator", "not-applicable"]
    reason: str


def judge_record(clause: Clause, answer: Answer | None) -> Judged:
    """The verdict a clause's record gives (pending while anything asked for is missing)."""
    procedure = clause.procedure
    if procedure is None:
        raise ValueError(f"{clause.id} has no procedure")
    who = "the vendor declares" if clause.testability == "declared" else "the operator saw"
    if answer is None:
        return Judged("pending-operator", f"{clause.id}: no record yet: {procedure.observe}")
    if answer.result == "n/a":
        return Judged("not-applicable", f"{clause.id}: recorded as not applying ({answer.by}): "
                      f"{answer.note}")  # fmt: skip
    missing = [name for name in procedure.values if name not in answer.values]
    if missing:
        return Judged("pending-operator", f"{clause.id}: the record has no {', '.join(missing)}")
    if procedure.evidence and answer.evidence is None:
        return Judged("pending-operator", f"{clause.id}: the record has no evidence file")
    if answer.result == "no":
        note = f": {answer.note}" if answer.note else ""
        return Judged("fail", f"{clause.id}: {who} otherwise ({answer.by}){note}")
    by_name = {p.name: p for p in clause.parameters}
    outside = [
        f"{name} {_shown(values)} against {_limit(by_name[name])}"
        for name in procedure.values
        if not _within(by_name[name], values := answer.values[name])
    ]
    if outside:
        return Judged("fail", f"{clause.id}: " + "; ".join(outside))
    recorded = ", ".join(f"{n} {_shown(answer.values[n])}" for n in procedure.values)
    return Judged("pass", f"{who}: {procedure.observe}" + (f" ({recorded})" if recorded else ""))


def _within(parameter: Parameter, values: tuple[Decimal, ...]) -> bool:
    """A recorded number against its limit; for ``between`` the record is the range the device
    was shown to work across, which must cover the clause's range."""
    limit = parameter.value
    if parameter.op == "between":
        assert isinstance(limit, list)
        low, high = (Decimal(str(v)) for v in limit)
        return len(values) == 2 and min(values) <= low and max(values) >= high
    if len(values) != 1:
        return False
    value, bound = values[0], Decimal(str(limit))
    return {
        "==": value == bound,
        "<": value < bound,
        "<=": value <= bound,
        ">": value > bound,
        ">=": value >= bound,
    }[parameter.op]


def _shown(values: tuple[Decimal, ...]) -> str:
    return "…".join(str(v) for v in values)


def _limit(parameter: Parameter) -> str:
    unit = f" {parameter.unit}" if parameter.unit else ""
    if parameter.op == "between":
        assert isinstance(parameter.value, list)
        return f"the range {parameter.value[0]}…{parameter.value[1]}{unit} to cover"
    return f"{parameter.op} {parameter.value}{unit}"


def keep(answer: Answer, log: TestLog) -> None:
    """The record, and a copy of its evidence, among the test's attachments: files of the run
    that its signed manifest covers."""
    log.attach_json("record.json", answer.data())
    if answer.evidence is not None:
        kind = mimetypes.guess_type(answer.evidence.name)[0] or "application/octet-stream"
        log.attach(f"evidence-{answer.evidence.name}", answer.evidence, kind)


def case_id(clause: Clause) -> str:
    """A record's stable test-case ID: ``ISC-2 §7.1.1 b)`` → ``TC-ISC2-7.1.1b-OP`` (an
    operator's procedure), ``-DC`` for a declaration."""
    kind = "DC" if clause.testability == "declared" else "OP"
    return f"TC-{compact_id(clause.id)}-{kind}"


# ---- answers files ----------------------------------------------------------------------------


def recordable() -> list[str]:
    """The clauses a record can be given for: those with a procedure (lab, declared)."""
    return [c.id for c in load_catalogue() if c.procedure is not None]


def load_answers(path: Path, known: Collection[str] | None = None) -> dict[str, Answer]:
    """Clause ID → its record; :class:`AnswersError` names the file, line and key (and, with
    ``known``, a clause no record is for: a typo must not leave a clause silently pending)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AnswersError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_ANSWERS_BYTES:
        raise AnswersError(f"{path}: {len(raw)} bytes; an answers file holds at most 1 MB")
    try:
        root = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AnswersError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    reader = _Reader(path)
    top = reader.mapping(root, "the file", {"operator", "answers"})
    operator = reader.text(top["operator"], "operator") if "operator" in top else ""
    if "answers" not in top:
        raise AnswersError(f"{path}: answers: a mapping of clause ID → record is missing")
    out: dict[str, Answer] = {}
    answers = top["answers"]
    if not isinstance(answers, yaml.MappingNode):
        reader.fail(answers, "answers", "a mapping of clause ID → record")
    for key_node, value_node in answers.value:
        clause = canonical_id(reader.text(key_node, "answers"))
        if known is not None and clause not in known:
            near = difflib.get_close_matches(clause, list(known), n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            reader.fail(key_node, clause, f"a lab or declared clause ID (this is none{hint})")
        out[clause] = reader.answer(clause, value_node, operator)
    return out


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, key: str, expected: str) -> NoReturn:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        raise AnswersError(f"{self.path}{line}: {key}: expected {expected}")

    def mapping(self, node: yaml.Node | None, key: str, keys: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, "a mapping")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            if name not in keys:
                self.fail(k, f"{key}.{name}", f"one of {', '.join(sorted(keys))}")
            out[str(name)] = v
        return out

    def text(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or len(str(node.value)) > MAX_TEXT:
            self.fail(node, key, f"text of at most {MAX_TEXT} characters")
        return str(node.value).strip()

    def number(self, node: yaml.Node, key: str) -> Decimal:
        try:
            value = Decimal(self.text(node, key))
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or len(str(node.value)) > 40:
            self.fail(node, key, "a number")
        return value

    def answer(self, clause: str, node: yaml.Node, operator: str) -> Answer:
        keys = {"result", "values", "evidence", "note", "by", "at"}
        fields = self.mapping(node, clause, keys)
        if "result" not in fields:
            self.fail(node, f"{clause}.result", "yes, no or n/a")
        result = self.text(fields["result"], f"{clause}.result").lower()
        if result in ("true", "y"):
            result = "yes"
        if result in ("false", "n"):
            result = "no"
        if result not in ("yes", "no", "n/a"):
            self.fail(fields["result"], f"{clause}.result", "yes, no or n/a")
        if result == "n/a" and "note" not in fields:
            self.fail(node, f"{clause}.note", "why the clause does not apply (result n/a)")
        values: dict[str, tuple[Decimal, ...]] = {}
        if "values" in fields:
            given = fields["values"]
            if not isinstance(given, yaml.MappingNode):
                self.fail(given, f"{clause}.values", "parameter: a number or [low, high]")
            for k, v in given.value:
                name = self.text(k, f"{clause}.values")
                key = f"{clause}.values.{name}"
                items = v.value if isinstance(v, yaml.SequenceNode) else [v]
                if not 1 <= len(items) <= 2:
                    self.fail(v, key, "a number or [low, high]")
                values[name] = tuple(self.number(i, key) for i in items)
        evidence = None
        if "evidence" in fields:
            evidence = self.path.parent / self.text(fields["evidence"], f"{clause}.evidence")
            if not evidence.is_file():
                self.fail(fields["evidence"], f"{clause}.evidence", f"a file ({evidence} is none)")
        by = self.text(fields["by"], f"{clause}.by") if "by" in fields else operator
        if not by:
            self.fail(node, f"{clause}.by", "who recorded it (or a top-level operator)")
        at = self.text(fields["at"], f"{clause}.at") if "at" in fields else _now()
        note = self.text(fields["note"], f"{clause}.note") if "note" in fields else ""
        return Answer(clause, result, by, at, values, evidence, note)  # type: ignore[arg-type]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- asking a person --------------------------------------------------------------------------


def ask(clause: Clause, operator: str, tty: IO[str]) -> Answer | None:
    """Walk a person at the run's terminal through a clause's procedure; None when they skip
    it (it stays pending, to be answered with ``carbench answer``)."""
    procedure = clause.procedure
    assert procedure is not None
    kind = "Declaration" if clause.testability == "declared" else "Operator step"
    lines = [f"\n── {kind}: {clause.id} — {clause.summary}"]
    lines += [f"  {n}. {step}" for n, step in enumerate(procedure.steps, 1)]
    lines.append(f"  Passes when: {procedure.observe}")
    tty.write("\n".join(lines) + "\n")
    result = _prompt(tty, "Seen? [y]es / [n]o / [s]kip (answer later)").lower()
    if result not in ("y", "yes", "n", "no"):
        return None
    by_name = {p.name: p for p in clause.parameters}
    values: dict[str, tuple[Decimal, ...]] = {}
    for name in procedure.values:
        parameter = by_name[name]
        shape = "low high" if parameter.op == "between" else "a number"
        while True:
            text = _prompt(tty, f"{name} ({_limit(parameter)}; {shape})")
            try:
                numbers = tuple(Decimal(t) for t in text.replace(",", " ").split())
            except InvalidOperation:
                numbers = ()
            if numbers and all(n.is_finite() for n in numbers):
                values[name] = numbers
                break
            tty.write("  a number, please\n")
    evidence = None
    if procedure.evidence:
        while evidence is None:
            text = _prompt(tty, "Evidence file (a photo, a report)")
            if text and Path(text).expanduser().is_file():
                evidence = Path(text).expanduser()
            else:
                tty.write("  no such file\n")
    note = _prompt(tty, "Note (Enter for none)")
    by = operator or _prompt(tty, "Your name")
    return Answer(clause.id, "yes" if result.startswith("y") else "no", by, _now(), values,
                  evidence, note)  # fmt: skip


def ask_at_terminal(clause: Clause, operator: str) -> Answer | None:
    """:func:`ask` at the controlling terminal (``/dev/tty``: pytest captures stdin and
    stdout, not the terminal); None when there is none to ask at."""
    try:
        raw = Path("/dev/tty").open("r+b", buffering=0)  # noqa: SIM115 - closed below
    except OSError:
        return None
    with io.TextIOWrapper(raw, encoding="utf-8", line_buffering=True, write_through=True) as tty:
        return ask(clause, operator, tty)


def _prompt(tty: IO[str], question: str) -> str:
    tty.write(f"  {question}: ")
    tty.flush()
    return tty.readline().strip()[:MAX_TEXT]

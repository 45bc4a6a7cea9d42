"""Roll-ups shared by the console, the exit status and the HTML report.

A clause's verdict is the worst of its tests' (``RunResults.clause_verdicts``). Which clauses
decide the exit status depends on the catalogue: with it, the mandatory ("shall") ones; without
it, every clause a test judged — so a missing catalogue never makes a failing run look green.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from conformance.results import RunResults, Verdict

#: the order the issue names the standards in; others follow alphabetically
STANDARD_ORDER = ("ISC-2", "CSMT", "SSEA", "CPCIF", "ISC-1")

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BENCH_ERROR = 2


def standard_of(clause_id: str) -> str:
    """``"ISC-2 §9.2"`` → ``"ISC-2"`` (IDs are written "SHORT §number", CLAUSES.md)."""
    return clause_id.split(" ", 1)[0] if " " in clause_id else clause_id


def standard_key(standard: str) -> tuple[int, str]:
    order = STANDARD_ORDER.index(standard) if standard in STANDARD_ORDER else len(STANDARD_ORDER)
    return order, standard


def clause_key(clause_id: str) -> tuple[tuple[int, str], list[tuple[int, str]]]:
    """Natural order, so §9.10 comes after §9.2 and items (4) after (3)."""
    parts = re.findall(r"\d+|\D+", clause_id.split(" ", 1)[1] if " " in clause_id else "")
    return standard_key(standard_of(clause_id)), [
        (int(p), "") if p.isdigit() else (-1, p) for p in parts
    ]


def sorted_standards(standards: Iterable[str]) -> list[str]:
    return sorted(set(standards), key=standard_key)


@dataclass(frozen=True)
class NotRun:
    """A test the profile left out (the plugin lists them in ``manifest["not_run"]``)."""

    nodeid: str
    clauses: tuple[str, ...]
    why: str


def not_run(results: RunResults) -> list[NotRun]:
    """Tests the profile left out, and those an interrupted run never reached."""
    entries = results.manifest.get("not_run")
    out = [
        NotRun(str(e.get("nodeid", "?")), tuple(map(str, e.get("clauses", ()))), str(e.get("why")))
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict)
    ]
    never = results.manifest.get("never_ran")
    for nodeid in never if isinstance(never, list) else []:
        out.append(NotRun(str(nodeid), (), "never ran: the run ended before it"))
    return out


def tested_clause_ids(results: RunResults) -> set[str]:
    """Clauses with at least one automated test, whether or not this profile ran it:
    coverage is a property of the suites, not of one run."""
    ids = set(results.clause_verdicts())
    for entry in not_run(results):
        ids.update(entry.clauses)
    return ids


@dataclass(frozen=True)
class Outcome:
    """The run's overall judgement and the exit status that goes with it."""

    status: int
    label: str  # PASS | SUBSET | NOT-JUDGED | FAIL | ERROR | INTERRUPTED
    explanation: str
    deciding: tuple[str, ...] = ()  # the clauses that made it not pass


@dataclass
class RunSummary:
    tests_by_verdict: Counter[Verdict] = field(default_factory=Counter)
    clauses: dict[str, Verdict] = field(default_factory=dict)
    clauses_by_verdict: Counter[Verdict] = field(default_factory=Counter)

    @classmethod
    def of(cls, results: RunResults) -> RunSummary:
        clauses = results.clause_verdicts()
        return cls(
            Counter(t.verdict for t in results.tests),
            clauses,
            Counter(clauses.values()),
        )


def judge(
    results: RunResults,
    mandatory: set[str] | None,
    *,
    bench_error: str = "",
    subset: str = "",
    interrupted: str = "",
) -> Outcome:
    """Exit 0 only when every applicable mandatory clause passes and no clause fails.

    ``mandatory`` is the catalogue's "shall" clauses, or None without a catalogue (then every
    judged clause counts). A failed clause outranks a bench error: it is a finding about the
    terminal, while an error only says the bench could not judge. ``subset`` says how the run
    was cut down (``--suite upload``): its pass is SUBSET, never a bare PASS for the target. A
    run that judged no applicable clause is NOT-JUDGED and does not pass. ``interrupted`` says
    what a run cut short never ran: INTERRUPTED, whatever ran before.
    """
    if interrupted:
        return Outcome(EXIT_BENCH_ERROR, "INTERRUPTED", interrupted)
    if bench_error:
        return Outcome(EXIT_BENCH_ERROR, "ERROR", bench_error)
    verdicts = results.clause_verdicts()
    if not verdicts:
        errors = [t for t in results.tests if t.verdict is Verdict.ERROR]
        if errors:
            return Outcome(EXIT_BENCH_ERROR, "ERROR", f"{len(errors)} test(s) hit a bench error")
        return Outcome(EXIT_BENCH_ERROR, "ERROR", "no test judged any clause")
    deciding = {
        c: v
        for c, v in verdicts.items()
        if (mandatory is None or c in mandatory) and v is not Verdict.NOT_APPLICABLE
    }
    scope = "mandatory (shall) clauses" if mandatory is not None else "clauses with tests"
    failed = sorted((c for c, v in deciding.items() if v is Verdict.FAIL), key=clause_key)
    # a test that fails fails the run, whatever it judges: an optional clause too
    optional = sorted(
        (c for c, v in verdicts.items() if v is Verdict.FAIL and c not in deciding),
        key=clause_key,
    )
    if failed or optional:
        said = [f"{len(failed)} of {len(deciding)} {scope} fail"] if failed else []
        if optional:
            said.append(f"{len(optional)} optional (should/may) clause(s) fail")
        return Outcome(EXIT_FAIL, "FAIL", "; ".join(said), (*failed, *optional))
    errored = sorted((c for c, v in deciding.items() if v is Verdict.ERROR), key=clause_key)
    if errored:
        return Outcome(
            EXIT_BENCH_ERROR,
            "ERROR",
            f"the bench could not judge {len(errored)} of {len(deciding)} {scope} (error verdicts)",
            tuple(errored),
        )
    unjudged = sorted((c for c, v in deciding.items() if v is not Verdict.PASS), key=clause_key)
    if unjudged:
        return Outcome(
            EXIT_FAIL,
            "FAIL",
            f"{len(unjudged)} of {len(deciding)} {scope} are inconclusive or await an operator",
            tuple(unjudged),
        )
    if not deciding:
        judged = {c: v for c, v in verdicts.items() if v is not Verdict.NOT_APPLICABLE}
        if subset and judged and all(v is Verdict.PASS for v in judged.values()):
            return Outcome(
                EXIT_PASS,
                "SUBSET",
                f"this subset ({subset}) judges no mandatory clause; the {len(judged)} "
                "optional (should/may) clauses it judged pass: no verdict on the target",
            )
        return Outcome(EXIT_FAIL, "NOT-JUDGED", f"no applicable {scope}: nothing was judged")
    n = len(deciding)
    if subset:
        return Outcome(
            EXIT_PASS,
            "SUBSET",
            f"{n} of {n} applicable {scope} judged by this subset ({subset}) pass; the others "
            "were not run: no verdict on the target",
        )
    return Outcome(EXIT_PASS, "PASS", f"{n} of {n} applicable {scope} pass")

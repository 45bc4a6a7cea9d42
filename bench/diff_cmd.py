"""``carbench diff RUN_A RUN_B``: what changed between two runs: the outcome, each clause whose
verdict moved (or that only one run judged), and the measurements of a test that moved by
more than a tolerance. A lab compares a vendor's box before and after a fix, or two firmware
versions; both runs' signatures are checked first, so the comparison is of what was signed.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bench.report import signing
from bench.report.summary import EXIT_BENCH_ERROR, clause_key
from conformance.results import RunResults


class DiffError(Exception):
    """A run that cannot be compared (one line: which file and why)."""


@dataclass(frozen=True)
class Moved:
    test: str
    name: str
    before: float
    after: float


@dataclass(frozen=True)
class RunDiff:
    outcomes: tuple[str, str]
    clauses: list[tuple[str, str, str]]  # clause, verdict in A ("—": not judged), in B
    measurements: list[Moved]

    def data(self) -> dict[str, Any]:
        return {
            "outcome": {"a": self.outcomes[0], "b": self.outcomes[1]},
            "clauses": [{"clause": c, "a": a, "b": b} for c, a, b in self.clauses],
            "measurements": [m.__dict__ for m in self.measurements],
        }


def load_run(run_dir: Path) -> RunResults:
    try:
        return RunResults.from_json(signing.read_sealed(run_dir))
    except signing.VerificationError as exc:
        raise DiffError(str(exc)) from None


def compare(a: RunResults, b: RunResults, *, tolerance: float = 0.05) -> RunDiff:
    """Clause verdicts that differ, and measurements that moved by more than ``tolerance``
    (relative) in a test both runs ran."""
    va, vb = a.clause_verdicts(), b.clause_verdicts()
    clauses = [
        (c, va[c].value if c in va else "—", vb[c].value if c in vb else "—")
        for c in sorted(set(va) | set(vb), key=clause_key)
        if va.get(c) != vb.get(c)
    ]
    before = {t.nodeid: t.measurements for t in a.tests}
    moved = []
    for test in b.tests:
        old = before.get(test.nodeid, {})
        for name, value in sorted(test.measurements.items()):
            was = old.get(name)
            if was is None or name == "plant_s":
                continue
            scale = max(abs(was), abs(value), 1e-12)
            if not math.isclose(was, value) and abs(value - was) / scale > tolerance:
                moved.append(Moved(test.nodeid, name, was, value))
    outcome = (_label(a), _label(b))
    return RunDiff(outcome, clauses, moved)


def _label(results: RunResults) -> str:
    return str((results.manifest.get("outcome") or {}).get("label", "?"))


@click.command("diff")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 10),
    default=0.05,
    show_default=True,
    help="Relative change below which a measurement has not moved.",
)
@click.option("--json", "as_json", is_flag=True)
def diff_command(run_a: Path, run_b: Path, tolerance: float, as_json: bool) -> None:
    """Verdict changes per clause and the measurements that moved, from RUN_A to RUN_B."""
    try:
        found = compare(load_run(run_a), load_run(run_b), tolerance=tolerance)
    except DiffError as exc:
        click.echo(f"carbench diff: {exc}", err=True)
        sys.exit(EXIT_BENCH_ERROR)
    if as_json:
        click.echo(json.dumps(found.data(), ensure_ascii=False, indent=2))
        return
    click.echo(f"outcome: {found.outcomes[0]} → {found.outcomes[1]}")
    changed = [(c, a, b) for c, a, b in found.clauses if "—" not in (a, b)]
    click.echo(f"clauses whose verdict changed: {len(changed)}")
    for clause, a, b in changed:
        click.echo(f"  {clause:24} {a:>16} → {b}")
    for side, (absent, present) in enumerate((("A", "B"), ("B", "A"))):
        missing = [c for c, *verdicts in found.clauses if verdicts[side] == "—"]
        if missing:
            shown = ", ".join(missing[:8]) + (" …" if missing[8:] else "")
            click.echo(f"judged in run {present}, not in {absent}: {len(missing)} ({shown})")
    click.echo(f"measurements that moved by more than {tolerance:.0%}: {len(found.measurements)}")
    for m in found.measurements:
        click.echo(f"  {m.test} {m.name}: {m.before:g} → {m.after:g}")

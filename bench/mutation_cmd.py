"""``carbench mutations``: the mutation check in whole runs.

A suite that cannot fail proves nothing, and one that fails a broken terminal only when its
test runs alone proves little more: an earlier test may heal the terminal, a later one may
fail on what an earlier one left behind. So every broken target of
``fixtures/mutations.yaml`` runs the whole profile, as a lab would run it, and must
fail exactly the clauses listed there — and the healthy terminal none.

``--as-process`` runs each as a stranger's box would be run: the reference terminal as a
process of its own (``adapter.kind: process``) with no management profile, judged on the wire
alone. A listed clause that only the profile can judge is then not applicable, not failed: the
check says which, and holds the run to the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from bench import run_cmd
from common import yaml_input
from conformance.results import RunResults, Verdict

MUTATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "mutations.yaml"


class MutationsError(Exception):
    """The mutations file cannot be used (its path, the key and what was expected)."""


@dataclass(frozen=True)
class Mutation:
    name: str
    target: Path
    fails: frozenset[str]
    #: it may fail more than ``fails`` (a terminal broken at its root: one that measures
    #: nothing fails every clause that judges a value)
    at_least: bool = False


@dataclass(frozen=True)
class Checked:
    """One broken terminal's whole run against what it must fail."""

    name: str
    run_dir: str
    wall_s: float
    expected: list[str]
    failed: list[str]
    #: tests that neither passed, failed nor were not applicable (error, inconclusive …)
    unjudged: list[str]
    at_least: bool = False
    #: listed clauses the run could not judge (not applicable: no management profile)
    not_applicable: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.failed))

    @property
    def extra(self) -> list[str]:
        return [] if self.at_least else sorted(set(self.failed) - set(self.expected))

    @property
    def exact(self) -> bool:
        """Failed what it must (and, unless ``at_least``, nothing else), every test judged;
        a terminal broken at its root may leave tests inconclusive, never passing the run."""
        unjudged = [] if self.at_least else self.unjudged
        return not (self.missing or self.extra or unjudged)


def load_mutations(path: Path = MUTATIONS) -> list[Mutation]:
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MutationsError(yaml_input.where(str(path), exc)) from None
    except OSError as exc:
        raise MutationsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise MutationsError(f"{path}: a mapping of mutation name -> {{target, fails}}")
    out = []
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
            raise MutationsError(f"{path}: {name}.target: the broken target's file name")
        fails = entry.get("fails", [])
        if not isinstance(fails, list) or not all(isinstance(c, str) for c in fails):
            raise MutationsError(f"{path}: {name}.fails: a list of clause IDs")
        at_least = entry.get("at_least", False)
        if not isinstance(at_least, bool):
            raise MutationsError(f"{path}: {name}.at_least: true or false")
        out.append(Mutation(str(name), path.parent / entry["target"], frozenset(fails), at_least))
    return out


def as_process(target: Path, run_dir: Path) -> Path:
    """A target file that runs ``target``'s terminal as a process, with no management
    profile (as ``fixtures/targets/reference-process.yaml`` runs the healthy one)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    derived = run_dir / "target-process.yaml"
    data = {
        "extends": str(target.resolve()),
        "adapter": {"kind": "process"},
        "management": {"profile": "none"},
    }
    derived.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return derived


def check(
    mutation: Mutation, *, profile: str, clock: str, out: Path, process: bool = False
) -> Checked:
    run_dir = out / mutation.name
    target = as_process(mutation.target, run_dir) if process else mutation.target
    wall0 = time.perf_counter()
    run_cmd.main(run_cmd.RunOptions(target, profile=profile, clock=clock, out=run_dir))
    wall = time.perf_counter() - wall0
    results_file = run_dir / run_cmd.RESULTS
    expected = sorted(mutation.fails)
    if not results_file.exists():
        return Checked(mutation.name, str(run_dir), wall, expected, [], ["no run"])
    results = RunResults.load(results_file)
    verdicts = results.clause_verdicts()
    failed = sorted(c for c, v in verdicts.items() if v is Verdict.FAIL)
    judged = (Verdict.PASS, Verdict.FAIL, Verdict.NOT_APPLICABLE)
    unjudged = [f"{t.nodeid}: {t.verdict.value}" for t in results.tests if t.verdict not in judged]
    not_applicable = [c for c in expected if verdicts.get(c) is Verdict.NOT_APPLICABLE]
    if process:
        expected = [c for c in expected if c not in not_applicable]
    return Checked(
        mutation.name,
        str(run_dir),
        wall,
        expected,
        failed,
        unjudged,
        mutation.at_least,
        not_applicable,
    )


def _row(c: Checked) -> str:
    mark = "as expected" if c.exact else "NOT AS EXPECTED"
    failed = ", ".join(c.failed) or "nothing"
    if c.at_least:
        failed = f"{len(c.failed)} clauses, those listed among them"
    text = f"{c.name:24} {c.wall_s:7.1f} s  {mark}: fails {failed}"
    if c.missing:
        text += f"\n{'':34}missing: {', '.join(c.missing)}"
    if c.extra:
        text += f"\n{'':34}beyond its clauses: {', '.join(c.extra)}"
    if c.not_applicable:
        text += f"\n{'':34}not applicable here: {', '.join(c.not_applicable)}"
    for line in c.unjudged[:5]:
        text += f"\n{'':34}not judged: {line}"
    return text


@click.command("mutations")
@click.option("--profile", type=click.Choice(run_cmd.PROFILES), default="quick", show_default=True)
@click.option("--clock", type=click.Choice(run_cmd.CLOCKS), default="virtual", show_default=True)
@click.option(
    "--only", "only", multiple=True, help="Check only this mutation (repeatable; e.g. sync-off)."
)
@click.option(
    "--file",
    "file_",
    type=click.Path(dir_okay=False, path_type=Path),
    default=MUTATIONS,
    show_default=True,
    help="Mutations and the clauses each must fail.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports") / "mutations",
    show_default=True,
)
@click.option(
    "--as-process",
    "process",
    is_flag=True,
    help="Run each terminal as a process with no management profile (judged on the wire).",
)
def mutations_command(
    profile: str, clock: str, only: tuple[str, ...], file_: Path, out: Path, process: bool
) -> None:
    """Run every deliberately broken reference terminal through the whole profile; each must
    fail exactly the clauses its entry lists (and the healthy one nothing). Exit 1 otherwise."""
    try:
        mutations = load_mutations(file_)
    except MutationsError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted(set(only) - {m.name for m in mutations})
    if unknown:
        raise click.BadParameter(f"no such mutation: {', '.join(unknown)}", param_hint="--only")
    chosen = [m for m in mutations if not only or m.name in only]
    out.mkdir(parents=True, exist_ok=True)
    checked = [check(m, profile=profile, clock=clock, out=out, process=process) for m in chosen]
    how = "as processes, no management profile" if process else "in-process"
    click.echo(f"\nmutation check, whole {profile} runs ({clock} clock, {how}):")
    for c in checked:
        click.echo(_row(c))
    summary: dict[str, Any] = {
        "profile": profile,
        "clock": clock,
        "as_process": process,
        "mutations": [{**asdict(c), "exact": c.exact} for c in checked],
    }
    (out / "mutations.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    if not all(c.exact for c in checked):
        raise SystemExit(1)

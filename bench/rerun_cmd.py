"""``carbench rerun RUN_DIR``: run again, as a new run, the tests of an earlier run (with
``--failed``, those that did not pass: failed, errors, inconclusive, awaiting an operator, or
never run), against the same target file, profile and clock. A lab reruns what failed once the
vendor has fixed it; the new run is a subset run of its own, signed like any other.

The earlier run's signature is checked first: a rerun of results someone edited would repeat
their edits.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from bench import cli_options, run_cmd
from bench.report import signing
from bench.report.manifest import sm3_file
from bench.report.summary import EXIT_BENCH_ERROR
from conformance.results import RunResults, Verdict

PASSED = {Verdict.PASS, Verdict.NOT_APPLICABLE}


class RerunError(Exception):
    """The earlier run cannot be rerun (one line: which file and why)."""


def chosen_tests(results: RunResults, *, failed_only: bool) -> list[str]:
    """Node IDs to run again, in the earlier run's order; the never-run ones last."""
    tests = [t.nodeid for t in results.tests if not failed_only or t.verdict not in PASSED]
    never = results.manifest.get("never_ran", [])
    return list(dict.fromkeys([*tests, *(str(n) for n in never)]))


def options(run_dir: Path, *, failed_only: bool, out: Path | None) -> run_cmd.RunOptions:
    path = run_dir / run_cmd.RESULTS
    try:
        results = RunResults.from_json(signing.read_sealed(run_dir))
    except signing.VerificationError as exc:
        raise RerunError(str(exc)) from None
    manifest = results.manifest
    target = Path(str(manifest.get("target", {}).get("path", "")))
    if not target.is_file():
        raise RerunError(f"{path}: manifest.target.path: no such target file now: {target}")
    if manifest["target"].get("sm3") != sm3_file(target):
        click.echo(f"note: {target} has changed since {run_dir} ran")
    tests = chosen_tests(results, failed_only=failed_only)
    if not tests:
        raise RerunError(f"{path}: nothing to rerun: every test of that run passed")
    lab = manifest.get("lab") or {}
    return run_cmd.RunOptions(
        target,
        str(manifest.get("profile", "quick")),
        clock=str(manifest.get("clock", "virtual")),
        out=out,
        tests=tuple(tests),
        lab=str(lab.get("name", "")),
        operator=str(lab.get("operator", "")),
    )


@click.command("rerun")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--failed", is_flag=True, help="Only the tests that did not pass (or never ran).")
@cli_options.out
@cli_options.answers  # those given to the earlier run with carbench answer: give them again
@cli_options.ask
@cli_options.suites_dir
@cli_options.plugin
def rerun_command(
    run_dir: Path,
    failed: bool,
    out: Path | None,
    answers: Path | None,
    ask: bool | None,
    suites_dir: Path | None,
    plugin: str | None,
) -> None:
    """Run the tests of an earlier run again (its target file, profile, clock, lab and
    operator)."""
    try:
        opts = options(run_dir, failed_only=failed, out=out)
    except RerunError as exc:
        click.echo(f"carbench rerun: {exc}", err=True)
        sys.exit(EXIT_BENCH_ERROR)
    at_terminal = cli_options.at_terminal(ask)
    opts = dataclasses.replace(opts, answers=answers, ask=at_terminal)
    if suites_dir is not None:  # as `carbench run` has them, for the bench's own tests
        opts = dataclasses.replace(opts, suites_dir=suites_dir)
    if plugin is not None:
        opts = dataclasses.replace(opts, plugin=plugin)
    sys.exit(run_cmd.main(opts))

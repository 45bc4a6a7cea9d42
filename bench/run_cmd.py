"""``carbench run``: the main job. Runs the conformance suites against a target in a pytest
subprocess and leaves a run directory with report.html, a signed results.json, junit.xml and
allure-results/.

pytest runs in a child process so the suites' event loops, threads, FUSE mounts and any crash
stay there: a dead child becomes an *error* verdict in a report, never a traceback instead of
one. Exit status: 0 only when every applicable mandatory clause passes, 1 when one does not,
2 when the bench could not judge (usage, crash, error verdicts).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click

from bench.report import catalogue_view, html, manifest, signing
from bench.report.progress import ENV as PROGRESS_ENV
from bench.report.summary import EXIT_BENCH_ERROR, Outcome, judge, not_run, tested_clause_ids
from bench.selection import Selection, SelectionError, pytest_paths
from conformance import profiles
from conformance.results import RunResults, TestRecord, Verdict
from conformance.wiring import WIRING
from protocols.smcrypto import Sm2PrivateKey

REPO = Path(__file__).resolve().parents[1]
SUITES_DIR = REPO / "conformance" / "suites"
PLUGIN = "conformance.plugin"
RESULTS = signing.RESULTS
REPORT = signing.REPORT
JUNIT = "junit.xml"
ALLURE = "allure-results"
EVIDENCE = "evidence"
LOG = "pytest.log"
PROFILES = tuple(profiles.PROFILES)
CLOCKS = ("virtual", "real")

PYTEST_INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED (pytest is not imported here)
PYTEST_NOTHING_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
PYTEST_REFUSED = 4  # pytest.ExitCode.USAGE_ERROR (a node ID it cannot find, for one)
#: pytest's exit codes other than 0 (all passed) and 1 (some failed): the run itself broke
PYTEST_BROKE = {
    PYTEST_INTERRUPTED: "pytest was interrupted (or a suite failed to import: see pytest.log)",
    3: "pytest hit an internal error (see pytest.log)",
    PYTEST_REFUSED: "pytest refused its command line (see pytest.log)",
    PYTEST_NOTHING_COLLECTED: "no test was collected: check --suite, --test, --clause and --select",
}


class RunError(Exception):
    """The run cannot start: bad options, missing suites, no signing key. Exit status 2."""


@dataclass(frozen=True)
class RunOptions:
    target: Path
    profile: str = "quick"
    suites: tuple[str, ...] = ()
    clock: str = "virtual"
    out: Path | None = None
    key: Path | None = None
    select: str | None = None  # a pytest -k expression over test names
    suites_dir: Path = SUITES_DIR
    plugin: str = PLUGIN
    tests: tuple[str, ...] = ()  # node IDs (--test)
    clauses: tuple[str, ...] = ()  # the tests that judge these (--clause)
    answers: Path | None = None  # operator records and declarations (--answers)
    operator: str = ""  # who records (--operator)
    lab: str = ""  # the laboratory that ran it (--lab), for the report's header
    ask: bool = False  # ask a person at the terminal for missing records

    @property
    def selection(self) -> Selection:
        return Selection(self.suites, self.tests, self.clauses)

    def command(self) -> list[str]:
        """The command line that reproduces this run (recorded in the manifest)."""
        cmd = ["carbench", "run", "--target", str(self.target), "--profile", self.profile]
        cmd += self.selection.options()
        if self.answers:
            cmd += ["--answers", str(self.answers)]
        if self.operator:
            cmd += ["--operator", self.operator]
        if self.lab:
            cmd += ["--lab", self.lab]
        if self.select:
            cmd += ["--select", self.select]
        return [*cmd, "--clock", self.clock]


@dataclass
class PytestRun:
    exit_code: int
    seconds: float
    collected: int | None = None
    collected_ids: list[str] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    #: pytest's own session status (its "finished" event), whatever the process exits with
    session_status: int | None = None
    interrupted: bool = False  # Ctrl-C reached carbench run


def default_out(target: Path, profile: str, now: datetime) -> Path:
    return Path("reports") / f"{target.stem}-{profile}-{now:%Y%m%dT%H%M%SZ}"


def pytest_command(opts: RunOptions, run_dir: Path, paths: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *paths]
    # no:timeout: the project's own per-test limit is not the suites' (a full-profile test
    # plays 48 hours in about an hour; the conformance plugin has limits by profile)
    cmd += ["-p", "bench.report.progress", "-p", "no:cacheprovider", "-p", "no:timeout"]
    cmd += ["--color=no"]
    if opts.select:
        cmd += ["-k", opts.select]
    if opts.plugin:
        cmd += ["-p", opts.plugin]
    if opts.plugin == PLUGIN:  # the records' options are the conformance plugin's
        if opts.answers:
            cmd += ["--answers", str(opts.answers.resolve())]
        if opts.operator:
            cmd += ["--operator", opts.operator]
        if opts.ask:
            cmd += ["--ask"]
    return [
        *cmd,
        "--target",
        str(opts.target.resolve()),
        "--profile",
        opts.profile,
        "--clock",
        opts.clock,
        "--results-json",
        str(run_dir / RESULTS),
        "--evidence-dir",
        str(run_dir / EVIDENCE),
        f"--junitxml={run_dir / JUNIT}",
        f"--alluredir={run_dir / ALLURE}",
    ]


_SHOWN = {"passed": ("passed", "green"), "failed": ("FAILED", "red"), "skipped": ("skipped", "")}
_VERDICT_COLOUR = {
    "pass": "green",
    "fail": "red",
    "error": "magenta",
    "inconclusive": "yellow",
    "pending-operator": "blue",
}


def _show(event: dict[str, Any], done: int, total: int | None) -> None:
    verdict = event.get("verdict")
    if isinstance(verdict, str):  # the conformance plugin's verdict, when it gave one
        word, colour = verdict, _VERDICT_COLOUR.get(verdict, "")
    else:
        word, colour = _SHOWN.get(str(event.get("outcome")), ("?", ""))
        if event.get("when") != "call" and word == "FAILED":
            word, colour = "ERROR", "magenta"  # setup/teardown broke: the bench, not the DUT
    count = f"[{done:>3}/{total}]" if total else f"[{done:>3}]"
    styled = click.style(f"{word:16}", fg=colour or None)
    click.echo(f"{count} {styled} {event.get('nodeid')} ({float(event.get('seconds', 0)):.1f} s)")


def run_pytest(cmd: list[str], run_dir: Path) -> PytestRun:
    """Run pytest with its output in pytest.log, echoing each test as it finishes."""
    read_end, write_end = os.pipe()
    env = {**os.environ, PROGRESS_ENV: str(write_end)}
    started = time.perf_counter()
    run = PytestRun(exit_code=-1, seconds=0.0)
    with (run_dir / LOG).open("wb") as log:
        log.write(("$ " + shlex.join(cmd) + "\n\n").encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(write_end,)
        )
        os.close(write_end)  # only the child holds it now: EOF on our end means it is gone
        try:
            with os.fdopen(read_end, "rb") as events:
                for line in events:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "collected":
                        run.collected = int(event["count"])
                        run.collected_ids = [str(n) for n in event.get("nodeids", [])]
                    elif event.get("event") == "finished":
                        run.session_status = int(event.get("exitstatus", -1))
                    elif event.get("event") == "wiring":
                        click.echo(f"wiring sheet (also {run_dir / WIRING}):")
                        click.echo(str(event.get("text", "")))
                    elif event.get("event") == "test":
                        run.finished.append(event)
                        _show(event, len(run.finished), run.collected)
        except KeyboardInterrupt:
            # the child got the same SIGINT; give it time to write what it has
            run.interrupted = True
            click.echo("interrupted: waiting for pytest to write its results", err=True)
        try:
            run.exit_code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            run.exit_code = proc.wait()
    run.seconds = time.perf_counter() - started
    return run


def _log_tail(run_dir: Path, lines: int = 25) -> str:
    try:
        text = (run_dir / LOG).read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _suite_of(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_")


def _verdict_of(event: dict[str, Any]) -> Verdict:
    """The plugin's verdict if it gave one, else pytest's outcome read as one."""
    try:
        return Verdict(str(event.get("verdict")))
    except ValueError:
        pass
    if event.get("outcome") == "failed":
        return Verdict.FAIL if event.get("when") == "call" else Verdict.ERROR
    return Verdict.PASS if event.get("outcome") == "passed" else Verdict.NOT_APPLICABLE


def _log_lines(run_dir: Path) -> list[str]:
    try:
        return (run_dir / LOG).read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def collect_results(run_dir: Path, run: PytestRun) -> tuple[RunResults, str]:
    """The plugin's results and a bench-error message ("" when the run was sound).

    When the child died before writing results, what the progress pipe saw is kept (with
    pytest's outcome only: no clause was judged) plus one error record that says why.
    """
    problem = ""
    if run.exit_code < 0:
        problem = f"pytest died from signal {-run.exit_code}"
    elif run.exit_code in PYTEST_BROKE:
        problem = PYTEST_BROKE[run.exit_code]
    path = run_dir / RESULTS
    try:
        results = RunResults.load(path)
    except FileNotFoundError:
        results = None
        why = f" ({problem})" if problem else ""
        problem = f"pytest exited with status {run.exit_code}{why} without writing {RESULTS}"
    except (ValueError, KeyError, TypeError) as exc:
        results = None
        problem = f"the conformance plugin wrote an unreadable {RESULTS}: {exc}"
    if run.exit_code == PYTEST_REFUSED:  # its own words are one line of the log
        said = [line for line in _log_lines(run_dir) if line.startswith("ERROR:")]
        if said:
            problem = f"pytest refused its command line: {said[0].removeprefix('ERROR: ')}"
    if results is not None:
        left_out = results.manifest.get("not_run") or []
        if run.exit_code == PYTEST_NOTHING_COLLECTED and left_out:
            first = left_out[0]
            problem = (
                "no test of this selection runs: none matched it, or the profile leaves them "
                f"out ({len(left_out)} left out, e.g. {first['nodeid']}: {first['why']})"
            )
        return results, problem
    seen = [
        TestRecord(
            nodeid=str(e["nodeid"]),
            title=str(e["nodeid"]).rsplit("::", 1)[-1],
            clauses=(),
            suite=_suite_of(str(e["nodeid"])),
            verdict=_verdict_of(e),
            reason="from the progress pipe: the run died before its results were written",
            seconds=float(e.get("seconds", 0.0)),
        )
        for e in run.finished
    ]
    crash = TestRecord(
        nodeid="<pytest run>",
        title="the pytest run",
        clauses=(),
        suite="bench",
        verdict=Verdict.ERROR,
        reason=f"{problem}\n\nlast lines of {LOG}:\n{_log_tail(run_dir)}",
        seconds=run.seconds,
    )
    return RunResults([*seen, crash], {}), problem


def never_ran(run: PytestRun, results: RunResults) -> list[str]:
    """The collected tests with no record in the results, nor left out by the profile with a
    reason (``not_run``): they never ran."""
    recorded = {t.nodeid for t in results.tests} | {e.nodeid for e in not_run(results)}
    return [n for n in run.collected_ids if n not in recorded]


def stopped_early(run: PytestRun, missing: list[str]) -> str:
    """What cut the run short ("" when it ran whole). pytest interrupted can still exit 1 when
    its teardown breaks: its own status and the tests that never ran decide, not the exit
    code (a run cut by Ctrl-C once said PASS)."""
    if run.interrupted or run.session_status == PYTEST_INTERRUPTED or missing:
        return f"{len(missing)} of {run.collected} tests never ran"
    return ""


def _print_summary(results: RunResults, outcome: Outcome, run_dir: Path, size: int) -> None:
    tests = Counter(t.verdict.value for t in results.tests)
    clauses = Counter(v.value for v in results.clause_verdicts().values())
    click.echo(
        f"\ntests: {len(results.tests)} ("
        + ", ".join(f"{n} {v}" for v, n in sorted(tests.items()))
        + f"); clauses judged: {sum(clauses.values())} ("
        + ", ".join(f"{n} {v}" for v, n in sorted(clauses.items()))
        + ")"
    )
    colour = {"PASS": "green", "FAIL": "red", "SUBSET": "yellow"}.get(outcome.label, "magenta")
    click.echo(click.style(f"{outcome.label}: {outcome.explanation}", fg=colour, bold=True))
    for clause in outcome.deciding[:20]:
        click.echo(f"  {clause}")
    if len(outcome.deciding) > 20:
        click.echo(f"  … and {len(outcome.deciding) - 20} more (the report lists them all)")
    never = results.manifest.get("never_ran") or []
    if never:
        click.echo(f"never ran ({len(never)}):")
        for nodeid in never[:20]:
            click.echo(f"  {nodeid}")
        if len(never) > 20:
            click.echo(f"  … and {len(never) - 20} more (results.json, manifest.never_ran)")
    click.echo(f"report: {run_dir / REPORT} ({size // 1024} KiB); results: {run_dir / RESULTS}")


def _check_target(opts: RunOptions) -> None:
    """The target file loads, and its fixed addresses name meters and buses of the profile's
    fleet (a ``RunError`` before the run, not an error in every test)."""
    # the rig imports the simulators: only a run needs them, not `carbench --help`
    from conformance.dut import ClockMode  # noqa: PLC0415
    from conformance.rig import WiringError, fleet_spec, wired  # noqa: PLC0415
    from conformance.target import TargetError, load_target  # noqa: PLC0415

    try:
        target = load_target(opts.target)
    except TargetError as exc:  # refused up front: not an error in every test (issue 65)
        raise RunError(str(exc)) from None
    spec, path = fleet_spec(opts.profile, ClockMode(opts.clock))
    try:
        wired(spec, target.wiring, path)
    except WiringError as exc:
        raise RunError(str(exc)) from None


def _subset(opts: RunOptions) -> str:
    """How the run was cut down from the whole profile ("" when it was not)."""
    parts = [shlex.join(opts.selection.options())] if not opts.selection.whole else []
    if opts.select:
        parts.append(f"--select {opts.select!r}")
    if profiles.PROFILES[opts.profile].marked_only:
        parts.append(f"the {opts.profile} profile's marked tests")
    return ", ".join(parts)


def run(opts: RunOptions) -> int:
    """The whole job; returns the exit status."""
    started = datetime.now(UTC)
    wall0 = time.perf_counter()
    run_dir = opts.out or default_out(opts.target, opts.profile, started)
    if (run_dir / RESULTS).exists():
        raise RunError(f"{run_dir} already holds a run; choose another --out")
    if find_spec("allure_pytest") is None:
        raise RunError("allure-pytest is not installed (pip install -e .): no allure-results/")
    try:
        paths = pytest_paths(opts.suites_dir, opts.selection)
    except SelectionError as exc:
        raise RunError(str(exc)) from None
    if opts.clock not in profiles.PROFILES[opts.profile].clocks:
        raise RunError(f"--profile {opts.profile} runs on the wall clock only: add --clock real")
    try:
        key, key_path, created = signing.load_or_create_key(opts.key)
        manifest.target_entry(opts.target)  # a broken target file fails now, not after the run
        if opts.plugin == PLUGIN:  # a stand-in plugin (tests) reads targets of its own
            _check_target(opts)
    except (signing.SigningError, manifest.ManifestError) as exc:
        raise RunError(str(exc)) from None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / EVIDENCE).mkdir(exist_ok=True)
    click.echo(f"report will be at {run_dir / REPORT}")
    if created:
        click.echo(f"made a bench signing key: {key_path} (public key beside it)")
    cmd = pytest_command(opts, run_dir.resolve(), paths)
    pytest_run = run_pytest(cmd, run_dir)
    results, problem = collect_results(run_dir, pytest_run)
    missing = never_ran(pytest_run, results)
    subset = _subset(opts)
    per_suite: dict[str, float] = {}
    for t in results.tests:
        per_suite[t.suite] = per_suite.get(t.suite, 0.0) + t.seconds
    results.manifest = manifest.build(
        plugin_manifest=results.manifest,
        target=opts.target,
        profile=opts.profile,
        clock=opts.clock,
        suites=list(opts.suites),
        command=opts.command(),
        pytest_command=cmd,
        started=started,
        ended=datetime.now(UTC),
        durations={
            "wall_s": round(time.perf_counter() - wall0, 3),
            "pytest_s": round(pytest_run.seconds, 3),
            "tests_s": round(sum(t.seconds for t in results.tests), 3),
            "per_suite_s": {s: round(v, 3) for s, v in sorted(per_suite.items())},
        },
        repo=REPO,
    )
    if missing:
        results.manifest["never_ran"] = missing
    if subset:
        results.manifest["subset"] = subset
    results.manifest["lab"] = {"name": opts.lab, "operator": opts.operator}
    return seal(
        run_dir,
        results,
        key,
        bench_error=problem,
        interrupted=stopped_early(pytest_run, missing),
    )


def seal(
    run_dir: Path,
    results: RunResults,
    key: Sm2PrivateKey,
    *,
    bench_error: str = "",
    interrupted: str = "",
) -> int:
    """Judge the run, sign results.json with the SM3 of every file of the run, write and sign
    report.html, print the summary; the exit status. Also used when records are added to a
    finished run (``carbench answer``)."""
    catalogue = catalogue_view.load(tested_clause_ids(results))
    mandatory = catalogue.view.mandatory(results.clause_verdicts()) if catalogue.view else None
    outcome = judge(
        results,
        mandatory,
        bench_error=bench_error,
        subset=str(results.manifest.get("subset", "")),
        interrupted=interrupted,
    )
    results.manifest["outcome"] = {"status": outcome.status, "label": outcome.label}
    if bench_error:
        results.manifest["bench_error"] = bench_error
    if interrupted:
        results.manifest["interrupted"] = interrupted
    results.manifest["catalogue"] = catalogue.note
    stale = run_dir / Path(signing.DOSSIER_HTML).parent
    if stale.is_dir():  # it describes the run as it was: make it again (carbench dossier)
        shutil.rmtree(stale)
        click.echo("the dossier described the run before this change: removed, make it again")
    signatures = (*signing.signature_files(RESULTS), *signing.signature_files(REPORT))
    files = manifest.evidence_hashes(run_dir, (RESULTS, REPORT, *signatures))
    results.manifest["files_sm3"] = files.sm3
    if files.unreadable:
        results.manifest["files_unreadable"] = files.unreadable
        click.echo(f"{len(files.unreadable)} run file(s) could not be read, so are not signed:")
        for rel, why in list(files.unreadable.items())[:5]:
            click.echo(f"  {rel}: {why}")
    document = signing.sign(results.to_json(), key)
    signing.write(run_dir / RESULTS, document)
    signing.sign_file(run_dir / RESULTS, key)  # the file's own bytes: OpenSSL checks these
    size = html.write(run_dir / REPORT, document, outcome, catalogue)
    signing.sign_file(run_dir / REPORT, key)
    _print_summary(results, outcome, run_dir, size)
    return outcome.status


def main(opts: RunOptions) -> int:
    try:
        return run(opts)
    except RunError as exc:
        click.echo(f"carbench run: {exc}", err=True)
        return EXIT_BENCH_ERROR

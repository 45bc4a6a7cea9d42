"""The conformance pytest plugin: clause markers, verdicts, implementation-statement gating,
steps and evidence, and the run's results as JSON.

Load it with ``-p conformance.plugin`` (``conformance/suites/conftest.py`` also names it).
Options (a contract with ``carbench run``): ``--target FILE``, ``--profile quick|full``,
``--clock virtual|real``, ``--results-json PATH``, ``--evidence-dir DIR``, ``--answers FILE``,
``--operator NAME``, ``--ask``.

Every test carries ``@pytest.mark.clause("ISC-2 §9.2", …)`` (IDs as in CLAUSES.md); a test
without one stops the collection. ``@pytest.mark.requires("protocol:dlt645-2007", …)`` names
what the implementation statement must declare, else the test is *not applicable*.
``@pytest.mark.profile("full")`` keeps a long test out of the quick profile (listed in the
manifest as not run, with the reason).

Verdicts (DESIGN.md): the test passed → pass; an assertion about the terminal failed → fail;
``Inconclusive``/``PendingOperator``/``NotApplicable`` (``conformance.verdicts``) → those;
anything else in setup or call → error (the bench failed). An ``AssertionError`` counts as a
verdict about the terminal only when it comes from the test's own module, from a suite module,
or as a ``ClauseFailure``; an ``assert`` failing deep inside the bench is the bench's error.
pytest itself sees inconclusive, pending-operator and not-applicable as *skipped*, with the
verdict in the reason and in the report's ``user_properties``.

``async def`` tests run on the bench's event loop (:mod:`conformance.loop`).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.metadata
import inspect
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance import evidence
from conformance.catalogue import compact_id
from conformance.loop import BenchLoop
from conformance.operator_records import Answer, AnswersError, load_answers, recordable
from conformance.profiles import PROFILES
from conformance.results import RunResults, TestRecord, Verdict
from conformance.target import Target, TargetError, load_target
from conformance.verdicts import ClauseFailure, LeftOut, VerdictException

SUITES_DIR = Path(__file__).resolve().parent / "suites"
_REPO = Path(__file__).resolve().parents[1]


@dataclass
class Phase:
    verdict: Verdict
    reason: str = ""


@dataclass
class ConformanceState:
    """What the plugin keeps for the session (``config.stash[STATE]``)."""

    target_path: Path | None
    profile: str
    clock: str | None
    results_json: Path | None
    evidence_dir: Path
    target: Target | None = None
    target_error: str | None = None
    records: list[TestRecord] = field(default_factory=list)
    #: Filled by fixtures and tests: seeds, fleet, scenario files, power-cut mode …
    manifest: dict[str, Any] = field(default_factory=dict)
    not_run: list[dict[str, Any]] = field(default_factory=list)
    #: operator records and declarations given up front (``--answers``), by clause ID
    answers: dict[str, Answer] = field(default_factory=dict)
    operator: str = ""  # who records (``--operator``)
    ask: bool = False  # ask a person at the terminal for what ``answers`` lacks
    durations: dict[str, list[float]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    wall0: float = field(default_factory=time.perf_counter)
    _loop: BenchLoop | None = None

    def loop(self) -> BenchLoop:
        if self._loop is None:
            self._loop = BenchLoop()
        return self._loop

    def close_loop(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    @property
    def clock_mode(self) -> str:
        """The clock asked for, else the target's first (virtual for the reference)."""
        if self.clock is not None:
            return self.clock
        if self.target is not None and self.target.clocks:
            return self.target.clocks[0]
        return "virtual"

    def note(self, key: str, value: Any) -> None:
        """Add to the manifest; a list key collects every value once."""
        current = self.manifest.get(key)
        if isinstance(current, list):
            if value not in current:
                current.append(value)
        else:
            self.manifest[key] = value


STATE = pytest.StashKey[ConformanceState]()
#: pytest_runtest_logreport gets no config; the session's state (one session per process, or
#: one at a time under pytester's inline runs)
_current_state: contextvars.ContextVar[ConformanceState] = contextvars.ContextVar("state")
PHASES = pytest.StashKey[dict[str, Phase]]()
LOG = pytest.StashKey[evidence.TestLog]()
LEFT_OUT = pytest.StashKey[str]()  # why the profile left a begun test out


def state_of(config: pytest.Config) -> ConformanceState:
    return config.stash[STATE]


# ---- options and markers ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "carbench conformance suites")
    group.addoption("--target", metavar="FILE", help="target file (fixtures/targets/*.yaml)")
    group.addoption(
        "--profile",
        choices=tuple(PROFILES),
        default="quick",
        help="; ".join(p.help for p in PROFILES.values()),
    )
    group.addoption(
        "--clock",
        choices=("virtual", "real"),
        default=None,
        help="virtual: the bench's clock (hours in seconds); real: wall time "
        "(default: the target's first clock mode)",
    )
    group.addoption("--results-json", metavar="PATH", help="write the run's results here")
    group.addoption("--evidence-dir", metavar="DIR", help="where tests write their evidence")
    group.addoption(
        "--answers", metavar="FILE", help="operator records and declarations (YAML) to use"
    )
    group.addoption("--operator", default="", help="who records the operator steps")
    group.addoption(
        "--ask",
        action="store_true",
        help="ask a person at the terminal (/dev/tty) for records the answers file lacks",
    )


#: The suites' markers (registered here; ``tests/conformance`` imports suite modules too).
MARKERS = (
    "clause(*ids): the clauses this test judges, IDs as in CLAUSES.md",
    "requires(*what): protocol:X, transport:X, edition:X, feature:X or clause:ID the "
    "implementation statement must declare, else the test is not applicable",
    "profile(name): run only in this profile (full: long clauses)",
    "hil: judges within minutes of plant time: runs in the hil profile too",
    "ages_terminal: leaves the terminal's clock ahead of the bench's for good; runs last",
    "procedures: judges lab and declared clauses from records (its clauses come from the "
    "catalogue's procedures)",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    results = config.getoption("--results-json")
    evidence_dir = config.getoption("--evidence-dir")
    if evidence_dir is None:
        base = Path(results).parent if results else Path(tempfile.mkdtemp(prefix="carbench-"))
        evidence_dir = str(base / "evidence")
    held = Path(evidence_dir)
    if held.is_dir() and any(held.iterdir()) and not config.option.collectonly:
        # a run's platform record and the terminal's disk live there: a second run in the same
        # place would judge the first one's frames as its own (seen: every window "twice")
        raise pytest.UsageError(
            f"--evidence-dir {held} already holds a run's evidence; give each run a new one"
        )
    target = config.getoption("--target")
    state = ConformanceState(
        target_path=None if target is None else Path(target),
        profile=config.getoption("--profile"),
        clock=config.getoption("--clock"),
        results_json=None if results is None else Path(results),
        evidence_dir=Path(evidence_dir).resolve(),
        operator=config.getoption("--operator"),
        ask=config.getoption("--ask"),
    )
    if state.target_path is not None:
        try:
            state.target = load_target(state.target_path)
        except TargetError as exc:
            # every test that needs the terminal errors with this; the run still reports
            state.target_error = str(exc)
    # the target's own records first, those given for the run over them
    files = [*(state.target.records if state.target else []), config.getoption("--answers")]
    try:
        known = recordable() if any(files) else None
        for file in filter(None, files):
            state.answers.update(load_answers(Path(file), known))
    except AnswersError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = state
    _current_state.set(state)


def clauses_of(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("clause"):
        ids += [str(a) for a in mark.args]
    return tuple(dict.fromkeys(ids))


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    missing = [item.nodeid for item in items if not clauses_of(item)]
    if missing:
        raise pytest.UsageError(
            "every conformance test names the clauses it judges "
            '(@pytest.mark.clause("ISC-2 §9.2", …)); missing on: ' + ", ".join(missing)
        )
    state = state_of(config)
    profile = PROFILES[state.profile]
    keep, drop = [], []
    for item in items:
        wanted = [str(a) for m in item.iter_markers("profile") for a in m.args]
        if profile.marked_only and item.get_closest_marker(profile.name) is None:
            drop.append(item)
            state.not_run.append(
                {
                    "nodeid": item.nodeid,
                    "clauses": list(clauses_of(item)),
                    "why": f"not in the {profile.name} profile: it needs more plant time than "
                    f"the profile gives a test on the wall clock ({profile.real_budget_s:.0f} s)",
                }
            )
        elif wanted and state.profile not in wanted:
            drop.append(item)
            state.not_run.append(
                {
                    "nodeid": item.nodeid,
                    "clauses": list(clauses_of(item)),
                    "why": f"runs in the {'/'.join(wanted)} profile only "
                    f"(this run: {state.profile})",
                }
            )
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # a terminal aged months ahead of the bench would skew every test after it
    items[:] = sorted(keep, key=lambda item: item.get_closest_marker("ages_terminal") is not None)


# ---- running tests ----------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # the test's log is open before its fixtures run
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = state_of(item.config)
    item.stash[PHASES] = {}
    log = evidence.TestLog(item.nodeid, state.evidence_dir)
    item.stash[LOG] = log
    evidence.begin(log)
    budget = PROFILES[state.profile].session_budget_s
    if budget is not None and time.perf_counter() - state.wall0 > budget:
        raise LeftOut(
            f"the {state.profile} profile's {budget / 60:.0f} minutes on the wall clock were "
            "spent before this test began"
        )
    requirements = [str(a) for m in item.iter_markers("requires") for a in m.args]
    if not requirements:
        return
    if state.target is None:
        raise NotApplicableUsage(state)
    implementation = state.target.implementation
    undeclared = [r for r in requirements if not state.target.declares(r)]
    if undeclared:
        from conformance.verdicts import NotApplicable  # noqa: PLC0415 - avoid a cycle

        notes = [implementation.notes[r] for r in undeclared if r in implementation.notes]
        why = f"the implementation statement of {state.target.name!r} does not declare " + (
            ", ".join(undeclared)
        )
        if notes:
            why += f" ({'; '.join(notes)})"
        raise NotApplicable(why, *clauses_of(item))


class NotApplicableUsage(RuntimeError):
    """A gated test without a target file: the bench was started wrongly (error)."""

    def __init__(self, state: ConformanceState) -> None:
        super().__init__(
            "gated tests need --target FILE (the implementation statement to check against)"
            + (
                f"; the target file failed to load: {state.target_error}"
                if state.target_error
                else ""
            )
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on the bench's loop (pytest has no async runner of its own)."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    state = state_of(pyfuncitem.config)
    state.loop().run(function(**kwargs), timeout=PROFILES[state.profile].test_wall_limit_s)
    return True


def _from_test_code(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """Whether the innermost frame of an AssertionError is the test's own or a suite's."""
    entries = excinfo.traceback
    if not entries:
        return False
    where = Path(str(entries[-1].path)).resolve()
    own = Path(str(item.path)).resolve()
    return where == own or SUITES_DIR in where.parents


def classify(
    item: pytest.Item, when: str, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> Phase:
    """The verdict one phase's outcome stands for (see the module text)."""
    if excinfo is None:
        return Phase(Verdict.PASS)
    error = excinfo.value
    text = str(error).strip() or type(error).__name__
    if isinstance(error, LeftOut):  # no verdict; shown as skipped, listed as not run
        return Phase(Verdict.NOT_APPLICABLE, text)
    if isinstance(error, VerdictException):
        return Phase(Verdict(error.verdict), text)
    if excinfo.errisinstance(pytest.skip.Exception):
        return Phase(Verdict.NOT_APPLICABLE, text.removeprefix("Skipped: "))
    if when == "call" and excinfo.errisinstance(pytest.fail.Exception):
        return Phase(Verdict.FAIL, text)
    if when == "call" and isinstance(error, AssertionError):
        if isinstance(error, ClauseFailure) or _from_test_code(item, excinfo):
            return Phase(Verdict.FAIL, _first_lines(text))
        return Phase(
            Verdict.ERROR,
            f"the bench failed an internal check ({type(error).__name__}): {_first_lines(text)}",
        )
    if isinstance(error, ClauseFailure):  # a fixture judged the terminal (e.g. it never booted)
        return Phase(Verdict.FAIL, _first_lines(text))
    return Phase(Verdict.ERROR, f"{type(error).__name__}: {_first_lines(text)}")


def _first_lines(text: str, lines: int = 12) -> str:
    kept = text.splitlines()[:lines]
    return "\n".join(kept)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    phases = item.stash.setdefault(PHASES, {})
    if call.excinfo is not None and isinstance(call.excinfo.value, LeftOut):
        item.stash[LEFT_OUT] = call.excinfo.value.message
    phase = classify(item, call.when, call.excinfo)
    phases[call.when] = phase
    if phase.verdict in (
        Verdict.NOT_APPLICABLE,
        Verdict.INCONCLUSIVE,
        Verdict.PENDING_OPERATOR,
    ):
        # pytest knows no such outcome: skipped (with the verdict in the reason) is the
        # neutral one; the results JSON has the verdict itself
        report.outcome = "skipped"
        location = item.reportinfo()
        report.longrepr = (
            str(location[0]),
            (location[1] or 0) + 1,
            f"{phase.verdict}: {phase.reason}",
        )
    if call.when == "teardown" and LEFT_OUT in item.stash:
        # no verdict: listed as not run, with why (it judged nothing)
        evidence.end()
        state = state_of(item.config)
        why = item.stash[LEFT_OUT]
        state.not_run.append({"nodeid": item.nodeid, "clauses": list(clauses_of(item)), "why": why})
        report.user_properties.append(("verdict", "not-run"))
    elif call.when == "teardown":
        verdict = overall(phases)
        report.user_properties.append(("verdict", verdict.verdict.value))
        report.user_properties.append(("clauses", "; ".join(clauses_of(item))))
        _record(item, verdict, report)
    return report


def overall(phases: dict[str, Phase]) -> Phase:
    """A test's verdict from its phases: setup's if it did not pass, else call's, unless the
    teardown failed (the bench did not clean up: error)."""
    setup = phases.get("setup", Phase(Verdict.PASS))
    if setup.verdict is not Verdict.PASS:
        return setup
    result = phases.get("call", Phase(Verdict.ERROR, "the test was not run"))
    teardown = phases.get("teardown", Phase(Verdict.PASS))
    if teardown.verdict is Verdict.ERROR and result.verdict is Verdict.PASS:
        return Phase(Verdict.ERROR, f"teardown: {teardown.reason}")
    return result


def _title(item: pytest.Item) -> str:
    """The first sentence of the test's docstring, whole (a docstring wraps its lines: the
    first line alone is cut mid-sentence), with the parameter it ran for."""
    doc = inspect.getdoc(getattr(item, "obj", None)) or ""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    sentence = re.split(r"(?<=[.;:])\s+(?=[A-Z(])", paragraph, maxsplit=1)[0]
    title = sentence or item.name.split("[", 1)[0].removeprefix("test_").replace("_", " ")
    parameter = item.name.partition("[")[2].rstrip("]")
    return f"{title} [{parameter}]" if parameter else title


def _suite(item: pytest.Item) -> str:
    return Path(str(item.path)).stem.removeprefix("test_")


def _record(item: pytest.Item, phase: Phase, report: pytest.TestReport) -> None:
    state = state_of(item.config)
    log = item.stash.get(LOG, None)
    evidence.end()
    # setup and call were logged already; the teardown's report is this one
    seconds = sum(state.durations.get(item.nodeid, [])) + report.duration
    state.records.append(
        TestRecord(
            nodeid=item.nodeid,
            title=_title(item),
            clauses=clauses_of(item),
            suite=_suite(item),
            verdict=phase.verdict,
            reason=phase.reason,
            seconds=round(seconds, 3),
            steps=tuple(log.steps) if log else (),
            attachments=tuple(log.attachments) if log else (),
            measurements=dict(log.measurements) if log else {},
            case=case_id(item),
        )
    )


def case_id(item: pytest.Item) -> str:
    """A stable test-case ID, as Matter's and OCTT's test plans have: a parametrised case's
    own (``TC-ISC2-7.1.2-OP``), else ``TC-<first clause>-<4 hex of the test's name>``, which
    stays as long as the test keeps its name and its first clause."""
    parameter = item.name.partition("[")[2].rstrip("]")
    if parameter.startswith("TC-"):
        return parameter
    first = next(iter(clauses_of(item)), "X §0")
    digest = hashlib.sha1(item.name.encode(), usedforsecurity=False).hexdigest()[:4]
    return f"TC-{compact_id(first)}-{digest}"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when in ("setup", "call"):
        state = _current_state.get(None)
        if state is not None:
            state.durations.setdefault(report.nodeid, []).append(report.duration)


# ---- the results file -------------------------------------------------------------------------


def _git_revision() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def _version() -> str:
    try:
        return importlib.metadata.version("carbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def manifest(state: ConformanceState) -> dict[str, Any]:
    target = state.target
    ended = time.time()
    out: dict[str, Any] = {
        "bench_version": _version(),
        "git_revision": _git_revision(),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs",
        "target_file": None if state.target_path is None else str(state.target_path),
        "target": None if target is None else target.name,
        "declaration": None if target is None else target.implementation.model_dump(mode="json"),
        "adapter": None if target is None else target.adapter.model_dump(mode="json"),
        # what the clauses leave open, as the oracle applied it (defaults unless the target
        # file sets them: parameters.tolerances)
        "tolerances": None
        if target is None
        else target.parameters.tolerances.model_dump(mode="json"),
        "target_error": state.target_error,
        "profile": state.profile,
        "clock": state.clock_mode,
        "started": datetime.fromtimestamp(state.started, UTC).isoformat(),
        "ended": datetime.fromtimestamp(ended, UTC).isoformat(),
        "wall_seconds": round(time.perf_counter() - state.wall0, 2),
        "test_seconds": round(sum(r.seconds for r in state.records), 2),
        "evidence_dir": str(state.evidence_dir),
        "not_run": state.not_run,
    }
    out.update(state.manifest)
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = state_of(session.config)
    with contextlib.suppress(Exception):  # fixtures are torn down by now; the loop must go
        state.close_loop()
    if state.results_json is not None:
        state.results_json.parent.mkdir(parents=True, exist_ok=True)
        RunResults(list(state.records), manifest(state)).save(state.results_json)

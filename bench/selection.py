"""What a run runs: whole suites (``--suite``), single tests (``--test``) or the tests that judge
given clauses (``--clause``), as the paths and node IDs pytest is given.

Tests and clauses are checked against the suites' own markers (``conformance.coverage_scan``)
before pytest starts, so a typo is one line naming it rather than a run that collects nothing.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from conformance.catalogue import Catalogue, canonical_id, load_catalogue
from conformance.coverage_scan import scan
from conformance.operator_records import case_id


class SelectionError(Exception):
    """A suite, test or clause that names nothing to run (one line saying which)."""


@dataclass(frozen=True)
class Selection:
    suites: tuple[str, ...] = ()  # ``upload`` → test_upload.py
    tests: tuple[str, ...] = ()  # node IDs as a run prints them (``conformance/suites/…::test``)
    clauses: tuple[str, ...] = ()  # clause IDs: every test whose marker names one

    @property
    def whole(self) -> bool:
        return not (self.suites or self.tests or self.clauses)

    def options(self) -> list[str]:
        """The command-line options that make this selection again."""
        out: list[str] = []
        for flag, values in (("--suite", self.suites), ("--test", self.tests)):
            for value in values:
                out += [flag, value]
        for clause in self.clauses:
            out += ["--clause", clause]
        return out


def suite_files(suites_dir: Path) -> dict[str, Path]:
    if not suites_dir.is_dir():
        raise SelectionError(f"no conformance suites at {suites_dir} (not built yet?)")
    available = {p.stem.removeprefix("test_"): p for p in sorted(suites_dir.glob("test_*.py"))}
    if not available:
        raise SelectionError(f"no suite files (test_*.py) in {suites_dir}")
    return available


def pytest_paths(suites_dir: Path, selection: Selection) -> list[str]:
    """Files and node IDs for pytest's command line: the whole directory when nothing is
    selected, otherwise the union of what each option names (each once, in order)."""
    available = suite_files(suites_dir)
    if selection.whole:
        return [str(suites_dir)]
    unknown = [n for n in selection.suites if n not in available]
    if unknown:
        raise SelectionError(
            f"unknown suite(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    paths = [str(available[n]) for n in selection.suites]
    if selection.tests or selection.clauses:
        found = scan([suites_dir])
        known = {_relative(test) for test in found.tests}
        catalogue = load_catalogue()
        cases = _record_cases(found.procedure_tests, catalogue)
        for test in selection.tests:
            name, _, parameter = _relative(test).partition("[")
            if name not in known:
                raise SelectionError(f"--test {test}: no such test in {suites_dir}")
            if name in cases and parameter.rstrip("]") not in cases[name]:
                near = difflib.get_close_matches(parameter.rstrip("]"), cases[name], n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise SelectionError(f"--test {test}: no such case of {name}{hint}")
            paths.append(str(suites_dir / _relative(test)))
        for clause in selection.clauses:
            clause_id = canonical_id(clause)
            tests = set(found.tests_by_clause.get(clause_id, ()))
            entry = catalogue.get(clause_id) if clause_id in catalogue else None
            if entry is not None and entry.procedure is not None:  # its record's own case
                tests |= {f"{t}[{case_id(entry)}]" for t in found.procedure_tests}
            if not tests and entry is None:
                near = difflib.get_close_matches(clause_id, [c.id for c in catalogue], n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise SelectionError(f"--clause {clause}: no such clause in the catalogue{hint}")
            if not tests:
                raise SelectionError(
                    f"--clause {clause}: no test judges it (a {entry.testability} "
                    f"{entry.kind}: `carbench clauses show '{clause}'` says how it is judged)"
                    if entry
                    else f"--clause {clause}: no test judges it"
                )
            paths += [str(suites_dir / _relative(t)) for t in sorted(tests)]
    return list(dict.fromkeys(paths))


def _record_cases(procedure_tests: set[str], catalogue: Catalogue) -> dict[str, set[str]]:
    """The records' test → the case IDs it runs (one per lab or declared clause)."""
    ids = {case_id(c) for c in catalogue if c.procedure is not None}
    return {_relative(t): ids for t in procedure_tests}


def _relative(test: str) -> str:
    """``conformance/suites/test_x.py::test_y`` (as runs and scans name it) or
    ``test_x.py::test_y`` → ``test_x.py::test_y`` (the suite files lie flat in their directory)."""
    file, sep, rest = test.partition("::")
    return Path(file).name + sep + rest

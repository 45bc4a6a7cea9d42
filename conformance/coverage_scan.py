"""Which clauses the conformance suites test, read from the source without running pytest.

``carbench clauses coverage`` needs the clause IDs each test names in its ``clause`` marker.
Collecting with pytest would import the suites, their fixtures and the bench (seconds, and a
terminal target); reading the files with ``ast`` takes milliseconds and needs nothing. The
price is that only markers written literally are seen, which is how the suites write them:

- ``@pytest.mark.clause("ISC-2 §9.2", "CSMT §7.6")`` on a test function or a test class;
- ``@clause("ISC-2 §9.2")`` after ``clause = pytest.mark.clause`` (or ``mark.clause`` after
  ``from pytest import mark``), and ``@mark.clause(...)``;
- ``pytestmark = pytest.mark.clause(...)`` or a list/tuple of marks, in a module or a class;
- ``marks=pytest.mark.clause(...)`` inside a ``pytest.param`` of ``@pytest.mark.parametrize``;
- arguments that are string literals, module-level string constants, or ``*NAMES`` of a
  module-level tuple/list of strings;
- in ``[pytest.param(…, marks=pytest.mark.clause(item)) for …, item in TABLE]``, a loop name
  over a module-level table (a tuple/list of tuples of strings): the test names every value
  of its column.

Anything else in a clause marker (an f-string, a call) is reported as a problem rather than
guessed. IDs are normalised with ``catalogue.canonical_id`` so spacing differences merge.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.catalogue import REPO, canonical_id

SUITES_DIR = REPO / "conformance" / "suites"


@dataclass(frozen=True)
class ScanProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Scan:
    """Clause ID → the tests naming it, every test found, and what could not be read."""

    tests_by_clause: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    tests: set[str] = field(default_factory=set)
    problems: list[ScanProblem] = field(default_factory=list)
    #: tests marked ``@pytest.mark.profile("full")``: the only profiles they run in
    profiles: dict[str, set[str]] = field(default_factory=dict)
    #: tests marked ``@pytest.mark.procedures``: they judge the catalogue's lab and declared
    #: clauses from records, their clause marks built from the catalogue
    procedure_tests: set[str] = field(default_factory=set)

    @property
    def untagged(self) -> list[str]:
        """Tests that name no clause (the plugin refuses to collect them)."""
        tagged = set().union(*self.tests_by_clause.values()) if self.tests_by_clause else set()
        return sorted(self.tests - tagged - self.procedure_tests)


def suite_files(paths: Iterable[Path]) -> list[Path]:
    """Test files under the given files/directories (pytest's default names); missing: none."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [
                p
                for p in sorted(path.rglob("*.py"))
                if p.name.startswith("test_") or p.name.endswith("_test.py")
            ]
        elif path.is_file():
            found.append(path)
    return found


class _Module:
    """What one module's top level says about pytest, the clause marker and constants."""

    def __init__(self, tree: ast.Module) -> None:
        self.pytest_names = {"pytest"}  # names bound to the pytest module
        self.mark_names: set[str] = set()  # names bound to pytest.mark
        self.clause_names: set[str] = set()  # names bound to pytest.mark.clause
        self.constants: dict[str, list[str]] = {}  # NAME = "…" or ("…", "…")
        self.tables: dict[str, list[list[str]]] = {}  # NAME = (("…", "…"), ("…", "…"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "pytest":
                        self.pytest_names.add(alias.asname or "pytest")
            elif isinstance(node, ast.ImportFrom) and node.module == "pytest":
                for alias in node.names:
                    if alias.name == "mark":
                        self.mark_names.add(alias.asname or "mark")
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                self._assignment(node)

    def _assignment(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if node.value is None or not names:
            return
        if self.is_clause_marker(node.value):
            self.clause_names.update(names)
            return
        strings = _strings(node.value)
        if strings is not None:
            for name in names:
                self.constants[name] = strings
        elif isinstance(node.value, ast.Tuple | ast.List):
            rows = [_strings(e) for e in node.value.elts if isinstance(e, ast.Tuple | ast.List)]
            table = [r for r in rows if r is not None]
            if table and len(table) == len(node.value.elts) and len({len(r) for r in table}) == 1:
                for name in names:
                    self.tables[name] = table

    def columns(self, generators: list[ast.comprehension]) -> dict[str, list[str]]:
        """Loop names of ``for a, b in TABLE`` (or ``for a in NAMES``) → the values each takes."""
        if len(generators) != 1 or not isinstance(generators[0].iter, ast.Name):
            return {}
        target, source = generators[0].target, generators[0].iter.id
        if isinstance(target, ast.Name) and source in self.constants:
            return {target.id: self.constants[source]}
        rows = self.tables.get(source)
        if not isinstance(target, ast.Tuple) or rows is None or len(target.elts) != len(rows[0]):
            return {}
        return {
            t.id: [row[i] for row in rows]
            for i, t in enumerate(target.elts)
            if isinstance(t, ast.Name)
        }

    def is_mark(self, node: ast.expr) -> bool:
        """``pytest.mark`` (or an alias of it)."""
        if isinstance(node, ast.Name):
            return node.id in self.mark_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "mark"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.pytest_names
        )

    def is_clause_marker(self, node: ast.expr) -> bool:
        """``pytest.mark.clause`` or a name bound to it (not yet called)."""
        if isinstance(node, ast.Name):
            return node.id in self.clause_names
        return (
            isinstance(node, ast.Attribute) and node.attr == "clause" and self.is_mark(node.value)
        )


def _strings(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if len(values) == len(node.elts) and all(isinstance(v, str) for v in values):
            return [str(v) for v in values]
    return None


class _Scanner:
    def __init__(self, path: Path, tree: ast.Module, scan: Scan) -> None:
        self.label = _label(path)
        self.module = _Module(tree)
        self.scan = scan
        self.bound: dict[str, list[str]] = {}  # loop names of the comprehension being read

    def problem(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", 0)
        self.scan.problems.append(ScanProblem(self.label, line, message))

    def clause_ids(self, expr: ast.expr) -> list[str]:
        """IDs of one mark expression if it is a clause mark, else nothing."""
        if not isinstance(expr, ast.Call):
            if self.module.is_clause_marker(expr):
                self.problem(expr, "a clause marker without IDs")
            return []
        if not self.module.is_clause_marker(expr.func):
            return []
        ids: list[str] = []
        for arg in expr.args:
            ids += self.argument(arg)
        if not ids and not expr.args:
            self.problem(expr, "a clause marker without IDs")
        return ids

    def argument(self, arg: ast.expr) -> list[str]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        name = arg.value if isinstance(arg, ast.Starred) else arg
        if isinstance(name, ast.Name) and name.id in self.bound:
            return self.bound[name.id]
        if isinstance(name, ast.Name) and name.id in self.module.constants:
            values = self.module.constants[name.id]
            if isinstance(arg, ast.Starred) or len(values) == 1:
                return values
        self.problem(arg, f"clause ID not written literally: {ast.unparse(arg)}")
        return []

    def marks_in(self, expr: ast.expr) -> list[str]:
        """Clause IDs in a decorator or a pytestmark value (a mark or a list of marks)."""
        if isinstance(expr, ast.List | ast.Tuple):
            return [i for e in expr.elts for i in self.marks_in(e)]
        ids = self.clause_ids(expr)
        if isinstance(expr, ast.Call) and not ids:
            ids = self.param_marks(expr)
        return ids

    def param_marks(self, node: ast.AST) -> list[str]:
        """``marks=pytest.mark.clause(…)`` of the ``pytest.param(…)`` below ``node`` (inside
        ``@pytest.mark.parametrize``), the loop names of a comprehension bound while it is read."""
        if isinstance(node, ast.keyword) and node.arg == "marks":
            return self.marks_in(node.value)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            outer = self.bound
            self.bound = outer | self.module.columns(node.generators)
            try:
                return self.param_marks(node.elt)
            finally:
                self.bound = outer
        return [i for child in ast.iter_child_nodes(node) for i in self.param_marks(child)]

    def is_named_mark(self, decorator: ast.expr, name: str) -> bool:
        """``@pytest.mark.<name>`` (uncalled)."""
        return (
            isinstance(decorator, ast.Attribute)
            and decorator.attr == name
            and self.module.is_mark(decorator.value)
        )

    def profiles_in(self, decorator: ast.expr) -> list[str]:
        """``@pytest.mark.profile("full", …)``: the profiles named (literal strings)."""
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            return []
        if decorator.func.attr != "profile" or not self.module.is_mark(decorator.func.value):
            return []
        return [
            a.value
            for a in decorator.args
            if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]

    def pytestmark(self, body: list[ast.stmt]) -> list[str]:
        ids: list[str] = []
        for node in body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
            ):
                ids += self.marks_in(node.value)
        return ids

    def tests(self, body: list[ast.stmt], prefix: str, inherited: list[str]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("test"):
                    name = f"{prefix}::{node.name}"
                    if any(self.is_named_mark(d, "procedures") for d in node.decorator_list):
                        self.scan.tests.add(name)
                        self.scan.procedure_tests.add(name)
                        continue
                    own = [i for d in node.decorator_list for i in self.marks_in(d)]
                    self.record(name, inherited + own)
                    profiles = {p for d in node.decorator_list for p in self.profiles_in(d)}
                    if profiles:
                        self.scan.profiles[name] = profiles
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                own = [i for d in node.decorator_list for i in self.marks_in(d)]
                own += self.pytestmark(node.body)
                self.tests(node.body, f"{prefix}::{node.name}", inherited + own)

    def record(self, test: str, ids: list[str]) -> None:
        self.scan.tests.add(test)
        for clause_id in ids:
            self.scan.tests_by_clause[canonical_id(clause_id)].add(test)

    def run(self, tree: ast.Module) -> None:
        self.tests(tree.body, self.label, self.pytestmark(tree.body))


def _label(path: Path) -> str:
    """Test names as pytest's node IDs: relative to the repository when the file is in it."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


def scan(paths: Iterable[Path] = (SUITES_DIR,)) -> Scan:
    """Read every test file under ``paths``; a missing or empty directory gives an empty scan."""
    result = Scan()
    for path in suite_files(paths):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError) as exc:
            line = getattr(exc, "lineno", None) or 0
            result.problems.append(ScanProblem(_label(path), line, f"not read: {exc}"))
            continue
        _Scanner(path, tree, result).run(tree)
    result.tests_by_clause = dict(result.tests_by_clause)
    return result


def scan_clause_markers(paths: Iterable[Path] = (SUITES_DIR,)) -> dict[str, set[str]]:
    """Clause ID → names of the tests whose markers name it (``path::Class::test``)."""
    return scan(paths).tests_by_clause

"""``carbench clauses``: list, show and check the clause catalogue, and the suites' coverage.

The catalogue lives in ``fixtures/clauses/`` (``conformance.catalogue``); coverage reads the
``clause`` markers of ``conformance/suites/`` without running them (``conformance.coverage_scan``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from conformance import catalogue as cat
from conformance.coverage_scan import SUITES_DIR, Scan, scan
from conformance.operator_records import case_id

_DIR = click.Path(file_okay=False, path_type=Path)


def _console() -> Console:
    # Made per command so it writes to the stream click (or CliRunner) has in place now.
    return Console(file=sys.stdout, soft_wrap=False, highlight=False)


def _load(ctx: click.Context) -> cat.Catalogue:
    directory: Path = ctx.obj["catalogue_dir"]
    try:
        return cat.load_catalogue(directory)
    except cat.CatalogueInvalid as exc:
        lines = "\n".join(f"  {e}" for e in exc.errors)
        raise click.ClickException(f"the clause catalogue is invalid:\n{lines}") from None


def clause_json(clause: cat.Clause) -> dict[str, Any]:
    return {"standard": clause.standard, "parent": clause.parent, **clause.model_dump()}


@click.group()
@click.option(
    "--catalogue",
    "catalogue_dir",
    type=_DIR,
    default=cat.CATALOGUE_DIR,
    show_default=True,
    help="Directory of the catalogue's YAML files.",
)
@click.pass_context
def clauses(ctx: click.Context, catalogue_dir: Path) -> None:
    """The clause catalogue of the five standards: list, show, check, coverage."""
    ctx.ensure_object(dict)
    ctx.obj["catalogue_dir"] = catalogue_dir


@clauses.command("list")
@click.option("--standard", type=click.Choice(cat.STANDARDS), help="Only this standard.")
@click.option("--area", type=click.Choice(cat.AREAS))
@click.option("--testability", type=click.Choice(cat.TESTABILITIES))
@click.option("--level", type=click.Choice(cat.LEVELS))
@click.option("--headings", is_flag=True, help="Also headings and annexes (no requirement).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of clauses.")
@click.pass_context
def list_clauses(
    ctx: click.Context,
    standard: str | None,
    area: str | None,
    testability: str | None,
    level: str | None,
    headings: bool,
    as_json: bool,
) -> None:
    """List clauses, filtered; without --headings only clauses and items (requirements)."""
    catalogue = _load(ctx)
    selected = catalogue.filter(
        standard=standard,
        area=area,
        testability=testability,
        level=level,
        requirements_only=not headings,
    )
    if as_json:
        click.echo(json.dumps([clause_json(c) for c in selected], ensure_ascii=False, indent=2))
        return
    table = Table(show_lines=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    for column in ("Level", "Class", "Area", "Summary"):
        table.add_column(column, overflow="fold")
    for clause in selected:
        summary = clause.summary or f"[dim]{escape(clause.title or clause.kind)}[/dim]"
        table.add_row(
            escape(clause.id),
            clause.level or "",
            clause.testability or "",
            clause.area or "",
            summary if clause.summary is None else escape(summary),
        )
    console = _console()
    console.print(table)
    counts = {t: sum(c.testability == t for c in selected) for t in cat.TESTABILITIES}
    breakdown = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
    console.print(f"{len(selected)} entries" + (f" ({breakdown})" if breakdown else ""))


@clauses.command("show")
@click.argument("clause_id")
@click.option("--suites", type=_DIR, default=SUITES_DIR, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, clause_id: str, suites: Path, as_json: bool) -> None:
    """Everything the catalogue says about one clause, with the tests that name it."""
    catalogue = _load(ctx)
    try:
        clause = catalogue.get(clause_id)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    found = scan([suites])
    tests = sorted(found.tests_by_clause.get(clause.id, set()))
    if clause.procedure is not None:  # its record is a case of the records' test
        tests += sorted(f"{t}[{case_id(clause)}]" for t in found.procedure_tests)
    children = [c.id for c in catalogue.children(clause.id)]
    if as_json:
        record = clause_json(clause) | {"children": children, "tests": tests}
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    console = _console()
    heading = f"[bold]{escape(clause.id)}[/bold]"
    if clause.title:
        heading += f"  {escape(clause.title)}"
    console.print(heading)
    facts: list[str] = [clause.kind]
    if clause.level:
        facts.append(f"{clause.level} ({clause.modal})" if clause.modal else clause.level)
    facts += [x for x in (clause.testability, clause.area) if x]
    console.print(" · ".join(facts))
    for quote in clause.text:
        console.print(f"  「{escape(quote)}」")
    if clause.summary:
        console.print(f"\n{escape(clause.summary)}")
    if clause.parameters:
        console.print("\n[bold]Parameters[/bold]")
        for p in clause.parameters:
            unit = f" {p.unit}" if p.unit else ""
            note = f"  ({escape(p.note)})" if p.note else ""
            console.print(f"  {p.name} {p.op} {escape(str(p.value))}{unit}{note}")
    if clause.procedure:
        kind = "Declaration" if clause.testability == "declared" else "Operator procedure"
        console.print(f"\n[bold]{kind}[/bold]")
        for n, step in enumerate(clause.procedure.steps, 1):
            console.print(f"  {n}. {escape(step)}")
        console.print(f"  Passes when: {escape(clause.procedure.observe)}")
        console.print(f"\n[bold]Its record[/bold], test case {case_id(clause)} (docs/lab-guide.md)")
        console.print("  result: yes | no | n/a (with a note saying why it does not apply)")
        by_name = {p.name: p for p in clause.parameters}
        for name in clause.procedure.values:
            shape = "[low, high]: the range shown" if by_name[name].op == "between" else "a number"
            console.print(f"  values: {{{name}: {shape}}}  (needed for yes and no alike)")
        if clause.procedure.evidence:
            console.print("  evidence: FILE (a photo, a test report), needed for yes and no")
        others = [p.name for p in clause.parameters if p.name not in clause.procedure.values]
        if others:
            console.print(f"  ({', '.join(others)}: judged by the operator's yes or no)")
    if clause.judged_in_part:
        console.print("\n[bold]Judged in part[/bold]")
        console.print(f"  Not judged: {escape(clause.judged_in_part)}")
    _show_links(console, catalogue, clause, children)
    for title, lines in (("Unclear", clause.unclear), ("Notes", [clause.notes or ""])):
        if any(lines):
            console.print(f"\n[bold]{title}[/bold]")
            for line in lines:
                console.print(f"  {escape(line)}")
    if clause.data:
        console.print("\n[bold]Data[/bold]")
        for row in clause.data:
            console.print(f"  {escape(row)}")
    console.print("\n[bold]Tests[/bold]")
    console.print("  " + ("\n  ".join(tests) if tests else f"none in {suites}"))


def _show_links(
    console: Console, catalogue: cat.Catalogue, clause: cat.Clause, children: list[str]
) -> None:
    def brief(clause_id: str) -> str:
        other = catalogue.get(clause_id)
        return escape(f"{clause_id}: {other.summary or other.title or other.kind}")

    sections = [
        ("Part of", [brief(clause.parent)] if clause.parent else []),
        ("Items and sub-clauses", [brief(c) for c in children]),
        ("Cross-references", [brief(r) for r in clause.cross_refs]),
        ("Conflicts", [escape(f"{k.id}: {k.why}") for k in clause.conflicts]),
    ]
    for title, lines in sections:
        if lines:
            console.print(f"\n[bold]{title}[/bold]")
            for line in lines:
                console.print(f"  {line}")


@clauses.command("check")
@click.option(
    "--seeds",
    type=_DIR,
    default=cat.SEEDS_DIR,
    show_default=True,
    help="The standards' text; quotes are checked against it when it exists.",
)
@click.pass_context
def check(ctx: click.Context, seeds: Path) -> None:
    """Validate the catalogue (and its quotes against the seeds); exit 1 listing every error."""
    catalogue = _load(ctx)
    if seeds.is_dir():
        errors = cat.check_quotes(catalogue, seeds)
        if errors:
            lines = "\n".join(f"  {e}" for e in errors)
            raise click.ClickException(f"quotes not found in the seeds:\n{lines}")
        quotes = f"quotes found in {seeds}"
    else:
        quotes = f"quotes not checked: no seeds at {seeds}"
    counts = ", ".join(
        f"{s} {len(catalogue.filter(standard=s, requirements_only=True))}" for s in cat.STANDARDS
    )
    click.echo(f"catalogue valid: {len(catalogue)} entries; requirements {counts}; {quotes}")


def coverage_json(coverage: cat.Coverage, found: Scan) -> dict[str, Any]:
    return {
        "standards": [
            {
                "standard": s.standard,
                "auto": s.auto,
                "covered": s.covered,
                "percent": s.percent,
                "untested": s.untested,
                "lab_procedures": s.lab,
                "declarations": s.declared,
                "not_applicable": s.not_applicable,
                "without_procedure": s.without_procedure,
                "with_procedure_percent": s.with_procedure_percent,
                "judged_in_part": s.partial,
            }
            for s in coverage.standards
        ],
        "unknown": {i: sorted(found.tests_by_clause.get(i, ())) for i in coverage.unknown},
        "headings": coverage.headings,
        "not_auto": coverage.not_auto,
        "tests": len(found.tests),
        "untagged_tests": found.untagged,
        "problems": [str(p) for p in found.problems],
    }


@clauses.command("coverage")
@click.option(
    "--suites",
    type=_DIR,
    multiple=True,
    default=[SUITES_DIR],
    show_default=True,
    help="Directory (or file) of conformance tests; repeatable.",
)
@click.option(
    "--standard", "standards", type=click.Choice(cat.STANDARDS), multiple=True, help="Only these."
)
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    help="Exit 1 if a shown standard with auto clauses is below this percentage.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def coverage(
    ctx: click.Context,
    suites: tuple[Path, ...],
    standards: tuple[str, ...],
    fail_under: float | None,
    as_json: bool,
) -> None:
    """Auto clauses with at least one test, per standard, and the untested ones.

    A test covers exactly the IDs its clause markers name: an item does not cover its clause,
    nor a clause its items; headings are not counted.
    """
    catalogue = _load(ctx)
    found = scan(suites)
    result = catalogue.coverage(found.tests_by_clause)
    shown = [s for s in result.standards if not standards or s.standard in standards]
    if as_json:
        record = coverage_json(result, found)
        keep = {s.standard for s in shown}
        record["standards"] = [r for r in record["standards"] if r["standard"] in keep]
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
    else:
        _print_coverage(shown, result, found, suites)
    below = [s for s in shown if s.percent is not None and s.percent < (fail_under or 0)]
    if fail_under is not None and below:
        names = ", ".join(f"{s.standard} {s.percent:.1f} %" for s in below)
        raise click.ClickException(f"coverage under {fail_under:g} %: {names}")


def _print_coverage(
    shown: list[cat.StandardCoverage],
    result: cat.Coverage,
    found: Scan,
    suites: tuple[Path, ...],
) -> None:
    console = _console()
    table = Table(header_style="bold")
    table.add_column("Standard")
    columns = ("Auto clauses", "Covered", "%", "Lab", "Declared", "n/a", "With a procedure %")
    for column in columns:
        table.add_column(column, justify="right")
    for s in shown:
        percent = "—" if s.percent is None else f"{s.percent:.1f}"
        whole = s.with_procedure_percent
        table.add_row(
            s.standard,
            str(s.auto),
            str(s.covered),
            percent,
            str(s.lab),
            str(s.declared),
            str(s.not_applicable),
            "—" if whole is None else f"{whole:.1f}",
        )
    console.print(table)
    console.print(
        "A procedure: a test (auto), an operator's steps (lab) or a declaration to record "
        "(declared); n/a clauses bind the enterprise, not the terminal."
    )
    where = ", ".join(str(p) for p in suites)
    console.print(f"{len(found.tests)} tests in {where}")
    for s in shown:
        if s.partial:
            console.print(f"\n[bold]{s.standard} judged in part[/bold] ({len(s.partial)}; "
                          "`carbench clauses show ID` says what is not judged)")  # fmt: skip
            console.print(Padding(Columns([escape(i) for i in s.partial], padding=(0, 3)), (0, 2)))
        if s.without_procedure:
            console.print(f"\n[bold]{s.standard} lab/declared without a procedure[/bold]")
            console.print(Padding(Columns([escape(i) for i in s.without_procedure]), (0, 2)))
        if s.untested:
            console.print(f"\n[bold]{s.standard} untested[/bold] ({len(s.untested)})")
            # Columns keep each ID on one line ("ISC-2 §7.1.1 a)" never splits at its spaces)
            console.print(Padding(Columns([escape(i) for i in s.untested], padding=(0, 3)), (0, 2)))
    warnings = [
        ("Named but not in the catalogue", result.unknown),
        ("Named headings (they cover nothing: name their items)", result.headings),
        ("Named lab/declared/n/a clauses (not counted)", result.not_auto),
        ("Tests naming no clause", found.untagged),
        ("Markers not read", [str(p) for p in found.problems]),
    ]
    for title, items in warnings:
        if items:
            console.print(f"\n[bold yellow]{title}[/bold yellow] ({len(items)})")
            for item in items:
                console.print(f"  {escape(item)}")

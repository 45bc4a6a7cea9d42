"""``carbench scenario``: check a scenario file, or run it with a progress bar (virtual and
wall time) and write ``reports/<run>/``."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import click

from conformance.scenario.schema import Scenario, ScenarioError, load_scenario


def check(path: Path, seed: int | None = None, overrides: Sequence[str] = ()) -> Scenario:
    try:
        return load_scenario(path, seed=seed, overrides=overrides)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None


def _counted(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def describe(scenario: Scenario) -> str:
    from conformance.scenario.timeline import expand  # noqa: PLC0415

    events = expand(scenario)
    cuts = sum(e.action == "power_off" for e in events)
    centres = ", ".join(c.name for c in scenario.platforms.centres)
    return (
        f"{scenario.name}: fleet {scenario.fleet.stem} (meters: {scenario.meters}), "
        f"{scenario.duration} (+{scenario.drain} "
        f"drain), seed {scenario.seed}, {len(events)} events ({_counted(cuts, 'power cut')}), "
        f"centres {centres}, terminal synchronous={scenario.terminal.synchronous}"
    )


def run(scenario: Scenario, out: Path | None, quiet: bool) -> int:
    """Run it; the exit status is 0 only when nothing was lost, duplicated or unexpected and
    every operator request was answered as expected."""
    from rich.progress import BarColumn, Progress, TextColumn  # noqa: PLC0415

    from bench.scenario.engine import RunDirectoryError, run_scenario  # noqa: PLC0415
    from reference_terminal.runtime import COLLECTOR_THRESHOLDS  # noqa: PLC0415

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = out or Path("reports") / f"{scenario.name}-seed{scenario.seed}-{stamp}"
    wall0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("virtual {task.fields[virtual]} of {task.fields[span]}"),
        TextColumn("wall {task.fields[wall]}"),
        TextColumn("{task.fields[what]}"),
        disable=quiet,
    ) as bar:
        task = bar.add_task(
            scenario.name, total=1.0, virtual="0:00:00", span="", wall="0 s", what=""
        )

        def show(done: float, total: float, what: str) -> None:
            bar.update(
                task,
                completed=done / total if total else 1.0,
                virtual=str(timedelta(seconds=int(done))),
                span=str(timedelta(seconds=int(total))),
                wall=f"{time.perf_counter() - wall0:.0f} s",
                what=what,
            )

        # The collector keeps the terminal's thresholds until the run's objects are gone:
        # CPython's, put back inside the run (interpreter.py), set off a full pass over a
        # 48-hour run's millions of live objects (1.2 s).
        thresholds = gc.get_threshold()
        gc.set_threshold(*COLLECTOR_THRESHOLDS)
        try:
            outcome = asyncio.run(run_scenario(scenario, out, progress=show))
        except RunDirectoryError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            gc.set_threshold(*thresholds)
    verdict = "PASS" if outcome.passed else "FAIL"
    click.echo(
        f"{verdict} {scenario.name} seed {outcome.seed}: expected {outcome.expected}, "
        f"received {outcome.received}, lost {outcome.lost}, duplicated {outcome.duplicated}, "
        f"unexpected {outcome.unexpected}, wrong value {outcome.wrong_value}, gaps "
        f"{outcome.gaps}; {_counted(outcome.power_cuts, 'power cut')} "
        f"({outcome.power_cut_mode}), meters: {outcome.meters}; "
        f"{outcome.virtual_seconds:.0f} virtual s in "
        f"{outcome.wall_seconds:.1f} wall s"
    )
    for name, centre in outcome.centres.items():
        for key in centre.first_lost[:3]:
            click.echo(f"  {name} lost: {key}")
        for key in centre.first_wrong_value[:3]:
            click.echo(f"  {name} wrong value: {key}")
    for step in outcome.failed_steps:
        click.echo(f"  step failed: {step}")
    click.echo(f"report: {out}")
    return 0 if outcome.passed else 1

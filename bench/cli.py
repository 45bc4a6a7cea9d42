"""The ``carbench`` command."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bench import cli_options
from conformance.profiles import PROFILES

# Each command imports what it needs when it runs: the scenario engine, the terminal and the
# simulators take seconds to import, which `carbench decode` or `--help` has no use for.
# ruff: noqa: PLC0415


class LazyGroup(click.Group):
    """A group some of whose commands live in modules of their own (``lazy``: name ->
    ``module:attribute``), imported when one of them runs or help lists them."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = where.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(
    cls=LazyGroup,
    lazy={
        "account": "bench.account_cmd:account_command",
        "clauses": "bench.clauses_cmd:clauses",
        "inventory": "bench.inventory_cmd:inventory_command",
        "mutations": "bench.mutation_cmd:mutations_command",
        "answer": "bench.answer_cmd:answer_command",
        "rerun": "bench.rerun_cmd:rerun_command",
        "diff": "bench.diff_cmd:diff_command",
        "dossier": "bench.dossier_cmd:dossier_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="carbench", message="%(prog)s %(version)s")
def main() -> None:
    """carbench: conformance bench for carbon-emission monitoring terminals."""


@main.command()
@click.argument("protocol", type=click.Choice(["hj212", "dlt645", "cjt188"]))
@click.argument("frames", nargs=-1, required=True)
@click.option(
    "--lenient-modbus-crc", is_flag=True, help="HJ 212: accept CRC-16/MODBUS in wire order."
)
@click.option(
    "--allow-oversize", is_flag=True, help="HJ 212: accept data segments over 1024 bytes."
)
@click.option("--allow-unknown-cn", is_flag=True, help="HJ 212: accept CN codes not in 表 9.")
@click.option(
    "--edition",
    help="Force the edition: HJ 212 2005|2017|2025, DL/T 645 2007|1997 (default: inferred).",
)
@click.option("--unit-first", is_flag=True, help="CJ/T 188: the unit byte precedes each value.")
@click.option("--pretty", is_flag=True, help="Indent the JSON.")
def decode(
    protocol: str,
    frames: tuple[str, ...],
    lenient_modbus_crc: bool,
    allow_oversize: bool,
    allow_unknown_cn: bool,
    edition: str | None,
    unit_first: bool,
    pretty: bool,
) -> None:
    """Decode captured frames and print one JSON object per frame.

    FRAMES are HJ 212 text or meter hex; '-' reads one frame per line from standard input.
    Exits 1 if any frame is broken; the JSON says what is wrong.
    """
    from bench.decode import DecodeSettings, decode_one
    from protocols import hj212

    try:
        hj_options = hj212.DecodeOptions(
            lenient_modbus_crc=lenient_modbus_crc,
            allow_oversize=allow_oversize,
            allow_unknown_cn=allow_unknown_cn,
            edition=hj212.EDITIONS[edition] if protocol == "hj212" and edition else None,
        )
    except KeyError:
        raise click.BadParameter(f"HJ 212 editions: {', '.join(hj212.EDITIONS)}") from None
    settings = DecodeSettings(hj_options, edition if protocol == "dlt645" else None, unit_first)
    texts: list[str] = []
    for frame in frames:
        if frame == "-":
            texts += [line for line in sys.stdin.read().splitlines() if line.strip()]
        else:
            texts.append(frame)
    all_ok = True
    for text in texts:
        result, ok = decode_one(protocol, text, settings)
        all_ok &= ok
        click.echo(json.dumps(result, ensure_ascii=False, indent=2 if pretty else None))
        if not ok:
            error = result.get("error") or result.get("content_error") or {}
            click.echo(f"carbench decode: {error.get('message', 'broken frame')}", err=True)
    sys.exit(0 if all_ok else 1)


@main.command()
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where to write the self-check report.",
)
def selfcheck(report_dir: Path) -> None:
    """Decode every public example frame and check each against its recorded verdict."""
    from bench.selfcheck import run_selfcheck

    sys.exit(run_selfcheck(report_dir))


@main.group()
def fleet() -> None:
    """Simulated plants and their meter fleets."""


@fleet.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fleet_check(path: Path) -> None:
    """Validate a fleet file; errors name the field and the line."""
    from bench import fleet_cmd

    click.echo(fleet_cmd.describe(fleet_cmd.check(path)))


@fleet.command("up")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--manual-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write manual-entry CSV files here.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the plant's SQLite databases (SQL historians) here (default: a temporary "
    "directory removed at exit).",
)
def fleet_up(path: Path, manual_dir: Path | None, work_dir: Path | None) -> None:
    """Start every meter of a fleet, print where each listens, serve until Ctrl-C."""
    from bench import fleet_cmd

    spec = fleet_cmd.check(path)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(fleet_cmd.serve(spec, manual_dir, work_dir))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@main.group()
def platform() -> None:
    """Platform simulators: HJ 212 and HTTPS data centres."""


@platform.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def platform_check(path: Path) -> None:
    """Validate a platform file; errors name the field."""
    from bench import platform_cmd

    click.echo(platform_cmd.describe(platform_cmd.check(path)))


@platform.command("up")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--record", "record_url", help="SQLAlchemy URL of the record (overrides the file).")
def platform_up(path: Path, record_url: str | None) -> None:
    """Start every centre of a platform file, print where each listens, serve until Ctrl-C."""
    from bench import platform_cmd

    spec = platform_cmd.check(path)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(platform_cmd.serve(spec, record_url))
    click.echo("stopped", err=True)


@main.group()
def scenario() -> None:
    """Scenarios: a fleet, a terminal, platforms and a timeline of faults, in virtual time."""


_SCENARIO = click.Path(exists=True, dir_okay=False, path_type=Path)


_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting of the file, e.g. terminal.synchronous=OFF (repeatable).",
)


@scenario.command("check")
@click.argument("path", type=_SCENARIO)
@click.option("--seed", type=int, help="Override the file's seed.")
@_SET
def scenario_check(path: Path, seed: int | None, overrides: tuple[str, ...]) -> None:
    """Validate a scenario file and show its timeline; errors name the field."""
    from bench import scenario_cmd

    click.echo(scenario_cmd.describe(scenario_cmd.check(path, seed, overrides)))


@scenario.command("run")
@click.argument("path", type=_SCENARIO)
@click.option("--seed", type=int, help="Override the file's seed.")
@_SET
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default reports/<scenario>-seed<N>-<time>).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def scenario_run(
    path: Path, seed: int | None, overrides: tuple[str, ...], out: Path | None, quiet: bool
) -> None:
    """Run a scenario; exit 0 only when nothing was lost, duplicated or unexpected."""
    from bench import scenario_cmd

    sys.exit(scenario_cmd.run(scenario_cmd.check(path, seed, overrides), out, quiet))


@main.command("proxy")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8474, show_default=True, help="Toxiproxy's API port.")
@click.option("--seed", default=0, show_default=True, help="Seed of the toxics' randomness.")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Toxiproxy -config JSON: proxies to create at start.",
)
def proxy(host: str, port: int, seed: int, config: Path | None) -> None:
    """A Toxiproxy-compatible TCP fault proxy with its HTTP API, until Ctrl-C."""
    from simulators.network import serve

    serve(host, port, seed=seed, config=config, announce=click.echo)


@main.command("run")
@click.option(
    "--target",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Target file: implementation statement and test parameters (fixtures/targets/*.yaml).",
)
@click.option(
    "--profile",
    type=click.Choice(tuple(PROFILES)),
    default="quick",
    show_default=True,
    help="; ".join(p.help for p in PROFILES.values()),
)
@click.option("--suite", "suites", multiple=True, help="Run only this suite (repeatable).")
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="NODEID",
    help="Run only this test, named as a run prints it (repeatable).",
)
@click.option(
    "--clause",
    "clauses",
    multiple=True,
    metavar="ID",
    help="Run only the tests that judge this clause, e.g. 'ISC-2 §9.4' (repeatable).",
)
@click.option(
    "--select",
    "-k",
    metavar="EXPR",
    help="Run only the tests whose names match this pytest -k expression.",
)
@click.option(
    "--clock", type=click.Choice(["virtual", "real"]), default="virtual", show_default=True
)
@cli_options.out
@cli_options.key
@cli_options.answers
@cli_options.operator
@click.option("--lab", default="", help="The laboratory that runs the test (the report's header).")
@cli_options.ask
@cli_options.suites_dir
@cli_options.plugin
def run_cmd(
    target: Path,
    profile: str,
    suites: tuple[str, ...],
    tests: tuple[str, ...],
    clauses: tuple[str, ...],
    select: str | None,
    clock: str,
    out: Path | None,
    key: Path | None,
    answers: Path | None,
    operator: str,
    lab: str,
    ask: bool | None,
    suites_dir: Path | None,
    plugin: str | None,
) -> None:
    """Run the conformance suites against a target; write report.html, a signed results.json,
    junit.xml and allure-results/. Exit 0 only when every applicable mandatory clause passes,
    1 when one does not, 2 when the bench could not judge."""
    from bench import run_cmd as job

    opts = job.RunOptions(target, profile, suites, clock, out=out, key=key, select=select)
    opts = dataclasses.replace(opts, tests=tests, clauses=clauses, answers=answers)
    opts = dataclasses.replace(opts, operator=operator, lab=lab, ask=cli_options.at_terminal(ask))
    if suites_dir is not None:
        opts = dataclasses.replace(opts, suites_dir=suites_dir)
    if plugin is not None:
        opts = dataclasses.replace(opts, plugin=plugin)
    sys.exit(job.main(opts))


@main.command("verify")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The SM2 public key (PEM) that must have signed it.",
)
@click.option("--content-only", is_flag=True, help="Skip checking the run's files beside it.")
def verify_cmd(results: Path, pubkey: Path | None, content_only: bool) -> None:
    """Check a results.json: SM3 hash, SM2 signature and the SM3 of the run's files."""
    from bench.report import verify_cmd as job

    sys.exit(job.main(results, pubkey, content_only))


def entry() -> None:
    """The console script: :func:`main`, then leave without tearing the heap down object by
    object (mypy ends the same way): every file, child process and mount a command opened is
    closed by the time it returns, and freeing a 48-hour scenario's millions of objects at
    exit took 2.5 s."""
    try:
        main.main()
    except SystemExit as exc:
        status = exc.code
    else:
        status = 0
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status or 0)

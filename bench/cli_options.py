"""Command-line options several ``carbench`` commands share, written once."""

from __future__ import annotations

import sys
from pathlib import Path

import click

#: ``--answers FILE``: operator records and vendor declarations of the lab and declared clauses
answers = click.option(
    "--answers",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Operator records and vendor declarations (YAML) for the lab and declared clauses.",
)
#: ``--operator NAME``: who runs the test and records its operator steps
operator = click.option("--operator", default="", help="Who runs the test and records its steps.")
#: ``--key FILE``: the SM2 key that signs a run (and everything made from it)
key = click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SM2 private key (PEM) that signs the run (default: the bench key, made on first use).",
)
#: ``--out DIR``: where a new run goes
out = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default reports/<target>-<profile>-<UTC time>).",
)
#: ``--ask/--no-ask``: ask a person at the terminal for the records the answers lack
ask = click.option(
    "--ask/--no-ask",
    default=None,
    help="Ask at the terminal for records the answers lack (default: when run at a terminal).",
)
#: the bench's own tests run a stand-in suite directory and plugin (hidden from users)
suites_dir = click.option("--suites-dir", type=click.Path(path_type=Path), hidden=True)
plugin = click.option("--plugin", hidden=True, help="pytest plugin module ('' for none).")


def at_terminal(asked: bool | None) -> bool:
    """``--ask``/``--no-ask`` as given, else whether a person is at the terminal."""
    return sys.stdin.isatty() if asked is None else asked

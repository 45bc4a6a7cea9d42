"""Command-line options several ``carbench`` commands share, written once."""

from __future__ import annotations

import sys
from pathlib import Path

import click

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

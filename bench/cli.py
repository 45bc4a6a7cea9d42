"""The ``carbench`` command."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """carbench: conformance bench for carbon-emission monitoring terminals."""

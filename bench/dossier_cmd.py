"""``carbench dossier RUN_DIR``: the signed dossier of a sealed run for a certifier,
``dossier/dossier.html`` and ``dossier/dossier.pdf`` (``bench.report.dossier``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench import cli_options
from bench.report import catalogue_view, dossier, signing
from bench.report.summary import EXIT_BENCH_ERROR, tested_clause_ids
from conformance.results import RunResults


@click.command("dossier")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@cli_options.key
def dossier_command(run_dir: Path, key: Path | None) -> None:
    """Make the signed dossier (HTML and PDF) of a finished run for a certifier."""
    try:
        document = signing.read_sealed(run_dir)
        private, _, _ = signing.load_or_create_key(key)
        if signing.fingerprint(private.public_key()) != document["integrity"]["fingerprint"]:
            raise dossier.DossierError(
                "the key given is not the one that signed the run: pass that one with --key"
            )
        results = RunResults.from_json(document)
        catalogue = catalogue_view.load(tested_clause_ids(results))
        page, pdf = dossier.make(run_dir, document, catalogue, private)
    except (signing.VerificationError, signing.SigningError, dossier.DossierError) as exc:
        click.echo(f"carbench dossier: {exc}", err=True)
        sys.exit(EXIT_BENCH_ERROR)
    sizes = f"{page.stat().st_size // 1024} KiB, {pdf.stat().st_size // 1024} KiB"
    click.echo(f"dossier: {page}, {pdf} ({sizes}), each signed beside it (.sig, .sig.der)")

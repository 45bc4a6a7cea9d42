"""``carbench inventory PLANT DATA --period P``: the inventory report from a plant file and its
meters' per-minute data (docs/accounting.md, "Statistics, alarms and the inventory report").

PLANT is the plant's accounting description (YAML: enterprise, boundary, sources bound to
meters, intensity bases, the meter ledger); DATA the meters' activity per minute (CSV or
Parquet). The format of both is in :mod:`reference_terminal.accounting.report.plant`;
``fixtures/accounting/report/`` has an example. The report (GB/T 32150 structure, with the meter
ledger and traceability) is written as HTML, PDF and JSON to ``--out``; one JSON line on stdout
says where, with the reported totals. Errors name the file and the field, exit status 1.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click

from bench.account_cmd import library_option
from protocols.smcrypto import Sm3
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.report.build import build_report, report_data
from reference_terminal.accounting.report.html import render_html
from reference_terminal.accounting.report.pdf import render_pdf
from reference_terminal.accounting.report.plant import load_data, load_plant
from reference_terminal.accounting.statistics import Span

FORMATS = ("html", "pdf", "json")


def _sm3(path: Path) -> str:
    digest = Sm3()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@click.command("inventory")
@click.argument("plant", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--period",
    required=True,
    help="The report's period: a year (2024), a quarter (2024-Q2) or a month (2024-03).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write inventory-<period>.{html,pdf,json} to.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    help="Formats to write (repeatable; default: all three).",
)
@library_option
@click.option(
    "--issued",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The report's date (calibration reminders count from it); default: the period's end.",
)
@click.option(
    "--places",
    type=click.IntRange(0, 12),
    default=3,
    show_default=True,
    help="Decimal places of the tCO2 figures (rounded half up, once).",
)
def inventory_command(
    plant: Path,
    data: Path,
    period: str,
    out: Path,
    formats: tuple[str, ...],
    library: Path,
    issued: dt.datetime | None,
    places: int,
) -> None:
    """Write the GB/T 32150 inventory report of PLANT for a month, quarter or year from the
    meters' per-minute DATA (CSV or Parquet) as HTML, PDF and JSON."""
    started = time.perf_counter()
    try:
        described = load_plant(plant)
        span = Span.parse(period, described.tz)
        series = load_data(data, described)
        lib = FactorLibrary.load(library)
        report = build_report(
            described,
            series,
            lib,
            span,
            issued=issued.date() if issued else None,
            places=places,
            data_origin=data.name,
            data_sm3=_sm3(data),
        )
    except AccountingError as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    stem = out / f"inventory-{span.label}"
    for fmt in formats or FORMATS:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "html":
            path.write_text(render_html(report), encoding="utf-8")
        elif fmt == "pdf":
            path.write_bytes(render_pdf(report))
        else:
            text = json.dumps(report_data(report), ensure_ascii=False, indent=2)
            path.write_text(text + "\n", encoding="utf-8")
        written[fmt] = str(path)
    summary = {
        "period": span.label,
        "files": written,
        "scope1_tco2": report.fig(report.scope1),
        "scope2_tco2": report.fig(report.scope2),
        "total_tco2": report.fig(report.total),
        "biomass_tco2": report.fig(report.biomass),
        "reminders": len(report.reminders),
        "seconds": round(time.perf_counter() - started, 3),
    }
    click.echo(json.dumps(summary, ensure_ascii=False))

"""The inventory report (ISC-2 §7.2.7, CSMT §11.11) in the GB/T 32150 structure, with the meter
ledger and calibration reminders (CSMT §11.1, §11.10) and traceability (CSMT §11.8).

The example plant (fixtures/accounting/report/) is worked example 08 fed by meters: its 2024
annual report must give 08's figures to the stated rounding.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.report.build import (
    InventoryReport,
    build_report,
    report_data,
)
from reference_terminal.accounting.report.html import render_html
from reference_terminal.accounting.report.pdf import render_pdf
from reference_terminal.accounting.report.plant import (
    Plant,
    load_data,
    load_plant,
    plant_from_data,
    read_csv,
    write_parquet,
)
from reference_terminal.accounting.statistics import MinuteSeries, Period, Span, exact_sum

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
EXAMPLE = FIXTURES / "accounting" / "report"
D = Decimal


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.load(FIXTURES / "factors")


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(EXAMPLE / "plant.yaml")


@pytest.fixture(scope="module")
def data(plant: Plant) -> dict[str, MinuteSeries]:
    return load_data(EXAMPLE / "meters-2023-2024.csv", plant)


@pytest.fixture(scope="module")
def annual(plant: Plant, data: dict[str, MinuteSeries], lib: FactorLibrary) -> InventoryReport:
    return build_report(plant, data, lib, Span.parse("2024"), issued=dt.date(2025, 1, 10))


def test_the_annual_report_gives_worked_example_08(annual: InventoryReport) -> None:
    expected = json.loads(
        (FIXTURES / "accounting" / "08-mixed-enterprise.expected.json").read_text("utf-8")
    )
    assert annual.fig(annual.scope1) == expected["scope1_tco2"]
    assert annual.fig(annual.scope2) == expected["scope2_tco2"]
    assert annual.fig(annual.total) == expected["total_tco2"]
    assert annual.fig(annual.biomass) == expected["biomass_tco2"]
    mine = {
        s.name: (s.scope, f"{s.activity_data.normalize():f} {s.activity_data_unit}")
        for s in annual.sources
    }
    for source in expected["sources"]:
        line = next(s for s in annual.sources if s.name == source["name"])
        assert annual.fig(line.tco2) == source["tco2"], source["name"]
        assert line.scope == source["scope"]
        value, unit = source["activity_data"].split(" ", 1)
        assert mine[source["name"]] == (source["scope"], f"{D(value).normalize():f} {unit}")
    assert annual.vintage == "2015 guidelines / GB/T 32150"


def test_emissions_by_gbt_32150_category_add_up_to_the_scopes(annual: InventoryReport) -> None:
    by_key = {c.key: c for c in annual.categories}
    assert list(by_key) == ["combustion", "process", "recovered", "electricity", "heat", "biomass"]
    assert by_key["process"].sources == ("kiln limestone", "electrodes")
    assert by_key["electricity"].sources == ("grid", "PV export")  # net of the export
    assert by_key["recovered"].tco2 == D("-792")
    scope1 = exact_sum(c.tco2 for c in annual.categories if c.scope == 1)
    scope2 = exact_sum(c.tco2 for c in annual.categories if c.scope == 2)
    assert (scope1, scope2) == (annual.scope1, annual.scope2)
    assert by_key["biomass"].scope is None and by_key["biomass"].tco2 == annual.biomass


def test_the_months_of_the_year_add_up_and_yoy_compares_with_2023(
    annual: InventoryReport,
) -> None:
    assert annual.breakdown_period is Period.MONTH
    assert [p.label for p in annual.breakdown][:2] == ["2024-01", "2024-02"]
    assert exact_sum(p.total for p in annual.breakdown) == annual.total
    (yoy,) = annual.comparisons  # a year's previous period is the year before: YoY only
    assert (yoy.name, yoy.base_label) == ("YoY", "2023")
    assert annual.pct(yoy.ratio) == "11.11 %"  # 2023 was 90 % of 2024, meter by meter


def test_intensities_per_electricity_heat_and_product(annual: InventoryReport) -> None:
    lines = {i.basis: i for i in annual.intensities}
    assert lines["electricity"].amount == 18000 and lines["electricity"].unit == "tCO2/MWh"
    assert annual.fig(lines["electricity"].value, 6) == "1.167285"  # 21 011.126 / 18 000
    assert lines["heat"].amount == 12000 and annual.fig(lines["heat"].value, 6) == "1.750927"
    assert lines["product"].unit == "tCO2/t castings"
    assert lines["product"].meters == ("P-801",)


def test_monthly_and_quarterly_reports(
    plant: Plant, data: dict[str, MinuteSeries], lib: FactorLibrary
) -> None:
    march = build_report(plant, data, lib, Span.parse("2024-03"))
    assert march.title == "Monthly greenhouse gas inventory report 2024-03"
    assert march.title_zh == "2024-03 月度温室气体排放报告"
    assert len(march.breakdown) == 31 and march.breakdown_period is Period.DAY
    assert exact_sum(p.total for p in march.breakdown) == march.total
    assert [c.base_label for c in march.comparisons] == ["2023-03", "2024-02"]
    q2 = build_report(plant, data, lib, Span.parse("2024-Q2"))
    assert [p.label for p in q2.breakdown] == ["2024-04", "2024-05", "2024-06"]
    with pytest.raises(AccountingError, match="monthly, quarterly or annual"):
        build_report(plant, data, lib, Span.parse("2024-W10"))


def test_the_meter_ledger_reminds_of_calibration(annual: InventoryReport) -> None:
    ledger = {m.id: m for m in annual.meters}
    assert ledger["D-202"].status == "overdue" and ledger["D-202"].days_to_due == -40
    assert ledger["G-102"].status == "due soon" and ledger["G-102"].days_to_due == 5
    assert ledger["P-801"].status == "unknown"
    assert ledger["E-01"].status == "ok"
    assert ledger["E-01"].feeds == ("grid", "basis: electricity")
    assert ledger["E-01"].activity == D("10800000") and ledger["E-01"].coverage == 1
    assert "meter D-202: calibration overdue since 2024-12-01 (40 days)" in annual.reminders
    assert "meter G-102: calibration due 2025-01-15 (in 5 days)" in annual.reminders


def test_every_figure_traces_to_its_meters(annual: InventoryReport) -> None:
    traces = {t.figure: t for t in annual.traces}
    assert traces["total"].value == annual.total
    assert set(traces["total"].meters) == {
        m for s in annual.sources if s.scope is not None for m in s.meters
    }
    boilers = traces["source: boilers"]
    assert boilers.meters == ("G-101", "G-102")
    assert boilers.derivation.startswith("activity 300000.00 Nm3 (Σ meters) × 0.0021650151996")
    assert "B-701" not in traces["scope 1"].meters  # biomass is in no scope
    ledger = {m.id for m in annual.meters}
    assert all(set(t.meters) <= ledger for t in annual.traces)


def test_factors_keep_source_vintage_and_the_to_confirm_mark(annual: InventoryReport) -> None:
    gas = [f for f in annual.factors if f.source == "boilers"]
    assert [f.parameter for f in gas] == ["ncv", "carbon_content", "oxidation"]
    assert all(f.vintage == "2015 guidelines / GB/T 32150" and f.to_confirm for f in gas)
    grid = next(f for f in annual.factors if f.source == "grid")
    assert (grid.origin, grid.value, grid.to_confirm) == ("input", "0.5703 tCO2/MWh", False)
    assert any("natural_gas (2015 guidelines / GB/T 32150)" in n for n in annual.notes)


def test_the_html_page_has_every_section_and_escapes_text(
    plant: Plant, data: dict[str, MinuteSeries], lib: FactorLibrary, annual: InventoryReport
) -> None:
    page = render_html(annual)
    for heading in (
        "1 报告主体基本信息",
        "2 核算边界",
        "3 温室气体排放量",
        "4 活动水平数据及来源",
        "5 排放因子数据及来源",
        "6 分期统计",
        "7 计量器具台账",
        "8 数据溯源",
        "9 其他说明",
    ):
        assert heading in page
    assert "21011.126" in page and "10281.176" in page and "[待核对 to confirm]" in page
    assert "<script" not in page and "http" not in page  # self-contained
    hostile = plant.model_copy(
        update={"enterprise": plant.enterprise.model_copy(update={"name": "<b>x</b> & co"})}
    )
    page = render_html(build_report(hostile, data, lib, Span.parse("2024-03")))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in page and "<b>x</b>" not in page


def test_the_pdf_is_a_pdf_with_the_reports_title(annual: InventoryReport) -> None:
    pdf = render_pdf(annual)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/Type /Page" in pdf and b"STSong-Light" in pdf
    assert len(pdf) > 10_000


def test_the_report_as_json(annual: InventoryReport) -> None:
    data = json.loads(json.dumps(report_data(annual)))
    assert data["reported_tco2"]["total"] == "21011.126"
    assert data["span"]["start"] == "2024-01-01T00:00:00+08:00"
    assert data["sources"][0]["meters"] == ["G-101", "G-102"]
    assert data["enterprise"]["credit_code"] == "91330100EXAMPLE0001"
    assert D(data["total"]) == annual.total  # exact, unrounded


def test_parquet_data_gives_the_same_report(
    tmp_path: Path, plant: Plant, data: dict[str, MinuteSeries], lib: FactorLibrary
) -> None:
    path = tmp_path / "meters.parquet"
    write_parquet(path, data)
    again = load_data(path, plant)
    report = build_report(plant, again, lib, Span.parse("2024"))
    assert report.total == build_report(plant, data, lib, Span.parse("2024")).total


# ---- inputs that cannot be reported ------------------------------------------------------------


def _plant_data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / "plant.yaml").read_text("utf-8"))
    return loaded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["sources"][0].update(meters=["X-1"]),
            "sources[0].meters[0]: no meter 'X-1' in the ledger",
        ),
        (
            lambda d: d["sources"][0].update(unit="kWh"),
            "meter 'G-101' reads Nm3, which is not a quantity of the source's unit kWh",
        ),
        (
            lambda d: d["boundary"]["units"][1]["sources"].append("cupola"),
            "boundary.units[1].sources[2]: 'cupola' is already in unit 'foundry'",
        ),
        (
            lambda d: d["boundary"]["units"][3]["sources"].pop(),
            "source 'cars' is in no accounting unit",
        ),
        (lambda d: d["meters"][0].update(frequency="often"), "meters[0].frequency"),
        (lambda d: d["bases"]["heat"].update(meters=["H-9"]), "bases.heat.meters[0]"),
    ],
)
def test_a_bad_plant_file_names_the_field(change: Any, message: str) -> None:
    data = _plant_data()
    change(data)
    with pytest.raises(AccountingError) as info:
        plant_from_data(data, "plant.yaml")
    assert message in str(info.value)


def test_bad_meter_data_names_the_line_and_the_meter(plant: Plant) -> None:
    with pytest.raises(AccountingError, match="first column must be 'time'"):
        read_csv("when,G-101\n", plant)
    with pytest.raises(AccountingError, match="column 'X-1' is no meter"):
        read_csv("time,X-1\n", plant)
    with pytest.raises(AccountingError, match="line 3: G-101: 'lots' is not a number"):
        read_csv("time,G-101\n2024-01-01T00:00,1\n2024-01-01T00:01,lots\n", plant)
    with pytest.raises(AccountingError, match=r"meter G-101: .* not a multiple of the resolution"):
        read_csv("time,G-101\n2024-01-01T00:00,1.001\n", plant)
    with pytest.raises(AccountingError, match="line 2: time 'noon' is not ISO 8601"):
        read_csv("time,G-101\nnoon,1\n", plant)


def test_a_time_without_offset_is_plant_time(plant: Plant) -> None:
    local = read_csv("time,G-101\n2024-01-01T00:00,1\n", plant)["G-101"]
    utc = read_csv("time,G-101\n2023-12-31T16:00+00:00,1\n", plant)["G-101"]
    assert local.minutes.tolist() == utc.minutes.tolist()

"""The inventory report as PDF (ReportLab), the same sections as the HTML page.

Chinese text is set in Adobe's STSong-Light, one of the CID fonts every PDF reader supplies
(Acrobat's Asian font pack, poppler-data …), so no font file ships with the terminal. Pages are
A4 landscape: the meter ledger is wide.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import (
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from reference_terminal.accounting.report.build import InventoryReport

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

GREEN = colors.HexColor("#2d6a4f")
_BODY = ParagraphStyle("body", fontName=FONT, fontSize=8, leading=10, wordWrap="CJK")
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7, leading=8.6)
_H1 = ParagraphStyle("h1", parent=_BODY, fontSize=16, leading=20, spaceAfter=4)
_H2 = ParagraphStyle(
    "h2", parent=_BODY, fontSize=11, leading=14, spaceBefore=10, spaceAfter=4, textColor=GREEN
)
_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), FONT, 7),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef5f0")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
)


# Characters STSong-Light's Unicode map lacks, and what to set instead.
_MISSING = str.maketrans({"−": "-", "·": ",", "•": "-"})


def _p(text: object, style: ParagraphStyle = _CELL) -> Paragraph:
    return Paragraph(escape(str(text).translate(_MISSING)), style)


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    numeric: Sequence[int] = (),
) -> LongTable:
    """A table that repeats its header on each page; numeric columns right-aligned, plain
    strings (fast); other cells wrap as paragraphs."""
    data: list[list[Any]] = [[_p(h) for h in header]]
    for row in rows:
        data.append([c if i in numeric else _p(c) for i, c in enumerate(row)])
    table = LongTable(data, colWidths=[w * mm for w in widths], repeatRows=1)
    style = TableStyle(_STYLE.getCommands())
    for i in numeric:
        style.add("ALIGN", (i, 1), (i, -1), "RIGHT")
    table.setStyle(style)
    return table


def render_pdf(report: InventoryReport) -> bytes:
    """The report as PDF bytes."""
    r = report
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=r.title_zh,
        author=r.enterprise.name,
        subject=r.title,
        creator="carbench reference terminal",
    )
    story: list[Any] = [
        Paragraph(escape(r.title_zh), _H1),
        _p(r.title, _BODY),
        _p(
            f"{r.enterprise.name}, 报告期 Period {r.span.label} "
            f"({r.span.start:%Y-%m-%d %H:%M} – {r.span.end:%Y-%m-%d %H:%M} "
            f"UTC{r.span.start:%z}), 编制日期 Issued {r.issued}",
            _BODY,
        ),
        Spacer(1, 3 * mm),
        _table(
            ["排放总量 Total tCO2", "范围一 Scope 1", "范围二 Scope 2", "生物质 Biomass (apart)"],
            [[r.fig(r.total), r.fig(r.scope1), r.fig(r.scope2), r.fig(r.biomass)]],
            [60, 60, 60, 60],
            numeric=(0, 1, 2, 3),
        ),
    ]

    e = r.enterprise
    story += [
        Paragraph("1 报告主体基本信息 Reporting entity", _H2),
        _table(
            ["项目 Item", "内容 Content"],
            [
                ["名称 Name", e.name],
                ["统一社会信用代码 Credit code", e.credit_code],
                ["行业 Sector", e.sector],
                ["地址 Address", e.address],
                ["法定代表人 Legal representative", e.legal_representative],
                ["联系人 Contact", e.contact],
                ["核算方法 Methodology", f"{r.methodology or 'emission-factor method'}"],
                ["因子版本 Vintage", r.vintage or "—"],
            ],
            [60, 200],
        ),
        Paragraph("2 核算边界 Accounting boundary", _H2),
        _p(r.boundary, _BODY),
    ]
    by_name = {s.name: s for s in r.sources}
    if r.units:
        rows = []
        for uid, uname, names in r.units:
            for name in names:
                s = by_name[name]
                rows.append(
                    [
                        f"{uname} ({uid})",
                        f"{s.name} {s.label}".strip(),
                        s.kind,
                        s.scope or "apart",
                        ", ".join(s.meters),
                    ]
                )
        story.append(
            _table(
                ["核算单元 Unit", "排放源 Source", "类型 Kind", "范围 Scope", "计量器具 Meters"],
                rows,
                [55, 60, 40, 20, 95],
            )
        )

    story += [
        Paragraph("3 温室气体排放量 Emissions", _H2),
        _table(
            ["类别 Category", "范围 Scope", "排放源 Sources", "tCO2"],
            [
                [f"{c.title_zh} / {c.title}", c.scope or "—", ", ".join(c.sources), r.fig(c.tco2)]
                for c in r.categories
            ]
            + [
                ["范围一 Scope 1", "1", "", r.fig(r.scope1)],
                ["范围二 Scope 2", "2", "", r.fig(r.scope2)],
                ["排放总量 Total (scope 1 + scope 2)", "", "", r.fig(r.total)],
                ["生物质 CO2（不计入总量）Biomass, not in the total", "", "", r.fig(r.biomass)],
            ],
            [95, 20, 110, 35],
            numeric=(3,),
        ),
    ]
    if r.intensities:
        story.append(
            _table(
                ["排放强度 Intensity", "值 Value", "单位 Unit", "基数 Basis", "计量器具 Meters"],
                [
                    [
                        f"{i.title_zh} / {i.title}",
                        r.fig(i.value, 6),
                        i.unit,
                        f"{r.fig(i.amount)} {i.amount_unit}",
                        ", ".join(i.meters),
                    ]
                    for i in r.intensities
                ],
                [80, 30, 40, 45, 65],
                numeric=(1, 3),
            )
        )
    story.append(
        _table(
            [
                "比较 Comparison",
                "基期 Base",
                "本期 tCO2",
                "基期 tCO2",
                "变化 Change",
                "变化率 Rate",
            ],
            [
                [
                    f"{c.name_zh} {c.name}",
                    c.base_label,
                    r.fig(c.value),
                    r.fig(c.base),
                    r.fig(c.change),
                    r.pct(c.ratio),
                ]
                for c in r.comparisons
            ],
            [40, 30, 40, 40, 40, 30],
            numeric=(2, 3, 4, 5),
        )
    )

    story += [
        Paragraph("4 活动水平数据及来源 Activity data and their sources", _H2),
        _table(
            [
                "排放源 Source",
                "核算单元 Unit",
                "活动量 Activity",
                "活动数据 AD",
                "计量器具 Meters",
                "完整率 Coverage",
                "tCO2",
            ],
            [
                [
                    f"{s.name} {s.label}".strip(),
                    s.accounting_unit,
                    f"{r.fig(s.activity)} {s.unit}",
                    f"{r.fig(s.activity_data)} {s.activity_data_unit}",
                    ", ".join(s.meters),
                    r.pct(s.coverage),
                    r.fig(s.tco2),
                ]
                for s in r.sources
            ],
            [55, 35, 40, 40, 50, 25, 28],
            numeric=(2, 3, 5, 6),
        ),
        Paragraph("5 排放因子数据及来源 Emission factors and their sources", _H2),
        _table(
            [
                "排放源 Source",
                "参数 Parameter",
                "值 Value",
                "来源 Origin",
                "版本 Vintage",
                "数据年份 Year",
                "出处 Reference",
            ],
            [
                [
                    f.source,
                    f.parameter,
                    f.value,
                    f"{f.origin} ({f.factor})" if f.factor else f.origin,
                    f.vintage or "—",
                    f.data_year or "—",
                    f.reference + (" [待核对 to confirm]" if f.to_confirm else ""),
                ]
                for f in r.factors
            ],
            [40, 25, 40, 35, 40, 18, 75],
        ),
        _table(
            ["排放源 Source", "公式 Formula", "tCO2 per unit"],
            [[s.name, s.formula, f"{r.fig(s.rate, 10)} /{s.unit}"] for s in r.sources],
            [50, 150, 60],
            numeric=(2,),
        ),
        Paragraph(f"6 分期统计 By {r.breakdown_period.value}", _H2),
        _table(
            ["期间 Period", "范围一 Scope 1", "范围二 Scope 2", "总量 Total", "生物质 Biomass"]
            + [i.unit for i in r.intensities],
            [
                [p.label, r.fig(p.scope1), r.fig(p.scope2), r.fig(p.total), r.fig(p.biomass)]
                + [r.fig(v, 6) for v in p.intensities]
                for p in r.breakdown
            ],
            [30, 35, 35, 35, 30] + [30] * len(r.intensities),
            numeric=tuple(range(1, 5 + len(r.intensities))),
        ),
        Paragraph("7 计量器具台账 Meter ledger", _H2),
        _table(
            [
                "编号 ID",
                "名称 Name",
                "型号/编号 Model/serial",
                "位置 Location",
                "准确度 Acc.",
                "级别 Level",
                "频率 Freq.",
                "检定 Calibrated",
                "有效期至 Due",
                "状态 Status",
                "用途 Feeds",
                "本期计量 Reading",
                "完整率 Cov.",
            ],
            [
                [
                    m.id,
                    m.name,
                    f"{m.model} / {m.serial}",
                    m.location,
                    m.accuracy,
                    m.level or "—",
                    m.frequency,
                    m.calibrated or "—",
                    m.calibration_due or "—",
                    m.status,
                    "; ".join(m.feeds),
                    f"{r.fig(m.activity)} {m.unit}",
                    r.pct(m.coverage),
                ]
                for m in r.meters
            ],
            [16, 30, 30, 26, 13, 10, 13, 18, 18, 15, 30, 32, 18],
            numeric=(11, 12),
        ),
        Paragraph("8 数据溯源 Traceability", _H2),
        _table(
            ["数据项 Figure", "值 Value", "来源 Derivation", "排放源 Sources", "计量器具 Meters"],
            [
                [
                    t.figure,
                    f"{r.fig(t.value, 6 if t.unit != 'tCO2' else None)} {t.unit}",
                    t.derivation,
                    ", ".join(t.sources),
                    ", ".join(t.meters),
                ]
                for t in r.traces
            ],
            [45, 35, 85, 50, 55],
            numeric=(1,),
        ),
        Paragraph("9 其他说明 Notes and reminders", _H2),
    ]
    story += [_p(f"- {m}", _BODY) for m in r.reminders]
    story += [_p(f"- {n}", _BODY) for n in r.notes]
    data = r.data_origin or "—"
    if r.data_sm3:
        data += f", SM3 {r.data_sm3}"
    story.append(_p(f"- 数据文件 Data: {data}", _BODY))

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(12 * mm, 8 * mm, f"{r.title_zh}, {r.enterprise.name}")
        canvas.drawRightString(
            landscape(A4)[0] - 12 * mm, 8 * mm, f"第 {document.page} 页 page {document.page}"
        )
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()

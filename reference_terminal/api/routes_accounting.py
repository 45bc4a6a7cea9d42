"""``/accounting/…``: carbon accounting (CSMT §9, §11; ISC-2 §7.2.3(3), §7.2.5–§7.2.8).

========================================  =========================================================
``GET /accounting/methods``               the accounting offered (single-point, boundary,
                                          classified) and each point's binding: sector, source
                                          category, source, gas, formula, its data items (CSMT §9.2)
``GET /accounting/boundaries``            enterprise → accounting units → sources → points →
                                          meters, with a drawing (CSMT §9.3)
``GET /accounting/statistics``            a period's totals by scope, category, unit, source and
                                          point, intensities, YoY and MoM (ISC-2 §7.2.5)
``GET /accounting/emissions``             emission per point and minute (or hand entry), with its
                                          activity, factor, cumulative emission, registers
``GET /accounting/reports/{period}``      the period's report: JSON, or the GB/T 32150 inventory
                                          report as HTML or PDF (month, quarter, year)
``GET /accounting/reports/{period}/export``  the report's lines as CSV
``/accounting/factors``, ``/meters``      the factor library (:mod:`.routes_factors`) and the meter
                                          ledger (:mod:`.routes_ledger`)
========================================  =========================================================

Reads are ``Action.READ``; importing a library is ``Action.CONFIGURE``. ``period`` is ``hour``,
``day``, ``week``, ``month``, ``quarter`` or ``year`` (the one containing ``at``, default now)
or a label (``2026-12``, ``2026-W53``, ``2026-Q4``, ``2026-12-31``, ``2026-12-31 23:00``).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.queries import (
    PeriodReport,
    period_report,
    span_data,
    statistics_data,
    text,
)
from reference_terminal.accounting.records import CUMULATIVE, ENTRY, MINUTE, select_figures
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.accounting.statistics import Period, Span
from reference_terminal.accounting.stored_report import inventory_report
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import ApiError, NotReady
from reference_terminal.api.routes_factors import factor_routes
from reference_terminal.api.routes_ledger import ledger_routes
from reference_terminal.api.security import CanRead
from reference_terminal.api.wire import iso, parse_time, time_range

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
GAS = "CO2"
#: The years a period may fall in: its year-before and its end must be dates too.
FIRST_YEAR, LAST_YEAR = 1971, 9998
EARLIEST_S, LATEST_S = 31_536_000.0, 253_370_764_800.0  # 1971-01-01, 9999-01-01 (UTC)


def running(ctx: ApiContext) -> RunningAccounting:
    """The running accounting; 404 when none is configured, 503 while it starts."""
    if ctx.config.accounting is None:
        raise ApiError(
            404, "no_accounting", "the configuration has no accounting section (CSMT §9)"
        )
    accounting = ctx.terminal.accounting
    if accounting is None:
        raise NotReady("the terminal is starting: its accounting is not running yet")
    return accounting


def span_of(ctx: ApiContext, period: str, at: str | None) -> Span:
    """The span ``period`` names: a kind of period containing ``at`` (ISO 8601 with offset or
    POSIX seconds; default now), or a label."""
    tz = running(ctx).tz
    try:
        kind = Period(period)
    except ValueError:
        try:
            span = Span.parse(period, tz)
        except AccountingError as exc:
            raise ApiError(422, "invalid_period", str(exc)) from None
        except (OverflowError, ValueError):
            span = None
    else:
        t = ctx.now() if at is None else parse_time(at, "at")
        span = None
        if EARLIEST_S <= t < LATEST_S:
            span = Span.of(int(t // 60), kind, tz)
    # a period's statistics compare it with the period before and the same one a year before
    if span is None or not FIRST_YEAR <= span.start.year <= LAST_YEAR:
        raise ApiError(
            422,
            "invalid_period",
            f"{period!r}{'' if at is None else f' at {at!r}'}: the terminal accounts periods "
            f"from {FIRST_YEAR} to {LAST_YEAR}",
        )
    return span


async def statistics_of(ctx: ApiContext, span: Span) -> dict[str, Any]:
    accounting = running(ctx)
    store = ctx.store()
    report = await period_report(store, accounting, span)
    mom = await period_report(store, accounting, span.previous())
    base = span.year_before()
    yoy: PeriodReport | None = None
    if base is not None:
        yoy = await period_report(store, accounting, base)
    return statistics_data(report, accounting.bindings, yoy=yoy, mom=mom)


def _binding_items(accounting: RunningAccounting, point: str) -> list[dict[str, Any]]:
    b = accounting.bindings.points[point]
    result = b.rate.result
    items: list[dict[str, Any]] = [
        {"name": "AD", "what": "activity data", "point": point, "unit": b.activity_unit}
    ]
    for p in result.parameters:
        items.append(
            {
                "name": p.name,
                "value": f"{p.value.value:f}",
                "unit": str(p.value.unit),
                "origin": p.origin,
                "factor": None if p.factor is None else p.factor.name,
                "vintage": None if p.factor is None else p.factor.vintage,
            }
        )
    return items


def accounting_routes(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["accounting"])
    router.include_router(factor_routes(ctx))
    router.include_router(ledger_routes(ctx))

    @router.get(
        "/accounting/methods",
        summary="The accounting offered and each activity point's method binding (CSMT §9.1, "
        "§9.2: sector, source category, source, gas, formula and its data items)",
    )
    async def get_methods(_: CanRead) -> dict[str, Any]:
        accounting = running(ctx)
        bindings = accounting.bindings
        sector = bindings.config.enterprise.sector
        library = bindings.library
        out = []
        for point, b in bindings.points.items():
            result = b.rate.result
            out.append(
                {
                    "point": point,
                    "meter": b.meters[0] if b.meters else None,
                    "sector": sector,
                    "unit_id": b.unit_id,
                    "source_category": b.category,
                    "source": b.source.id,
                    "source_name": b.source.name,
                    "kind": b.kind.value,
                    "scope": b.scope,
                    "gas": GAS,
                    "formula": result.formula,
                    "items": _binding_items(accounting, point),
                    "factor": f"{b.rate.rate:f}",
                    "factor_unit": f"tCO2/{b.activity_unit}",
                    "manual": b.manual,
                    "vintage": b.rate.vintage or bindings.vintage,
                }
            )
        return {
            "methods": [
                {"kind": "single-point", "clause": "CSMT §9.2", "points": len(out)},
                {"kind": "boundary", "clause": "CSMT §9.3", "units": len(bindings.config.units)},
                {"kind": "classified", "clause": "CSMT §9.4", "scopes": ["scope1", "scope2"]},
            ],
            "method": "emission-factor method (GB/T 32150)",
            "vintage": bindings.vintage,
            "library_revision": {name: v.revision for name, v in library.vintages.items()},
            "bindings": out,
        }

    @router.get(
        "/accounting/boundaries",
        summary="The accounting boundary: enterprise, accounting units, sources, points and "
        "meters, with a drawing generated from them (CSMT §9.3)",
    )
    async def get_boundaries(_: CanRead) -> dict[str, Any]:
        accounting = running(ctx)
        bindings = accounting.bindings
        acc = bindings.config
        sources = []
        units = []
        for unit in acc.units:
            units.append(
                {"id": unit.id, "name": unit.name, "sources": [s.id for s in unit.sources]}
            )
            for s in unit.sources:
                points = [bindings.points[p] for p in s.points]
                sources.append(
                    {
                        "id": s.id,
                        "name": s.name,
                        "unit_id": unit.id,
                        "kind": s.kind,
                        "scope": points[0].scope,
                        "category": points[0].category,
                        "points": list(s.points),
                        "meters": sorted({m for p in points for m in p.meters}),
                    }
                )
        return {
            "entity": acc.enterprise.model_dump(),
            "sector": acc.enterprise.sector,
            "description": acc.description,
            "units": units,
            "sources": sources,
            "bases": {
                b.value: {"points": list(x.points), "unit": x.unit, "name": x.name}
                for b, x in bindings.bases.items()
            },
            "drawing": {"format": "mermaid", "text": _drawing(accounting)},
        }

    @router.get(
        "/accounting/statistics",
        summary="A period's emissions by scope, category, unit, source and point, intensities "
        "per electricity, heat and product, YoY and MoM (ISC-2 §7.2.3(3), §7.2.5; CSMT §11.7)",
    )
    async def get_statistics(
        _: CanRead,
        period: Annotated[str, Query(max_length=32)] = "day",
        at: Annotated[str | None, Query(max_length=40)] = None,
    ) -> dict[str, Any]:
        return await statistics_of(ctx, span_of(ctx, period, at))

    @router.get(
        "/accounting/emissions",
        summary="Emission per accounted point and minute (or value entered by hand), with its "
        "activity, factor, cumulative emission and registers (ISC-2 §7.2.3(3), CSMT §9.2), "
        "oldest first",
    )
    async def get_emissions(
        _: CanRead,
        point: Annotated[str | None, Query(max_length=64)] = None,
        start: str | None = None,
        end: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        accounting = running(ctx)
        bindings = accounting.bindings
        if point is not None and point not in bindings.points:
            raise ApiError(404, "unknown_point", f"{point!r} is no accounted point")
        points = [point] if point is not None else list(bindings.points)
        lo, hi = time_range(start, end)
        store = ctx.store()
        figures = await store.run_in_reader(
            lambda c: select_figures(c, points, (MINUTE, ENTRY), lo, hi)
        )
        cumulative = await store.run_in_reader(
            lambda c: select_figures(c, points, (CUMULATIVE,), lo - 60, hi + 60)
        )
        cum = {(f.point, f.start): f.value for f in cumulative}
        offset = ctx.offset_s
        items = []
        for f in figures[:limit]:
            b = bindings.points[f.point]
            minute = int(f.t // 60)
            items.append(
                {
                    "point": f.point,
                    "source": b.source.id,
                    "unit_id": b.unit_id,
                    "kind": "entry" if f.kind == ENTRY else "minute",
                    "t": f.t,
                    "time": iso(f.t, offset),
                    "start": f.start,
                    "end": f.end,
                    "activity": text(f.activity),
                    "unit": b.activity_unit,
                    "factor": text(f.factor),
                    "factor_unit": f"tCO2/{b.activity_unit}",
                    "emission": text(f.value),
                    "cumulative": text(cum.get((f.point, minute * 60.0))),
                    "first": text(f.first),
                    "last": text(f.last),
                    "quality": f.quality.value,
                    "scope": b.scope,
                }
            )
        return {"items": items, "count": len(items), "truncated": len(figures) > limit}

    @router.get(
        "/accounting/reports/{period}",
        summary="The period's report (JSON); format=html or pdf: the GB/T 32150 inventory "
        "report of a month, quarter or year (ISC-2 §7.2.7, CSMT §11.11)",
        response_model=None,
    )
    async def get_report(
        _: CanRead,
        period: str,
        at: Annotated[str | None, Query(max_length=40)] = None,
        format: Annotated[str, Query(pattern="^(json|html|pdf)$")] = "json",
    ) -> dict[str, Any] | Response:
        span = span_of(ctx, period, at)
        if format == "json":
            return await _report_json(ctx, span)
        accounting = running(ctx)
        if span.period not in (Period.MONTH, Period.QUARTER, Period.YEAR):
            raise ApiError(
                422,
                "invalid_period",
                "the inventory report (GB/T 32150) is monthly, quarterly or annual; ask for "
                "format=json for other periods",
            )
        try:
            report = await inventory_report(
                ctx.store(), ctx.config, accounting.bindings, span, utc_offset_s=ctx.offset_s
            )
        except AccountingError as exc:
            raise ApiError(409, "report_failed", str(exc)) from None
        if format == "html":
            from reference_terminal.accounting.report.html import render_html  # noqa: PLC0415

            return HTMLResponse(render_html(report))
        from reference_terminal.accounting.report.pdf import render_pdf  # noqa: PLC0415

        name = f"inventory-{span.label}.pdf"
        return Response(
            render_pdf(report),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get(
        "/accounting/reports/{period}/export",
        summary="The period's report lines (by point and source) as CSV",
        response_class=Response,
    )
    async def export_report(
        _: CanRead, period: str, at: Annotated[str | None, Query(max_length=40)] = None
    ) -> Response:
        data = await _report_json(ctx, span_of(ctx, period, at))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["period", "unit", "source", "point", "activity", "activity_unit", "tco2", "first",
             "last", "minutes"]
        )  # fmt: skip
        label = data["span"]["label"]
        source_unit = {s["id"]: s["unit_id"] for s in data["by_source"]}
        for p in data["by_point"]:
            writer.writerow(
                [label, source_unit.get(p["source"], ""), p["source"] or "", p["point"],
                 p["activity"], p["unit"], p["tco2"] or "", p["first"] or "", p["last"] or "",
                 p["minutes"]]
            )  # fmt: skip
        writer.writerow([label, "", "total", "", "", "", data["total"], "", "", ""])
        name = f"accounting-{label.replace(' ', 'T').replace(':', '')}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router


async def _report_json(ctx: ApiContext, span: Span) -> dict[str, Any]:
    data = await statistics_of(ctx, span)
    accounting = running(ctx)
    acc = accounting.bindings.config
    data["title"] = f"{span.period.value} emission report {span.label}"
    data["enterprise"] = acc.enterprise.model_dump()
    data["boundary"] = [
        {"id": u.id, "name": u.name, "sources": [s.id for s in u.sources]} for u in acc.units
    ]
    data["factors"] = [
        {
            "point": point,
            "source": b.source.id,
            "formula": b.rate.result.formula,
            "items": _binding_items(accounting, point),
        }
        for point, b in accounting.bindings.points.items()
    ]
    data["issued"] = iso(ctx.now(), ctx.offset_s)
    data["span"] = span_data(span)
    return data


def _drawing(accounting: RunningAccounting) -> str:
    """The boundary as a Mermaid flowchart (rendered by any Mermaid viewer)."""
    bindings = accounting.bindings
    acc = bindings.config
    lines = ["flowchart LR", f'  E["{acc.enterprise.name}"]']
    for unit in acc.units:
        lines.append(f'  U_{_node(unit.id)}["{unit.name or unit.id}"]')
        lines.append(f"  E --> U_{_node(unit.id)}")
        for s in unit.sources:
            lines.append(f'  S_{_node(s.id)}["{s.name or s.id} ({s.kind})"]')
            lines.append(f"  U_{_node(unit.id)} --> S_{_node(s.id)}")
            for p in s.points:
                lines.append(f'  P_{_node(p)}["{p}"]')
                lines.append(f"  S_{_node(s.id)} --> P_{_node(p)}")
                for m in bindings.points[p].meters[:1]:
                    lines.append(f'  M_{_node(m)}(["{m}"])')
                    lines.append(f"  P_{_node(p)} --> M_{_node(m)}")
    return "\n".join(lines) + "\n"


def _node(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)

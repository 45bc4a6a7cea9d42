"""Small inline SVG charts for report.html: no library, no script, nothing fetched.

Every label goes through ``html.escape`` because test names and measurement keys come from the
suites (and, for an external device, from what the device sent).
"""

from __future__ import annotations

import math
from collections import defaultdict
from html import escape

from markupsafe import Markup

from conformance.results import RunResults, Verdict

COLOURS = {
    Verdict.PASS: "#2e7d32",
    Verdict.FAIL: "#c62828",
    Verdict.ERROR: "#6a1b9a",
    Verdict.INCONCLUSIVE: "#ef6c00",
    Verdict.PENDING_OPERATOR: "#1565c0",
    Verdict.NOT_APPLICABLE: "#9e9e9e",
}
LABEL_W = 220
BAR_W = 460
ROW_H = 22
MAX_ROWS = 40
MAX_CHARTS = 24


def _clip(text: str, n: int = 34) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]


def _svg(height: int, body: list[str], title: str) -> Markup:
    width = LABEL_W + BAR_W + 90
    return Markup(
        f'<svg class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def verdicts_per_suite(results: RunResults) -> Markup:
    """One stacked bar per suite, worst verdicts first."""
    counts: dict[str, dict[Verdict, int]] = defaultdict(lambda: dict.fromkeys(Verdict, 0))
    for t in results.tests:
        counts[t.suite][t.verdict] += 1
    if not counts:
        return Markup("")
    widest = max(sum(c.values()) for c in counts.values())
    body: list[str] = []
    y = 4
    for suite in sorted(counts):
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(suite))}</text>'
        )
        x = float(LABEL_W)
        for verdict in Verdict:
            n = counts[suite][verdict]
            if not n:
                continue
            w = BAR_W * n / widest
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW_H - 4}" '
                f'fill="{COLOURS[verdict]}"><title>{escape(suite)}: {n} {verdict.value}'
                "</title></rect>"
            )
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{sum(counts[suite].values())}</text>')
        y += ROW_H
    x = 4.0
    for verdict in Verdict:  # legend
        body.append(
            f'<rect x="{x:.0f}" y="{y + 6}" width="12" height="12" fill="{COLOURS[verdict]}"/>'
        )
        body.append(f'<text x="{x + 16:.0f}" y="{y + 16}">{verdict.value}</text>')
        x += 22 + 7.5 * len(verdict.value)
    return _svg(y + 26, body, "verdicts per suite")


def _bars(title: str, rows: list[tuple[str, float, str]], unit: str) -> Markup:
    """Horizontal bars from zero (or spanning zero, for negative values such as offsets)."""
    rows = rows[:MAX_ROWS]
    lo = min(0.0, *(v for _, v, _ in rows))
    hi = max(0.0, *(v for _, v, _ in rows))
    span = (hi - lo) or 1.0
    zero = LABEL_W + BAR_W * (0 - lo) / span
    body = [f'<text x="4" y="14" class="t">{escape(title)}</text>']
    y = 22
    for label, value, colour in rows:
        x0 = LABEL_W + BAR_W * (min(value, 0) - lo) / span
        w = BAR_W * abs(value) / span
        body.append(
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(label))}'
            f"<title>{escape(label)}</title></text>"
        )
        body.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{ROW_H - 4}" '
            f'fill="{colour}"><title>{escape(label)}: {value:g} {escape(unit)}</title></rect>'
        )
        body.append(
            f'<text x="{max(x0 + w, zero) + 6:.1f}" y="{y + 15}">{value:.4g} {escape(unit)}</text>'
        )
        y += ROW_H
    body.append(f'<line x1="{zero:.1f}" y1="20" x2="{zero:.1f}" y2="{y}" stroke="#555"/>')
    return _svg(y + 6, body, title)


def _unit(key: str) -> str:
    for suffix, unit in (("_ms", "ms"), ("_s", "s"), ("_pct", "%"), ("_percent", "%")):
        if key.endswith(suffix):
            return unit
    return ""


def measurement_charts(results: RunResults) -> list[Markup]:
    """One chart per measured quantity (e.g. ``p99_ms``), one bar per test that measured it."""
    by_key: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    for t in results.tests:
        for key, value in t.measurements.items():
            if isinstance(value, int | float) and math.isfinite(value):
                by_key[key].append((t.title or t.nodeid, float(value), COLOURS[t.verdict]))
    return [_bars(key, rows, _unit(key)) for key, rows in sorted(by_key.items())[:MAX_CHARTS]]


def slowest_tests(results: RunResults, n: int = 15) -> Markup:
    tests = sorted(results.tests, key=lambda t: t.seconds, reverse=True)[:n]
    rows = [(t.title or t.nodeid, t.seconds, COLOURS[t.verdict]) for t in tests if t.seconds > 0]
    return _bars(f"slowest {len(rows)} tests (wall s)", rows, "s") if rows else Markup("")

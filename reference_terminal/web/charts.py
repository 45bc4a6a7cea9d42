"""Charts for the console as inline SVG, drawn on the server: no chart library, no script needed
to see them (a page refreshes a chart by fetching its SVG again).

:func:`line_chart` draws a time series (a point's readings or derived values); a series longer
than the chart is wide is reduced to each pixel column's first, lowest, highest and last value,
so a year of hours draws every spike and stays a few kilobytes. :func:`bar_chart` draws totals
per time bin (a source's emissions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from html import escape

WIDTH = 880
HEIGHT = 260
#: Room for the axes' labels.
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 28


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # POSIX seconds
    value: float


def number(text: object) -> float | None:
    """A value of the API (exact decimal text, or None) as a float to draw; None if it is not
    a finite number."""
    if text is None:
        return None
    try:
        value = float(Decimal(str(text)))
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _local(t: float, offset_s: int) -> datetime:
    return datetime.fromtimestamp(t, UTC) + timedelta(seconds=offset_s)


def time_label(t: float, span_s: float, offset_s: int) -> str:
    """A tick's label, as precise as the chart's span needs (plant-local time)."""
    local = _local(t, offset_s)
    if span_s <= 2 * 86400:
        return local.strftime("%H:%M")
    if span_s <= 90 * 86400:
        return local.strftime("%m-%d")
    return local.strftime("%Y-%m")


def value_label(v: float) -> str:
    if v == 0:
        return "0"
    magnitude = abs(v)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{v:.3g}"
    if magnitude >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * power:
            return float(m * power)
    return float(10 * power)


def _value_ticks(lo: float, hi: float, ticks: int = 5) -> list[float]:
    step = _nice_step(hi - lo, ticks)
    first = math.ceil(lo / step) * step
    out: list[float] = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 20:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


def reduce(samples: Sequence[Sample], t0: float, t1: float, columns: int) -> list[Sample]:
    """At most four samples per column (first, lowest, highest, last, in time order): what a
    polyline of ``columns`` pixels can show of ``samples``."""
    if len(samples) <= columns * 2:
        return list(samples)
    span = max(t1 - t0, 1e-9)
    out: list[Sample] = []
    bucket: list[Sample] = []
    current = None
    for s in samples:
        column = min(columns - 1, max(0, int((s.t - t0) / span * columns)))
        if column != current and bucket:
            out.extend(_keep(bucket))
            bucket = []
        current = column
        bucket.append(s)
    if bucket:
        out.extend(_keep(bucket))
    return out


def _keep(bucket: list[Sample]) -> list[Sample]:
    lo = min(bucket, key=lambda s: s.value)
    hi = max(bucket, key=lambda s: s.value)
    chosen = {id(bucket[0]): bucket[0], id(lo): lo, id(hi): hi, id(bucket[-1]): bucket[-1]}
    return sorted(chosen.values(), key=lambda s: s.t)


class _Frame:
    """Scales from (time, value) to the chart's pixels."""

    def __init__(self, t0: float, t1: float, lo: float, hi: float, width: int, height: int):
        if hi <= lo:
            pad = abs(hi) * 0.05 or 1.0
            lo, hi = lo - pad, hi + pad
        else:
            pad = (hi - lo) * 0.05
            lo, hi = lo - pad, hi + pad
        self.t0, self.t1 = t0, max(t1, t0 + 1e-9)
        self.lo, self.hi = lo, hi
        self.x0, self.x1 = LEFT, width - RIGHT
        self.y0, self.y1 = height - BOTTOM, TOP

    def x(self, t: float) -> float:
        return self.x0 + (t - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)

    def y(self, v: float) -> float:
        return self.y0 + (v - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)


def _axes(frame: _Frame, offset_s: int, unit: str) -> list[str]:
    parts = []
    for v in _value_ticks(frame.lo, frame.hi):
        y = frame.y(v)
        parts.append(
            f'<line class="grid" x1="{frame.x0}" y1="{y:.1f}" x2="{frame.x1}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{frame.x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(value_label(v))}</text>"
        )
    span = frame.t1 - frame.t0
    for k in range(6):
        t = frame.t0 + span * k / 5
        x = frame.x(t)
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{frame.y0 + 18}" text-anchor="{anchor}">'
            f"{escape(time_label(t, span, offset_s))}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{frame.x0}" y1="{frame.y0}" x2="{frame.x1}" y2="{frame.y0}"/>'
        f'<line class="axis" x1="{frame.x0}" y1="{frame.y0}" x2="{frame.x0}" y2="{frame.y1}"/>'
    )
    if unit:
        parts.append(f'<text class="unit" x="4" y="{TOP + 4}">{escape(unit)}</text>')
    return parts


def _svg(title: str, body: list[str], width: int, height: int, kind: str, count: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" data-kind="{kind}" data-count="{count}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def line_chart(
    samples: Sequence[Sample],
    *,
    t0: float,
    t1: float,
    offset_s: int,
    title: str,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """``samples`` (oldest first) between ``t0`` and ``t1`` as an SVG line chart."""
    inside = [s for s in samples if t0 <= s.t <= t1]
    if not inside:
        return _svg(
            title,
            [
                f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
                "no data in this range</text>"
            ],
            width,
            height,
            "line",
            0,
        )
    shown = reduce(inside, t0, t1, width - LEFT - RIGHT)
    values = [s.value for s in shown]
    frame = _Frame(t0, t1, min(values), max(values), width, height)
    points = " ".join(f"{frame.x(s.t):.1f},{frame.y(s.value):.1f}" for s in shown)
    body = _axes(frame, offset_s, unit)
    body.append(f'<polyline class="series" fill="none" points="{points}"/>')
    if len(shown) <= 2:
        body.extend(
            f'<circle class="dot" cx="{frame.x(s.t):.1f}" cy="{frame.y(s.value):.1f}" r="3"/>'
            for s in shown
        )
    last = inside[-1]
    body.append(
        f'<text class="last" x="{frame.x1}" y="{TOP + 4}" text-anchor="end">'
        f"latest {escape(value_label(last.value))} {escape(unit)}</text>"
    )
    return _svg(title, body, width, height, "line", len(inside))


def bar_chart(
    bins: Sequence[tuple[float, float, float]],
    *,
    t0: float,
    t1: float,
    offset_s: int,
    title: str,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Totals per time bin, ``(start, end, total)`` each, as an SVG bar chart."""
    if not bins:
        return _svg(
            title,
            [
                f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
                "no data in this range</text>"
            ],
            width,
            height,
            "bar",
            0,
        )
    totals = [b[2] for b in bins]
    frame = _Frame(t0, t1, min(0.0, *totals), max(0.0, *totals), width, height)
    body = _axes(frame, offset_s, unit)
    base = frame.y(0.0)
    for start, end, total in bins:
        x0, x1 = frame.x(max(start, t0)), frame.x(min(end, t1))
        y = frame.y(total)
        body.append(
            f'<rect class="bar" x="{x0:.1f}" y="{min(y, base):.1f}" '
            f'width="{max(0.8, x1 - x0 - 0.6):.1f}" height="{abs(base - y):.1f}">'
            f"<title>{escape(value_label(total))} {escape(unit)}</title></rect>"
        )
    return _svg(title, body, width, height, "bar", len(bins))

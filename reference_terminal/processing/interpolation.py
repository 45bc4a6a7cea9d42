"""Filling a fault gap between two good readings (CSMT §12.4).

"故障时间段缺失数据点的值宜使用数据插值方法补全 … 采用线性插值或最近邻插值算法 … 并进行日志记录确保
数据的完整性和可追溯性", and "确保碳排放累计数据不丢失".

A gap is filled at the times acquisition was due (the times of the failed or invalid values),
from the good readings on either side of it: the standard's "two days around the fault" are,
for a value that varies between two readings, the two readings themselves. Filled values:

- are flagged ``INTERPOLATED`` with a note saying how and from what, and each fill is one
  :class:`Event` ("interpolated") listing them;
- have the meter's digits (the larger of the two readings'), rounded half-even;
- for a **counter**, move along the *unwrapped* register from the reading before the gap to the
  one after it (``span`` says how far, a rollover included) and wrap at the full scale as the
  meter would. They never decrease, so the increments computed through them are never negative
  and add up to exactly ``span``: the cumulative total at the gap's end is the measured one.

Nearest-neighbour takes the value of the closer reading, the earlier one on a tie (so nothing is
shown as counted before it could have been).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from reference_terminal.model import Event, Quality, Reading

Method = Literal["linear", "nearest"]


class InterpolationError(ValueError):
    """A fill that CSMT §12.4 does not describe: not between two good readings."""


@dataclass(frozen=True, slots=True)
class Fill:
    """The readings filled into one gap and the event that logs them."""

    readings: tuple[Reading, ...]
    event: Event


def fill_gap(
    before: Reading,
    after: Reading,
    due: Sequence[float],
    *,
    method: Method = "linear",
    span: Decimal | None = None,
    full_scale: Decimal | None = None,
) -> Fill:
    """Readings for ``point`` at each time of ``due`` (strictly inside (before.t, after.t), in
    order) between the good readings ``before`` and ``after``.

    ``span`` makes it a counter fill: the increment from ``before`` to ``after`` with any
    rollover at ``full_scale`` included (see ``CounterState.span``). Without it the values are
    interpolated directly (a gauge).
    """
    b, a = before.value, after.value
    if b is None or a is None or not before.quality.usable or not after.quality.usable:
        raise InterpolationError(
            f"{after.point}: CSMT §12.4 fills a gap between two good readings "
            f"(根据数据库已有数据点的值 …), got {before.quality} and {after.quality}"
        )
    if before.point != after.point:
        raise InterpolationError(f"a gap lies within one point, got {before.point}/{after.point}")
    tb, ta = before.t, after.t
    previous = tb
    for t in due:
        if not previous < t < ta:
            raise InterpolationError(
                f"{after.point}: due time {t} is not after {previous} and before {ta}: a fill "
                f"lies strictly inside the gap, in time order (CSMT §12.4 故障时间段缺失数据点)"
            )
        previous = t
    if span is not None and span < 0:
        raise InterpolationError(
            f"{after.point}: a counter's span across a gap cannot be negative ({span}); "
            f"CSMT §12.4 确保碳排放累计数据不丢失"
        )
    digits = max(before.digits, after.digits)
    quantum = Decimal(1).scaleb(-digits)
    whole = Decimal(ta - tb)
    change = span if span is not None else a - b
    note = (
        f"{method} interpolation between {b} at t={tb} and {a} at t={ta} "
        f"(CSMT §12.4 {'线性插值' if method == 'linear' else '最近邻插值'})"
    )
    values: list[Decimal] = []
    for t in due:
        if method == "nearest":
            v = b if t - tb <= ta - t else (b + change if span is not None else a)
        else:
            v = b + change * (Decimal(t - tb) / whole)
        v = v.quantize(quantum)
        if span is not None and full_scale is not None and v >= full_scale:
            v -= full_scale  # the meter would have rolled over here too (CSMT §8.2.2)
        values.append(v)
    readings = tuple(
        Reading(after.point, t, "", v, Quality.INTERPOLATED, digits, after.device, note)
        for t, v in zip(due, values, strict=True)
    )
    details = {
        "method": method,
        "count": str(len(readings)),
        "before": str(b),
        "after": str(a),
        "clause": "CSMT §12.4",
    }
    if readings:
        details["first"] = str(values[0])
        details["last"] = str(values[-1])
    if span is not None:
        details["span"] = str(span)
    event = Event(ta, "interpolated", after.point, after.device, tb, ta, details)
    return Fill(readings, event)

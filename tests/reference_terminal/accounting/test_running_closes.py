"""Booking minutes across every kind of period close, pinned byte for byte.

Four days and a half of minutes, from Sunday 2025-12-28 22:00 (+08:00) to 2026-01-02 10:00,
so the hours, the days, an ISO week (Monday 29 December), the month, the quarter and the year
(1 January) all close while the points book: a metered grid meter that also feeds the
electricity basis, a gas meter with a gap and with increments written with a positive
exponent (``2E+1``), a product scale that only feeds a basis, tickets entered by hand, a
window that comes late; per-point, coverage and enterprise alarm rules that raise and clear.

Two checks: every closed period's row equals its minutes summed the straightforward way
(activity, minutes with data, registers, the emission rounded once), and everything booking
returned (rows, notes, events, in order, decimals with their exponents) hashes to a pinned
digest, so that work on the hot path changes nothing. It is retaken only for a deliberate
change of behaviour (the last: rules on a point that only feeds a basis judge its activity).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.accounting.records import Figure, stored
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.accounting.statistics import EXACT
from reference_terminal.model import Quality
from reference_terminal.processing.increments import Increment
from reference_terminal.processing.pipeline import Output
from reference_terminal.processing.settlement import Aggregate
from reference_terminal.storage.schema import Derived
from tests.reference_terminal.accounting.terminal_config import make_config

T0 = 1_766_930_400.0  # Sunday 2025-12-28 22:00 +08:00
MINUTES = 4 * 1440 + 720  # to Friday 2026-01-02 10:00
GAS_GAP = range(1500, 1600)  # the gas meter is silent (an hour without it: coverage alarms)
SCALE_GAP = range(2000, 2030)
LATE = 3000  # the minute the grid meter's window of the minute before arrives again
JUMPS = (700, 701, 2222)  # the grid meter's minutes of 50 times the usual
GAS_ROUND = range(3300, 3480)  # the gas meter's increments as 2E+1 (a positive exponent)

#: sha256 of the repr of each minute's Booked (rows booked now, rows behind, events)
DIGEST = "edaa650aaa57bd537f9a19be549eccb9c4f0917078c6c4a0f2d0fab50a5325d8"

ALARMS = [
    {"id": "grid-jump", "type": "anomaly", "point": "em.ep", "period": "minute",
     "ratio": "5", "min_history": 3},
    {"id": "grid-hour", "type": "threshold", "point": "em.ep", "of": "activity",
     "period": "hour", "above": "700"},
    {"id": "scale-day", "type": "anomaly", "point": "scale.t", "of": "activity",
     "period": "day", "ratio": "1.01", "min_history": 1},  # a point that only feeds a basis
    {"id": "gas-day", "type": "anomaly", "point": "gm.vol", "of": "activity",
     "period": "day", "ratio": "1.01", "min_history": 1},
    {"id": "gaps", "type": "coverage", "period": "hour", "min_coverage": "0.95"},
    {"id": "total-hour", "type": "anomaly", "measure": "total", "period": "hour",
     "ratio": "1.5", "window": 6, "min_history": 3},
    {"id": "scope1-hour", "type": "threshold", "measure": "scope1", "period": "hour",
     "below": "0.5"},
    {"id": "intensity-day", "type": "threshold", "measure": "intensity:product",
     "period": "day", "above": "0.0105"},
    {"id": "total-week", "type": "threshold", "measure": "total", "period": "week",
     "above": "1"},
    {"id": "total-month", "type": "threshold", "measure": "total", "period": "month",
     "above": "1"},
    {"id": "total-year", "type": "threshold", "measure": "total", "period": "year",
     "above": "1"},
]  # fmt: skip


def _window(point: str, start: float, first: Decimal, step: Decimal) -> Aggregate:
    return Aggregate(
        point, "minute", start, start + 60, "", "counter", 1, first, first + step, step, step,
        None, step, 0, 2, Quality.GOOD,
    )  # fmt: skip


def _steps(m: int) -> dict[str, Decimal]:
    grid = Decimal(500 + (m * 7) % 97).scaleb(-2)
    steps = {"em.ep": grid * 50 if m in JUMPS else grid}
    if m not in GAS_GAP:
        steps["gm.vol"] = Decimal("2E+1") if m in GAS_ROUND else Decimal(400 + m % 13).scaleb(-2)
    if m not in SCALE_GAP:
        steps["scale.t"] = Decimal("1.00") + Decimal(m % 3).scaleb(-2)
    return steps


def book_all(tmp_path: Path) -> tuple[list[Derived], list[str]]:
    """Every row booking returned, in order, and the digest's input (one text a minute)."""
    accounting = RunningAccounting.from_config(make_config(tmp_path, alarms=ALARMS))
    assert accounting is not None
    registers = {"em.ep": Decimal("1000.00"), "gm.vol": Decimal("50.00")}
    registers["scale.t"] = Decimal("7.00")
    ticket = Decimal("100.0")
    rows: list[Derived] = []
    texts = []
    late = None
    for m in range(MINUTES):
        start = T0 + 60 * m
        aggregates = []
        for point, step in _steps(m).items():
            aggregates.append(_window(point, start, registers[point], step))
            registers[point] += step
        if m == LATE - 1:
            late = aggregates[0]
        if m == LATE and late is not None:
            aggregates.append(late)
        increments: tuple[Increment, ...] = ()
        if m % 317 == 100:  # a weighbridge ticket entered by hand, booked at once
            value = Decimal(m % 50 + 5).scaleb(-1)
            increments = (
                Increment("ticket.clinker", start - 600, start + 30, ticket, ticket + value,
                          value, Quality.MANUAL, 1),
            )  # fmt: skip
            ticket += value
        booked = RunningAccounting.book(
            accounting, Output(increments=increments, aggregates=tuple(aggregates)), start + 61
        )
        rows += booked.now + booked.behind
        texts.append(repr((booked.now, booked.behind, booked.events)))
    return rows, texts


@pytest.fixture(scope="module")
def booked(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Derived], list[str]]:
    return book_all(tmp_path_factory.mktemp("closes"))


def test_every_kind_of_period_closes_and_alarms_are_raised_and_cleared(
    booked: tuple[list[Derived], list[str]],
) -> None:
    rows, texts = booked
    kinds = {r.kind for r in rows}
    for period in ("hour", "day", "week", "month", "quarter", "year"):
        assert f"co2_{period}" in kinds and f"basis_{period}" in kinds
    assert {"co2", "co2_cum", "co2_entry", "basis"} <= kinds
    events = "".join(texts)
    for text in ("'raised'", "'cleared'", "accounting_late", "'coverage:gm.vol'"):
        assert text in events, text
    rules = ("grid-jump", "grid-hour", "scale-day", "gas-day", "gaps", "total-hour", "scope1-hour")
    for rule in rules:
        assert f"'rule': '{rule}'" in events, rule
    assert "'intensity-day'" in events and "'total-week'" in events


def test_each_closed_period_is_its_minutes_summed(booked: tuple[list[Derived], list[str]]) -> None:
    rows, _ = booked
    minutes: dict[str, list[Figure]] = defaultdict(list)
    for r in rows:
        if r.kind in ("co2", "co2_entry", "basis"):
            minutes[r.point].append(Figure.of(r))
    checked = 0
    for r in rows:
        kind, _, period = r.kind.partition("_")
        if period in ("", "cum", "entry"):
            continue
        closed = Figure.of(r)
        inside = [f for f in minutes[r.point] if r.start <= f.t < r.end]
        activity = Decimal(0)
        for f in inside:
            assert f.activity is not None
            activity = EXACT.add(activity, f.activity)
        assert closed.activity == activity and str(closed.activity) == str(activity)
        assert closed.minutes == len(inside)
        assert (closed.first, closed.last) == (inside[0].first, inside[-1].last)
        if kind == "co2":
            assert inside[0].factor is not None
            assert r.value == stored(EXACT.multiply(activity, inside[0].factor))
        else:
            assert r.value == activity
        checked += 1
    assert checked > 2 * (MINUTES // 60)


def test_booking_is_unchanged_byte_for_byte(booked: tuple[list[Derived], list[str]]) -> None:
    _, texts = booked
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    assert digest.hexdigest() == DIGEST

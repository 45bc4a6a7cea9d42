"""The bench's plant-local calendar (China time, as HJ 212 DataTimes are): midnights and
calendar months, on which day-bound and six-month clauses are timed."""

from __future__ import annotations

from datetime import datetime

import pytest

from conformance.bench import local, months_after, next_midnight, posix


def at(text: str) -> float:
    return posix(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-11-23 14:16:00", 6, "2027-05-23 14:16:00"),  # across the new year
        ("2026-08-31 23:59:59", 6, "2027-02-28 23:59:59"),  # a 31st in a short month
        ("2027-08-31 08:00:00", 6, "2028-02-29 08:00:00"),  # … in a leap year
        ("2026-01-31 00:00:00", 1, "2026-02-28 00:00:00"),
        ("2026-12-01 00:00:00", 12, "2027-12-01 00:00:00"),
    ],
)
def test_months_are_calendar_months_of_plant_time(start: str, months: int, expected: str) -> None:
    assert local(months_after(at(start), months)) == datetime.fromisoformat(expected)


def test_six_months_are_181_to_184_days() -> None:
    days = {
        round(
            (months_after(at(f"2026-{m:02d}-15 12:00:00"), 6) - at(f"2026-{m:02d}-15 12:00:00"))
            / 86400
        )
        for m in range(1, 13)
    }
    assert min(days) == 181 and max(days) == 184


def test_the_next_midnight_is_plant_local() -> None:
    assert local(next_midnight(at("2026-11-23 23:59:59"))) == datetime(2026, 11, 24)
    assert local(next_midnight(at("2026-11-24 00:00:00"))) == datetime(2026, 11, 25)

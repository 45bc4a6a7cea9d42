"""A drain's polls: the first ask only whether each centre holds as many copies as windows are
owed (an index count; the check that follows decides), and once a check has found windows
missing, whether every owed window has come."""

from __future__ import annotations

from datetime import datetime, timedelta

from bench.scenario.engine import Arrivals
from simulators.platform import Record
from simulators.platform.record import format_data_time
from tests.simulators.platform.device import MN, T0
from tests.simulators.platform.test_record import upload

UNTIL = datetime(2100, 1, 1)


def minute(n: int) -> str:
    """The DataTime of ``upload``'s minute ``n``."""
    return format_data_time(T0 + timedelta(minutes=n))


def test_resent_copies_can_make_the_count_but_not_the_windows() -> None:
    owed = {(code, minute(m)) for m in range(3) for code in ("a05001", "a19001")}
    with Record() as record:
        upload(record, "20260101120000001", 0, "1.50")
        upload(record, "20260101120100001", 1, "1.60")
        upload(record, "20260101120100001", 1, "1.60")  # a resend: minute 2 has not come
        arrivals = Arrivals(record)

        assert arrivals.enough("c1", MN, owed, UNTIL)
        assert not arrivals.complete("c1", MN, owed, UNTIL)

        upload(record, "20260101120200001", 2, "1.70")
        assert arrivals.complete("c1", MN, owed, UNTIL)


def test_fewer_copies_than_windows_are_not_enough() -> None:
    owed = {(code, minute(m)) for m in range(3) for code in ("a05001", "a19001")}
    with Record() as record:
        upload(record, "20260101120000001", 0, "1.50")
        upload(record, "20260101120100001", 1, "1.60")
        arrivals = Arrivals(record)

        assert not arrivals.enough("c1", MN, owed, UNTIL)
        assert not arrivals.complete("c1", MN, owed, UNTIL)

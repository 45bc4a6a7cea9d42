"""The set checker on constructed cases: lost, unexpected, duplicated (resends vs new QNs),
wrong and conflicting values, out of order, gaps."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from simulators.platform.checker import Expected, Gap, ReadingKey, check
from simulators.platform.record import ReadingRow

MN = "010000A8900016F000169DC0"
T0 = datetime(2026, 1, 1, 12, 0)
_ids = itertools.count(1)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def expected(minutes: range, code: str = "a05001") -> list[Expected]:
    return [Expected(MN, 2051, at(m), code, Decimal(m)) for m in minutes]


def got(
    minute: int, qn: str | None = None, value: int | None = None, code: str = "a05001"
) -> ReadingRow:
    return ReadingRow(
        frame_id=next(_ids),
        at=0.0,
        centre="c1",
        mn=MN,
        cn=2051,
        qn=qn or f"q{minute}",
        data_time=at(minute),
        code=code,
        value=Decimal(minute if value is None else value),
        flag="N",
        fields={"Avg": str(minute if value is None else value)},
    )


def key(minute: int, code: str = "a05001") -> ReadingKey:
    return ReadingKey(MN, 2051, code, at(minute))


def test_everything_once_in_order_is_exactly_once() -> None:
    result = check(expected(range(5)), [got(m) for m in range(5)])
    assert result.exactly_once and result.complete
    assert (result.expected, result.received, result.distinct) == (5, 5, 5)
    assert "5 expected, 5 distinct received (5 copies), 0 lost" in result.summary()


def test_lost_readings_and_the_gaps_they_make() -> None:
    result = check(expected(range(10)), [got(m) for m in (0, 1, 5, 6, 9)])
    assert result.lost == tuple(key(m) for m in (2, 3, 4, 7, 8))
    assert result.gaps == (
        Gap(MN, 2051, "a05001", at(2), at(4), 3),
        Gap(MN, 2051, "a05001", at(7), at(8), 2),
    )
    assert not result.complete
    assert "gap: 010000A8900016F000169DC0 CN=2051 a05001: 3 missing from" in result.summary()


def test_a_trailing_gap_is_reported() -> None:
    result = check(expected(range(4)), [got(0)])
    assert result.gaps == (Gap(MN, 2051, "a05001", at(1), at(3), 3),)


def test_unexpected_readings() -> None:
    result = check(expected(range(2)), [got(0), got(1), got(7), got(0, code="a99999")])
    assert result.unexpected == (key(7), key(0, "a99999"))
    assert not result.complete


def test_resends_under_the_same_qn_are_not_duplicates_under_new_qns() -> None:
    rows = [got(0, "A"), got(0, "A"), got(1, "B"), got(1, "C"), got(1, "C")]
    result = check(expected(range(2)), rows)
    assert result.complete and not result.exactly_once
    first, second = result.duplicated
    assert (first.key, first.copies, first.resends, first.new_qn_copies) == (key(0), 2, 1, 0)
    assert (second.qns, second.resends, second.new_qn_copies) == (("B", "C"), 1, 1)
    assert (result.resends, result.new_qn_copies) == (2, 1)


def test_only_resends_still_count_as_exactly_once() -> None:
    result = check(expected(range(1)), [got(0, "A"), got(0, "A")])
    assert result.exactly_once and result.resends == 1


def test_wrong_and_conflicting_values() -> None:
    result = check(expected(range(2)), [got(0, value=5), got(1, "X"), got(1, "Y", value=9)])
    assert [(w.key, w.expected, w.received) for w in result.wrong_value] == [
        (key(0), Decimal(0), Decimal(5))
    ]
    assert [(c.key, c.values) for c in result.conflicting] == [(key(1), (Decimal(1), Decimal(9)))]


def test_a_named_field_is_compared_when_asked() -> None:
    want = [Expected(MN, 2051, at(0), "a05001", Decimal(3), field="Avg")]
    assert check(want, [got(0, value=3)]).complete
    assert check(want, [got(0, value=4)]).wrong_value


def window(minute: int, **fields: str) -> ReadingRow:
    """A minute window received with ``fields`` (Avg, Min, Max …)."""
    row = got(minute)
    return replace(row, value=Decimal(fields["Avg"]), fields=fields)


def test_the_other_fields_expected_must_be_there_with_their_values() -> None:
    want = [Expected(MN, 2051, at(0), "a05001", Decimal(3), "Avg", (("Min", Decimal(1)),))]
    assert check(want, [window(0, Avg="3", Min="1", Max="5")]).complete
    assert check(want, [window(0, Avg="3", Min="1.00")]).complete  # the same number

    (dropped,) = check(want, [window(0, Avg="3", Max="5")]).wrong_value
    assert (dropped.key, dropped.field, dropped.expected, dropped.received) == (
        key(0),
        "Min",
        Decimal(1),
        None,
    )
    (other,) = check(want, [window(0, Avg="3", Min="2")]).wrong_value
    assert str(other).endswith("a05001 @ 2026-01-01 12:00:00 Min: expected 1, got 2")


def test_a_window_wrong_in_several_fields_is_one_wrong_reading() -> None:
    want = [Expected(MN, 2051, at(0), "a05001", Decimal(3), "Avg", (("Min", Decimal(1)),))]
    result = check(want, [window(0, Avg="4", Min="2")])
    assert [w.field for w in result.wrong_value] == [None, "Min"]
    assert result.wrong_readings == 1
    assert "1 with a wrong value (2 fields)" in result.summary()


def test_a_flag_expected_is_compared_as_text() -> None:
    """An interpolated window goes up flagged (CSMT §12.4), never passed off as measured."""
    want = [Expected(MN, 2051, at(0), "a05001", Decimal(3), "Avg", (("Flag", "F"),))]
    assert check(want, [window(0, Avg="3", Flag="F")]).complete
    (passed_off,) = check(want, [window(0, Avg="3", Flag="N")]).wrong_value
    assert (passed_off.field, passed_off.expected, passed_off.received) == ("Flag", "F", "N")


def test_out_of_order_is_judged_per_stream_on_first_arrival() -> None:
    # minute 3 arrives before 1 and 2 (backfill after live data); the other code is in order
    rows = [got(0), got(3), got(1), got(2), got(0, code="b"), got(1, code="b"), got(1)]
    want = expected(range(4)) + expected(range(2), "b")
    result = check(want, rows)
    assert [(o.key, o.after) for o in result.out_of_order] == [
        (key(1), at(3)),
        (key(2), at(3)),
    ]


def test_nothing_expected_nothing_received() -> None:
    result = check([], [])
    assert result.exactly_once and result.expected == 0

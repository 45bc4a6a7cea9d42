"""Daily settlement, month and year roll-ups and real-time windows (CSMT §8.2.1)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_terminal.model import Quality
from reference_terminal.processing.increments import CounterState, Increment
from reference_terminal.processing.settlement import (
    Aggregate,
    LateSample,
    PointWindows,
    WindowError,
    check_periods,
    period_name,
)
from tests.reference_terminal.processing.support import T0, local, reading

D = Decimal


def by(aggs: list[Aggregate], period: str) -> list[Aggregate]:
    return [a for a in aggs if a.period == period]


def counter_run(
    windows: PointWindows, start: float, polls: int, every: float, step: str = "0.25"
) -> list[Aggregate]:
    """A counter read every ``every`` s (answers 0.3 s after the due time), +step per poll."""
    state = CounterState("E")
    out: list[Aggregate] = []
    value = D("1000.00")
    for i in range(polls):
        s = state.update(reading("E", start + i * every + 0.3, str(value)))
        if s.increment is not None:
            out += windows.add_increment(s.increment)
        value += D(step)
    return out


def test_daily_settlement_closes_at_local_midnight_with_the_midnight_reading() -> None:
    windows = PointWindows("E", "counter", (3600,))
    # Polls every 15 min from 22:00 on the 21st to 02:00 on the 22nd (plant time, UTC+8).
    out = counter_run(windows, local(2025, 11, 21, 22), 17, 900)
    (day,) = by(out, "day")
    assert day.label == "2025-11-21"
    assert (day.start, day.end) == (T0, T0 + 86_400)
    # The reading answered at 00:00:00.3 is the day's closing register (daily freeze):
    # 22:00 … 00:00 is 8 intervals of 0.25.
    assert day.first == D("1000.00") and day.last == D("1002.00")
    assert day.increment == D("2.00") and day.count == 8
    assert (day.min, day.max) == (D("0.25"), D("0.25"))  # per-interval consumption
    hours = by(out, "hour")
    assert [h.label for h in hours] == [
        "2025-11-21T22:00",
        "2025-11-21T23:00",
        "2025-11-22T00:00",
    ]
    assert all(h.increment == D("1.00") for h in hours)


def test_the_day_follows_the_plant_offset_not_utc() -> None:
    utc = PointWindows("G", "gauge", (), utc_offset_s=0)
    china = PointWindows("G", "gauge", ())
    samples = [
        reading("G", local(2025, 11, 21, 7, 59), "1"),
        reading("G", local(2025, 11, 21, 8, 1), "2"),
    ]
    # UTC midnight is 08:00 in China: a day boundary for one, not the other.
    assert by(utc.add_reading(samples[0]) + utc.add_reading(samples[1]), "day")
    assert not by(china.add_reading(samples[0]) + china.add_reading(samples[1]), "day")


def test_gauge_day_settlement_has_max_min_mean() -> None:
    windows = PointWindows("G", "gauge", ())
    for i, v in enumerate(["10.5", "12.25", "9.75", "11.0"]):
        windows.add_reading(reading("G", T0 + 3600 * (i + 1), v))
    (day,) = windows.close_until(T0 + 86_400)
    assert (day.min, day.max, day.first, day.last) == (D("9.75"), D("12.25"), D("10.5"), D("11.0"))
    assert day.mean == D("10.88")  # 43.5 / 4 = 10.875, half-even to the meter's 2 digits
    assert day.increment is None and day.value == day.mean and day.count == 4


def test_months_and_years_roll_up_from_days() -> None:
    windows = PointWindows("E", "counter", ())
    # One poll a day at 12:00 local: each increment lands in the day of its middle, 00:00.
    out = counter_run(windows, local(2025, 11, 29, 12), 40, 86_400, step="1.00")
    months = by(out, "month")
    assert [m.label for m in months] == ["2025-11", "2025-12"]
    days = by(out, "day")
    for m in months:
        inside = [d for d in days if m.start <= d.start < m.end]
        assert m.increment == sum((d.increment or D(0) for d in inside), D(0))
        assert m.count == sum(d.count for d in inside)
    assert months[1].start == local(2025, 12, 1) and months[1].end == local(2026, 1, 1)
    assert months[1].increment == D("31.00")
    (year,) = by(out, "year")
    assert year.label == "2025" and year.start == local(2025, 1, 1)
    assert year.end == local(2026, 1, 1)
    assert year.increment == sum((m.increment or D(0) for m in months), D(0))
    # Order: the day that closes the month comes before the month, the month before the year.
    i = out.index(months[1])
    assert (out[i - 1].label, out[i + 1].label) == ("2025-12-31", "2025")


def test_close_until_emits_month_and_year_at_their_ends() -> None:
    windows = PointWindows("G", "gauge", ())
    windows.add_reading(reading("G", local(2025, 12, 31, 12), "5"))
    assert windows.close_until(local(2025, 12, 31, 23, 59)) == []
    out = windows.close_until(local(2026, 1, 1))
    assert [a.period for a in out] == ["day", "month", "year"]
    assert all(a.mean == D(5) for a in out)


def test_real_time_windows_emit_when_they_close() -> None:
    windows = PointWindows("G", "gauge", (1, 60))
    out: list[Aggregate] = []
    for i in range(130):  # every half second for 65 s
        out += windows.add_reading(reading("G", T0 + i * 0.5, f"{i % 7}.0"))
    seconds, minutes = by(out, "second"), by(out, "minute")
    assert len(seconds) == 64 and len(minutes) == 1
    assert seconds[0].count == 2 and (seconds[0].first, seconds[0].last) == (D("0.0"), D("1.0"))
    assert seconds[0].label == "2025-11-21T00:00:00"
    (m,) = minutes
    assert m.count == 120 and m.min == D("0.0") and m.max == D("6.0") and m.last == D("0.0")
    assert m.label == "2025-11-21T00:00" and m.end == T0 + 60


def test_counter_real_time_windows_sum_increments() -> None:
    windows = PointWindows("E", "counter", (60,))
    out = counter_run(windows, T0, 11, 10)  # every 10 s, 0.25 each
    (minute,) = by(out, "minute")
    # Increments whose middle is in [00:00, 00:01): ending at 10.3 … 60.3 s.
    assert minute.count == 6 and minute.increment == D("1.50")
    assert minute.mean == D("0.25")


def test_suspect_increments_are_excluded_but_mark_the_window() -> None:
    windows = PointWindows("E", "counter", (60,))
    good = Increment("E", T0, T0 + 10, D("1"), D("2"), D("1"), Quality.GOOD, 0)
    bad = Increment("E", T0 + 10, T0 + 20, D("2"), D("900"), D("898"), Quality.SUSPECT, 0)
    windows.add_increment(good)
    windows.add_increment(bad)
    (minute, _day) = windows.close_until(T0 + 86_400)
    assert minute.increment == D("1") and minute.excluded == 1
    assert minute.quality is Quality.SUSPECT


def test_interpolated_samples_mark_the_window() -> None:
    windows = PointWindows("G", "gauge", (60,))
    windows.add_reading(reading("G", T0 + 1, "1"))
    windows.add_reading(reading("G", T0 + 2, "2", Quality.INTERPOLATED))
    assert windows.close_until(T0 + 60)[0].quality is Quality.INTERPOLATED


def test_a_late_sample_is_refused() -> None:
    windows = PointWindows("G", "gauge", (60,))
    windows.add_reading(reading("G", T0 + 70, "1"))
    with pytest.raises(LateSample, match="time order"):
        windows.add_reading(reading("G", T0 + 10, "1"))


def test_a_sample_for_a_closed_window_is_late_even_once_nothing_is_open() -> None:
    windows = PointWindows("G", "gauge", (60,))
    windows.add_reading(reading("G", T0 + 10, "1"))
    windows.close_until(T0 + 120)  # the minute of T0 is emitted; nothing is open now
    assert windows.is_late(T0 + 59) and not windows.is_late(T0 + 60)
    with pytest.raises(LateSample, match="already closed"):
        windows.add_reading(reading("G", T0 + 30, "1"))
    assert windows.add_reading(reading("G", T0 + 61, "2")) == []  # a window never emitted


def test_periods_must_divide_a_day() -> None:
    check_periods((1, 60, 300, 900, 3600), 8 * 3600)
    with pytest.raises(WindowError, match="divides a day"):
        check_periods((7,), 0)
    with pytest.raises(WindowError, match="shortest first"):
        check_periods((3600, 60), 0)
    with pytest.raises(WindowError, match="UTC offset"):
        check_periods((60,), 15 * 3600)
    assert [period_name(p) for p in (1, 60, 3600, 300)] == ["second", "minute", "hour", "300s"]


def test_figures_flatten_a_window_with_its_count_from_an_hour_up() -> None:
    windows = PointWindows("G", "gauge", (60,))
    windows.add_reading(reading("G", T0 + 1, "3.5"))
    windows.add_reading(reading("G", T0 + 2, "4.5"))
    minute, day = windows.close_until(T0 + 86_400)
    assert dict(minute.figures()) == {
        "minute": D("4.0"),
        "minute_max": D("4.5"),
        "minute_min": D("3.5"),
        "minute_first": D("3.5"),
        "minute_last": D("4.5"),
    }
    assert dict(day.figures()) == {
        "day": D("4.0"),
        "day_max": D("4.5"),
        "day_min": D("3.5"),
        "day_first": D("3.5"),
        "day_last": D("4.5"),
        "day_count": D(2),  # a restart merges the day back into its month: the mean needs it
    }


def test_a_restart_merges_the_open_days_stored_hours_back() -> None:
    """The open day after a restart = its stored hours + what follows; the same day results."""
    before = PointWindows("G", "gauge", (3600,))
    samples = [reading("G", T0 + 600 * k + 1, str(10 + k % 7)) for k in range(30)]
    closed = [a for r in samples[:20] for a in before.add_reading(r)]
    hours = by(closed, "hour")
    assert len(hours) == 3
    after = PointWindows("G", "gauge", (3600,))
    for hour in hours:
        after.restore(hour)
    for r in samples[18:]:  # the fourth hour (from T0 + 3 h) comes back from its readings
        after.add_reading(r)
    for r in samples[20:]:
        before.add_reading(r)
    end = T0 + 86_400
    assert by(after.close_until(end), "day") == by(before.close_until(end), "day")
    fresh = PointWindows("G", "gauge", (3600,))
    fresh.restore(hours[0])
    with pytest.raises(WindowError, match="not in the open day"):
        fresh.restore(replace(hours[1], start=hours[1].start + 86_400))


def test_restore_resumes_the_open_month() -> None:
    before = PointWindows("E", "counter", ())
    out = counter_run(before, local(2025, 11, 1, 12), 10, 86_400, step="2.00")
    days = by(out, "day")
    after = PointWindows("E", "counter", ())
    for d in days:
        after.restore(d)
    end = local(2025, 12, 1)
    (month,) = by(before.close_until(end), "month")
    (restored,) = by(after.close_until(end), "month")
    # The restored month lacks only the day that was still open at the restart.
    assert month.increment is not None and restored.increment == month.increment - D("2.00")
    assert restored.first == month.first and restored.count == month.count - 1
    with pytest.raises(WindowError, match="only stored days and months"):
        after.restore(replace(days[0], period="hour"))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 20_000), st.integers(0, 500)), min_size=1, max_size=80))
def test_a_month_is_exactly_the_sum_of_its_days_and_hours(polls: list[tuple[float, int]]) -> None:
    windows = PointWindows("E", "counter", (3600,))
    state = CounterState("E", history_factor=None)
    t, value, total = local(2025, 11, 30), D("0.00"), D("0.00")
    out: list[Aggregate] = []
    for gap, step in polls:
        t += gap
        value += D(step).scaleb(-2)
        s = state.update(reading("E", t, str(value)))
        if s.increment is not None:
            total += s.increment.value
            out += windows.add_increment(s.increment)
    out += windows.close_until(local(2026, 2, 1))
    for period in ("hour", "day", "month", "year"):
        assert sum((a.increment or D(0) for a in by(out, period)), D(0)) == total


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.floats(1, 150), st.floats(1, 90_000)),
            st.integers(0, 500),
        ),
        min_size=1,
        max_size=120,
    )
)
@settings(deadline=None)
def test_asking_every_minute_closes_what_asking_after_every_step_closes(
    steps: list[tuple[bool, float, int]],
) -> None:
    """close_until skips a point with nothing due: the same windows come out, at the same
    calls, as from a copy asked to look every time (its shortcut forgotten before each call)."""
    fast, slow = (PointWindows("G", "gauge", (60, 3600)) for _ in range(2))
    t = local(2025, 12, 31, 22)
    for is_sample, gap, value in steps:
        for now in (t + gap / 2, t + gap):
            slow._due = float("-inf")  # the shortcut under test, forgotten
            assert fast.close_until(now) == slow.close_until(now)
        t += gap
        if is_sample:
            r = reading("G", t, str(D(value).scaleb(-1)))
            assert fast.add_reading(r) == slow.add_reading(r)


_QUALITIES = (Quality.GOOD, Quality.BACKUP, Quality.MANUAL, Quality.INTERPOLATED, Quality.SUSPECT)


@given(
    st.sampled_from([(60, 3600), (1, 60, 3600), (40, 60, 3600), (900,), ()]),
    st.lists(
        st.tuples(
            st.one_of(st.floats(0.5, 150), st.floats(1, 90_000)),  # to the next increment
            st.integers(0, 10**6),  # its value, in hundredths
            st.integers(0, 3),  # its digits
            st.sampled_from(_QUALITIES),
            st.booleans(),  # ask close_until first
        ),
        min_size=1,
        max_size=150,
    ),
)
@settings(deadline=None)
def test_windows_gathered_from_finer_windows_are_those_fed_every_sample(
    periods: tuple[int, ...], steps: list[tuple[float, int, int, Quality, bool]]
) -> None:
    """An hour takes its minutes as they close (a day its hours) rather than every sample:
    the same windows come out, at the same calls, as from windows each fed every sample.
    Periods that do not nest (40 s in a minute) are fed every sample as before."""
    gathered = PointWindows("E", "counter", periods)
    fed = PointWindows("E", "counter", periods)
    for level in fed._levels:
        level.fed = True
    t, reading_ = local(2025, 12, 31, 22), D("0")
    for gap, hundredths, digits, quality, close_first in steps:
        if close_first:
            assert gathered.close_until(t + gap / 2) == fed.close_until(t + gap / 2)
        value = D(hundredths).scaleb(-2).quantize(D(1).scaleb(-digits))
        inc = Increment("E", t, t + gap, reading_, reading_ + value, value, quality, digits)
        t, reading_ = t + gap, reading_ + value
        assert gathered.add_increment(inc) == fed.add_increment(inc)
    assert gathered.close_until(t + 2 * 86_400 * 400) == fed.close_until(t + 2 * 86_400 * 400)

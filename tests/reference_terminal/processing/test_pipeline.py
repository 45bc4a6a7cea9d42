"""The Processor end to end: RawValues in; readings, increments, windows, events out."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_terminal.config import Source, TerminalConfig
from reference_terminal.model import Quality, RawValue
from reference_terminal.processing.pipeline import (
    Output,
    ProcessingError,
    Processor,
    Settings,
    UnknownPointError,
)
from reference_terminal.processing.settlement import WindowError
from reference_terminal.processing.virtual import AddPoint, IntegratePoint
from tests.reference_terminal.processing.support import T0, point, raw

D = Decimal


def run(processor: Processor, raws: Iterable[RawValue]) -> Output:
    return processor.process_many(raws)


def kinds(out: Output) -> list[str]:
    return [e.kind for e in out.events]


def test_every_raw_value_gives_one_reading_with_its_quality() -> None:
    p = Processor(
        [
            point("G", min=D(0), max=D(100)),
            point("B", backup=Source(device="m2")),
            point("M"),
        ],
        manual_devices=["hand"],
    )
    out = run(
        p,
        [
            raw("G", T0 + 1, "2.26"),
            raw("G", T0 + 2, None, error="timeout"),
            raw("G", T0 + 3, "100.01"),
            raw("B", T0 + 1, "0.00", device="m2"),
            raw("M", T0 + 1, "7", device="hand"),
        ],
    )
    assert [(r.point, r.quality, str(r.value)) for r in out.readings] == [
        ("G", Quality.GOOD, "2.26"),
        ("G", Quality.COMM_FAULT, "None"),
        ("G", Quality.OUT_OF_RANGE, "100.01"),
        ("B", Quality.BACKUP, "0.00"),
        ("M", Quality.MANUAL, "7"),
    ]
    assert out.readings[0].digits == 2 and out.readings[3].digits == 2
    assert kinds(out) == ["out_of_range"]


def test_one_out_of_range_event_per_excursion() -> None:
    p = Processor([point("G", max=D(10))])
    values = ["11", "12", "5", "13"]
    out = run(p, [raw("G", T0 + i, v) for i, v in enumerate(values)])
    assert kinds(out) == ["out_of_range", "out_of_range"]


def test_counter_increments_windows_and_day_settlement() -> None:
    p = Processor([point("E", "counter", full_scale=D("1000000"))])
    values = ["999999.50", "999999.75", "000000.25", "000000.50"]
    out = run(p, [raw("E", T0 - 90 + 60 * i + 0.3, v) for i, v in enumerate(values)])
    assert [i.value for i in out.increments] == [D("0.25"), D("0.50"), D("0.25")]
    assert kinds(out) == ["rollover"]
    # A silent counter's day closes once no later increment could have its middle in it.
    assert not [a for a in p.close_until(T0 + 86_400 + 3600).aggregates if a.period == "day"]
    closed = p.close_until(T0 + 2 * 86_400 + 3600)
    day = next(a for a in closed.aggregates if a.period == "day")
    # The first increment's middle (23:59:00) is in the day before.
    assert day.label == "2025-11-21" and day.increment == D("0.75")


def test_a_counter_gap_is_filled_and_the_total_kept() -> None:
    p = Processor([point("E", "counter")])
    feed = [
        raw("E", T0 + 0.3, "100.00"),
        raw("E", T0 + 60.3, None, error="timeout"),
        raw("E", T0 + 120.3, None, error="timeout"),
        raw("E", T0 + 180.3, "103.00"),
    ]
    out = run(p, feed)
    filled = [r for r in out.readings if r.quality is Quality.INTERPOLATED]
    assert [(r.t, r.value) for r in filled] == [(T0 + 60.3, D("101.00")), (T0 + 120.3, D("102.00"))]
    assert sum(i.value for i in out.increments) == D("3.00")
    assert [i.quality for i in out.increments] == [
        Quality.INTERPOLATED,
        Quality.INTERPOLATED,
        Quality.INTERPOLATED,
    ]
    # The COMM_FAULT readings stay on record next to the fills.
    assert sum(r.quality is Quality.COMM_FAULT for r in out.readings) == 2
    assert kinds(out) == ["interpolated"]
    day = [a for a in p.close_until(T0 + 2 * 86_400).aggregates if a.period == "day"]
    assert day[0].increment == D("3.00") and day[0].quality is Quality.INTERPOLATED


def test_nearest_fill_of_a_gauge() -> None:
    p = Processor([point("G")], settings=Settings(interpolation="nearest"))
    out = run(
        p,
        [
            raw("G", T0 + 10, "1.0"),
            raw("G", T0 + 20, None, error="x"),
            raw("G", T0 + 30, "3.00", device="m1"),
            raw("G", T0 + 40, None, error="x"),
            raw("G", T0 + 50, None, error="x"),
            raw("G", T0 + 51, "9.0"),
        ],
    )
    filled = [(r.t - T0, r.value) for r in out.readings if r.quality is Quality.INTERPOLATED]
    assert filled == [(20, D("1.00")), (40, D("3.00")), (50, D("9.00"))]


def test_windows_wait_for_a_gap_to_be_filled() -> None:
    p = Processor([point("G")])
    p.process(raw("G", T0 + 10, "1"))
    p.process(raw("G", T0 + 70, None, error="timeout"))
    # Past the first minute, but the gap may still be filled into it: nothing closes.
    assert p.close_until(T0 + 75).aggregates == ()
    out = p.process(raw("G", T0 + 130, "13"))
    (minute,) = [a for a in out.aggregates if a.period == "minute" and a.start == T0 + 60]
    assert minute.count == 1 and minute.quality is Quality.INTERPOLATED
    assert minute.mean == D("7")


def test_a_gap_too_long_is_not_filled_but_the_total_is_kept() -> None:
    p = Processor([point("E", "counter")], settings=Settings(max_fill_s=100))
    out = run(
        p,
        [
            raw("E", T0, "10"),
            raw("E", T0 + 60, None, error="x"),
            raw("E", T0 + 120, None, error="x"),
            raw("E", T0 + 180, "16"),
        ],
    )
    assert kinds(out) == ["gap_not_filled"]
    assert [i.value for i in out.increments] == [D(6)]
    assert all(r.quality is not Quality.INTERPOLATED for r in out.readings)


def test_a_counter_gap_across_a_replacement_is_not_filled() -> None:
    p = Processor([point("E", "counter")])
    out = run(
        p,
        [raw("E", T0, "5000"), raw("E", T0 + 60, None, error="x"), raw("E", T0 + 120, "2")],
    )
    assert kinds(out) == ["gap_not_filled", "meter_replaced"]
    assert "did not simply advance" in out.events[0].details["why"]


def test_close_until_gives_up_on_a_dead_point() -> None:
    p = Processor([point("G")], settings=Settings(max_fill_s=300))
    p.process(raw("G", T0 + 10, "1"))
    p.process(raw("G", T0 + 70, None, error="x"))
    out = p.close_until(T0 + 400)
    assert kinds(out) == ["gap_not_filled"]
    assert [a.period for a in out.aggregates] == ["minute"]


def test_out_of_order_values_are_kept_but_not_processed() -> None:
    p = Processor([point("E", "counter")])
    p.process(raw("E", T0 + 60, "10"))
    out = p.process(raw("E", T0 + 30, "9"))
    (r,) = out.readings
    assert r.quality is Quality.SUSPECT and "out of time order" in r.note
    assert out.increments == () and kinds(out) == ["out_of_order"]


def test_unknown_points_are_refused() -> None:
    with pytest.raises(UnknownPointError, match="no point 'X'"):
        Processor([point("G")]).process(raw("X", T0, "1"))


def test_second_check_uses_the_seeded_history_and_learns_new_months() -> None:
    p = Processor([point("E", "counter")])
    p.seed("E", months={"2025-10": D("10")})
    out = run(p, [raw("E", T0, "100"), raw("E", T0 + 60, "125")])
    assert out.increments[-1].quality is Quality.SUSPECT
    assert kinds(out) == ["suspect_increment"]
    # A closed month becomes history: December's second check uses November's total.
    q = Processor([point("E", "counter")])
    run(q, [raw("E", T0 + 86_400 * k, str(100 + 50 * k)) for k in range(12)])
    out = q.process(raw("E", T0 + 86_400 * 12, "10000"))
    assert out.increments[-1].quality is Quality.SUSPECT
    assert out.events[0].details["limit"] == str(2 * 50 * 10)


def test_virtual_points_come_out_with_the_windows() -> None:
    p = Processor(
        [point("E1", "counter"), point("E2", "counter"), point("F")],
        virtual=[
            AddPoint(op="add", id="T", inputs=["E1", "E2"]),
            IntegratePoint(op="integrate", id="H", source="F"),
        ],
    )
    raws = []
    for k in range(4):
        t = T0 + 30 * k + 0.2
        raws += [raw("E1", t, str(10 + k)), raw("E2", t, f"{k}.5"), raw("F", t, "120.0")]
    out = [*p.process_many(raws).aggregates, *p.close_until(T0 + 200).aggregates]
    minutes = {a.point: a for a in out if a.period == "minute" and a.start == T0}
    # Increments ending at 30.2 and 60.2 s have their middles in the first minute.
    assert minutes["T"].increment == D("4.0") and minutes["T"].note == "E1 + E2"
    assert minutes["H"].increment == D("2.0")  # 120 per hour over those 60 s


def test_from_config() -> None:
    config = TerminalConfig.model_validate(
        {
            "devices": [
                {"id": "m1", "protocol": "modbus-tcp", "host": "127.0.0.1"},
                {"id": "hand", "protocol": "manual"},
            ],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [
                {"id": "E", "kind": "counter", "group": "g", "source": {"device": "m1"}},
                {"id": "C", "group": "g", "source": {"device": "hand"}},
            ],
            "processing": {"interpolation": "nearest"},
        }
    )
    p = Processor.from_config(config)
    assert p.settings.interpolation == "nearest"
    assert p.process(raw("C", T0, "5", device="hand")).readings[0].quality is Quality.MANUAL


def test_restore_rebuilds_the_open_day() -> None:
    # Hourly readings from 22:00 the day before; the restart happens during the 21st.
    feed = [raw("E", T0 - 7200 + 3600 * k + 0.3, str(100 + k)) for k in range(12)]
    first = Processor([point("E", "counter")])
    stored = first.process_many(feed)
    closed = [a for a in stored.aggregates if a.period == "day"]
    assert [a.label for a in closed] == ["2025-11-20"]
    second = Processor([point("E", "counter")])
    # The last reading before midnight is the baseline; the stored day goes back into November.
    second.seed("E", last=stored.readings[1])
    replayed = second.rebuild("E", closed=closed, readings=stored.readings[2:], since=T0)
    assert [a for a in stored.aggregates if a.start >= T0] == replayed
    end = T0 + 40 * 86_400
    assert first.close_until(end) == second.close_until(end)


def test_settings_are_checked() -> None:
    with pytest.raises(WindowError):
        Settings(windows=(7,))
    with pytest.raises(ProcessingError):
        Settings(max_fill_count=0)


def test_output_is_falsy_when_empty() -> None:
    assert not Output()
    assert Processor([point("G")]).process(raw("G", T0, "1"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2_000), st.booleans()), min_size=2, max_size=120),
    st.sampled_from(["linear", "nearest"]),
)
def test_totals_are_never_lost_whatever_fails(polls: list[tuple[int, bool]], method: str) -> None:
    """CSMT §12.4 确保碳排放累计数据不丢失: with any pattern of failed acquisitions, the valid
    increments (measured and filled) add up to the register's advance, in every period."""
    p = Processor(
        [point("E", "counter")],
        settings=Settings(interpolation="linear" if method == "linear" else "nearest"),
    )
    register = D("5000.00")
    first: Decimal | None = None
    last = register
    out: list[Output] = []
    for k, (step, ok) in enumerate(polls):
        register += D(step).scaleb(-2)
        t = T0 + 600 * k + 0.5
        good = ok or k == len(polls) - 1
        out.append(
            p.process(raw("E", t, str(register) if good else None, error=None if good else "x"))
        )
        if good:
            first = register if first is None else first
            last = register
    out.append(p.close_until(T0 + 600 * len(polls) + 86_400 * 40))
    assert first is not None
    increments = [i for o in out for i in o.increments]
    assert all(i.value >= 0 for i in increments)
    assert sum(i.value for i in increments) == last - first
    for period in ("minute", "hour", "day", "month"):
        windows = [a for o in out for a in o.aggregates if a.period == period]
        assert sum((a.increment or D(0) for a in windows), D(0)) == last - first


def test_a_value_for_a_window_already_sent_is_kept_but_never_rewrites_it() -> None:
    """A collector that stamps its values and sends them late: the window closed without the
    value is not emitted again with it (it was sent; a correction is an audited backfill)."""
    p = Processor([point("G")])
    p.process(raw("G", T0 + 10, "5.0"))
    (minute,) = [a for a in p.close_until(T0 + 120).aggregates if a.period == "minute"]
    assert (minute.start, minute.mean) == (T0, Decimal("5.0"))
    late = p.process(raw("G", T0 + 50, "9.0"))  # after T0 + 10, but its minute has gone
    assert [(r.t, r.quality, r.note) for r in late.readings] == [
        (T0 + 50, Quality.GOOD, "arrived after its window closed: not in the window figures")
    ]
    assert [e.kind for e in late.events] == ["late_value"] and not late.aggregates
    on_time = p.process(raw("G", T0 + 130, "7.0"))
    assert not on_time.aggregates
    minutes = [a for a in p.close_until(T0 + 3600).aggregates if a.period == "minute"]
    assert [(a.start, a.mean) for a in minutes] == [(T0 + 120, Decimal("7.0"))]

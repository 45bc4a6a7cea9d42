"""Increments of a counter point from its consecutive cumulative readings (CSMT §8.2.1, §8.2.2)
and the second check against history (CSMT §8.1.2).

"各活动数据增量应根据各智能仪器仪表的原始数据增量进行数学计算" (CSMT §8.2.1): the activity data
of a counter is the difference of its register readings. When the register drops, one of three
things happened, decided in this order:

1. **Rollover** (CSMT §8.2.2, "9999到头回到0000重新开始计数 … 必须在采集数上增加最大输出数"): the
   full scale is configured and ``new + full_scale − old`` is at most half the full scale. The
   half-scale bound is what makes the reading unambiguous: a counter that advanced more than
   half its scale between two polls cannot be told from one that went backwards.
2. **Meter replaced**: the register fell to at most half its old value (a new meter counting
   from near zero). The increment counts from the new meter's start, taken as zero; what the old
   meter counted between its last poll and its removal is unknown, and the event says so.
3. **Backwards**: anything else (a small step back, a register rewritten). No increment; the
   reading is SUSPECT and the old reading stays the baseline, so nothing is counted twice when
   the register passes it again. If :data:`CONFIRM_READINGS` readings in a row agree on the
   lower level (never falling among themselves), the meter was replaced after all, and counting
   resumes from the first of them.

Increments are never negative.

**Second check.** CSMT §8.1.2: "单次采集的活动数据不能大于本活动数据对应排放源历史有效月度汇总值的
2 倍". Applied to a register reading it would be meaningless (a register is always far above
any monthly total), so it is applied to increments, as the bench's clause map notes. The
reference is the *largest* valid monthly total of the last :data:`HISTORY_MONTHS` complete
months (one quiet month must not make every ordinary increment suspect); with no history yet
the check cannot be made and is skipped. A suspect increment is flagged, kept out of the valid
totals, and its reading is not taken as the baseline: a spike that comes back down leaves no
trace in the totals. If the next reading continues from the suspect one, the meter really
stands there now and the suspect reading becomes the baseline (the jump itself stays suspect).

A change of device (switch-over to the backup meter and back) restarts the baseline without an
increment: two devices have two registers, and their difference is not consumption.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from reference_terminal.config import Point
from reference_terminal.construct import frozen
from reference_terminal.model import Event, Quality, Reading
from reference_terminal.processing.validation import RANK, USABLE

#: Complete months kept for the second check's reference.
HISTORY_MONTHS = 12
#: Readings in a row below the baseline (and not falling among themselves) that prove a replaced
#: meter which did not start near zero.
CONFIRM_READINGS = 3


@dataclass(frozen=True, slots=True)
class Increment:
    """What a counter counted between two of its readings: ``value`` over (``t0``, ``t``].

    ``start`` and ``end`` are the register readings it was computed from (``start`` is the new
    meter's assumed zero after a replacement), so every increment can be traced to the meter.
    """

    point: str
    t0: float
    t: float
    start: Decimal
    end: Decimal
    value: Decimal
    quality: Quality  # GOOD/BACKUP/MANUAL/INTERPOLATED from its two readings, or SUSPECT
    digits: int
    note: str = ""

    @property
    def mid(self) -> float:
        """The time a window attributes this increment to: the middle of its interval, so a
        poll answered just after midnight still puts the last minutes of the day into that day."""
        return (self.t0 + self.t) / 2


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one reading: the reading as it is to be stored (SUSPECT when it went
    backwards or its increment failed the second check), its increment if any, and events."""

    reading: Reading
    increment: Increment | None
    events: tuple[Event, ...] = ()


if TYPE_CHECKING:
    new_increment = Increment
    new_step = Step
else:  # made once per counter reading: without the per-field setattr calls
    new_increment = frozen(Increment)
    new_step = frozen(Step)


class CounterState:
    """One counter point's running state: the baseline reading, the monthly history for the
    second check, and the readings held while a drop is unexplained.

    Feed it usable readings (see ``Quality.usable``) in time order with :meth:`update`.
    """

    __slots__ = (
        "_history",
        "_limit",
        "_low",
        "_suspect",
        "baseline",
        "full_scale",
        "history_factor",
        "history_months",
        "point",
    )

    def __init__(
        self,
        point: str,
        *,
        full_scale: Decimal | None = None,
        history_factor: Decimal | None = Decimal(2),
        history_months: int = HISTORY_MONTHS,
    ) -> None:
        if full_scale is not None and full_scale <= 0:
            raise ValueError(
                f"{point}: full_scale must be positive (CSMT §8.2.2 adds it at a rollover), "
                f"got {full_scale}"
            )
        self.point = point
        self.full_scale = full_scale
        self.history_factor = history_factor
        self.history_months = history_months
        self.baseline: Reading | None = None
        self._history: dict[str, Decimal] = {}
        self._limit: Decimal | None = None
        self._suspect: Reading | None = None
        self._low: list[Reading] = []

    @classmethod
    def for_point(cls, point: Point, history_months: int = HISTORY_MONTHS) -> CounterState:
        return cls(
            point.id,
            full_scale=point.full_scale,
            history_factor=point.history_factor,
            history_months=history_months,
        )

    # ---- history (CSMT §8.1.2) ----------------------------------------------------------
    def seed(
        self, last: Reading | None = None, months: Mapping[str, Decimal] | None = None
    ) -> None:
        """Restore from storage: the last usable reading (the baseline) and valid monthly
        totals by label ``"YYYY-MM"``."""
        if last is not None:
            if last.value is None or not last.quality.usable:
                raise ValueError(f"{self.point}: a baseline must be a usable reading, got {last}")
            self.baseline = last
        for label, total in (months or {}).items():
            self.add_month(label, total)

    def add_month(self, label: str, total: Decimal) -> None:
        """Record a complete month's valid total (label ``"YYYY-MM"``, sortable)."""
        self._history[label] = total
        if len(self._history) > self.history_months:
            for old in sorted(self._history)[: len(self._history) - self.history_months]:
                del self._history[old]
        self._limit = self._compute_limit()

    @property
    def history(self) -> dict[str, Decimal]:
        return dict(self._history)

    def limit(self) -> Decimal | None:
        """The largest increment that passes the second check, or None when it cannot be
        made (disabled, or no month with a positive total yet)."""
        return self._limit

    def _compute_limit(self) -> Decimal | None:
        if self.history_factor is None or not self._history:
            return None
        reference = max(self._history.values())
        if reference <= 0:  # only idle months: no basis for judging anything
            return None
        return self.history_factor * reference

    # ---- increments -----------------------------------------------------------------------
    def span(self, reading: Reading) -> Decimal | None:
        """The increment ``reading`` would give by plain advance or rollover from the baseline,
        or None when it would not (no baseline, another device, a drop that is no rollover, or a
        pending suspect/backwards state). Gap filling uses it: only such a span can be spread
        over the missing times."""
        b = self.baseline
        v = reading.value
        if b is None or v is None or b.value is None or self._suspect or self._low:
            return None
        if reading.device != b.device:
            return None
        if v >= b.value:
            return v - b.value
        return self._rollover(b.value, v)

    def _rollover(self, old: Decimal, new: Decimal) -> Decimal | None:
        fs = self.full_scale
        if fs is None:
            return None
        wrapped = new + fs - old
        if wrapped < 0 or wrapped * 2 > fs:
            return None
        return wrapped

    def update(self, reading: Reading) -> Step:
        """Take one usable reading; return it (requalified if need be) with its increment."""
        v = reading.value
        if v is None or reading.quality not in USABLE:
            raise ValueError(
                f"{self.point}: increments come from usable readings only (CSMT §8.1: 数据有效性"
                f"验证 first), got {reading.quality} at t={reading.t}"
            )
        b = self.baseline
        if b is None:
            self.baseline = reading
            return new_step(reading, None)
        if reading.device != b.device:
            return self._device_changed(b, reading)
        events: list[Event] = []
        s = self._suspect
        if s is not None:
            self._suspect = None
            if s.value is not None and v >= s.value:  # the jump stays: the meter stands there
                events.append(
                    Event(
                        reading.t,
                        "suspect_level_kept",
                        self.point,
                        reading.device,
                        start=s.t,
                        end=reading.t,
                        details={
                            "level": str(s.value),
                            "note": "the reading after a suspect jump continues from it; "
                            "counting resumes from the jumped level, the jump stays suspect",
                        },
                    )
                )
                self.baseline = b = s
        old = b.value
        assert old is not None  # baselines are usable readings
        frm_t, frm_v, frm_q, frm_digits = b.t, old, b.quality, b.digits
        note = ""
        if v >= old:
            self._low.clear()
            inc = v - old
        else:
            wrapped = self._rollover(old, v)
            if wrapped is not None:
                self._low.clear()
                inc = wrapped
                note = f"rollover at full scale {self.full_scale} (CSMT §8.2.2)"
                events.append(
                    Event(
                        reading.t,
                        "rollover",
                        self.point,
                        reading.device,
                        start=b.t,
                        end=reading.t,
                        details={
                            "from": str(old),
                            "to": str(v),
                            "full_scale": str(self.full_scale),
                            "increment": str(inc),
                        },
                    )
                )
            elif v * 2 <= old:
                self._low.clear()
                inc = v
                frm_v = v - v  # the new meter's zero, with its digits
                note = "meter replaced: counted from the new meter's zero"
                events.append(self._replaced(b, reading, "0", "the register fell to near zero"))
            else:
                held = self._backwards(b, reading)
                if isinstance(held, Step):
                    return held
                first = held
                assert first.value is not None
                inc = v - first.value  # ≥ 0: the run never falls among itself
                frm_t, frm_v, frm_q, frm_digits = first.t, first.value, first.quality, first.digits
                note = "meter replaced: counted from the first reading of the new meter"
                events.append(
                    self._replaced(
                        b,
                        reading,
                        str(frm_v),
                        f"{CONFIRM_READINGS} readings in a row below the old register",
                    )
                )
        # worst() and max() inline: once per counter reading, and the calls cost more
        quality, digits = reading.quality, reading.digits
        if RANK[frm_q] >= RANK[quality]:
            quality = frm_q
        if frm_digits > digits:  # noqa: PLR1730
            digits = frm_digits
        increment = new_increment(
            self.point, frm_t, reading.t, frm_v, v, inc, quality, digits, note
        )
        limit = self._limit
        if limit is not None and inc > limit:
            return self._suspect_step(reading, increment, limit, events)
        self.baseline = reading
        return new_step(reading, increment, tuple(events) if events else ())

    def _device_changed(self, b: Reading, reading: Reading) -> Step:
        self.baseline = reading
        self._suspect = None
        self._low.clear()
        return Step(
            reading,
            None,
            (
                Event(
                    reading.t,
                    "counter_source_changed",
                    self.point,
                    reading.device,
                    start=b.t,
                    end=reading.t,
                    details={
                        "from_device": b.device,
                        "to_device": reading.device,
                        "last": str(b.value),
                        "first": str(reading.value),
                        "note": "two devices are two registers: no increment across the change",
                    },
                ),
            ),
        )

    def _replaced(self, b: Reading, reading: Reading, start: str, why: str) -> Event:
        return Event(
            reading.t,
            "meter_replaced",
            self.point,
            reading.device,
            start=b.t,
            end=reading.t,
            details={
                "old_last": str(b.value),
                "new_first": str(reading.value),
                "new_start": start,
                "why": why,
                "note": "what the old meter counted after its last reading is unknown",
            },
        )

    def _backwards(self, b: Reading, reading: Reading) -> Step | Reading:
        """Hold a reading below the baseline; return the first of the run once it is confirmed
        as a new meter, else the Step that reports it held."""
        low = self._low
        v = reading.value
        assert v is not None
        if low and low[-1].value is not None and v < low[-1].value:
            low.clear()  # falling among themselves: no new meter counting, start over
        low.append(reading)
        if len(low) >= CONFIRM_READINGS:
            first = low[0]
            low.clear()
            return first
        held = replace(
            reading,
            quality=Quality.SUSPECT,
            note=f"register went back from {b.value} to {v}: neither a rollover "
            f"(full scale {self.full_scale}) nor a new meter from zero; counting holds at "
            f"{b.value}",
        )
        events: tuple[Event, ...] = ()
        if len(low) == 1:
            events = (
                Event(
                    reading.t,
                    "counter_backwards",
                    self.point,
                    reading.device,
                    start=b.t,
                    end=reading.t,
                    details={"from": str(b.value), "to": str(v)},
                ),
            )
        return Step(held, None, events)

    def _suspect_step(
        self, reading: Reading, increment: Increment, limit: Decimal, events: list[Event]
    ) -> Step:
        self._suspect = reading
        why = (
            f"increment {increment.value} > {self.history_factor} × historical valid monthly "
            f"total ({limit}) (CSMT §8.1.2: 单次采集的活动数据不能大于…历史有效月度汇总值的 2 倍)"
        )
        events.append(
            Event(
                reading.t,
                "suspect_increment",
                self.point,
                reading.device,
                start=increment.t0,
                end=increment.t,
                details={
                    "increment": str(increment.value),
                    "limit": str(limit),
                    "factor": str(self.history_factor),
                },
            )
        )
        return Step(
            replace(reading, quality=Quality.SUSPECT, note=why),
            replace(increment, quality=Quality.SUSPECT, note=why),
            tuple(events),
        )

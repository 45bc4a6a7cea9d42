"""The processing stage: RawValues from acquisition in, records for storage out.

::

    RawValue ─► validation (CSMT §8.1.1) ─► gap filling (CSMT §12.4)
             ─► increments, rollover, replacement, second check (CSMT §8.2.2, §8.1.2)
             ─► real-time windows, daily settlement, month, year (CSMT §8.2.1)
             ─► virtual points (CSMT §8.3.2) ─► Output

:class:`Processor` is pure and synchronous: no I/O, no clock (times come in with the values and
with :meth:`Processor.close_until`), one call per RawValue, a few microseconds each.

**What the scheduler feeds.** Every RawValue of every due acquisition, successful or not, in
time order per point (a failed one, with ``error`` set, is what marks a gap and the time that
must be filled later). Then, now and again (once a minute is plenty), ``close_until(now)``
once everything answered by ``now`` has been fed, so that windows close even for points that
have gone quiet or are polled rarely.

**What storage writes.** Each call returns an :class:`Output`:

- ``readings`` — one per RawValue (raw text, exact value, meter digits, quality, note), plus
  the readings interpolated into a gap (quality INTERPOLATED, empty raw, at the times of the
  failed acquisitions: the COMM_FAULT reading at the same time stays as the record that the
  device did not answer);
- ``increments`` — one per counter reading after the first (and per integrated sample);
- ``aggregates`` — closed windows: real-time figures, daily settlements, months and years,
  physical and virtual (:meth:`Aggregate.figures` flattens one for a one-value-per-row table);
- ``events`` — everything an operator or auditor must find: out of range, rollover, meter
  replaced, backwards register, suspect increment, gap filled or not, virtual-point problems.

Readings, increments and aggregates come out once each and in time order per point; nothing
already emitted is revised.

**Gaps.** A point whose acquisitions fail (or give out-of-range values) collects the times they
were due. When the next usable reading comes, the gap is filled at those times (linear or
nearest, :mod:`interpolation`), the fills are processed like readings, and then the reading
itself. While a point is in a gap its windows stay open, so a window's figures include the
fills. A gap longer than ``max_fill_s`` (CSMT §12.4: outages ≤ 3 working days) or with more
than ``max_fill_count`` missing values is not filled (an event says so); a counter's first
increment after it then spans the whole gap, so the total is still never lost. A counter gap is
only filled when the register simply advanced (or rolled over) across it and the span passes
the second check.

**Restart.** Seed each point's baseline and each counter's monthly history (for the second
check) from storage with :meth:`Processor.seed`, then give :meth:`Processor.rebuild` the stored
windows to merge back and the readings stored since they end: it rebuilds the open windows and
returns the windows that closed meanwhile, which a power cut may have kept from the store
(``reference_terminal/resume.py``). An integrate point is rebuilt the same way from its
rate's readings; the other virtual points, whose windows are computed from their inputs'
windows, get the input windows their stored results lack with :meth:`Processor.rebuild_virtual`.
(Fills pending at the restart are not resumed: the first increment after it spans the gap,
nothing is lost.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from reference_terminal.config import Point, TerminalConfig
from reference_terminal.model import Event, Quality, RawValue, Reading
from reference_terminal.processing.increments import HISTORY_MONTHS, CounterState, Increment
from reference_terminal.processing.interpolation import Method, fill_gap
from reference_terminal.processing.settlement import (
    CHINA_OFFSET_S,
    DAY,
    Aggregate,
    PointWindows,
    check_periods,
)
from reference_terminal.processing.validation import USABLE, to_reading
from reference_terminal.processing.virtual import (
    Integrator,
    VirtualEvaluator,
    VirtualPoint,
    integrators,
    plan,
)


class ProcessingError(Exception):
    """Processing was asked something it cannot do; the message says what."""


class UnknownPointError(ProcessingError, KeyError):
    """A RawValue for a point the processor was not configured with."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How processing runs (the parts not in :class:`reference_terminal.config.Point`)."""

    #: The plant's local time: days, months and years start at its midnight (CSMT §8.2.1).
    utc_offset_s: int = CHINA_OFFSET_S
    #: Real-time windows in seconds, shortest first, each dividing a day (CSMT §8.2.1 秒、分钟、
    #: 小时数据). Add 1 for second figures; each window costs per value.
    windows: tuple[int, ...] = (60, 3600)
    #: CSMT §12.4: "采用线性插值或最近邻插值算法".
    interpolation: Method = "linear"
    #: Longest gap filled: CSMT §12.4's outage limit of 3 (working) days.
    max_fill_s: float = 3 * DAY
    #: Most missing values filled in one gap (bounds the memory of a dead point).
    max_fill_count: int = 10_000
    #: Complete months kept for the second check (CSMT §8.1.2).
    history_months: int = HISTORY_MONTHS
    #: How long a virtual point waits for an input's window before it is computed without it;
    #: None: max_fill_s + one day (an input in a gap holds its windows that long).
    virtual_max_lag_s: float | None = None

    def __post_init__(self) -> None:
        check_periods(self.windows, self.utc_offset_s)
        if self.max_fill_s <= 0 or self.max_fill_count < 1 or self.history_months < 1:
            raise ProcessingError("max_fill_s, max_fill_count and history_months must be positive")


@dataclass(frozen=True, slots=True)
class Output:
    """What one call produced, for storage to write (see the module text)."""

    readings: tuple[Reading, ...] = ()
    increments: tuple[Increment, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    events: tuple[Event, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.readings or self.increments or self.aggregates or self.events)


@dataclass(slots=True)
class _Sink:
    readings: list[Reading] = field(default_factory=list)
    increments: list[Increment] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def output(self) -> Output:
        return Output(
            tuple(self.readings),
            tuple(self.increments),
            tuple(self.aggregates),
            tuple(self.events),
        )


class _PointState:
    __slots__ = (
        "abandoned",
        "backup",
        "counter",
        "integrals",
        "last_good",
        "last_t",
        "out_of_range",
        "pending",
        "point",
        "windows",
    )

    def __init__(self, point: Point, settings: Settings) -> None:
        self.point = point
        self.counter = (
            CounterState.for_point(point, settings.history_months)
            if point.kind == "counter"
            else None
        )
        self.windows = PointWindows(point.id, point.kind, settings.windows, settings.utc_offset_s)
        self.backup = point.backup.device if point.backup is not None else None
        if self.backup == point.source.device:
            self.backup = None  # the same device: a value cannot tell which source it came from
        self.integrals: list[tuple[Integrator, PointWindows]] = []
        self.last_t = float("-inf")
        self.last_good: Reading | None = None  # gauges; counters use counter.baseline
        self.pending: list[float] = []  # due times of missing values since the last usable one
        self.abandoned = False  # the current gap is too long to fill
        self.out_of_range = False

    def base(self) -> Reading | None:
        """The last usable reading a gap would be filled from."""
        return self.counter.baseline if self.counter is not None else self.last_good


class Processor:
    """Processes RawValues of the configured ``points`` (see the module text for the API).

    ``virtual`` are the virtual points (``virtual.VirtualPoint``), checked here;
    ``manual_devices`` are devices whose values are entered by hand (quality MANUAL).
    """

    def __init__(
        self,
        points: Sequence[Point],
        *,
        settings: Settings | None = None,
        virtual: Sequence[VirtualPoint] = (),
        manual_devices: Iterable[str] = (),
    ) -> None:
        self.settings = settings = settings or Settings()
        self._manual = frozenset(manual_devices)
        self._states = {p.id: _PointState(p, settings) for p in points}
        if len(self._states) != len(points):
            raise ProcessingError("points: ids must be unique")
        self.plan = plan(points, virtual)
        lag = settings.virtual_max_lag_s
        #: How long a virtual point waits for an input's window (``Settings.virtual_max_lag_s``).
        self.virtual_max_lag_s = settings.max_fill_s + DAY if lag is None else lag
        self._evaluator = VirtualEvaluator(self.plan, max_lag_s=self.virtual_max_lag_s)
        self._virtual_inputs = self._evaluator.inputs()
        for source, found in integrators(self.plan, points).items():
            self._states[source].integrals = [
                (
                    integ,
                    PointWindows(integ.rule.id, "counter", settings.windows, settings.utc_offset_s),
                )
                for integ in found
            ]

    @classmethod
    def from_config(
        cls,
        config: TerminalConfig,
        *,
        virtual: Sequence[VirtualPoint] | None = None,
        settings: Settings | None = None,
    ) -> Processor:
        """A processor for a terminal configuration: its points, its virtual points (unless
        ``virtual`` replaces them), its interpolation method, and its manual-entry devices."""
        settings = settings or Settings(interpolation=config.processing.interpolation)
        manual = [d.id for d in config.devices if d.protocol == "manual"]
        if virtual is None:
            virtual = config.virtual_points
        return cls(config.points, settings=settings, virtual=virtual, manual_devices=manual)

    @property
    def points(self) -> list[Point]:
        """The physical points processed (virtual ones are in ``plan``)."""
        return [st.point for st in self._states.values()]

    # ---- the stream -------------------------------------------------------------------------
    def process(self, raw: RawValue) -> Output:
        """Process one RawValue (time order per point)."""
        sink = _Sink()
        self._process(raw, sink)
        return sink.output()

    def process_many(self, raws: Iterable[RawValue]) -> Output:
        """Process a batch (e.g. one device's answer); one Output for all of it."""
        sink = _Sink()
        for raw in raws:
            self._process(raw, sink)
        return sink.output()

    def close_until(self, now: float) -> Output:
        """Close the windows no value can still reach: the caller has fed every RawValue with
        ``t ≤ now``. Also gives up on gaps grown too long to fill.

        A gauge's windows close up to ``now``. A counter's next increment is attributed to the
        middle of (its last reading, its next one), so a silent counter's window closes only
        once that middle must lie beyond it: a counter that fell silent at 23:00 settles its
        day at 01:00 at the earliest, or when its next reading comes, whichever is first. A
        point in a gap keeps its windows open until the gap is filled or given up."""
        sink = _Sink()
        for st in self._states.values():
            base = st.base()
            if st.pending and base is not None and now - base.t > self.settings.max_fill_s:
                self._abandon(st, base, now, "longer than max_fill_s", sink)
            held = bool(st.pending)
            if st.counter is not None:
                # A counter's next increment starts at its baseline and is attributed to the
                # middle of its interval.
                threshold = now if base is None else base.t if held else (base.t + now) / 2
            else:
                threshold = base.t if held and base is not None else now
            self._aggregates(st, st.windows.close_until(threshold), sink)
            if st.integrals:
                last = st.last_good
                threshold = now if last is None else last.t if held else (last.t + now) / 2
                for _, windows in st.integrals:
                    self._aggregates(st, windows.close_until(threshold), sink)
        return sink.output()

    # ---- restart ----------------------------------------------------------------------------
    def seed(
        self,
        point: str,
        *,
        last: Reading | None = None,
        months: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Restore a counter's baseline (its last usable reading) and its valid monthly totals
        (label ``"YYYY-MM"``, for the second check) from storage. For an integrate point,
        ``last`` is its rate's last usable reading before the integral's replay."""
        integral = self._integral(point)
        if integral is not None:
            integral[0].resume_from(last)
            return
        st = self._state(point)
        if st.counter is None:
            if last is not None:
                st.last_good = last
            return
        st.counter.seed(last, months)
        if last is not None:
            st.last_t = max(st.last_t, last.t)

    def rebuild(
        self,
        point: str,
        *,
        closed: Iterable[Aggregate] = (),
        readings: Iterable[Reading] = (),
        since: float,
    ) -> list[Aggregate]:
        """Rebuild one point's open windows after a restart; return the windows the replay
        closed (some may be stored already: the caller keeps those it does not have).

        ``closed`` are its stored windows to merge back (:meth:`PointWindows.restore`: days of
        the open month, months of the open year, longest real-time windows of the open day);
        ``readings`` its stored readings from ``since`` on, in time order, ``since`` being where
        the stored windows end. Seed the baseline (the last usable reading before ``since``)
        with :meth:`seed` first. Only samples attributed at or after ``since`` go into windows,
        so nothing stored is counted twice.

        An integrate point is rebuilt the same way, on its own (its windows may end elsewhere
        than its rate's): ``closed`` its stored windows, ``readings`` its rate's. The other
        virtual points are computed from their inputs' windows: see :meth:`rebuild_virtual`."""
        integral = self._integral(point)
        if integral is not None:
            integ, windows = integral
            for a in closed:
                windows.restore(a)
            windows.closed_before(since)
            emitted: list[Aggregate] = []
            for r in readings:
                inc, _ = integ.update(r)
                if inc is not None and inc.mid >= since:
                    emitted += windows.add_increment(inc)
            return emitted
        st = self._state(point)
        for a in closed:
            st.windows.restore(a)
        st.windows.closed_before(since)
        sink = _Sink()
        for r in readings:
            if r.quality in USABLE and r.value is not None:
                st.last_t = max(st.last_t, r.t)
                self._replay(st, r, since, sink)
        return sink.aggregates

    def _replay(self, st: _PointState, r: Reading, since: float, sink: _Sink) -> None:
        if st.counter is not None:
            inc = st.counter.update(r).increment
            if inc is not None and inc.mid >= since:
                self._replayed(st, st.windows.add_increment(inc), sink)
            return
        st.last_good = r
        if r.t >= since:
            self._replayed(st, st.windows.add_reading(r), sink)

    def rebuild_virtual(self, rule: str, windows: Iterable[Aggregate]) -> list[Aggregate]:
        """After a restart, once every metered and integrate point is rebuilt: give the window
        rule ``rule`` (a virtual point's id; rules in ``plan.rules`` order) its inputs' windows
        that closed before the restart and whose results the store may lack: the stored ones
        after its last stored result, those the rebuilds returned, and the results of the rules
        before it. Returns the results they complete (the caller keeps those the store does not
        have); the rest wait for their other inputs like any window."""
        derived, _ = self._evaluator.resume(rule, windows)  # its events were logged before
        return derived

    def _replayed(self, st: _PointState, closed: list[Aggregate], sink: _Sink) -> None:
        # Like _aggregates, but virtual points are not fed: they would see only this point.
        for a in closed:
            sink.aggregates.append(a)
            if a.period == "month" and st.counter is not None and a.increment is not None:
                st.counter.add_month(a.label, a.increment)

    # ---- internals --------------------------------------------------------------------------
    def _state(self, point: str) -> _PointState:
        try:
            return self._states[point]
        except KeyError:
            raise UnknownPointError(
                f"no point {point!r} in the configuration processing was built from"
            ) from None

    def _integral(self, point: str) -> tuple[Integrator, PointWindows] | None:
        if point in self._states:
            return None
        for st in self._states.values():
            for integ, windows in st.integrals:
                if integ.rule.id == point:
                    return integ, windows
        return None

    def _process(self, raw: RawValue, sink: _Sink) -> None:
        st = self._states.get(raw.point)
        if st is None:
            self._state(raw.point)  # raises
            return
        device = raw.device
        if device == st.backup:
            quality = Quality.BACKUP
        elif device in self._manual:
            quality = Quality.MANUAL
        else:
            quality = Quality.GOOD
        r = to_reading(raw, st.point, quality)
        if raw.t < st.last_t:
            self._out_of_order(st, r, sink)
            return
        st.last_t = raw.t
        if r.quality not in USABLE:
            sink.readings.append(r)
            self._missing(st, r, sink)
            return
        st.out_of_range = False
        if st.pending or st.abandoned:
            self._end_gap(st, r, sink)
        self._usable(st, r, sink)

    def _usable(self, st: _PointState, r: Reading, sink: _Sink) -> None:
        counter = st.counter
        if counter is not None:
            step = counter.update(r)
            sink.readings.append(step.reading)
            if step.events:
                sink.events += step.events
            inc = step.increment
            if inc is not None:
                sink.increments.append(inc)
                self._into_windows(st, st.windows, inc, sink)
        else:
            closed = st.windows.add_reading_in_time(r)
            if closed is None:
                self._late(st, r, sink)
                return
            sink.readings.append(r)
            st.last_good = r
            if closed:
                self._aggregates(st, closed, sink)
            for integ, windows in st.integrals:
                inc, event = integ.update(r)
                if event is not None:
                    sink.events.append(event)
                if inc is not None:
                    sink.increments.append(inc)
                    self._into_windows(st, windows, inc, sink)

    def _into_windows(
        self, st: _PointState, windows: PointWindows, inc: Increment, sink: _Sink
    ) -> None:
        # close_until keeps a counter's windows open until no increment can still fall in them,
        # so a late one means something outside that promise (a store edited behind the
        # terminal's back): stored and reported, never a crash or a revised window.
        closed = windows.add_increment_in_time(inc)
        if closed is None:
            sink.events.append(
                Event(inc.t, "late_increment", windows.point, details={"mid": repr(inc.mid)})
            )
            return
        if closed:
            self._aggregates(st, closed, sink)

    def _aggregates(self, st: _PointState, closed: list[Aggregate], sink: _Sink) -> None:
        for a in closed:
            sink.aggregates.append(a)
            if (
                a.period == "month"
                and st.counter is not None
                and a.point == st.point.id
                and a.increment is not None
            ):
                st.counter.add_month(a.label, a.increment)  # history for CSMT §8.1.2
            if a.point not in self._virtual_inputs:  # most points: no rule takes their windows
                continue
            derived, events = self._evaluator.feed(a)
            if derived:
                sink.aggregates += derived
            if events:
                sink.events += events

    def _missing(self, st: _PointState, r: Reading, sink: _Sink) -> None:
        """A due value that is not usable: remember its time for filling."""
        if r.quality is Quality.OUT_OF_RANGE and not st.out_of_range:
            st.out_of_range = True  # one event per excursion, not per value
            sink.events.append(
                Event(
                    r.t,
                    "out_of_range",
                    r.point,
                    r.device,
                    details={"value": str(r.value), "note": r.note, "clause": "CSMT §8.1.1"},
                )
            )
        base = st.base()
        if base is None or st.abandoned or r.t <= base.t:
            return
        if r.t - base.t > self.settings.max_fill_s:
            self._abandon(st, base, r.t, "longer than max_fill_s", sink)
        elif len(st.pending) >= self.settings.max_fill_count:
            self._abandon(st, base, r.t, "more than max_fill_count missing values", sink)
        else:
            st.pending.append(r.t)

    def _abandon(self, st: _PointState, base: Reading, t: float, why: str, sink: _Sink) -> None:
        sink.events.append(
            Event(
                t,
                "gap_not_filled",
                st.point.id,
                base.device,
                base.t,
                t,
                {
                    "why": f"gap {why} (CSMT §12.4: 停止或非正常运行的时间应不超过 3 个工作日)",
                    "missing": str(len(st.pending)),
                },
            )
        )
        st.pending = []
        st.abandoned = True

    def _end_gap(self, st: _PointState, r: Reading, sink: _Sink) -> None:
        """The first usable reading after missing ones: fill the gap if CSMT §12.4 can."""
        due, st.pending, st.abandoned = st.pending, [], False
        base = st.base()
        if not due or base is None:
            return
        why = ""
        span: Decimal | None = None
        counter = st.counter
        if r.t - base.t > self.settings.max_fill_s:
            why = "longer than max_fill_s (CSMT §12.4: 不超过 3 个工作日)"
        elif counter is not None:
            span = counter.span(r)
            limit = counter.limit()
            if span is None and base.device != r.device:
                why = f"the value after the gap comes from another device ({r.device})"
            elif span is None:
                why = "the register did not simply advance across the gap"
            elif limit is not None and span > limit:
                why = f"its increment {span} fails the second check (CSMT §8.1.2, limit {limit})"
        if why:
            sink.events.append(
                Event(
                    r.t,
                    "gap_not_filled",
                    r.point,
                    r.device,
                    base.t,
                    r.t,
                    {"why": why, "missing": str(len(due))},
                )
            )
            return
        inside = [t for t in dict.fromkeys(due) if base.t < t < r.t]
        fill = fill_gap(
            base,
            r,
            inside,
            method=self.settings.interpolation,
            span=span,
            full_scale=st.point.full_scale,
        )
        sink.events.append(fill.event)
        for filled in fill.readings:
            self._usable(st, filled, sink)

    def _late(self, st: _PointState, r: Reading, sink: _Sink) -> None:
        """A gauge's reading for a window already closed (a collector that stamps its values
        and sends them late): kept, and the base for filling, but the windows sent stay as they
        were (ISC-2 §7.2.4(5): corrections go up as an audited backfill, not by rewriting)."""
        note = "arrived after its window closed: not in the window figures" + (
            f"; {r.note}" if r.note else ""
        )
        sink.readings.append(replace(r, note=note))
        st.last_good = r
        sink.events.append(Event(r.t, "late_value", r.point, r.device))

    def _out_of_order(self, st: _PointState, r: Reading, sink: _Sink) -> None:
        note = f"out of time order (last t={st.last_t}): kept as evidence, not processed" + (
            f"; {r.note}" if r.note else ""
        )
        quality = Quality.SUSPECT if r.quality.usable else r.quality
        sink.readings.append(replace(r, quality=quality, note=note))
        sink.events.append(
            Event(
                r.t,
                "out_of_order",
                r.point,
                r.device,
                details={"last_t": repr(st.last_t), "t": repr(r.t)},
            )
        )

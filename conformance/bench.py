"""What the suites share: the rig and the terminal under test, and the few judgements every
area needs (time on the wire, the terminal's points, waiting in virtual or real time).

Time: under the virtual clock a wait costs little wall time; under the real clock a test that
needs more time than the profile allows says so (*inconclusive*, with how long it needs)
instead of holding the run for hours.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from conformance import evidence
from conformance.data_time import PLANT_OFFSET, local, posix
from conformance.dut import Change, Dut, PointBinding, PowerCut, SetPeriod
from conformance.management import Management
from conformance.oracle import Owed, PointWindows, Tolerances, judge, owed_windows
from conformance.oracle.minutes import GAP_FACTOR
from conformance.profiles import PROFILES
from conformance.rig import Rig
from conformance.target import MANAGEMENT_PROFILE
from conformance.verdicts import Inconclusive, LeftOut, NotApplicable
from simulators.platform import CheckResult, FrameRow, ReadingKey, ReadingRow
from simulators.platform.commands import TerminalCommands

UPLOADS = (2011, 2031, 2051, 2061)
MINUTE_DATA = 2051

__all__ = ["PLANT_OFFSET", "Bench", "local", "months_after", "next_midnight", "posix"]


def whole_minutes(start: float, end: float) -> tuple[float, float]:
    """The whole minute windows of ``[start, end)``: from the first that starts at or after
    ``start`` to the last that ends by ``end`` (a DataTime has whole seconds, so a window begun
    before ``start`` would be read and not owed; one still open at ``end`` is not yet due)."""
    return -((-start) // 60) * 60, end - end % 60


def next_midnight(t: float) -> float:
    """The first plant-local midnight after ``t`` (POSIX)."""
    day = local(t).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return posix(day)


def months_after(t: float, months: int) -> float:
    """``t`` moved on by calendar months of plant-local time (a 31st becomes the month's last
    day where the month is shorter)."""
    when = local(t)
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return posix(when.replace(year=year, month=month, day=day))


@dataclass
class Bench:
    rig: Rig
    dut: Dut
    profile: str
    manifest: dict[str, Any]
    t0: float = 0.0
    #: When the running test began, in plant time (the warm-up excluded).
    test_started: float = 0.0
    _warm: bool = field(default=False)
    _warming: bool = field(default=False)
    _periods: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _pushed: bool = field(default=True)  # whether the pushing meters pushed before a cut

    # ---- time ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.rig.now()

    def first_midnight(self) -> float:
        """The first plant-local midnight the terminal lives through: under virtual time the
        rig starts just before one (a day, a month and a year end within minutes)."""
        start = self.rig.fleet.spec.start.timestamp() if self.rig.virtual else self.t0
        return next_midnight(start)

    def first_month_end(self) -> float:
        """The first plant-local midnight that ends a month in the terminal's life (under
        virtual time, minutes after the start)."""
        t = self.first_midnight()
        while local(t).day != 1:
            t = next_midnight(t)
        return t

    def needs(self, seconds: float, clauses: Sequence[str] = ()) -> None:
        """A test that must watch ``seconds`` more of terminal time: fine under the virtual
        clock; on the wall clock inconclusive when longer than the profile allows, or in a
        profile that budgets each test (hil) left out once the test would spend more than its
        budget (the warm-up excepted)."""
        if self.rig.virtual or self._warming:
            return
        profile = PROFILES[self.profile]
        budget = profile.real_budget_s
        if profile.marked_only:  # hil: each test held to its budget of plant time as it goes
            spent = self.now() - self.test_started
            if spent + seconds > budget:
                raise LeftOut(
                    f"needs {spent + seconds:.0f} s of plant time, more than the {self.profile} "
                    f"profile gives a test on the wall clock ({budget:.0f} s)",
                    *clauses,
                )
            return
        if seconds > budget:
            raise Inconclusive(
                f"needs {seconds / 3600:.1f} h of real time, more than the {self.profile} "
                f"profile's {budget / 3600:.1f} h on the wall clock (run with --clock virtual, "
                "or --profile full)",
                *clauses,
            )

    async def wait(self, seconds: float) -> None:
        self.needs(seconds)
        await self.rig.sleep(seconds)

    async def until(
        self,
        test: Callable[[], Awaitable[bool]],
        *,
        within: float,
        every: float = 30.0,
    ) -> bool:
        """Poll ``test`` every ``every`` terminal seconds until it holds or ``within`` passed;
        whether it held."""
        by_step = PROFILES[self.profile].marked_only  # hil: what it spends, not its bound
        if not by_step:
            self.needs(within)
        deadline = self.now() + within
        while True:
            if await test():
                return True
            if self.now() >= deadline:
                return False
            step = min(every, max(0.001, deadline - self.now()))
            if by_step:
                self.needs(step)
            await self.rig.sleep(step)

    async def history(self, seconds: float) -> None:
        """Make sure the terminal has run for ``seconds`` since the run began (tests that judge
        data from the past may run first)."""
        await self.warm()
        lived = self.now() - self.t0
        if lived < seconds:
            await self.wait(seconds - lived)

    async def warm(self) -> None:
        """Once per run: wait until the meters' logs show the terminal has asked for every
        polled point of the bench's fleet and it is connected to every HJ 212 centre (tests
        judge a running terminal, not its boot). A terminal that does not in time is judged as
        it is: what it never measured, the oracle owes and the centres lack (``unpolled``);
        the run's manifest says what it never did."""
        if self._warm:
            return
        polled = [
            b
            for b in self.points(acquisition="polled")
            if self.fleet_meter(b) and b.quantity is not None
        ]
        periods = [float(p) for p in self.dut.target.parameters.periods.values()] or [60.0]
        log = self.rig.meter_log

        def unread() -> list[str]:
            return [
                b.point
                for b in polled
                if b.meter is not None
                and b.quantity is not None
                and not log.answered_since(b.meter, b.quantity, self.t0)
                and not log.fault_times(b.meter, self.t0, self.now() + 1)
            ]

        def unconnected() -> list[str]:
            return [
                name
                for name in self.rig.hj212_centres()
                if not self.rig.platforms.hj212(name).connected(self.dut.mn(name))
            ]

        async def ready() -> bool:
            return not unread() and not unconnected()

        within = 3 * max(periods) + 600
        self._warming = True  # the run's warm-up is no test's cost
        try:
            warm = await self.until(ready, within=within, every=10)
        finally:
            self._warming = False
        if not warm:
            self.manifest["not_warm"] = {
                "after_s": within,
                "points_never_asked_for": unread(),
                "centres_never_connected": unconnected(),
            }
        self._warm = True
        self.test_started = self.now()

    # ---- the management profile ---------------------------------------------------------
    @property
    def management(self) -> Management:
        """The terminal's carbench management profile, where the target declares it: a test
        that reads back or configures through it is *not applicable* to a terminal that
        declares none (the report lists such clauses as needing the profile or an operator)."""
        self._need_profile()
        return self.dut.management

    def _need_profile(self) -> None:
        if not self.dut.target.declares(f"feature:{MANAGEMENT_PROFILE}"):
            raise NotApplicable(
                f"needs the carbench management profile (feature:{MANAGEMENT_PROFILE}), which "
                f"{self.dut.target.name!r} does not declare; without it an operator must judge "
                "this clause on the device"
            )

    # ---- the terminal's points -------------------------------------------------------------
    def points(
        self, *, acquisition: str | None = None, protocol: str | None = None
    ) -> list[PointBinding]:
        return [
            b
            for b in self.dut.points()
            if (acquisition is None or b.acquisition == acquisition)
            and (protocol is None or b.protocol == protocol)
        ]

    def coded(self) -> list[PointBinding]:
        """Points the terminal uploads (they have a data item code)."""
        return [b for b in self.dut.points() if b.code is not None]

    def fleet_meter(self, binding: PointBinding) -> bool:
        return binding.meter is not None and binding.meter in self.rig.fleet.meters

    # ---- the wire ----------------------------------------------------------------------------
    def frames_in(self, centre: str, *, since: float | None = None) -> list[FrameRow]:
        """Every frame ``centre`` received from the terminal (its MN there), since ``since``."""
        rows = self.rig.record.frames(centre=centre, direction="in")
        mn = self.dut.mn(centre)
        return [
            r for r in rows if (r.mn == mn or r.mn is None) and (since is None or r.at >= since)
        ]

    def readings(
        self,
        centre: str,
        cn: int,
        *,
        since: float | None = None,
        before: float | None = None,
        after_frame: int | None = None,
    ) -> list[ReadingRow]:
        """Readings (every copy) of the terminal's CN ``cn`` frames with DataTime in range
        (and of frames after ``after_frame``, if given)."""
        return self.rig.record.readings(
            centre=centre,
            mn=self.dut.mn(centre),
            cn=cn,
            since=None if since is None else local(since),
            before=None if before is None else local(before),
            after_frame=after_frame,
        )

    def codes(self, centre: str, cn: int, *, since: float) -> set[str]:
        """The data item codes of the terminal's CN ``cn`` readings with DataTime ≥ ``since``."""
        return self.rig.record.codes(
            centre=centre, mn=self.dut.mn(centre), cn=cn, since=local(since)
        )

    # ---- minute data: what the meters' logs owe, what a centre received -------------------
    @property
    def tolerances(self) -> Tolerances:
        return self.dut.target.parameters.tolerances

    def owed_minutes(
        self, centre: str, start: float, end: float, *, codes: Collection[str] | None = None
    ) -> Owed:
        """Every minute window starting in ``[start, end)`` that the terminal owes ``centre``
        for an uploaded point read from the bench's fleet, worked out from the meters' logs
        (``conformance.oracle``); ``codes``: only these item codes."""
        start, end = whole_minutes(start, end)
        points: dict[str, PointWindows] = {}
        fields: dict[str, str] = {}
        for binding in self.coded():
            if codes is not None and binding.code not in codes:
                continue
            if not self.fleet_meter(binding) or binding.quantity is None:
                continue  # not the bench's meter: nothing of the bench's own to judge it by
            assert binding.code is not None and binding.meter is not None
            points[binding.code] = owed_windows(
                self.rig.meter_log,
                meter=binding.meter,
                quantity=binding.quantity,
                kind=binding.kind,
                start=start,
                end=end,
                tolerances=self.tolerances,
                period=self.longest_period(binding.group, start, end),
            )
            fields[binding.code] = binding.minute_field
        return Owed(self.dut.mn(centre), points, fields)

    def settled_after(self) -> float:
        """Seconds after a window's end by which the reads that decide its figures are in the
        meters' logs (the longest declared period, with the oracle's margin for a late read)."""
        periods = [float(p) for p in self.dut.target.parameters.periods.values()] or [60.0]
        return GAP_FACTOR * max(periods) + self.tolerances.stamp_lag_s + 1.0

    def minute_check(
        self, centre: str, owed: Owed, start: float, end: float, *, figures: bool = False
    ) -> CheckResult:
        """``centre``'s minute data with DataTime in ``[start, end)`` judged against ``owed``
        (with ``figures``: Min, Max and flag too)."""
        start, end = whole_minutes(start, end)
        rows = self.readings(centre, MINUTE_DATA, since=start, before=end)
        return judge(owed, rows, figures=figures)

    async def minutes_arrive(
        self,
        centre: str,
        start: float,
        end: float,
        *,
        within: float,
        figures: bool = False,
        codes: Collection[str] | None = None,
    ) -> tuple[Owed, CheckResult]:
        """Wait (up to ``within``) until every minute window owed for ``[start, end)`` has
        reached ``centre``; what was owed and the final check.

        A poll reads only what arrived since the last one, and the full check (every window
        and copy of the range) runs once every owed window has been seen, then again only if
        more arrived: a day's backlog is 288 000 windows, and checking them all every 30 s
        while the last few were on their way took most of a backfill test's 36 minutes."""
        start, end = whole_minutes(start, end)
        # the last window's figures need the reads after it (a counter's next read)
        await self.rig.sleep_until(end + self.settled_after())
        owed = self.owed_minutes(centre, start, end, codes=codes)
        evidence.attach_json(f"owed-{centre}.json", owed.as_json())
        keys = owed.keys()
        seen = _Arrivals()

        async def complete() -> bool:
            seen.take(
                self.readings(centre, MINUTE_DATA, since=start, before=end, after_frame=seen.frame)
            )
            if not keys or not keys <= seen.received:
                return False
            if seen.result is None:
                seen.result = self.minute_check(centre, owed, start, end, figures=figures)
            return seen.result.complete

        if await self.until(complete, within=within, every=30):
            assert seen.result is not None
            return owed, seen.result
        return owed, self.minute_check(centre, owed, start, end, figures=figures)

    # ---- meter faults ----------------------------------------------------------------------
    async def fault_for(self, meter: str, kind: str, seconds: float, **params: Any) -> None:
        """``meter`` plays fault ``kind`` for the next ``seconds`` of plant time, waited out
        here; cleared however the wait ends (a later test must find the meter sound)."""
        fault = self.rig.meter_fault(meter, kind, seconds=seconds, **params)
        try:
            await self.wait(seconds)
        finally:
            self.rig.clear_fault(fault)

    # ---- platform commands -------------------------------------------------------------------
    async def commands(self, centre: str, *, timeout: float = 300.0) -> TerminalCommands:
        """HJ 212 platform commands from ``centre`` to the terminal, once it is connected there
        (each command given up after ``timeout`` s)."""
        mn = self.dut.mn(centre)
        server = self.rig.platforms.hj212(centre)
        await server.wait_connected(mn, 600)
        return server.commands(mn, timeout=timeout)

    # ---- power -----------------------------------------------------------------------------
    async def power_off(self, *, torn_after: int | None = None) -> PowerCut:
        """Cut the terminal's power (``Dut.power_off``), noting the instant for the oracle:
        what its meters gave just before a cut is owed only beyond the tolerance."""
        cut = await self.dut.power_off(torn_after=torn_after)
        self.rig.meter_log.power_cut(self.now())
        # The pushing meters pause while the terminal is dark: in virtual time their pushes
        # every few seconds were most of the clock's steps through a 48-hour cut (the quick
        # 48-hour test: 48 s with them, 18 s without). They push again at power on.
        self._pushed = self.rig.fleet.push
        self.rig.fleet.set_push(False)
        return cut

    async def power_on(self) -> None:
        self.rig.fleet.set_push(self._pushed)
        await self.dut.power_on()
        self.rig.meter_log.power_on(self.now())

    # ---- configuration the bench asked for ---------------------------------------------------
    async def configure(self, *changes: Change) -> None:
        """``Dut.configure``, remembering the acquisition periods asked for (when each took
        effect): the oracle holds the terminal to the period in force. Configuring goes
        through the management profile: *not applicable* where the target declares none."""
        if not changes:
            return
        self._need_profile()
        await self.dut.configure(*changes)
        now = self.now()
        for change in changes:
            if isinstance(change, SetPeriod):
                self._periods.setdefault(change.group, []).append((now, change.seconds))

    def longest_period(self, group: str, start: float, end: float) -> float:
        """The longest acquisition period of ``group`` in force at some instant of
        ``[start, end)``: the declared one (PIXIT), then each the bench set."""
        declared = self.dut.target.parameters.periods.get(group)
        history = [(self.t0, float(declared if declared is not None else 60.0))]
        history += self._periods.get(group, [])
        in_force = [
            p
            for i, (t, p) in enumerate(history)
            if t < end and (i + 1 == len(history) or history[i + 1][0] > start)
        ]
        return max(in_force or [history[-1][1]])

    def note_scenario(self, path: Path) -> None:
        files = self.manifest.setdefault("scenario_files", [])
        if str(path) not in files:
            files.append(str(path))


@dataclass
class _Arrivals:
    """What ``Bench.minutes_arrive`` has seen of one range so far."""

    received: set[ReadingKey] = field(default_factory=set)
    frame: int = 0  # the newest frame read
    result: CheckResult | None = None  # the full check, as of ``frame``

    def take(self, rows: Sequence[ReadingRow]) -> None:
        if rows:
            self.frame = max(r.frame_id for r in rows)
            self.received.update(ReadingKey(r.mn, r.cn, r.code, r.data_time) for r in rows)
            self.result = None

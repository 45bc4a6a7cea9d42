"""What the suites share: the rig and the terminal under test, and the few judgements every
area needs (time on the wire, the terminal's points, waiting in virtual or real time).

Time: under the virtual clock a wait costs little wall time; under the real clock a test that
needs more time than the profile allows says so (*inconclusive*, with how long it needs)
instead of holding the run for hours.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from conformance.dut import Dut, PointBinding
from conformance.management import DerivedValue
from conformance.rig import Rig
from conformance.verdicts import Inconclusive
from simulators.platform import CheckResult, Expected, FrameRow, ReadingKey, ReadingRow, check

#: Longest wait (s) a test may ask for on the wall clock, per profile.
REAL_BUDGET_S = {"quick": 15 * 60.0, "full": 8 * 3600.0}
#: HJ 212 DataTime is plant-local time (the uplink's utc offset, China by default).
PLANT_OFFSET = timedelta(hours=8)
UPLOADS = (2011, 2031, 2051, 2061)
MINUTE_DATA = 2051


def local(t: float) -> datetime:
    """POSIX seconds as a wire DataTime (plant-local, naive)."""
    return (datetime.fromtimestamp(t, UTC) + PLANT_OFFSET).replace(tzinfo=None)


def posix(data_time: datetime) -> float:
    return (data_time - PLANT_OFFSET).replace(tzinfo=UTC).timestamp()


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
    _warm: bool = field(default=False)

    # ---- time ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.rig.now()

    def first_midnight(self) -> float:
        """The first plant-local midnight the terminal lives through: under virtual time the
        rig starts just before one (a day, a month and a year end within minutes)."""
        start = self.rig.fleet.spec.start.timestamp() if self.rig.virtual else self.t0
        return next_midnight(start)

    def needs(self, seconds: float, clauses: Sequence[str] = ()) -> None:
        """A test that must watch ``seconds`` of terminal time: fine under the virtual clock,
        inconclusive on the wall clock when longer than the profile allows."""
        if self.rig.virtual:
            return
        budget = REAL_BUDGET_S[self.profile]
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
        self.needs(within)
        deadline = self.now() + within
        while True:
            if await test():
                return True
            if self.now() >= deadline:
                return False
            await self.rig.sleep(min(every, max(0.001, deadline - self.now())))

    async def history(self, seconds: float) -> None:
        """Make sure the terminal has run for ``seconds`` since the run began (tests that judge
        data from the past may run first)."""
        await self.warm()
        lived = self.now() - self.t0
        if lived < seconds:
            await self.wait(seconds - lived)

    async def warm(self) -> None:
        """Once per run: wait until the terminal has read every polled point once and is
        connected to every HJ 212 centre (tests judge a running terminal, not its boot)."""
        if self._warm:
            return
        polled = [b.point for b in self.points(acquisition="polled")]
        periods = [float(p) for p in self.dut.target.parameters.periods.values()] or [60.0]

        async def ready() -> bool:
            for point in polled:
                if await self.dut.management.latest(point) is None:
                    return False
            return all(
                self.rig.platforms.hj212(name).connected(self.dut.mn(name))
                for name in self.rig.hj212_centres()
            )

        await self.until(ready, within=3 * max(periods) + 600, every=10)
        self._warm = True

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

    # ---- minute data: what the terminal stored, what a centre received --------------------
    async def stored_minutes(self, centre: str, start: float, end: float) -> list[Expected]:
        """Every minute window the terminal stored for an uploaded point, starting in
        ``[start, end)``, as what ``centre`` must receive (CN 2051; a counter's figure travels
        as Cou, a gauge's as Avg, with the window's Min and Max where the terminal stores
        them). Over HTTPS a window without a value has no JSON form."""
        mn = self.dut.mn(centre)
        https = self.rig.centre(centre).protocol == "https"
        out = []
        for binding in self.coded():
            assert binding.code is not None
            field_ = binding.minute_field
            for d, others in await self.minute_windows(binding, start, end):
                if https and d.value is None:
                    continue
                out.append(
                    Expected(mn, MINUTE_DATA, local(d.start), binding.code, d.value, field_, others)
                )
        return out

    async def minute_windows(
        self, binding: PointBinding, start: float | None, end: float
    ) -> list[tuple[DerivedValue, tuple[tuple[str, Decimal], ...]]]:
        """The minute windows of ``binding`` the terminal holds, starting in ``[start, end)``,
        each with the Min and Max its frame must carry where the terminal stores them."""
        management = self.dut.management
        # extremes first: a window that closes between the reads is then checked without
        # them, never failed for lacking them
        extremes: dict[float, list[tuple[str, Decimal]]] = {}
        for kind, name in (("minute_min", "Min"), ("minute_max", "Max")):
            for d in await management.derived(binding.point, kind, start, end):
                if d.value is not None:
                    extremes.setdefault(d.start, []).append((name, d.value))
        return [
            (d, () if d.value is None else tuple(extremes.get(d.start, ())))
            for d in await management.derived(binding.point, "minute", start, end)
        ]

    def minute_check(
        self, centre: str, expected: list[Expected], start: float, end: float
    ) -> CheckResult:
        """The set check of ``centre``'s minute data with DataTime in ``[start, end)``."""
        rows = self.readings(centre, MINUTE_DATA, since=start, before=end)
        return check(expected, rows)

    async def minutes_arrive(
        self, centre: str, start: float, end: float, *, within: float
    ) -> tuple[list[Expected], CheckResult]:
        """Wait (up to ``within``) until every minute window the terminal stored for
        ``[start, end)`` has reached ``centre``; the windows and the final check.

        A poll reads only what arrived since the last one, and the full check (every window
        and copy of the range) runs once every stored window has been seen, then again only
        if more arrived or the terminal's stored windows changed: a day's backlog is 288 000
        windows, and checking them all every 30 s while the last few were on their way took
        most of a backfill test's 36 minutes."""
        seen = _Arrivals()

        async def complete() -> bool:
            seen.take(
                self.readings(centre, MINUTE_DATA, since=start, before=end, after_frame=seen.frame)
            )
            if seen.expected is None:
                seen.expected = await self.stored_minutes(centre, start, end)
            if not seen.expected or seen.missing():
                return False
            if seen.result is None:
                seen.result = self.minute_check(centre, seen.expected, start, end)
            elif not seen.result.complete:
                return False  # nothing arrived since a check that found something wrong
            # the terminal may have stored windows since its copy was read (a late window):
            # confirm with a fresh one, and check against that one if it differs
            fresh = await self.stored_minutes(centre, start, end)
            if fresh != seen.expected:
                seen.expected, seen.result = fresh, None
                return False
            return seen.result.complete

        if await self.until(complete, within=within, every=30):
            assert seen.expected is not None and seen.result is not None
            return seen.expected, seen.result
        expected = await self.stored_minutes(centre, start, end)
        return expected, self.minute_check(centre, expected, start, end)

    def note_scenario(self, path: Path) -> None:
        files = self.manifest.setdefault("scenario_files", [])
        if str(path) not in files:
            files.append(str(path))


@dataclass
class _Arrivals:
    """What ``Bench.minutes_arrive`` has seen of one range so far."""

    expected: list[Expected] | None = None  # the terminal's stored windows, as last read
    received: set[ReadingKey] = field(default_factory=set)
    frame: int = 0  # the newest frame read
    result: CheckResult | None = None  # the full check of ``expected``, as of ``frame``

    def take(self, rows: Sequence[ReadingRow]) -> None:
        if rows:
            self.frame = max(r.frame_id for r in rows)
            self.received.update(ReadingKey(r.mn, r.cn, r.code, r.data_time) for r in rows)
            self.result = None

    def missing(self) -> bool:
        return any(e.key not in self.received for e in self.expected or ())

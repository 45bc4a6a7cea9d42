"""Answers to platform commands (HJ 212-2017 Appendix C flows, 9011 then data then 9012).

- 1000 OverTime/ReCount (C.1), 1011/1012 get/set time (C.2, C.3), 1061–1064 real-time and
  minute intervals (C.5–C.8), 2011 start real-time data (C.10; 2012 stop is a notification the
  session answers with 9013), 2031/2051/2061 history with BeginTime/EndTime served from the
  store, each record with a new QN (C.20).
- Values outside 表 4's ranges are accepted as requests (9011 QnRtn=1) and answered 9012
  ExeRtn=3 (命令请求条件错误): the request was well formed, its condition cannot be met.
- A command the terminal does not run is refused 9011 QnRtn=2.

Every command is recorded as an ``uplink_command`` event (CSMT §11.12 upload logs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from common.clock import Clock
from protocols.hj212 import Command, Cp, ExeRtn, Packet, QnRtn
from reference_terminal.config import MIN_INTERVALS, CentreBase
from reference_terminal.model import Event
from reference_terminal.storage.store import Store
from reference_terminal.uplink.frames import Stream, local_time, posix_time
from reference_terminal.uplink.producer import Producer
from reference_terminal.uplink.session import UplinkSession
from reference_terminal.uplink.settings import CentreSettings

log = logging.getLogger(__name__)

HISTORY_STREAMS = {
    Command.DAY_DATA: Stream.DAY,
    Command.MINUTE_DATA: Stream.MINUTE,
    Command.HOUR_DATA: Stream.HOUR,
}


@runtime_checkable
class SettableClock(Protocol):
    """A clock the platform may set (CN 1012). A gateway synchronised by NTP or GNSS is not
    one: its time is not the platform's to change."""

    def set_time(self, t: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    exe_rtn: int
    why: str = ""


class Commands:
    """Runs one centre's platform requests against the terminal."""

    def __init__(
        self,
        centre: CentreBase,
        settings: CentreSettings,
        producer: Producer,
        store: Store,
        clock: Clock,
        *,
        utc_offset_s: int,
        on_change: Callable[[], None],
    ) -> None:
        self.centre = centre
        self.settings = settings
        self.producer = producer
        self.store = store
        self.clock = clock
        self.utc_offset_s = utc_offset_s
        self.on_change = on_change  # timing or intervals changed: reschedule

    def _now(self) -> float:
        return self.clock.time()

    async def handle(
        self, session: UplinkSession, request: Packet, flush: Callable[[], Awaitable[None]]
    ) -> None:
        cn = request.cn
        run = self._handlers().get(cn)
        if run is None:
            session.reject(request, QnRtn.REJECTED)
            await flush()
            await self._record(request, f"refused: CN {cn} is not run by this terminal")
            return
        session.accept(request)
        await flush()
        try:
            outcome = await run(session, request, flush)
        except Exception as exc:  # a fault while running: say so to the platform, keep the link
            log.exception("uplink %s: CN %s failed", self.centre.name, cn)
            outcome = Outcome(ExeRtn.FAULT, f"{type(exc).__name__}: {exc}")
        try:  # recorded before 9012 goes: a platform that sees the result finds it in the log
            await self._record(request, f"ExeRtn={outcome.exe_rtn} {outcome.why}".strip())
        except Exception:  # a store that cannot log must not leave the request open for ever
            log.exception("uplink %s: CN %s ran but could not be logged", self.centre.name, cn)
        session.complete(request, outcome.exe_rtn)
        await flush()

    def _handlers(
        self,
    ) -> dict[
        int, Callable[[UplinkSession, Packet, Callable[[], Awaitable[None]]], Awaitable[Outcome]]
    ]:
        return {
            Command.SET_TIMEOUT_RETRY: self._set_timing,
            Command.GET_TIME: self._get_time,
            Command.SET_TIME: self._set_time,
            Command.GET_RTD_INTERVAL: self._get_rtd,
            Command.SET_RTD_INTERVAL: self._set_rtd,
            Command.GET_MIN_INTERVAL: self._get_min,
            Command.SET_MIN_INTERVAL: self._set_min,
            Command.REALTIME_DATA: self._start_realtime,
            Command.DAY_DATA: self._history,
            Command.MINUTE_DATA: self._history,
            Command.HOUR_DATA: self._history,
        }

    async def _record(self, request: Packet, outcome: str) -> None:
        details = {"centre": self.centre.name, "cn": f"{request.cn:04d}", "outcome": outcome}
        details["qn"] = request.request_qn or ""
        details["cp"] = request.cp.render()[:500]
        await self.store.write_events([Event(self._now(), "uplink_command", details=details)])

    # ---- 1000 ----------------------------------------------------------------------------
    async def _set_timing(
        self, session: UplinkSession, request: Packet, _flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        over_time, re_count = request.cp.over_time, request.cp.re_count
        if over_time is None or re_count is None:
            return Outcome(ExeRtn.CONDITION_ERROR, "CN 1000 needs OverTime and ReCount (表 4)")
        if not (0 < over_time <= 99 and 0 < re_count <= 99):
            return Outcome(
                ExeRtn.CONDITION_ERROR,
                f"OverTime={over_time}, ReCount={re_count}: 表 4 allows 0 < n ≤ 99",
            )
        session.set_timing(over_time, re_count)
        await self.settings.save(self.store, self.centre, over_time_s=over_time, re_count=re_count)
        self.on_change()
        return Outcome(ExeRtn.OK, f"OverTime={over_time} ReCount={re_count}")

    # ---- 1011/1012 -----------------------------------------------------------------------
    async def _get_time(
        self, session: UplinkSession, request: Packet, flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        params: dict[str, str] = {}
        pol_id = request.cp.get("PolId")
        if pol_id is not None:
            params["PolId"] = pol_id
        system_time = local_time(self._now(), self.utc_offset_s)
        session.send_data(request, Cp.build(params={**params, "SystemTime": system_time}))
        await flush()
        return Outcome(ExeRtn.OK)

    async def _set_time(
        self, _session: UplinkSession, request: Packet, _flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        wanted = request.cp.system_time
        if wanted is None:
            return Outcome(ExeRtn.CONDITION_ERROR, "CN 1012 needs SystemTime (表 4)")
        if not isinstance(self.clock, SettableClock):
            return Outcome(
                ExeRtn.CONDITION_ERROR,
                "this terminal's clock is not set by platforms (synchronised by its own time "
                "source); SystemTime ignored",
            )
        self.clock.set_time(posix_time(wanted, self.utc_offset_s))
        return Outcome(ExeRtn.OK, f"clock set to {wanted:%Y%m%d%H%M%S}")

    # ---- 1061-1064 -----------------------------------------------------------------------
    async def _get_rtd(
        self, session: UplinkSession, request: Packet, flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        session.send_data(request, Cp.build(RtdInterval=self.settings.realtime_interval_s))
        await flush()
        return Outcome(ExeRtn.OK)

    async def _set_rtd(
        self, _session: UplinkSession, request: Packet, _flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        value = request.cp.rtd_interval
        if value is None or not 30 <= value <= 3600:
            return Outcome(ExeRtn.CONDITION_ERROR, f"RtdInterval={value}: 表 4 wants 30 ≤ n ≤ 3600")
        await self.settings.save(self.store, self.centre, realtime_interval_s=value)
        self.on_change()
        return Outcome(ExeRtn.OK, f"RtdInterval={value}")

    async def _get_min(
        self, session: UplinkSession, request: Packet, flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        session.send_data(request, Cp.build(MinInterval=self.settings.minute_interval_min))
        await flush()
        return Outcome(ExeRtn.OK)

    async def _set_min(
        self, _session: UplinkSession, request: Packet, _flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        value = request.cp.min_interval
        if value not in MIN_INTERVALS:
            return Outcome(
                ExeRtn.CONDITION_ERROR, f"MinInterval={value}: 表 4 allows {list(MIN_INTERVALS)}"
            )
        assert value is not None
        await self.settings.save(self.store, self.centre, minute_interval_min=value)
        self.on_change()
        return Outcome(ExeRtn.OK, f"MinInterval={value}")

    # ---- 2011 / 2012 ---------------------------------------------------------------------
    async def _start_realtime(
        self, _session: UplinkSession, _request: Packet, _flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        await self.settings.save(self.store, self.centre, realtime_on=True)
        self.on_change()
        return Outcome(ExeRtn.OK, "real-time data on")

    async def stop_realtime(self, request: Packet) -> None:
        """CN 2012 (a notification: the session has answered 9013)."""
        await self.settings.save(self.store, self.centre, realtime_on=False)
        self.on_change()
        await self._record(request, "real-time data off")

    # ---- 2031/2051/2061 ------------------------------------------------------------------
    async def _history(
        self, session: UplinkSession, request: Packet, flush: Callable[[], Awaitable[None]]
    ) -> Outcome:
        begin, end = request.cp.begin_time, request.cp.end_time
        if begin is None or end is None or end < begin:
            return Outcome(
                ExeRtn.CONDITION_ERROR, "history needs BeginTime ≤ EndTime (表 4, flow C.20)"
            )
        stream = HISTORY_STREAMS[Command(request.cn)]
        start = posix_time(begin, self.utc_offset_s)
        stop = posix_time(end, self.utc_offset_s)
        frames = await self.producer.frames(stream, start, stop)
        if not frames:
            return Outcome(ExeRtn.NO_DATA, f"no {stream.value} data in {begin}..{end}")
        for frame in frames:
            now = local_time(self._now(), self.utc_offset_s)
            session.send_record(request, frame.cp(self.utc_offset_s), now, ack=False)
            await flush()
        return Outcome(ExeRtn.OK, f"{len(frames)} {stream.value} record(s)")

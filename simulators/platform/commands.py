"""Platform commands to a connected terminal, awaited to their outcome and checked against
Appendix C.

>>> outcome = await centre.commands("010000A8900016F000169DC0").set_min_interval(10)
>>> outcome.status, outcome.departures          # CommandStatus.COMPLETED, ()
>>> (await commands.minute_history(begin, end)).records   # the 2051 records, as Packets

Each method sends one request (Flag=5, the centre's OverTime/ReCount for retries) and returns
when the exchange ends: ``completed`` (9012 ExeRtn=1), ``rejected`` (9011 QnRtn ≠ 1),
``failed`` (9012 with another ExeRtn, no 9011 after ReCount retries, no 9012 in time, or the
connection lost). ``accepted`` is returned only when the caller's own ``timeout`` ends the wait
after 9011 QnRtn=1 but before 9012. Every frame of the exchange is in ``steps`` and every
departure from the flows of Appendix C in ``departures`` (see :mod:`.flows`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from common.clock import Clock
from protocols.hj212 import events as ev
from protocols.hj212.codes import Command, ExeRtn, QnRtn
from protocols.hj212.cp import Cp
from protocols.hj212.packet import Packet
from simulators.platform.flows import FlowStep, check_flow


class CommandStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    centre: str
    mn: str
    cn: int
    qn: str
    status: CommandStatus
    qn_rtn: int | None
    exe_rtn: int | None
    #: The data a get-request returned (uploaded with the request's QN).
    data: tuple[Packet, ...]
    #: The records a history request returned (each with a new QN), in arrival order.
    records: tuple[Packet, ...]
    steps: tuple[FlowStep, ...]
    departures: tuple[str, ...]
    reason: str | None = None  # why it failed, in words

    @property
    def ok(self) -> bool:
        """Completed, and every frame as Appendix C has it."""
        return self.status is CommandStatus.COMPLETED and not self.departures

    def value(self, name: str) -> str | None:
        """A parameter of the returned data (``SystemTime``, ``RtdInterval`` …)."""
        for packet in self.data:
            found = packet.cp.get(name)
            if found is not None:
                return found
        return None


class CommandError(RuntimeError):
    """A command that cannot be sent (no such terminal connected)."""


@dataclass
class PendingCommand:
    """One request in flight on a connection: the centre feeds it every related frame."""

    centre: str
    mn: str
    cn: int
    qn: str
    future: asyncio.Future[CommandOutcome]
    begin: datetime | None = None
    end: datetime | None = None
    steps: list[FlowStep] = field(default_factory=list)
    data: list[Packet] = field(default_factory=list)
    records: list[Packet] = field(default_factory=list)
    qn_rtn: int | None = None
    exe_rtn: int | None = None

    def observe(self, step: FlowStep, events: Sequence[ev.Event]) -> None:
        """A frame of the exchange arrived, and what the session made of it."""
        self.steps.append(step)
        self.on_events(events)

    def on_events(self, events: Sequence[ev.Event]) -> None:
        for event in events:
            match event:
                case ev.RequestAccepted(qn=qn) if qn == self.qn:
                    self.qn_rtn = QnRtn.READY
                case ev.RequestRejected(qn=qn, qn_rtn=code) if qn == self.qn:
                    self.qn_rtn = code
                    self.finish(CommandStatus.REJECTED, f"9011 QnRtn={code}")
                case ev.RequestData(qn=qn, packet=packet) if qn == self.qn:
                    self.data.append(packet)
                case ev.DataReceived(packet=packet, request_qn=qn) if qn == self.qn:
                    self.records.append(packet)
                case ev.DataReceived(packet=packet) if packet.qn == self.qn:
                    self.data.append(packet)  # data before 9011: kept, and a departure
                case ev.RequestCompleted(qn=qn, exe_rtn=code) if qn == self.qn:
                    self.exe_rtn = code
                    if code == ExeRtn.OK:
                        self.finish(CommandStatus.COMPLETED)
                    else:
                        self.finish(CommandStatus.FAILED, f"9012 ExeRtn={code}")
                case ev.RequestFailed(qn=qn, why=why) if qn == self.qn:
                    self.finish(CommandStatus.FAILED, why)
                case _:
                    pass

    def sent(self, step: FlowStep) -> None:
        self.steps.append(step)

    def finish(self, status: CommandStatus, reason: str | None = None) -> None:
        if not self.future.done():
            self.future.set_result(self.outcome(status, reason))

    def outcome(self, status: CommandStatus, reason: str | None = None) -> CommandOutcome:
        departures = check_flow(self.cn, self.qn, self.steps, begin=self.begin, end=self.end)
        if status is CommandStatus.FAILED and reason is not None:
            departures = [d for d in departures if "no execution result" not in d]
        return CommandOutcome(
            centre=self.centre,
            mn=self.mn,
            cn=self.cn,
            qn=self.qn,
            status=status,
            qn_rtn=self.qn_rtn,
            exe_rtn=self.exe_rtn,
            data=tuple(self.data),
            records=tuple(self.records),
            steps=tuple(self.steps),
            departures=tuple(departures),
            reason=reason,
        )


class Issuer(Protocol):
    """What a centre offers the command helpers (implemented by :class:`.server.Hj212Server`)."""

    name: str
    clock: Clock

    def issue(
        self, mn: str, cn: int, cp: Cp, *, begin: datetime | None, end: datetime | None
    ) -> PendingCommand: ...

    def local_now(self) -> datetime: ...


class TerminalCommands:
    """The platform commands of HJ 212-2017 表 9 for one terminal (by MN)."""

    def __init__(self, centre: Issuer, mn: str, *, timeout: float | None = None) -> None:
        self.centre = centre
        self.mn = mn
        #: Give up waiting after this long (centre clock); None: wait for the session's verdict
        #: (which always comes: OverTime × (ReCount + 1) at most between two signs of life).
        self.timeout = timeout

    async def request(
        self,
        cn: int,
        cp: Cp | None = None,
        *,
        begin: datetime | None = None,
        end: datetime | None = None,
    ) -> CommandOutcome:
        """Any platform request; await its outcome."""
        pending = self.centre.issue(self.mn, cn, cp or Cp(), begin=begin, end=end)
        if self.timeout is None:
            return await pending.future
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self.centre.clock.sleep(self.timeout))
        both: set[asyncio.Future[Any]] = {pending.future, waiter}
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not pending.future.done():
            status = (
                CommandStatus.ACCEPTED if pending.qn_rtn == QnRtn.READY else CommandStatus.FAILED
            )
            pending.finish(status, f"no outcome within {self.timeout:g} s")
        return pending.future.result()

    # ---- 表 9, in the order of Appendix C --------------------------------------------------
    async def set_timeouts(self, over_time: int, re_count: int) -> CommandOutcome:
        """1000: OverTime (s) and ReCount (C.1)."""
        return await self.request(
            Command.SET_TIMEOUT_RETRY, Cp.build(OverTime=over_time, ReCount=re_count)
        )

    async def get_time(self, pol_id: str | None = None) -> CommandOutcome:
        """1011: the terminal's time, in ``outcome.value("SystemTime")`` (C.2)."""
        return await self.request(Command.GET_TIME, _pol(pol_id))

    async def set_time(
        self, moment: datetime | None = None, pol_id: str | None = None
    ) -> CommandOutcome:
        """1012: set the terminal's clock (default: the centre's local time now) (C.3)."""
        params: dict[str, str | datetime] = {} if pol_id is None else {"PolId": pol_id}
        params["SystemTime"] = moment or self.centre.local_now().replace(tzinfo=None)
        return await self.request(Command.SET_TIME, Cp.build(params=params))

    async def get_rtd_interval(self) -> CommandOutcome:
        """1061: ``outcome.value("RtdInterval")`` (C.5)."""
        return await self.request(Command.GET_RTD_INTERVAL)

    async def set_rtd_interval(self, seconds: int) -> CommandOutcome:
        """1062 (C.6)."""
        return await self.request(Command.SET_RTD_INTERVAL, Cp.build(RtdInterval=seconds))

    async def get_min_interval(self) -> CommandOutcome:
        """1063: ``outcome.value("MinInterval")`` (C.7)."""
        return await self.request(Command.GET_MIN_INTERVAL)

    async def set_min_interval(self, minutes: int) -> CommandOutcome:
        """1064 (C.8)."""
        return await self.request(Command.SET_MIN_INTERVAL, Cp.build(MinInterval=minutes))

    async def history(self, cn: int, begin: datetime, end: datetime) -> CommandOutcome:
        """2031/2041/2051/2061 with BeginTime/EndTime (C.20–C.23): ``outcome.records``."""
        cp = Cp.build(BeginTime=begin, EndTime=end)
        return await self.request(cn, cp, begin=begin, end=end)

    async def minute_history(self, begin: datetime, end: datetime) -> CommandOutcome:
        return await self.history(Command.MINUTE_DATA, begin, end)

    async def hour_history(self, begin: datetime, end: datetime) -> CommandOutcome:
        return await self.history(Command.HOUR_DATA, begin, end)

    async def day_history(self, begin: datetime, end: datetime) -> CommandOutcome:
        return await self.history(Command.DAY_DATA, begin, end)


def _pol(pol_id: str | None) -> Cp:
    return Cp() if pol_id is None else Cp.build(PolId=pol_id)

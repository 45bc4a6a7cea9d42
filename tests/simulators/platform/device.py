"""A terminal as far as the platform tests need one: a DeviceSession over a real TCP socket.

It uploads, keeps every event, drives the session's timers (resends after OverTime) and answers
platform requests the way Appendix C says — or, for the tests of the flow checker, the way a
test's ``responder`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from protocols.hj212 import events as ev
from protocols.hj212.codes import GET_COMMANDS, HISTORY_COMMANDS, Command, ExeRtn
from protocols.hj212.cp import Cp, Pollutant
from protocols.hj212.packet import Packet
from protocols.hj212.session import DeviceSession, SessionConfig

MN = "010000A8900016F000169DC0"
PW = "123456"
T0 = datetime(2026, 1, 1, 12, 0, 0)

Responder = Callable[["Device", Packet], Awaitable[None]]


def now() -> datetime:
    return datetime.now()


def reading(code: str, value: str, field: str = "Rtd", flag: str = "N") -> Pollutant:
    return Pollutant(code, {field: Decimal(value)}, flag)


def data_cp(moment: datetime, values: Iterable[tuple[str, str]], field: str = "Rtd") -> Cp:
    return Cp.build(data_time=moment, pollutants=[reading(c, v, field) for c, v in values])


class Device:
    def __init__(
        self,
        mn: str = MN,
        pw: str = PW,
        *,
        over_time: float = 0.3,
        re_count: int = 2,
        responder: Responder | None = None,
        history: dict[datetime, Cp] | None = None,
        ack_records: bool = False,
    ) -> None:
        self.session = DeviceSession(
            SessionConfig(mn=mn, pw=pw, st="32", over_time=over_time, re_count=re_count)
        )
        self.events: list[ev.Event] = []
        self.responder = responder or standard_responder
        self.history = history or {}
        self.ack_records = ack_records
        self.rtd_interval = 30
        self.min_interval = 10
        self.closed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._responding: set[asyncio.Task[None]] = set()

    async def connect(self, host: str, port: int) -> Device:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self._task = asyncio.create_task(self._run())
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def __aenter__(self) -> Device:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- what a test does -------------------------------------------------------------------
    def upload(self, cn: int, cp: Cp, *, ack: bool = True) -> str:
        qn = self.session.upload(cn, cp, now(), ack=ack)
        self.flush()
        return qn

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)
        self._kick.set()

    async def wait_for(
        self,
        kind: type[ev.Event],
        where: Callable[[ev.Event], bool] = lambda e: True,
        timeout: float = 5.0,
    ) -> ev.Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if isinstance(event, kind) and where(event):
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} within {timeout} s: {self.events}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def of(self, kind: type[ev.Event]) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, kind)]

    # ---- the loop: bytes in, timers, requests answered ----------------------------------------
    async def _run(self) -> None:
        assert self._reader is not None
        timers = asyncio.create_task(self._timers())
        try:
            while data := await self._reader.read(65536):
                self.session.receive_data(data, now())
                await self._drain()
        except (ConnectionError, OSError):
            pass
        finally:
            timers.cancel()
            self.closed.set()
            self._changed.set()

    async def _timers(self) -> None:
        """OverTime expiries: sleep to the session's next deadline, or until it may move."""
        while True:
            deadline = self.session.next_deadline()
            wait = None if deadline is None else max(0.0, (deadline - now()).total_seconds())
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)
            self.session.handle_timer(now())
            await self._drain()

    async def _drain(self) -> None:
        self.flush()
        for event in list(self.session.events()):
            self.events.append(event)
            if isinstance(event, ev.RequestReceived):
                # A task: a history responder waits for 9014s that this loop must read.
                task = asyncio.create_task(self._respond(event.request))
                self._responding.add(task)
                task.add_done_callback(self._responding.discard)
        self._changed.set()

    async def _respond(self, request: Packet) -> None:
        await self.responder(self, request)
        self.flush()


async def standard_responder(device: Device, request: Packet) -> None:
    """Answer as Appendix C says: 9011, the data (get) or records (history), 9012."""
    session = device.session
    cn = request.cn
    session.accept(request)
    if cn == Command.SET_TIMEOUT_RETRY:
        session.set_timing(float(request.cp.over_time or 10), request.cp.re_count or 3)
    elif cn == Command.SET_RTD_INTERVAL:
        device.rtd_interval = request.cp.rtd_interval or device.rtd_interval
    elif cn == Command.SET_MIN_INTERVAL:
        device.min_interval = request.cp.min_interval or device.min_interval
    if cn in GET_COMMANDS:
        answers: dict[int, dict[str, str | int | datetime]] = {
            Command.GET_TIME: {"SystemTime": T0},
            Command.GET_RTD_INTERVAL: {"RtdInterval": device.rtd_interval},
            Command.GET_MIN_INTERVAL: {"MinInterval": device.min_interval},
        }
        params = answers.get(cn, {})
        session.send_data(request, Cp.build(params=params))
    if cn in HISTORY_COMMANDS:
        begin, end = request.cp.begin_time, request.cp.end_time
        assert begin is not None and end is not None
        found = [cp for moment, cp in sorted(device.history.items()) if begin <= moment <= end]
        for cp in found:
            qn = session.send_record(request, cp, now(), ack=device.ack_records)
            device.flush()
            if device.ack_records:  # C.48: the next record only after this one's 9014
                await device.wait_for(ev.UploadAcknowledged, acknowledges(qn))
        session.complete(request, ExeRtn.OK if found else ExeRtn.NO_DATA)
        return
    session.complete(request)


def acknowledges(qn: str) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.UploadAcknowledged) and e.qn == qn


def minutes(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(count)]

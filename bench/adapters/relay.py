"""A broken uplink, for the mutation check: a TCP relay inside the *terminal's* box, between
its HJ 212 client and the network, that makes the terminal behave as a faulty one would.

- ``bad-crc``: every ``every``-th minute-data frame (CN 2051) leaves with a CRC that does not
  match its data segment (a vendor computing the CRC before a last edit of the frame).
- ``no-extremes``: minute-data frames leave without their ``-Min`` and ``-Max`` fields (length
  and CRC made anew, so each frame is still a sound HJ 212 frame): a terminal that uploads
  only each window's figure.
- ``no-retransmission``: a frame goes out once; when the terminal sends the same QN again (a
  retry after OverTime, or its backlog after a reconnect) the relay answers 9014 itself, as if
  the terminal had forgotten the frame — a terminal without retransmission.
- ``late-upload``: each minute-data frame is answered (9014) at once, as if delivered, and
  reaches the platform ``late_s`` later on the terminal's connection (the platform's own answer
  to it swallowed): a terminal that uploads a minute's data two minutes late. Frames held, or
  sent and not yet answered, when the connection ends go out first on the next one, oldest
  first, as a terminal's would.
- ``accepts-bad-requests``: every platform request is answered as carried out: a refusal
  (9011 QnRtn ≠ 1) leaves as 9011 QnRtn=1 followed by 9012 ExeRtn=1, a failure (9012 ExeRtn ≠
  1) as ExeRtn=1 — a terminal that says yes to values it does not take (HJ 212-2017 表 4's
  ranges, a wrong password).

The reference terminal itself is not changed (no test-only code paths in it): from the
platform's side of the wire the relay and the terminal together are the broken terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from typing import Literal, cast, get_args

from common.clock import Clock, RealClock
from protocols.hj212 import EDITIONS, SessionConfig
from protocols.hj212.packet import enclose
from simulators.platform.server import AckTemplate, corrupt_crc, header_of

Fault = Literal[
    "bad-crc", "no-extremes", "no-retransmission", "late-upload", "accepts-bad-requests"
]
#: ``late-upload``: how late a minute's data reach the platform (s).
LATE_S = 120.0
UPLOADS = frozenset({2011, 2031, 2051, 2061, 2071})
#: A long frame goes as several packets sharing one QN (HJ 212-2017 PNUM/PNO): a packet is
#: its QN and its number.
_PNO = re.compile(rb"PNO=(\d+)")
_EXTREME = re.compile(rb"[^=]*-(?:Min|Max)=")
_REFUSAL = re.compile(rb"QnRtn=(?!1[;&])\d+")
_FAILURE = re.compile(rb"ExeRtn=(?!1[;&])\d+")


def relay_fault(mutation: str) -> Fault | None:
    """The relay's fault for a target's mutation; None: the mutation is not the relay's."""
    return cast(Fault, mutation) if mutation in get_args(Fault) else None


def _asks_answer(header: dict[bytes, bytes]) -> bool:
    """Whether a frame asks for an answer (HJ 212-2017 表 6: Flag bit A)."""
    flag = header.get(b"Flag", b"0")
    return flag.isdigit() and bool(int(flag) & 1)


def as_carried_out(frame: bytes) -> bytes:
    """A terminal's answer to a platform request made into success: 9011 QnRtn ≠ 1 becomes
    9011 QnRtn=1 and 9012 ExeRtn=1 (two frames), 9012 ExeRtn ≠ 1 becomes ExeRtn=1; anything
    else is left as it is."""
    data = frame[6:-6]
    if b"CN=9011" in data and _REFUSAL.search(data):
        accepted = _REFUSAL.sub(b"QnRtn=1", data)
        done = accepted.replace(b"CN=9011", b"CN=9012").replace(b"QnRtn=1", b"ExeRtn=1")
        return enclose(accepted) + enclose(done)
    if b"CN=9012" in data and _FAILURE.search(data):
        return enclose(_FAILURE.sub(b"ExeRtn=1", data))
    return frame


def without_extremes(frame: bytes) -> bytes:
    """``frame`` with every ``-Min`` and ``-Max`` field left out of its CP, its length and CRC
    made anew (each packet of a long frame on its own: fields do not straddle packets)."""
    data = frame[6:-6]
    start, end = data.find(b"CP=&&") + 5, data.rfind(b"&&")
    if start < 5 or end < start:
        return frame
    groups = data[start:end].split(b";")
    kept = [b",".join(f for f in g.split(b",") if not _EXTREME.match(f)) for g in groups]
    data = data[:start] + b";".join(kept) + data[end:]
    return enclose(data)


class BrokenUplink:
    """One relay: listens on loopback, forwards to ``upstream`` with ``fault`` applied."""

    def __init__(
        self,
        upstream: tuple[str, int],
        fault: Fault,
        *,
        every: int = 4,
        clock: Clock | None = None,
        late_s: float = LATE_S,
    ) -> None:
        self.upstream = upstream
        self.fault = fault
        self.every = every
        self.clock = clock or RealClock()
        self.late_s = late_s
        #: ``late-upload``: frames held, with when each is due, and the QNs whose platform
        #: answer is the relay's to swallow (the terminal had its answer long before)
        self.held: deque[tuple[float, bytes, bytes]] = deque()
        self.held_qns: set[bytes] = set()
        #: held frames sent on and not yet answered by the platform: sent again, first, on the
        #: next connection (the terminal had its answer long ago and will not resend them)
        self.unanswered: list[tuple[float, bytes, bytes]] = []
        self._held_more = asyncio.Event()
        self.port = 0
        self.sent: set[tuple[str, bytes]] = set()
        self.minute_frames = 0
        self.spoiled = 0
        self.swallowed = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # the network beyond is down: the terminal sees its connection close
            try:
                async with asyncio.TaskGroup() as group:
                    if self.fault == "late-upload":
                        group.create_task(self._answers(up_reader, writer))
                        group.create_task(self._release(up_writer))
                    else:
                        group.create_task(self._pipe(up_reader, writer))
                    group.create_task(self._frames(reader, up_writer, writer))
            except* (OSError, EOFError):
                pass
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        raise EOFError

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The platform's frames to the terminal, less its answers to frames held late."""
        while True:
            try:
                frame = await reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError:
                raise EOFError from None
            header = header_of(frame)
            qn = header.get(b"QN")
            if header.get(b"CN") == b"9014" and qn in self.held_qns:
                self.unanswered = [u for u in self.unanswered if u[2] != qn]
                continue
            writer.write(frame)
            await writer.drain()

    async def _release(self, upstream: asyncio.StreamWriter) -> None:
        """Send each held frame when it is due, oldest first; those a broken connection left
        unanswered go first."""
        self.held.extendleft(reversed(self.unanswered))
        self.unanswered = []
        while True:
            if not self.held:
                self._held_more.clear()
                await self._held_more.wait()
                continue
            due, frame, qn = self.held[0]
            if (wait := due - self.clock.time()) > 0:
                await self.clock.sleep(wait)
                continue
            self.held.popleft()
            self.unanswered.append((due, frame, qn))  # until the platform answers it
            upstream.write(frame)
            await upstream.drain()

    def _hold(
        self, frame: bytes, header: dict[bytes, bytes], terminal: asyncio.StreamWriter
    ) -> None:
        qn = header[b"QN"]
        self.held.append((self.clock.time() + self.late_s, frame, qn))
        self._held_more.set()
        self.held_qns.add(qn)
        with contextlib.suppress(Exception):
            terminal.write(self._ack(header, qn.decode()))

    async def _frames(
        self,
        reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
        terminal: asyncio.StreamWriter,
    ) -> None:
        while True:
            try:
                frame = await reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    upstream.write(exc.partial)
                raise EOFError from None
            except asyncio.LimitOverrunError:
                frame = await reader.read(65536)
            out = self._transform(frame, terminal)
            if out:
                upstream.write(out)
                await upstream.drain()

    def _transform(self, frame: bytes, terminal: asyncio.StreamWriter) -> bytes:
        header = header_of(frame)
        cn_text = header.get(b"CN", b"")
        cn = int(cn_text) if cn_text.isdigit() else None
        qn = header.get(b"QN", b"").decode()
        if self.fault == "bad-crc" and cn == 2051:
            self.minute_frames += 1
            if self.minute_frames % self.every == 0:
                self.spoiled += 1
                return corrupt_crc(frame)
            return frame
        if self.fault == "no-extremes" and cn == 2051:
            return without_extremes(frame)
        if self.fault == "accepts-bad-requests" and cn in (9011, 9012):
            return as_carried_out(frame)
        if self.fault == "late-upload" and cn == 2051 and qn and _asks_answer(header):
            # a live upload; the records answering a history request leave on time
            self._hold(frame, header, terminal)
            return b""
        if self.fault == "no-retransmission" and cn in UPLOADS and qn:
            found = _PNO.search(frame)
            packet = (qn, found.group(1) if found else b"")
            if packet in self.sent:
                self.swallowed += 1
                with contextlib.suppress(Exception):
                    terminal.write(self._ack(header, qn))
                return b""
            self.sent.add(packet)
        return frame

    @staticmethod
    def _ack(header: dict[bytes, bytes], qn: str) -> bytes:
        config = SessionConfig(
            mn=header.get(b"MN", b"").decode(),
            pw=header.get(b"PW", b"").decode(),
            st=header.get(b"ST", b"32").decode(),
            edition=EDITIONS["2017"],
        )
        return AckTemplate(config).frame(qn)

"""An HJ 212 data centre: an asyncio TCP server that many terminals upload to at once.

One :class:`~protocols.hj212.PlatformSession` per connection, made when the first frame
arrives (its MN, PW and ST become the session's; the centre's answers and requests carry them),
timers driven by ``session.next_deadline()`` on the centre's clock. Every frame in and out is
recorded (:mod:`.record`); uploads asking for an answer (Flag A=1) are answered as the centre's
current :mod:`.behaviour` says; commands go out through :meth:`Hj212Server.commands`.

Built for load (10 000 idle connections, thousands of frames a second): a connection is a
plain :class:`asyncio.Protocol` with no task of its own, frames are cut at ``<CR><LF>`` and
fed to the session one at a time (so each recorded frame carries its own decode result), and
the record's writes are appended to a list that another thread commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from common.clock import Clock
from protocols.hj212 import events as ev
from protocols.hj212.codes import Command
from protocols.hj212.cp import Cp
from protocols.hj212.errors import GarbageSkipped, HJ212Error
from protocols.hj212.packet import DecodeOptions, Flag, Packet, decode, enclose
from protocols.hj212.session import PlatformSession, SessionConfig
from protocols.hj212.stream import MAX_FRAME
from simulators.platform.behaviour import (
    AcknowledgeLate,
    BadCrc,
    Behaviour,
    DropConnection,
    Nak,
    NeverAcknowledge,
    RefuseConnections,
    check_for,
    parse_behaviour,
)
from simulators.platform.commands import (
    CommandError,
    CommandStatus,
    PendingCommand,
    TerminalCommands,
)
from simulators.platform.config import Hj212Centre
from simulators.platform.flows import FlowKind, FlowStep, flow_kind
from simulators.platform.record import Direction, Record
from simulators.platform.signatures import SignatureVerifier

log = logging.getLogger(__name__)

TRANSPORT: Final = "hj212"
_HEADER_FIELD = re.compile(rb"(QN|ST|CN|PW|MN|Flag)=([^;&,]*)")
_DATA_TIME = re.compile(rb"DataTime=([0-9]{14})")
_LENIENT = DecodeOptions(check_crc=False, allow_unknown_cn=True, allow_oversize=True)


def header_of(raw: bytes) -> dict[bytes, bytes]:
    """QN, ST, CN, PW, MN, Flag of a frame, read without decoding it (also from broken ones)."""
    cut = raw.find(b"CP=&&")
    return dict(_HEADER_FIELD.findall(raw if cut < 0 else raw[:cut]))


def corrupt_crc(frame: bytes) -> bytes:
    """The frame with a CRC that cannot match (each hex digit moved on by one)."""
    crc = frame[-6:-2]
    wrong = bytes(b"0123456789ABCDEF"[(int(chr(c), 16) + 1) % 16] for c in crc)
    return frame[:-6] + wrong + frame[-2:]


def answer_frame(config: SessionConfig, to: Packet, cn: int, **params: int) -> bytes:
    """An answer (9011 here, for a NAK) in the edition's form, as the session would make it."""
    qn = to.request_qn
    if config.edition.answer_qn_in_cp:  # 2005: QN travels in CP
        cp = Cp.build(params={"QN": qn or "", **params})
        packet = Packet(cn, config.answer_st, config.mn, config.pw, cp, None, Flag(0))
    else:
        flag = Flag(config.edition.version, False, False)
        packet = Packet(
            cn, config.answer_st, config.mn, config.pw, Cp.build(params=params), qn, flag
        )
    return replace(packet, edition=config.edition).encode()


class AckTemplate:
    """9014 for one session's MN/PW/edition, made by formatting rather than building a Packet:
    the answer differs only by QN, and at thousands of uploads a second building it costs as
    much as decoding the upload. Byte for byte what ``PlatformSession.acknowledge`` sends
    (tests hold it to that); editions whose answers differ in form go through the session."""

    def __init__(self, config: SessionConfig) -> None:
        edition = config.edition
        self.usable = not edition.answer_qn_in_cp and config.decode.cp_cipher is None
        flag = Flag(edition.version, False, False)
        self._tail = (
            f";ST={config.answer_st};CN={int(Command.DATA_ANSWER):04d};PW={config.pw}"
            f";MN={config.mn};Flag={int(flag)};CP=&&&&"
        ).encode()

    def frame(self, qn: str) -> bytes:
        data = b"QN=" + qn.encode() + self._tail
        return enclose(data)


def _int(value: bytes | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


class Hj212Server:
    """One HJ 212 centre. ``async with Hj212Server(config, record, clock) as centre:``."""

    def __init__(self, config: Hj212Centre, record: Record, clock: Clock) -> None:
        self.config = config
        self.name = config.name
        self.record = record
        self.clock = clock
        self.behaviour: Behaviour = config.behaviour
        self.connections: dict[int, Connection] = {}
        self.by_mn: dict[str, Connection] = {}
        self.port = config.port
        self.frames_in = 0
        self.acks_sent = 0
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connected = asyncio.Event()
        self._tz = config.tz
        #: Checks every record's SM2 signature (CSMT §7.4) when the centre is given a CA.
        self.verifier: SignatureVerifier | None = None
        if config.signatures is not None:
            self.verifier = SignatureVerifier.from_files(config.signatures.ca_file)
            for mn, path in config.signatures.devices.items():
                self.trust_device(mn, path.read_bytes())

    # ---- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.behaviour.kind != "refuse" or getattr(self.behaviour, "reset", False):
            await self._listen()
        else:
            self.port = self.port or _free_port(self.config.host)

    async def stop(self) -> None:
        await self._unlisten()
        for conn in list(self.connections.values()):
            conn.close(reset=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Hj212Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.config.host, self.port

    def describe(self) -> str:
        edition = f"HJ 212-{self.config.edition}"
        return f"hj212 {self.config.host}:{self.port} ({edition}, {self.behaviour.kind})"

    # ---- behaviour --------------------------------------------------------------------
    async def set_behaviour(self, behaviour: Behaviour | str | dict[str, Any]) -> None:
        """Answer from now on as ``behaviour`` says (a scenario step). Switching to ``refuse``
        closes the port and every connection before returning; switching away listens again
        on the same port."""
        new = check_for("hj212", parse_behaviour(behaviour))
        old, self.behaviour = self.behaviour, new
        refusing = new.kind == "refuse" and not getattr(new, "reset", False)
        if refusing:
            await self._unlisten()
        if new.kind == "refuse":
            for conn in list(self.connections.values()):
                conn.close(reset=getattr(new, "reset", False))
        elif self._server is None:  # was refusing with the port closed
            await self._listen()
        log.info("centre %s: behaviour %s → %s", self.name, old.kind, new.kind)

    # ---- terminals --------------------------------------------------------------------
    def connected(self, mn: str) -> bool:
        conn = self.by_mn.get(mn)
        return conn is not None and not conn.closed

    async def wait_connected(self, mn: str, timeout: float = 10.0) -> None:
        """Return once a terminal with this MN has sent its first frame."""
        deadline = self.clock.monotonic() + timeout
        while not self.connected(mn):
            left = deadline - self.clock.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"centre {self.name}: no terminal with MN {mn} within {timeout:g} s"
                )
            self._connected.clear()
            waiter = asyncio.ensure_future(self._connected.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(min(left, 0.5)))
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            sleeper.cancel()

    def commands(self, mn: str, *, timeout: float | None = None) -> TerminalCommands:
        """Platform commands to the terminal with this MN (see :mod:`.commands`)."""
        return TerminalCommands(self, mn, timeout=timeout)

    def issue(
        self, mn: str, cn: int, cp: Cp, *, begin: datetime | None, end: datetime | None
    ) -> PendingCommand:
        conn = self.by_mn.get(mn)
        if conn is None or conn.closed or conn.session is None:
            raise CommandError(f"centre {self.name}: no terminal with MN {mn} is connected")
        return conn.issue(cn, cp, begin, end)

    def local_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), self._tz)

    def trust_device(self, mn: str, certificate: str | bytes) -> None:
        """Check the records of terminal ``mn`` against this device certificate (PEM), once
        the centre's CA is shown to have issued it (raises ``TrustError`` otherwise)."""
        if self.verifier is None:
            raise RuntimeError(f"centre {self.name} checks no signatures (no signatures.ca_file)")
        now = datetime.fromtimestamp(self.clock.time(), UTC).replace(tzinfo=None)
        self.verifier.trust(mn, certificate, now)

    # ---- inside -------------------------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connection_made(self, conn: Connection) -> int:
        number = next(self._ids)
        self.connections[number] = conn
        if self.behaviour.kind == "refuse":  # refuse with reset: accept, then RST at once
            conn.close(reset=True)
        return number

    def connection_gone(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        if conn.mn is not None and self.by_mn.get(conn.mn) is conn:
            del self.by_mn[conn.mn]

    def terminal_known(self, conn: Connection) -> None:
        assert conn.mn is not None
        self.by_mn[conn.mn] = conn
        self._connected.set()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.config.host,
            self.port,
            backlog=self.config.backlog,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # Python ≥ 3.12 waits here for every connection to end: they are closed by the
            # caller, not awaited, so do not wait long.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 0.1)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Connection(asyncio.Protocol):
    """One terminal's TCP connection to a centre."""

    def __init__(self, centre: Hj212Server) -> None:
        self.centre = centre
        self.id = 0
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        self.session: PlatformSession | None = None
        self.mn: str | None = None
        self.frames_in = 0
        self.closed = False
        self.pending: dict[str, PendingCommand] = {}
        self._buffer = bytearray()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: float | None = None
        self._ack: AckTemplate | None = None
        #: Answers made while a chunk of received bytes is read, written together after it:
        #: a terminal pipelining frames gets one write for its packets' acknowledgements, not a
        #: send each (a sixth of a drain's decoding process went to them).
        self._answers: list[bytes] | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        self.id = self.centre.connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self._buffer
        buf += data
        pos = 0
        self._answers = []
        try:
            while not self.closed:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_FRAME:  # no frame is this long: let the codec say why
                        self._frame(bytes(buf[pos:]))
                        pos = len(buf)
                    break
                self._frame(bytes(buf[pos : end + 2]))
                pos = end + 2
        finally:
            self._write_answers()
        del buf[:pos]

    def _write_answers(self) -> None:
        answers, self._answers = self._answers, None
        if answers and not self.closed and self.transport is not None:
            self.transport.write(b"".join(answers))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._buffer and self.session is not None:
            self._frame_events(bytes(self._buffer), [], error="connection closed mid-frame")
        self._buffer.clear()
        if self.session is not None:
            self.session.connection_lost()
        self._cancel_timer()
        for pending in list(self.pending.values()):
            pending.finish(CommandStatus.FAILED, "the connection was lost")
        self.pending.clear()
        self.centre.connection_gone(self)

    # ---- frames in ---------------------------------------------------------------------
    def _frame(self, raw: bytes) -> None:
        centre = self.centre
        centre.frames_in += 1
        self.frames_in += 1
        header = header_of(raw)
        session = self.session
        if session is None:
            mn = _text(header.get(b"MN"))
            if not mn:
                self._frame_events(raw, [], error="no MN in the first frame: no session yet")
                return
            config = SessionConfig(
                mn=mn,
                pw=_text(header.get(b"PW")) or "",
                st=_text(header.get(b"ST")) or "32",
                edition=centre.config.hj212_edition,
                over_time=centre.config.over_time,
                re_count=centre.config.re_count,
            )
            session = self.session = PlatformSession(config, auto_ack=False)
            self._ack = AckTemplate(config)
            self.mn = mn
            centre.terminal_known(self)
        session.receive_data(raw, centre.local_now())
        answers = session.data_to_send()  # what the session answers itself (9013)
        events = list(session.events())
        behaviour = centre.behaviour
        if isinstance(behaviour, DropConnection) and self.frames_in >= behaviour.after_frames:
            self._frame_events(
                raw, events, header=header, note="connection dropped (drop)", answer=False
            )
            self.close(reset=behaviour.reset)
            return
        self._frame_events(raw, events, header=header)
        if answers:
            self._send(answers)
        self._arm_timer()

    def _frame_events(
        self,
        raw: bytes,
        events: Sequence[ev.Event],
        *,
        header: dict[bytes, bytes] | None = None,
        error: str | None = None,
        note: str | None = None,
        answer: bool = True,
    ) -> None:
        """Record a received frame and answer it as the behaviour says (unless ``answer``
        is false)."""
        centre = self.centre
        header = header_of(raw) if header is None else header
        ok, reason = error is None, "framing" if error else None
        to_answer: list[Packet] = []
        data: list[Packet] = []
        for event in events:
            if isinstance(event, ev.ProtocolError):
                if not isinstance(event.error, GarbageSkipped):
                    ok, reason, error = False, event.error.reason, str(event.error)
            elif isinstance(event, ev.DataReceived | ev.RequestData):
                data.append(event.packet)
                if event.packet.ack_requested:
                    to_answer.append(event.packet)
            elif isinstance(event, ev.UnexpectedPacket):
                note = f"unexpected: {event.why}"
        if ok and note is None and to_answer:
            problem = centre.config.password_problem(
                _text(header.get(b"MN")) or "", _text(header.get(b"PW")) or ""
            )
            if problem is not None:
                note, to_answer = f"not answered: {problem}", []
        if note is None and to_answer:
            note = self._answer_note(centre.behaviour)
        signature, signature_error = self._signatures(data)
        at = centre.clock.time()
        text_raw = raw.decode("utf-8", "replace")
        dt = _DATA_TIME.search(raw)
        frame_id = centre.record.add_frame(
            at=at,
            centre=centre.name,
            transport=TRANSPORT,
            conn=self.id,
            peer=self.peer,
            direction="in",
            raw=text_raw,
            mn=_text(header.get(b"MN")),
            cn=_int(header.get(b"CN")),
            qn=_text(header.get(b"QN")),
            data_time=None if dt is None else dt.group(1).decode(),
            ok=ok,
            error_reason=reason,
            error=error,
            note=note,
            signature=signature,
            signature_error=signature_error,
        )
        for packet in data:
            moment = packet.cp.params.get("DataTime")
            if packet.cp.pollutants and moment:
                centre.record.add_readings(
                    frame_id,
                    at=at,
                    centre=centre.name,
                    mn=packet.mn,
                    cn=packet.cn,
                    qn=packet.qn,
                    data_time=moment,
                    pollutants=packet.cp.pollutants.values(),
                )
        if self.pending:
            self._observe(raw, header, events, at, error, note)
        if answer and not self.closed:
            for packet in to_answer:
                self._answer(packet)

    def _signatures(self, data: Sequence[Packet]) -> tuple[str | None, str | None]:
        """The signature verdict of the data records this frame completed (the worst, if
        several), or (None, None) when the centre checks none or none was completed."""
        verifier = self.centre.verifier
        records = [p for p in data if p.cp.pollutants and p.cp.get("DataTime")]
        if verifier is None or not records:
            return None, None
        checks = [verifier.check(p.mn, p.cn, p.cp) for p in records]
        worst = next((c for c in checks if not c.verified), checks[0])
        return worst.verdict.value, worst.reason or None

    def _answer_note(self, behaviour: Behaviour) -> str:
        match behaviour:
            case AcknowledgeLate(delay_s=delay):
                return f"ack in {delay:g} s (ack_late)"
            case NeverAcknowledge():
                return "not answered (never_ack)"
            case Nak(qn_rtn=code):
                return f"9011 QnRtn={code} (nak)"
            case BadCrc():
                return "9014 with a bad CRC (bad_crc)"
            case _:
                return "ack"

    def _answer(self, packet: Packet) -> None:
        session = self.session
        assert session is not None
        match self.centre.behaviour:
            case AcknowledgeLate(delay_s=delay):
                self.centre.spawn(self._late_ack(packet, delay))
            case NeverAcknowledge() | RefuseConnections():
                pass
            case Nak(qn_rtn=code):
                self._send(
                    answer_frame(session.config, packet, Command.REQUEST_ANSWER, QnRtn=code),
                    note="nak",
                )
            case BadCrc():
                session.acknowledge(packet)
                self._send(corrupt_crc(session.data_to_send()), note="bad_crc", ok=False)
            case _:
                self._acknowledge(packet)

    def _acknowledge(self, packet: Packet, note: str | None = None) -> None:
        session = self.session
        assert session is not None
        ack = self._ack
        if ack is not None and ack.usable and packet.qn is not None:
            data = ack.frame(packet.qn)
        else:
            session.acknowledge(packet)
            data = session.data_to_send()
        self.centre.acks_sent += 1
        self._send(data, note=note)

    async def _late_ack(self, packet: Packet, delay: float) -> None:
        await self.centre.clock.sleep(delay)
        if not self.closed and self.session is not None:
            self._acknowledge(packet, note=f"late by {delay:g} s")

    # ---- frames out -----------------------------------------------------------------------
    def _send(self, data: bytes, *, note: str | None = None, ok: bool = True) -> None:
        if self.closed or self.transport is None or not data:
            return
        if self._answers is not None:
            self._answers.append(data)
        else:
            self.transport.write(data)
        centre = self.centre
        at = centre.clock.time()
        start = 0
        while start < len(data):
            end = data.find(b"\r\n", start)
            end = len(data) if end < 0 else end + 2
            raw = data[start:end]
            start = end
            header = header_of(raw)
            qn = _text(header.get(b"QN"))
            centre.record.add_frame(
                at=at,
                centre=centre.name,
                transport=TRANSPORT,
                conn=self.id,
                peer=self.peer,
                direction="out",
                raw=raw.decode("utf-8", "replace"),
                mn=_text(header.get(b"MN")),
                cn=_int(header.get(b"CN")),
                qn=qn,
                ok=ok,
                error_reason=None if ok else "crc",
                error=None if ok else "CRC spoiled on purpose (bad_crc behaviour)",
                note=note,
            )
            if qn is not None and qn in self.pending:
                self.pending[qn].sent(self._step(raw, "out", at, None, note))

    def close(self, *, reset: bool = False) -> None:
        if self.closed or self.transport is None:
            return
        self._write_answers()  # what was answered before the close goes first, as it came
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()
        self.closed = True

    # ---- commands -------------------------------------------------------------------------
    def issue(
        self, cn: int, cp: Cp, begin: datetime | None, end: datetime | None
    ) -> PendingCommand:
        session = self.session
        assert session is not None and self.mn is not None
        qn = session.request(cn, self.centre.local_now(), cp)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending = PendingCommand(self.centre.name, self.mn, cn, qn, future, begin=begin, end=end)
        self.pending[qn] = pending
        future.add_done_callback(lambda _: self.pending.pop(qn, None))
        self._send(session.data_to_send(), note="request")
        self._arm_timer()
        return pending

    def _observe(
        self,
        raw: bytes,
        header: dict[bytes, bytes],
        events: Sequence[ev.Event],
        at: float,
        error: str | None,
        note: str | None,
    ) -> None:
        related = {_text(header.get(b"QN"))}
        for event in events:
            if isinstance(event, ev.DataReceived) and event.request_qn is not None:
                related.add(event.request_qn)
            elif isinstance(event, ev.RequestFailed):
                related.add(event.qn)
        # A get-request's data under a QN of its own belongs to the exchange too: the flow
        # check then says what came and under which QN, not that nothing came.
        cn = _int(header.get(b"CN"))
        for open_request in self.pending.values():
            if open_request.cn == cn and flow_kind(cn) is FlowKind.GET:
                related.add(open_request.qn)
        for qn in related:
            pending = self.pending.get(qn or "")
            if pending is not None:
                pending.observe(self._step(raw, "in", at, error, note), events)

    def _step(
        self, raw: bytes, direction: Direction, at: float, error: str | None, note: str | None
    ) -> FlowStep:
        packet: Packet | None = None
        if error is None:
            try:  # a command's frames are few: decode again for the whole packet
                packet = decode(raw, _LENIENT)
            except HJ212Error as exc:
                error = str(exc)
        return FlowStep(at, direction, raw.decode("utf-8", "replace"), packet, error, note)

    # ---- timers ---------------------------------------------------------------------------
    def _arm_timer(self) -> None:
        session = self.session
        if session is None or self.closed:
            return
        deadline = session.next_deadline()
        if deadline is None:
            return
        due = deadline.timestamp()
        if self._timer is not None and self._timer_at is not None and self._timer_at <= due:
            return
        self._cancel_timer()
        self._timer_at = due
        self._timer = asyncio.ensure_future(self._wait(due))

    async def _wait(self, due: float) -> None:
        clock = self.centre.clock
        await clock.sleep(max(0.0, due - clock.time()))
        self._timer = self._timer_at = None
        session = self.session
        if session is None or self.closed:
            return
        session.handle_timer(self.centre.local_now())
        self._send(session.data_to_send(), note="resend")
        events = list(session.events())
        for event in events:
            if isinstance(event, ev.RequestFailed) and event.qn in self.pending:
                self.pending[event.qn].on_events([event])
        self._arm_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

"""Sans-I/O HJ 212 sessions, one per side of a connection (HJ 212-2017 §6.5, flows of Appendix C).

A session owns no socket and no clock. The caller

* feeds received bytes with ``receive_data(data, now)`` and reads ``next_event()``;
* calls methods (``upload``, ``request``, ``accept`` …) that queue frames, then sends what
  ``data_to_send()`` returns;
* calls ``handle_timer(now)`` at ``next_deadline()``: that is where OverTime expires, frames
  are resent, and after ReCount retries an exchange fails and the link counts as down.

``now`` is the caller's clock (a virtual one on the bench); it also stamps new QNs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum, auto

from protocols.hj212 import events as ev
from protocols.hj212.codes import (
    ANSWERS,
    DEVICE_NOTIFICATIONS,
    GET_COMMANDS,
    HISTORY_COMMANDS,
    PLATFORM_NOTIFICATIONS,
    Command,
    ExeRtn,
    QnRtn,
)
from protocols.hj212.cp import Cp
from protocols.hj212.editions import HJ212_2017, Edition
from protocols.hj212.errors import CrcMismatch, HJ212Error, SessionError, UnknownCommand
from protocols.hj212.packet import STRICT, DecodeOptions, Flag, Packet, decode, make_qn
from protocols.hj212.split import Reassembler, split
from protocols.hj212.stream import StreamDecoder

#: Exchanges that are answered: notifications in both directions, and requests.
_REQUEST_RANGE = range(1000, 4000)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One end's identity and timing. OverTime/ReCount defaults are 表 1's cellular values."""

    mn: str
    pw: str
    st: str
    edition: Edition = HJ212_2017
    over_time: float = 10.0  # seconds, 0 < n ≤ 99 (表 4)
    re_count: int = 3  # retries after the first try, 0 < n ≤ 99 (表 4)
    answer_st: str = "91"  # 表 5: system interaction
    #: How received frames are decoded; its ``cp_cipher`` also encrypts what is sent.
    decode: DecodeOptions = STRICT

    def with_timing(self, over_time: float, re_count: int) -> SessionConfig:
        return replace(self, over_time=over_time, re_count=re_count)


class Phase(Enum):
    AWAIT_ANSWER = auto()  # sent; waiting for 9011 / 9013 / 9014
    EXECUTING = auto()  # platform: 9011 QnRtn=1 seen, waiting for data and 9012
    RECEIVED = auto()  # device: request received, not yet answered
    ACCEPTED = auto()  # device: 9011 QnRtn=1 sent
    DONE = auto()


@dataclass
class Exchange:
    """One QN's exchange: what was sent, what is awaited, how many tries are left."""

    qn: str
    cn: int
    frames: list[Packet]
    phase: Phase
    expects: int | None  # the answer CN awaited, if any
    deadline: datetime | None = None
    attempts: int = 1
    request: Packet | None = None
    records: int = 0  # history records seen (platform) or sent (device)


class Session:
    """What both sides share: framing, QNs, retries, the event queue."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self._decoder = StreamDecoder(config.decode)
        self._reassembler = Reassembler()
        self._out = bytearray()
        self._events: deque[ev.Event] = deque()
        #: Exchanges this side started (uploads, notifications, a platform's requests) and,
        #: apart, requests the peer started: both sides make QNs from their own clocks, so a
        #: request may carry the QN of an upload still awaiting its 9014.
        self._exchanges: dict[str, Exchange] = {}
        self._requests: dict[str, Exchange] = {}
        self._last_qn = 0
        self.link_down = False

    # ---- the caller's side of the I/O --------------------------------------------------
    def receive_data(self, data: bytes, now: datetime) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, HJ212Error):
                self._on_error(item, now)
            else:
                whole = self._reassemble(item, now)
                if whole is not None:
                    self._on_packet(whole, now)

    def connection_lost(self) -> None:
        """Discard what a broken connection left half-received (exchanges keep their timers)."""
        for error in self._decoder.close():
            self._events.append(ev.ProtocolError(error))
        self._decoder = StreamDecoder(self.config.decode)

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def events(self) -> Iterator[ev.Event]:
        while self._events:
            yield self._events.popleft()

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> datetime | None:
        deadlines = [x.deadline for x in self._exchanges.values() if x.deadline is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: datetime) -> None:
        for exchange in list(self._exchanges.values()):
            if exchange.deadline is not None and exchange.deadline <= now:
                self._expire(exchange, now)

    def set_timing(self, over_time: float, re_count: int) -> None:
        """OverTime/ReCount as set by CN 1000; applies to exchanges started from now on."""
        if not 0 < over_time <= 99 or not 0 < re_count <= 99:
            raise SessionError(
                f"OverTime={over_time}, ReCount={re_count}: 表 4 allows 0 < n ≤ 99 for both"
            )
        self.config = self.config.with_timing(over_time, re_count)

    @property
    def pending(self) -> list[str]:
        """QNs of exchanges still open."""
        return [*self._exchanges, *self._requests]

    # ---- building blocks ---------------------------------------------------------------
    def new_qn(self, now: datetime) -> str:
        """A QN from ``now``, made strictly increasing so two frames never share one."""
        value = max(int(make_qn(now)), self._last_qn + 1)
        self._last_qn = value
        return f"{value:017d}"

    def _flag(self, ack: bool) -> Flag:
        return Flag(self.config.edition.version, False, ack)

    def _packet(
        self, cn: int, cp: Cp, qn: str | None, *, ack: bool, st: str | None = None
    ) -> Packet:
        cfg = self.config
        return Packet(
            cn=cn,
            st=cfg.st if st is None else st,
            mn=cfg.mn,
            pw=cfg.pw,
            cp=cp,
            qn=qn,
            flag=self._flag(ack),
            edition=cfg.edition,
        )

    def _send(self, packet: Packet) -> list[Packet]:
        parts = split(packet)
        for part in parts:
            self._out += part.encode(cp_cipher=self.config.decode.cp_cipher)
        return parts

    def _answer(self, to: Packet, cn: Command, **params: int) -> None:
        """9011/9012/9013/9014 for ``to``, in the edition's form."""
        qn = to.request_qn
        edition = self.config.edition
        if edition.answer_qn_in_cp:  # 2005: QN travels in CP, 9011 alone carries Flag=0
            cp = Cp.build(params={"QN": qn or "", **params})
            flag = Flag(0) if cn is Command.REQUEST_ANSWER else None
            packet = replace(self._packet(cn, cp, None, ack=False), flag=flag)
        else:
            packet = self._packet(cn, Cp.build(params=params), qn, ack=False)
        answer = replace(packet, st=self.config.answer_st)
        self._out += answer.encode(cp_cipher=self.config.decode.cp_cipher)

    def _open(self, packet: Packet, expects: int | None, now: datetime, phase: Phase) -> Exchange:
        assert packet.qn is not None
        frames = self._send(packet)
        exchange = Exchange(packet.qn, packet.cn, frames, phase, expects)
        if expects is not None:
            exchange.deadline = now + timedelta(seconds=self.config.over_time)
        self._exchanges[packet.qn] = exchange
        return exchange

    def _resend(self, exchange: Exchange, now: datetime) -> None:
        marker = self.config.edition.resend_marker
        for frame in exchange.frames:
            resent = frame
            if marker is not None and (marker, "1") not in frame.extra:
                resent = replace(frame, extra=(*frame.extra, (marker, "1")))
            self._out += resent.encode(cp_cipher=self.config.decode.cp_cipher)
        exchange.attempts += 1
        exchange.deadline = now + timedelta(seconds=self.config.over_time)

    def _expire(self, exchange: Exchange, now: datetime) -> None:
        if exchange.phase is Phase.AWAIT_ANSWER and exchange.attempts <= self.config.re_count:
            self._resend(exchange, now)
            return
        del self._exchanges[exchange.qn]
        self._failed(exchange)
        if exchange.phase is Phase.AWAIT_ANSWER and not self.link_down:
            self.link_down = True
            self._events.append(ev.LinkDown())

    def _answered(self) -> None:
        if self.link_down:
            self.link_down = False
            self._events.append(ev.LinkUp())

    def _reassemble(self, packet: Packet, now: datetime) -> Packet | None:
        try:
            return self._reassembler.add(packet)
        except HJ212Error as exc:
            self._events.append(ev.ProtocolError(exc))
            return None

    def _on_error(self, error: HJ212Error, now: datetime) -> None:
        self._events.append(ev.ProtocolError(error))

    def _on_packet(self, packet: Packet, now: datetime) -> None:
        raise NotImplementedError

    def _failed(self, exchange: Exchange) -> None:
        raise NotImplementedError


class DeviceSession(Session):
    """The field device (数采仪 / terminal) end: uploads, answers platform requests."""

    # ---- what the device starts ---------------------------------------------------------
    def upload(self, cn: int, cp: Cp, now: datetime, *, ack: bool = True) -> str:
        """Upload data (2011, 2051, 2061, 2031, 2081 …). With ``ack`` the platform must answer
        9014; the upload is resent every OverTime up to ReCount times. Returns the QN."""
        packet = self._packet(cn, cp, self.new_qn(now), ack=ack)
        if ack:
            self._open(packet, Command.DATA_ANSWER, now, Phase.AWAIT_ANSWER)
        else:
            self._send(packet)
        return packet.qn or ""

    def notify(self, cn: int, cp: Cp, now: datetime) -> str:
        """A device notification (1013 time-calibration request), answered by 9013."""
        if cn not in DEVICE_NOTIFICATIONS:
            raise SessionError(f"CN {cn} is not a device notification (表 9)")
        packet = self._packet(cn, cp, self.new_qn(now), ack=True)
        self._open(packet, Command.NOTIFICATION_ANSWER, now, Phase.AWAIT_ANSWER)
        return packet.qn or ""

    def heartbeat(self, now: datetime) -> str:
        if self.config.edition.heartbeat is None:
            raise SessionError(f"{self.config.edition} has no heartbeat command")
        packet = self._packet(self.config.edition.heartbeat, Cp(), self.new_qn(now), ack=False)
        self._send(packet)
        return packet.qn or ""

    # ---- answering a request ------------------------------------------------------------
    def accept(self, request: Packet) -> None:
        """9011 QnRtn=1: the request will be executed."""
        exchange = self._request_exchange(request, Phase.RECEIVED)
        exchange.phase = Phase.ACCEPTED
        if request.ack_requested:
            self._answer(request, Command.REQUEST_ANSWER, QnRtn=QnRtn.READY)

    def reject(self, request: Packet, qn_rtn: int = QnRtn.REJECTED) -> None:
        """9011 with a refusal code of 表 7; the exchange ends."""
        if qn_rtn == QnRtn.READY:
            raise SessionError("reject() with QnRtn=1 (ready): call accept()")
        exchange = self._request_exchange(request, Phase.RECEIVED)
        del self._requests[exchange.qn]
        if request.ack_requested:
            self._answer(request, Command.REQUEST_ANSWER, QnRtn=qn_rtn)

    def send_data(self, request: Packet, cp: Cp) -> None:
        """The data a get-request asks for, uploaded with the request's QN (flows C.2, C.5)."""
        self._request_exchange(request, Phase.ACCEPTED)
        self._send(self._packet(request.cn, cp, request.request_qn, ack=False))

    def send_record(self, request: Packet, cp: Cp, now: datetime, *, ack: bool = False) -> str:
        """One record of a history request, uploaded with a new QN (flows C.20)."""
        exchange = self._request_exchange(request, Phase.ACCEPTED)
        exchange.records += 1
        return self.upload(request.cn, cp, now, ack=ack)

    def complete(self, request: Packet, exe_rtn: int = ExeRtn.OK) -> None:
        """9012 with the execution result (表 6); the exchange ends."""
        exchange = self._request_exchange(request, Phase.ACCEPTED)
        del self._requests[exchange.qn]
        if request.ack_requested:
            self._answer(request, Command.EXECUTION_RESULT, ExeRtn=exe_rtn)

    def _request_exchange(self, request: Packet, phase: Phase) -> Exchange:
        qn = request.request_qn or ""
        exchange = self._requests.get(qn)
        if exchange is None:
            raise SessionError(f"no open request with QN {qn}")
        if exchange.phase is not phase:
            raise SessionError(
                f"request {qn} is {exchange.phase.name.lower()}, this needs it "
                f"{phase.name.lower()} (accept, then data, then complete)"
            )
        return exchange

    # ---- what arrives ---------------------------------------------------------------------
    def _on_packet(self, packet: Packet, now: datetime) -> None:
        cn = packet.cn
        if cn in (Command.DATA_ANSWER, Command.NOTIFICATION_ANSWER):
            exchange = self._exchanges.get(packet.request_qn or "")
            if exchange is None or exchange.expects != cn:
                self._events.append(ev.UnexpectedPacket(packet, "answer to no open exchange"))
                return
            del self._exchanges[exchange.qn]
            self._answered()
            if cn == Command.DATA_ANSWER:
                self._events.append(
                    ev.UploadAcknowledged(exchange.qn, exchange.cn, exchange.attempts)
                )
            else:
                self._events.append(ev.NotificationAnswered(exchange.qn))
            return
        if cn in PLATFORM_NOTIFICATIONS:
            if packet.ack_requested:
                self._answer(packet, Command.NOTIFICATION_ANSWER)
            self._events.append(ev.NotificationReceived(packet))
            return
        if cn in ANSWERS or cn not in _REQUEST_RANGE:
            self._events.append(ev.UnexpectedPacket(packet, "a device does not receive this"))
            return
        refusal = self._check(packet)
        if refusal is not None:
            code, why = refusal
            if packet.ack_requested and packet.request_qn:
                self._answer(packet, Command.REQUEST_ANSWER, QnRtn=code)
            self._events.append(ev.RequestRefused(packet, code, why))
            return
        qn = packet.request_qn or ""
        if qn in self._requests:
            # The platform resent a request it already sent: answer again, don't run it twice.
            if packet.ack_requested and self._requests[qn].phase is not Phase.RECEIVED:
                self._answer(packet, Command.REQUEST_ANSWER, QnRtn=QnRtn.READY)
            return
        self._requests[qn] = Exchange(qn, cn, [], Phase.RECEIVED, None, request=packet)
        self._events.append(ev.RequestReceived(packet))

    def _check(self, packet: Packet) -> tuple[int, str] | None:
        if packet.pw != self.config.pw:
            return QnRtn.BAD_PW, "PW does not match"
        if packet.mn != self.config.mn:
            return QnRtn.BAD_MN, f"MN {packet.mn} is not this device's ({self.config.mn})"
        if not packet.request_qn:
            return QnRtn.BAD_QN, "request without QN"
        if packet.flag is not None and packet.flag.version != self.config.edition.version:
            return (
                QnRtn.BAD_FLAG,
                f"Flag version {packet.flag.version} is not {self.config.edition}",
            )
        return None

    def _on_error(self, error: HJ212Error, now: datetime) -> None:
        self._events.append(ev.ProtocolError(error))
        # A damaged request still deserves its 9011 (表 7: 9 CRC error, 8 CN error) when its QN
        # can be read: decode it again without the failing check.
        if not isinstance(error, CrcMismatch | UnknownCommand) or not error.raw:
            return
        code = QnRtn.BAD_CRC if isinstance(error, CrcMismatch) else QnRtn.BAD_CN
        lenient = replace(self.config.decode, check_crc=False, allow_unknown_cn=True)
        try:
            packet = decode(error.raw, lenient)
        except HJ212Error:
            return
        if packet.ack_requested and packet.request_qn and packet.cn not in ANSWERS:
            self._answer(packet, Command.REQUEST_ANSWER, QnRtn=code)
            self._events.append(ev.RequestRefused(packet, code, str(error)))

    def _failed(self, exchange: Exchange) -> None:
        if exchange.expects == Command.DATA_ANSWER:
            self._events.append(ev.UploadFailed(exchange.qn, exchange.cn, exchange.attempts))
        else:
            self._events.append(ev.NotificationFailed(exchange.qn, exchange.attempts))


class PlatformSession(Session):
    """The platform (上位机 / data centre) end: receives uploads, sends requests."""

    def __init__(self, config: SessionConfig, *, auto_ack: bool = True) -> None:
        super().__init__(config)
        #: Answer uploads with A=1 by 9014 at once. A platform simulator that misbehaves on
        #: purpose turns this off and calls :meth:`acknowledge` itself (late, or never).
        self.auto_ack = auto_ack

    def request(self, cn: int, now: datetime, cp: Cp | None = None) -> str:
        """Send a request (1000, 1011, 1062, 2051 with BeginTime/EndTime …). Returns its QN."""
        if cn in ANSWERS or cn in PLATFORM_NOTIFICATIONS or cn not in _REQUEST_RANGE:
            raise SessionError(f"CN {cn} is not a platform request (表 9)")
        packet = self._packet(cn, cp or Cp(), self.new_qn(now), ack=True)
        self._open(packet, Command.REQUEST_ANSWER, now, Phase.AWAIT_ANSWER)
        return packet.qn or ""

    def notify(self, cn: int, now: datetime) -> str:
        """A platform notification (2012 stop real-time data, 2022), answered by 9013."""
        if cn not in PLATFORM_NOTIFICATIONS:
            raise SessionError(f"CN {cn} is not a platform notification (表 9)")
        packet = self._packet(cn, Cp(), self.new_qn(now), ack=True)
        self._open(packet, Command.NOTIFICATION_ANSWER, now, Phase.AWAIT_ANSWER)
        return packet.qn or ""

    def acknowledge(self, packet: Packet) -> None:
        """9014 for an upload (echoing its QN)."""
        self._answer(packet, Command.DATA_ANSWER)

    def _on_packet(self, packet: Packet, now: datetime) -> None:
        cn = packet.cn
        qn = packet.request_qn or ""
        exchange = self._exchanges.get(qn)
        if cn == Command.REQUEST_ANSWER:
            if exchange is None or exchange.expects != cn:
                self._events.append(ev.UnexpectedPacket(packet, "9011 for no open request"))
                return
            self._answered()
            code = packet.cp.qn_rtn
            if code == QnRtn.READY:
                exchange.phase = Phase.EXECUTING
                exchange.expects = Command.EXECUTION_RESULT
                self._arm_execution(exchange, now)
                self._events.append(ev.RequestAccepted(qn))
            else:
                del self._exchanges[qn]
                self._events.append(ev.RequestRejected(qn, QnRtn.UNKNOWN if code is None else code))
            return
        if cn == Command.EXECUTION_RESULT:
            if exchange is None or exchange.phase is not Phase.EXECUTING:
                self._events.append(ev.UnexpectedPacket(packet, "9012 for no executing request"))
                return
            del self._exchanges[qn]
            code = packet.cp.exe_rtn
            self._events.append(ev.RequestCompleted(qn, ExeRtn.FAILED if code is None else code))
            return
        if cn == Command.NOTIFICATION_ANSWER:
            if exchange is None or exchange.expects != cn:
                self._events.append(ev.UnexpectedPacket(packet, "9013 for no notification"))
                return
            del self._exchanges[qn]
            self._answered()
            self._events.append(ev.NotificationAnswered(qn))
            return
        if cn == Command.DATA_ANSWER:
            self._events.append(ev.UnexpectedPacket(packet, "a platform does not receive 9014"))
            return
        if cn in DEVICE_NOTIFICATIONS:
            if packet.ack_requested:
                self._answer(packet, Command.NOTIFICATION_ANSWER)
            self._events.append(ev.NotificationReceived(packet))
            return
        if self.config.edition.heartbeat is not None and cn == self.config.edition.heartbeat:
            self._events.append(ev.HeartbeatReceived(packet))
            return
        # Data: the answer to a get-request (same QN), a history record, or a plain upload.
        # Split uploads arrive here whole, and are acknowledged once for their QN.
        if packet.ack_requested and self.auto_ack:
            self.acknowledge(packet)
        if exchange is not None and exchange.phase is Phase.EXECUTING and cn in GET_COMMANDS:
            self._arm_execution(exchange, now)
            self._events.append(ev.RequestData(qn, packet))
            return
        history = self._history_for(cn)
        if history is not None:
            history.records += 1
            self._arm_execution(history, now)
            self._events.append(ev.DataReceived(packet, history.qn))
            return
        self._events.append(ev.DataReceived(packet))

    def _history_for(self, cn: int) -> Exchange | None:
        if cn not in HISTORY_COMMANDS:
            return None
        for exchange in self._exchanges.values():  # oldest first: dicts keep insertion order
            if exchange.cn == cn and exchange.phase is Phase.EXECUTING:
                return exchange
        return None

    def _arm_execution(self, exchange: Exchange, now: datetime) -> None:
        # After 9011 the device may take a while (a history transfer sends many records): allow
        # the whole retry budget between two signs of life rather than one OverTime.
        budget = self.config.over_time * (self.config.re_count + 1)
        exchange.deadline = now + timedelta(seconds=budget)

    def _failed(self, exchange: Exchange) -> None:
        if exchange.expects == Command.NOTIFICATION_ANSWER:
            self._events.append(ev.NotificationFailed(exchange.qn, exchange.attempts))
            return
        why = (
            f"no 9011 after {exchange.attempts} tries, {self.config.over_time:g} s apart"
            if exchange.phase is Phase.AWAIT_ANSWER
            else "no 9012 within the execution time"
        )
        self._events.append(ev.RequestFailed(exchange.qn, exchange.attempts, why))

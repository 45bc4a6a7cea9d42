"""Events a session reports (h11 style: frozen dataclasses, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.hj212.errors import HJ212Error
from protocols.hj212.packet import Packet


@dataclass(frozen=True, slots=True)
class Event:
    pass


# ---- either side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """Bytes that did not decode; the session has answered where the standard says to."""

    error: HJ212Error


@dataclass(frozen=True, slots=True)
class UnexpectedPacket(Event):
    """A valid packet that fits no open exchange (an answer to an unknown QN, say)."""

    packet: Packet
    why: str


@dataclass(frozen=True, slots=True)
class NotificationReceived(Event):
    """A notification from the peer (1013 device → platform; 2012/2022 platform → device).

    The session has already answered 9013 when the packet asked for an answer.
    """

    packet: Packet


@dataclass(frozen=True, slots=True)
class NotificationAnswered(Event):
    qn: str


@dataclass(frozen=True, slots=True)
class NotificationFailed(Event):
    qn: str
    attempts: int


@dataclass(frozen=True, slots=True)
class HeartbeatReceived(Event):
    packet: Packet


# ---- device side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """A valid platform request: answer with ``accept``/``reject``, then data, then ``complete``."""

    request: Packet


@dataclass(frozen=True, slots=True)
class RequestRefused(Event):
    """A request the device refused itself (bad PW, MN, QN, CN or CRC): 9011 already sent."""

    request: Packet | None
    qn_rtn: int
    why: str


@dataclass(frozen=True, slots=True)
class UploadAcknowledged(Event):
    """9014 arrived for an upload sent with A=1."""

    qn: str
    cn: int
    attempts: int


@dataclass(frozen=True, slots=True)
class UploadFailed(Event):
    """No 9014 after the first try and ReCount retries, each OverTime apart."""

    qn: str
    cn: int
    attempts: int


@dataclass(frozen=True, slots=True)
class LinkDown(Event):
    """An exchange failed after ReCount retries: the link counts as down (HJ 212-2017 表 1)."""


@dataclass(frozen=True, slots=True)
class LinkUp(Event):
    """The first answer after a :class:`LinkDown`."""


# ---- platform side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """An upload from the device (split packets already reassembled)."""

    packet: Packet
    #: QN of the history request this record answers, when it is one (flows C.20).
    request_qn: str | None = None


@dataclass(frozen=True, slots=True)
class RequestAccepted(Event):
    qn: str


@dataclass(frozen=True, slots=True)
class RequestRejected(Event):
    """9011 with QnRtn ≠ 1."""

    qn: str
    qn_rtn: int


@dataclass(frozen=True, slots=True)
class RequestData(Event):
    """The data a get-request asked for, uploaded with the request's QN."""

    qn: str
    packet: Packet


@dataclass(frozen=True, slots=True)
class RequestCompleted(Event):
    """9012: the request ran; ``exe_rtn`` says how (表 6)."""

    qn: str
    exe_rtn: int


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """No 9011 after ReCount retries, or no 9012 within the execution time."""

    qn: str
    attempts: int
    why: str

"""The answer sequences of HJ 212-2017 Appendix C, and a check of what a terminal actually sent.

Three shapes cover the platform's requests (``fixtures/vectors/hj212-flows.txt`` holds the
standard's own frames for them):

* **set** (C.1 1000, C.3 1012, C.6 1062, C.8 1064, C.9 1072, C.10 2011): 9011, then 9012;
* **get** (C.2 1011, C.5 1061, C.7 1063): 9011, the data uploaded with the request's QN and
  the request's CN, then 9012;
* **history** (C.20 2051, C.21 2061, C.22 2031, C.23 2041, C.47/C.48): 9011, each record
  uploaded with a *new* QN and a DataTime inside BeginTime…EndTime (each acknowledged by 9014
  when it asks, C.48), then 9012.

In every shape 9011 and 9012 carry the request's QN, ST=91 and no ack request (Flag=4 in the
2017 examples); a 9011 with QnRtn ≠ 1 ends the exchange (C.x step 3). :func:`check_flow`
returns each departure as a sentence naming the table and step it breaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from protocols.hj212.codes import GET_COMMANDS, HISTORY_COMMANDS, Command, ExeRtn, QnRtn
from protocols.hj212.packet import Packet


class FlowKind(StrEnum):
    SET = "set"
    GET = "get"
    HISTORY = "history"


#: Appendix C table of each request, for the messages.
TABLES: Final = {
    1000: "C.1",
    1011: "C.2",
    1012: "C.3",
    1061: "C.5",
    1062: "C.6",
    1063: "C.7",
    1064: "C.8",
    1072: "C.9",
    2011: "C.10",
    2051: "C.20",
    2061: "C.21",
    2031: "C.22",
    2041: "C.23",
}

#: The parameter a get-request's data must carry (C.2, C.5, C.7).
GET_PARAMETER: Final = {1011: "SystemTime", 1061: "RtdInterval", 1063: "MinInterval"}


def flow_kind(cn: int) -> FlowKind:
    if cn in GET_COMMANDS:
        return FlowKind.GET
    if cn in HISTORY_COMMANDS:
        return FlowKind.HISTORY
    return FlowKind.SET


def table(cn: int) -> str:
    return f"HJ 212-2017 表 {TABLES.get(cn, 'C')}"


@dataclass(frozen=True, slots=True)
class FlowStep:
    """One frame of a command's exchange as the centre saw it."""

    at: float
    direction: Literal["in", "out"]
    raw: str
    packet: Packet | None  # None when the frame did not decode
    error: str | None = None
    note: str | None = None

    @property
    def cn(self) -> int | None:
        return None if self.packet is None else self.packet.cn

    def describe(self) -> str:
        if self.packet is None:
            return f"undecodable frame ({self.error})"
        p = self.packet
        return f"CN={p.cn} QN={p.request_qn} ST={p.st} Flag={int(p.flag) if p.flag else '-'}"


def check_flow(
    cn: int,
    qn: str,
    steps: Sequence[FlowStep],
    *,
    begin: datetime | None = None,
    end: datetime | None = None,
) -> list[str]:
    """Departures of the terminal's frames (``direction == "in"``) from the request's flow."""
    where = table(cn)
    kind = flow_kind(cn)
    out: list[str] = []
    seen_9011: Packet | None = None
    seen_9012: Packet | None = None
    data: list[Packet] = []
    for step in (s for s in steps if s.direction == "in"):
        p = step.packet
        if p is None:
            out.append(f"{where}: the terminal sent a frame that does not decode: {step.error}")
            continue
        if p.cn == Command.REQUEST_ANSWER:
            if seen_9011 is None:
                seen_9011 = p
                _answer_form(p, qn, where, "9011", out)
            continue
        if p.cn == Command.EXECUTION_RESULT:
            if seen_9011 is None:
                out.append(f"{where} step 2: 9012 arrived before the request answer 9011")
            if seen_9012 is not None:
                out.append(f"{where}: a second 9012 for QN {qn}")
            seen_9012 = p
            _answer_form(p, qn, where, "9012", out)
            continue
        # data: the get-request's answer or a history record
        if seen_9011 is None:
            out.append(f"{where} step 2: data (CN={p.cn}) arrived before the request answer 9011")
        elif seen_9011.cp.qn_rtn != QnRtn.READY:
            out.append(f"{where} step 3: data (CN={p.cn}) after 9011 refused the request")
        if seen_9012 is not None:
            out.append(f"{where}: data (CN={p.cn}) arrived after 9012 ended the exchange")
        if p.cn != cn:
            out.append(f"{where}: data uploaded with CN={p.cn}, the request was CN={cn}")
        data.append(p)
    if seen_9011 is None:
        out.append(f"{where} step 2: no request answer 9011 for QN {qn}")
        return out
    if seen_9011.cp.qn_rtn != QnRtn.READY:
        if seen_9012 is not None:
            out.append(f"{where} step 3: 9012 after 9011 refused the request")
        return out
    if seen_9012 is None:
        out.append(f"{where}: no execution result 9012 for QN {qn}")
    done = seen_9012 is not None and seen_9012.cp.exe_rtn == ExeRtn.OK
    if kind is FlowKind.SET and data:
        out.append(f"{where}: a set request is answered by 9011 and 9012 only, data came too")
    elif kind is FlowKind.GET:
        _check_get(cn, qn, data, done, where, out)
    elif kind is FlowKind.HISTORY:
        _check_history(qn, data, begin, end, where, out)
    return out


def _answer_form(p: Packet, qn: str, where: str, what: str, out: list[str]) -> None:
    if p.request_qn != qn:
        out.append(f"{where}: {what} carries QN {p.request_qn}, the request's is {qn}")
    if p.st != "91":
        out.append(f"{where}: {what} with ST={p.st}; answers carry ST=91 (表 5 system interaction)")
    if p.ack_requested:
        out.append(f"{where}: {what} asks for an answer (Flag A=1); answers are not answered")
    code = p.cp.qn_rtn if what == "9011" else p.cp.exe_rtn
    if code is None:
        field = "QnRtn" if what == "9011" else "ExeRtn"
        out.append(f"{where}: {what} without {field}")


def _check_get(
    cn: int, qn: str, data: list[Packet], done: bool, where: str, out: list[str]
) -> None:
    if not data:
        if done:
            out.append(f"{where}: 9012 ExeRtn=1 but the requested data (CN={cn}) never came")
        return
    if len(data) > 1:
        out.append(f"{where}: {len(data)} data uploads for one get request")
    for p in data:
        if p.request_qn != qn:
            out.append(
                f"{where}: the data carries QN {p.request_qn}; it must echo the request's {qn}"
            )
        name = GET_PARAMETER.get(cn)
        if name is not None and p.cp.get(name) is None:
            out.append(f"{where}: the data (CN={cn}) lacks {name}")


def _check_history(
    qn: str,
    data: list[Packet],
    begin: datetime | None,
    end: datetime | None,
    where: str,
    out: list[str],
) -> None:
    for p in data:
        if p.qn == qn:
            out.append(
                f"{where} step 5: a record reuses the request's QN {qn}; each needs a new QN"
            )
        moment = p.cp.data_time
        if moment is None:
            out.append(f"{where} step 5: a record (QN {p.qn}) without DataTime")
        elif (begin is not None and moment < begin) or (end is not None and moment > end):
            out.append(
                f"{where} step 5: record DataTime {moment:%Y%m%d%H%M%S} is outside "
                f"BeginTime…EndTime {_t(begin)}…{_t(end)}"
            )


def _t(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y%m%d%H%M%S}"

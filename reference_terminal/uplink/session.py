"""The terminal's HJ 212 device session: ``protocols.hj212.DeviceSession`` plus uploads under a
QN chosen by the outbox (a frame resent after a restart keeps its first QN), and QNs drawn from
the centre's one increasing source so that outbox frames and history records never share one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from protocols.hj212 import Command, Cp, DeviceSession, SessionConfig
from protocols.hj212.session import Phase
from reference_terminal.uplink.outbox import QnSource


class UplinkSession(DeviceSession):
    def __init__(self, config: SessionConfig, qns: QnSource) -> None:
        super().__init__(config)
        self.qns = qns

    def new_qn(self, now: datetime) -> str:
        return self.qns.next(now)

    def upload_as(self, cn: int, cp: Cp, qn: str, now: datetime, *, resent: bool) -> None:
        """Upload with Flag A=1 under ``qn``; 9014 is awaited, OverTime/ReCount apply. A frame
        sent before (on an earlier connection or run) carries the edition's resend marker
        (2025: ``RF=1``) from its first try."""
        packet = self._packet(cn, cp, qn, ack=True)
        marker = self.config.edition.resend_marker
        if resent and marker is not None:
            packet = replace(packet, extra=(*packet.extra, (marker, "1")))
        self._open(packet, Command.DATA_ANSWER, now, Phase.AWAIT_ANSWER)

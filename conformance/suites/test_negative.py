"""Negative tests: frames the terminal must refuse or survive — a platform command with a bad
CRC, the wrong PW or MN, an oversize frame, a command split across TCP segments or preceded by
garbage. Each refused command must leave the terminal's setting as it was and its link working
(garbage on a meter's bus: ``test_acquisition``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from conformance.bench import Bench
from conformance.evidence import TestLog, step
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command, crc16
from simulators.platform.server import Connection, corrupt_crc

SET_RTD = int(Command.SET_RTD_INTERVAL)
#: An RtdInterval the terminal would take (表 4: 30..3600 s) if it executed the command.
PROBE_RTD = 120


def _frame(data: str) -> bytes:
    """A frame around ``data`` with a correct length and Appendix A CRC."""
    body = data.encode("utf-8")
    return b"##%04d%s%04X\r\n" % (len(body), body, crc16(body))


class HeldOutput(asyncio.Transport):
    """A centre connection's transport whose writes wait until :meth:`release`.

    While the bench writes a frame in pieces, the centre goes on answering the terminal (a 9014
    for an upload that arrives meanwhile, a request): written at once, such a frame lands inside
    the bench's, and the terminal rightly sees a frame cut short by the next ``##`` and the rest
    as garbage. No sender puts one frame inside another: the centre's frames wait."""

    def __init__(self, inner: asyncio.Transport) -> None:
        super().__init__()
        self.inner = inner
        self.held = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.held += data

    def release(self) -> None:
        data, self.held = bytes(self.held), bytearray()
        if data and not self.inner.is_closing():
            self.inner.write(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


@contextlib.contextmanager
def centre_output_held(conn: Connection) -> Iterator[asyncio.Transport]:
    """Hold what the centre writes on ``conn``; yields the transport for the bench's bytes."""
    wire = conn.transport
    if wire is None:
        raise Inconclusive(f"connection {conn.id} to the centre has no transport")
    held = HeldOutput(wire)
    conn.transport = held
    try:
        yield wire
    finally:
        if conn.transport is held:
            conn.transport = wire
        held.release()


async def send_in_pieces(
    conn: Connection,
    raw: bytes,
    *,
    pieces: int,
    gap_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """``raw`` on ``conn`` in ``pieces`` writes ``gap_s`` apart, nothing of the centre's between
    them (see :class:`HeldOutput`)."""
    size = max(1, -(-len(raw) // pieces))
    with centre_output_held(conn) as wire:
        for start in range(0, len(raw), size):
            wire.write(raw[start : start + size])
            if gap_s:
                await sleep(gap_s)


class Target:
    """The terminal's connection at one HJ 212 centre, and what it answered there."""

    def __init__(self, bench: Bench) -> None:
        centres = bench.rig.hj212_centres()
        if not centres:
            raise Inconclusive("no HJ 212 centre to send frames from", "ISC-2 §7.2.4")
        self.bench = bench
        self.centre = centres[0]
        self.mn = bench.dut.mn(self.centre)
        self.pw = bench.dut.pw(self.centre)
        self.server = bench.rig.platforms.hj212(self.centre)

    async def connected(self) -> None:
        await self.server.wait_connected(self.mn, 900)

    def qn(self) -> str:
        """A QN nobody else uses: the last millisecond of the second before now (the centre's
        own requests and the terminal's uploads take theirs from now on)."""
        before = self.server.local_now() - timedelta(seconds=1)
        return before.strftime("%Y%m%d%H%M%S") + "999"

    def set_rtd(self, qn: str, *, mn: str | None = None, pw: str | None = None) -> str:
        return (
            f"QN={qn};ST=32;CN={SET_RTD};PW={pw or self.pw};MN={mn or self.mn};Flag=5;"
            f"CP=&&RtdInterval={PROBE_RTD}&&"
        )

    async def send(self, raw: bytes, *, pieces: int = 1, gap_s: float = 0.0) -> None:
        conn = self.server.by_mn.get(self.mn)
        if conn is None or conn.transport is None:
            raise Inconclusive(f"the terminal is not connected to {self.centre}")
        await send_in_pieces(conn, raw, pieces=pieces, gap_s=gap_s, sleep=self.bench.rig.sleep)

    def traffic(self, since: float, qn: str) -> dict[str, object]:
        """What passed at the centre since ``since`` (for the evidence of a missing answer),
        and the terminal's connection then."""
        rows = self.bench.rig.record.frames(centre=self.centre)
        conn = self.server.by_mn.get(self.mn)
        return {
            "qn": qn,
            "connected": conn is not None and conn.transport is not None,
            "frames": [
                {
                    "at": r.at,
                    "direction": r.direction,
                    "conn": r.conn,
                    "cn": r.cn,
                    "qn": r.qn,
                    "ok": r.ok,
                    "error": r.error,
                }
                for r in rows
                if self.bench.rig.arrival(r.at) >= since - 1
            ][:200],
        }

    def answers(self, qn: str) -> list[int]:
        """CNs the terminal sent with this QN (9011, 9012 …)."""
        frames = self.bench.rig.record.frames(centre=self.centre, direction="in", qn=qn)
        return [f.cn for f in frames if f.cn is not None]

    async def rtd_interval(self) -> str | None:
        outcome = await self.server.commands(self.mn, timeout=300).get_rtd_interval()
        return outcome.value("RtdInterval") if outcome.ok else None

    async def still_uploads(self) -> bool:
        since = self.bench.now()
        await self.bench.wait(150)
        return any(
            f.cn == int(Command.MINUTE_DATA) for f in self.bench.frames_in(self.centre, since=since)
        )


async def _refused(bench: Bench, evidence: TestLog, raw: bytes, qn: str, why: str) -> None:
    """Send ``raw`` (a 1062 the terminal must not execute) and judge: not executed, not
    acknowledged as done, the link still carries uploads."""
    target = Target(bench)
    await bench.warm()
    await target.connected()
    before = await target.rtd_interval()
    assert before is not None, "1061 was not answered before the test"
    evidence.attach("sent.txt", raw.decode("utf-8", "replace"))
    with step(f"send a 1062 RtdInterval={PROBE_RTD} with {why}"):
        await target.send(raw)
        await bench.wait(60)
    answered = target.answers(qn)
    evidence.attach_json("answers.json", answered)
    after = await target.rtd_interval()
    try:
        assert int(Command.EXECUTION_RESULT) not in answered, (
            f"the terminal executed a command with {why}: answered {answered}"
        )
        assert after == before, f"RtdInterval went from {before} to {after}: {why} was accepted"
        assert await target.still_uploads(), f"no upload after the frame with {why}"
    finally:
        if after is not None and after != before and before is not None:
            await target.server.commands(target.mn, timeout=300).set_rtd_interval(int(before))


@pytest.mark.clause("ISC-2 §7.2.4", "ISC-2 §7.4.1.4(3)")
@pytest.mark.requires("transport:hj212")
@pytest.mark.hil
async def test_a_command_with_a_bad_crc_is_not_executed(bench: Bench, evidence: TestLog) -> None:
    """A platform command whose CRC does not match its data segment is not executed."""
    target = Target(bench)
    qn = target.qn()
    raw = corrupt_crc(_frame(target.set_rtd(qn)))
    await _refused(bench, evidence, raw, qn, "a bad CRC")


@pytest.mark.clause("ISC-2 §7.2.4", "SSEA §5.5.3")
@pytest.mark.requires("transport:hj212")
@pytest.mark.hil
async def test_a_command_with_the_wrong_password_is_refused(
    bench: Bench, evidence: TestLog
) -> None:
    """A platform command with a PW that is not the terminal's is refused, not executed."""
    target = Target(bench)
    qn = target.qn()
    wrong = "999999" if target.pw != "999999" else "888888"
    await _refused(bench, evidence, _frame(target.set_rtd(qn, pw=wrong)), qn, "the wrong PW")


@pytest.mark.clause("ISC-2 §7.2.4")
@pytest.mark.requires("transport:hj212")
@pytest.mark.hil
async def test_a_command_for_another_mn_is_refused(bench: Bench, evidence: TestLog) -> None:
    """A platform command addressed to another MN is not executed by this terminal."""
    target = Target(bench)
    qn = target.qn()
    other = target.mn[:-1] + ("1" if target.mn[-1] != "1" else "2")
    await _refused(bench, evidence, _frame(target.set_rtd(qn, mn=other)), qn, "another MN")


@pytest.mark.clause("ISC-2 §7.2.4")
@pytest.mark.requires("transport:hj212")
async def test_an_oversize_frame_is_refused_and_survived(bench: Bench, evidence: TestLog) -> None:
    """A frame whose data segment exceeds 1024 bytes (HJ 212-2017 §6.3) is not executed and
    does not break the terminal's link."""
    target = Target(bench)
    qn = target.qn()
    padding = "&&".join(f"X{n:03d}=" + "9" * 40 for n in range(30))
    data = target.set_rtd(qn).removesuffix("&&") + ";" + padding + "&&"
    await _refused(bench, evidence, _frame(data), qn, "a data segment of over 1024 bytes")


@pytest.mark.clause("ISC-2 §7.2.4")
@pytest.mark.requires("transport:hj212", "feature:platform-intervals")
@pytest.mark.hil
async def test_split_segments_and_leading_garbage_are_survived(
    bench: Bench, evidence: TestLog
) -> None:
    """A valid command arriving in pieces, after a burst of garbage, is still understood and
    answered as Appendix C has it."""
    target = Target(bench)
    await bench.warm()
    await target.connected()
    before = await target.rtd_interval()
    try:
        for attempt in range(2):
            await target.connected()
            conn = target.server.by_mn.get(target.mn)
            qn = target.qn()
            raw = b"\x00\xff garbage\r\n" + _frame(target.set_rtd(qn))
            sent_at = bench.now()
            with step("garbage, then a 1062 in seven pieces"):
                await target.send(raw, pieces=7, gap_s=0.05)
                await bench.wait(60)
            answered = target.answers(qn)
            evidence.attach_json(f"traffic-{attempt}.json", target.traffic(sent_at, qn))
            if answered or target.server.by_mn.get(target.mn) is conn or attempt:
                break
            # the terminal had reconnected meanwhile: the pieces went to a closed connection
            await bench.wait(5)
        evidence.attach_json("answers.json", answered)
        after = await target.rtd_interval()
        assert int(Command.REQUEST_ANSWER) in answered, f"no 9011 for the split command: {answered}"
        assert int(Command.EXECUTION_RESULT) in answered, f"no 9012: {answered}"
        assert after == str(PROBE_RTD), f"RtdInterval {after}, the command set {PROBE_RTD}"
    finally:
        if before is not None:
            await target.server.commands(target.mn, timeout=300).set_rtd_interval(int(before))

"""Centres in a process of their own, on the bench's virtual clock: what they receive is
answered and recorded at the instant it was sent, their own timers keep the bench's time, and
the bench switches their behaviour and reads their record as it would in its own process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from protocols.hj212.packet import Flag, Packet, decode
from simulators.clock import VirtualClock
from simulators.platform import PlatformFile
from simulators.platform.process import platforms_in_process
from tests.simulators.platform.device import MN, PW, T0, data_cp

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SPEC = PlatformFile.model_validate(
    {"centres": [{"name": "provincial", "protocol": "hj212", "passwords": "any", "port": 0}]}
)


def upload(qn: str) -> bytes:
    cp = data_cp(T0, [("a05001", "12.5")], field="Avg")
    return Packet(2051, "32", MN, PW, cp, qn, Flag(1, False, True)).encode()


async def test_a_centre_in_its_own_process_answers_before_the_benchs_time_moves_on(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(START)
    async with platforms_in_process(
        SPEC, clock=clock, record_path=tmp_path / "record.sqlite"
    ) as platforms:
        sent = [0]
        platforms.follow(clock, lambda: sent[0])
        host, port = platforms.centres["provincial"].address
        reader, writer = await asyncio.open_connection(host, port)
        later = asyncio.ensure_future(clock.sleep(3600))  # somewhere for time to jump to

        await clock.sleep(5)
        frame = upload("20260101000005000")
        writer.write(frame)
        sent[0] += len(frame)
        answer = decode(await reader.readuntil(b"\r\n"))
        assert answer.cn == 9014 and answer.qn == "20260101000005000"
        assert clock.monotonic() == 5  # it answered while time stood still

        # its record is read back from its file, stamped with the bench's time; the child
        # writes it out for a query only when something was sent it since it last did
        asked: list[str] = []
        (peer,) = platforms.peers
        ask = peer.request_blocking

        def counted(**request: Any) -> dict[str, Any]:
            asked.append(request["op"])
            return ask(**request)

        peer.request_blocking = counted  # type: ignore[method-assign]
        (row,) = platforms.record.frames(centre="provincial", direction="in")
        assert row.at == START + 5 and row.qn == "20260101000005000"
        assert platforms.record.count_readings(centre="provincial") == 1
        assert asked == ["flush"]

        # its own timers run on the bench's time: a late answer comes when it is due
        await platforms.hj212("provincial").set_behaviour({"kind": "ack_late", "delay_s": 7})
        frame = upload("20260101000005001")
        writer.write(frame)
        sent[0] += len(frame)
        answer = decode(await reader.readuntil(b"\r\n"))
        assert answer.qn == "20260101000005001" and clock.monotonic() == 12

        writer.close()
        later.cancel()


async def test_a_centre_that_refuses_in_its_own_process_closes_its_port(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    async with platforms_in_process(
        SPEC, clock=clock, record_path=tmp_path / "record.sqlite"
    ) as platforms:
        platforms.follow(clock, lambda: 0)
        await platforms.hj212("provincial").set_behaviour("refuse")
        with pytest.raises(OSError):
            await asyncio.open_connection(*platforms.centres["provincial"].address)


async def test_each_centre_answers_from_a_process_of_its_own_into_one_record(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(START)
    spec = PlatformFile.model_validate(
        {
            "centres": [
                {"name": name, "protocol": "hj212", "passwords": "any", "port": 0}
                for name in ("provincial", "group")
            ]
        }
    )
    async with platforms_in_process(
        spec, clock=clock, record_path=tmp_path / "record.sqlite"
    ) as platforms:
        sent = [0]
        platforms.follow(clock, lambda: sent[0])
        assert len(platforms.peers) == 2
        for n, name in enumerate(("provincial", "group")):
            reader, writer = await asyncio.open_connection(*platforms.centres[name].address)
            frame = upload(f"2026010100000500{n}")
            writer.write(frame)
            sent[0] += len(frame)
            answer = decode(await reader.readuntil(b"\r\n"))
            assert answer.cn == 9014 and answer.qn == f"2026010100000500{n}"
            writer.close()
        frames = platforms.record.frames(direction="in")
        assert {(f.centre, f.qn) for f in frames} == {
            ("provincial", "20260101000005000"),
            ("group", "20260101000005001"),
        }
        assert len({f.id for f in frames}) == 2

"""The negative suite's split command (ISC-2 §7.2.4): its pieces reach the terminal with nothing
of the centre's own inside them, however busy the centre is meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from common.clock import RealClock
from conformance.suites.test_negative import HeldOutput, _frame, send_in_pieces
from protocols.hj212 import events as ev
from protocols.hj212.codes import Command
from protocols.hj212.cp import Cp
from protocols.hj212.errors import TruncatedFrame
from simulators.platform import Hj212Centre, Hj212Server, Record
from simulators.platform.commands import PendingCommand
from tests.simulators.platform.device import MN, PW, T0, Device, data_cp

pytestmark = pytest.mark.anyio

QN = "20260101115959999"
RAW = b"\x00\xff garbage\r\n" + _frame(
    f"QN={QN};ST=32;CN={int(Command.SET_RTD_INTERVAL)};PW={PW};MN={MN};Flag=5;"
    "CP=&&RtdInterval=120&&"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def centre() -> AsyncIterator[Hj212Server]:
    with Record("sqlite://", flush_interval=0.01) as record:
        spec = Hj212Centre.model_validate({"name": "centre1", "over_time": 5, "re_count": 2})
        server = Hj212Server(spec, record, RealClock())
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


@pytest.fixture
async def device(centre: Hj212Server) -> AsyncIterator[Device]:
    device = await Device().connect(*centre.address)
    try:
        device.upload(Command.REALTIME_DATA, data_cp(T0, [("a05001", "1")]))
        await centre.wait_connected(MN, timeout=5)
        await device.wait_for(ev.UploadAcknowledged)
        yield device
    finally:
        await device.close()


async def test_a_request_the_centre_sends_meanwhile_waits_for_the_last_piece(
    centre: Hj212Server, device: Device
) -> None:
    issued: list[PendingCommand] = []

    async def sleep(seconds: float) -> None:
        # what full runs showed: the centre writes to the terminal while the pieces go out
        if not issued:
            issued.append(centre.issue(MN, Command.GET_RTD_INTERVAL, Cp(), begin=None, end=None))
        await asyncio.sleep(seconds)

    await send_in_pieces(centre.by_mn[MN], RAW, pieces=7, gap_s=0.02, sleep=sleep)

    received = await device.wait_for(
        ev.RequestReceived,
        lambda e: isinstance(e, ev.RequestReceived) and e.request.request_qn == QN,
    )
    assert isinstance(received, ev.RequestReceived)
    assert received.request.cp.rtd_interval == 120
    truncated = [
        e
        for e in device.of(ev.ProtocolError)
        if isinstance(e, ev.ProtocolError)
        if isinstance(e.error, TruncatedFrame)
    ]
    assert not truncated, truncated
    # the centre's own request went too, after the pieces, and was answered
    outcome = await asyncio.wait_for(issued[0].future, 5)
    assert outcome.ok, outcome.departures
    assert device.rtd_interval == 120


async def test_the_centre_writes_again_once_the_pieces_are_out(
    centre: Hj212Server, device: Device
) -> None:
    conn = centre.by_mn[MN]
    await send_in_pieces(conn, RAW, pieces=3, gap_s=0.0, sleep=asyncio.sleep)
    assert conn.transport is not None
    assert not isinstance(conn.transport, HeldOutput), "the centre's transport was not given back"
    outcome = await centre.commands(MN, timeout=5).get_rtd_interval()
    assert outcome.ok, outcome.departures

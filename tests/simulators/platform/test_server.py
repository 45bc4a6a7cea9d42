"""An HJ 212 centre as terminals see it over loopback TCP, under each behaviour."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from protocols.hj212 import events as ev
from protocols.hj212.codes import Command
from protocols.hj212.cp import Cp
from protocols.hj212.errors import CrcMismatch
from protocols.hj212.packet import decode
from simulators.platform import Hj212Server, Record
from tests.simulators.platform.conftest import CentreFactory, DeviceFactory
from tests.simulators.platform.device import MN, T0, acknowledges, data_cp

pytestmark = pytest.mark.anyio

VALUES = [("a05001", "412.50"), ("a19001", "20.9")]


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_ack_answers_each_upload_with_9014_echoing_its_qn(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await device_factory(centre)
    qn = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    event = await device.wait_for(ev.UploadAcknowledged, acknowledges(qn))
    assert isinstance(event, ev.UploadAcknowledged) and event.attempts == 1

    frames = record.frames(centre=centre.name)
    assert [(f.direction, f.cn, f.qn) for f in frames] == [("in", 2011, qn), ("out", 9014, qn)]
    upload, answer = frames
    assert upload.mn == MN and upload.data_time == T0 and upload.ok and upload.note == "ack"
    assert upload.peer.startswith("127.0.0.1:") and upload.conn == answer.conn
    packet = decode(answer.raw.encode())
    assert (packet.st, packet.mn, packet.pw, int(packet.flag or 0)) == ("91", MN, "123456", 4)
    readings = record.readings(centre=centre.name)
    assert {(r.code, str(r.value), r.flag) for r in readings} == {
        ("a05001", "412.50", "N"),
        ("a19001", "20.9", "N"),
    }
    assert centre.connected(MN)


async def test_uploads_without_ack_request_are_recorded_and_not_answered(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await device_factory(centre)
    device.upload(Command.MINUTE_DATA, data_cp(T0, VALUES, "Avg"), ack=False)
    await until(lambda: record.count_frames(centre=centre.name) >= 1)
    await asyncio.sleep(0.1)
    assert [f.direction for f in record.frames(centre=centre.name)] == ["in"]
    assert [str(r.value) for r in record.readings()] == ["412.50", "20.9"]


async def test_ack_late_is_met_by_a_resend_and_both_copies_are_recorded(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour={"kind": "ack_late", "delay_s": 0.45})
    device = await device_factory(centre, over_time=0.3, re_count=2)
    qn = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    event = await device.wait_for(ev.UploadAcknowledged, acknowledges(qn))
    assert isinstance(event, ev.UploadAcknowledged) and event.attempts == 2
    await until(lambda: len(record.frames(direction="out")) == 2)  # both copies get their 9014
    ins = record.frames(centre=centre.name, direction="in")
    assert [f.qn for f in ins] == [qn, qn]
    assert ins[0].note == "ack in 0.45 s (ack_late)"
    (co2, _) = record.deduplicated(centre=centre.name)
    assert (co2.code, co2.copies, co2.qns, co2.n_values) == ("a05001", 2, 1, 1)


async def test_never_ack_lets_the_terminal_retry_recount_times_then_fail(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour="never_ack")
    device = await device_factory(centre, over_time=0.1, re_count=2)
    qn = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    failed = await device.wait_for(ev.UploadFailed)
    assert isinstance(failed, ev.UploadFailed) and failed.attempts == 3
    await device.wait_for(ev.LinkDown)
    frames = record.frames(centre=centre.name)
    assert [(f.direction, f.qn) for f in frames] == [("in", qn)] * 3
    assert {f.note for f in frames} == {"not answered (never_ack)"}


async def test_nak_answers_9011_with_the_configured_refusal_code(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour={"kind": "nak", "qn_rtn": 3})
    device = await device_factory(centre, over_time=0.2, re_count=1)
    qn = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    await device.wait_for(ev.UploadFailed)
    assert not device.of(ev.UploadAcknowledged)
    # the terminal's session sees the 9011 as an answer it did not expect
    unexpected = device.of(ev.UnexpectedPacket)
    assert unexpected and all(e.packet.cn == 9011 for e in unexpected)  # type: ignore[attr-defined]
    naks = record.frames(centre=centre.name, direction="out")
    assert naks and {f.cn for f in naks} == {9011}
    answer = decode(naks[0].raw.encode())
    assert (answer.qn, answer.cp.qn_rtn, answer.st) == (qn, 3, "91")


async def test_drop_after_n_frames_acknowledges_before_and_closes_on_the_nth(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour={"kind": "drop", "after_frames": 2})
    device = await device_factory(centre)
    first = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    await device.wait_for(ev.UploadAcknowledged, acknowledges(first))
    second = device.upload(Command.REALTIME_DATA, data_cp(T0 + timedelta(seconds=30), VALUES))
    await asyncio.wait_for(device.closed.wait(), 5)
    assert not device.of(ev.UploadFailed)  # still pending: the terminal must reconnect
    notes = [(f.qn, f.note) for f in record.frames(direction="in")]
    assert notes == [(first, "ack"), (second, "connection dropped (drop)")]
    await until(lambda: not centre.connected(MN))


async def test_drop_on_every_frame(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour="drop")
    for _ in range(2):
        device = await device_factory(centre)
        device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
        await asyncio.wait_for(device.closed.wait(), 5)
    assert [f.direction for f in record.frames()] == ["in", "in"]


async def test_refuse_closes_the_port_and_accepting_again_reopens_the_same_one(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await device_factory(centre)
    port = centre.port
    await centre.set_behaviour("refuse")
    await asyncio.wait_for(device.closed.wait(), 5)  # connections held are closed too
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*centre.address)
    await centre.set_behaviour("ack")
    assert centre.port == port
    again = await device_factory(centre)
    qn = again.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    await again.wait_for(ev.UploadAcknowledged, acknowledges(qn))


async def test_refuse_from_the_start_never_listens(
    centre_factory: CentreFactory,
) -> None:
    centre = await centre_factory(behaviour="refuse")
    assert centre.port > 0
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*centre.address)


async def test_refuse_with_reset_accepts_then_resets(
    centre_factory: CentreFactory,
) -> None:
    centre = await centre_factory(behaviour={"kind": "refuse", "reset": True})
    reader, writer = await asyncio.open_connection(*centre.address)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 5)
    writer.close()
    await centre.set_behaviour("ack")  # the port stayed open: accepting again is immediate
    reader, writer = await asyncio.open_connection(*centre.address)
    assert centre.connected(MN) is False and len(centre.connections) <= 1
    writer.close()


async def test_bad_crc_answers_a_9014_the_terminal_rejects(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(behaviour="bad_crc")
    device = await device_factory(centre, over_time=0.2, re_count=1)
    device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    error = await device.wait_for(ev.ProtocolError)
    assert isinstance(error, ev.ProtocolError) and isinstance(error.error, CrcMismatch)
    await device.wait_for(ev.UploadFailed)
    out = record.frames(direction="out")[0]
    assert (out.cn, out.ok, out.error_reason) == (9014, False, "crc")


async def test_behaviour_switches_at_run_time_on_open_connections(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await device_factory(centre, over_time=0.1, re_count=1)
    first = device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    await device.wait_for(ev.UploadAcknowledged, acknowledges(first))
    await centre.set_behaviour("never_ack")
    second = device.upload(Command.REALTIME_DATA, data_cp(T0 + timedelta(minutes=1), VALUES))
    await device.wait_for(ev.UploadFailed, lambda e: e.qn == second)  # type: ignore[attr-defined]
    await centre.set_behaviour({"kind": "ack"})
    third = device.upload(Command.REALTIME_DATA, data_cp(T0 + timedelta(minutes=2), VALUES))
    await device.wait_for(ev.UploadAcknowledged, acknowledges(third))
    with pytest.raises(ValueError, match="server_error"):
        await centre.set_behaviour("server_error")


async def test_unknown_mn_or_wrong_password_is_recorded_and_not_answered(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(passwords={MN: "654321"})
    device = await device_factory(centre, over_time=0.1, re_count=1)
    device.upload(Command.REALTIME_DATA, data_cp(T0, VALUES))
    await device.wait_for(ev.UploadFailed)
    notes = {f.note for f in record.frames(direction="in")}
    assert notes == {f"not answered: PW for MN {MN} does not match centre {centre.name}'s"}


async def test_broken_frames_are_recorded_with_the_codecs_reason(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await device_factory(centre)
    good = data_cp(T0, VALUES)
    qn = device.upload(Command.REALTIME_DATA, good)
    await device.wait_for(ev.UploadAcknowledged)
    frame = record.frames(direction="in")[0].raw.encode()
    device.send_raw(frame[:-6] + b"0000\r\n")  # same frame, wrong CRC
    device.send_raw(b"garbage\r\n")
    await until(lambda: len(record.frames(direction="in")) == 3)
    crc, garbage = record.frames(direction="in")[1:]
    assert (crc.ok, crc.error_reason, crc.qn, crc.cn) == (False, "crc", qn, 2011)
    assert "CRC" in (crc.error or "")
    assert (garbage.ok, garbage.raw) == (True, "garbage\r\n")  # no frame in it: skipped bytes


async def test_time_calibration_request_is_answered_9013(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    device = await device_factory(centre)
    qn = device.session.notify(Command.TIME_CALIBRATION_REQUEST, Cp.build(PolId="w01018"), T0)
    device.flush()
    answered = await device.wait_for(ev.NotificationAnswered)
    assert isinstance(answered, ev.NotificationAnswered) and answered.qn == qn


async def test_many_terminals_at_once_each_get_their_own_session(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    devices = [await device_factory(centre, mn=f"MN{i:022d}", pw=f"{i:06d}") for i in range(40)]
    qns = [d.upload(Command.REALTIME_DATA, data_cp(T0, VALUES)) for d in devices]
    for device, qn in zip(devices, qns, strict=True):
        await device.wait_for(ev.UploadAcknowledged, acknowledges(qn))
    assert len(centre.by_mn) == 40 and centre.acks_sent == 40
    # each answer carries its terminal's own MN and PW
    for frame in record.frames(direction="out"):
        packet = decode(frame.raw.encode())
        assert packet.pw == f"{int(packet.mn[2:]):06d}"
    assert len(record.deduplicated(centre=centre.name)) == 80


@pytest.mark.parametrize("edition", ["2005", "2017", "2025"])
def test_the_fast_9014_is_byte_for_byte_the_sessions(edition: str) -> None:
    from protocols.hj212.editions import EDITIONS
    from protocols.hj212.packet import Flag, Packet
    from protocols.hj212.session import PlatformSession, SessionConfig
    from simulators.platform.server import AckTemplate

    config = SessionConfig(mn=MN, pw="123456", st="32", edition=EDITIONS[edition])
    session = PlatformSession(config, auto_ack=False)
    upload = Packet(
        2011, "32", MN, "123456", data_cp(T0, VALUES), "20260101120000123", Flag(1, False, True)
    )
    session.acknowledge(upload)
    template = AckTemplate(config)
    assert template.usable == (edition != "2005")
    if template.usable:
        assert template.frame("20260101120000123") == session.data_to_send()

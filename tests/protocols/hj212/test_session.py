"""The two session state machines, played through the flows of HJ 212-2017 Appendix C.

The flows' frames (fixtures/vectors/hj212-flows.txt) use one QN, MN and PW throughout, so a
session started at the QN's instant must write exactly those bytes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bench.vectors import hj212_flows
from protocols import hj212
from protocols.hj212 import Command, Cp, DeviceSession, ExeRtn, PlatformSession, Pollutant, QnRtn
from protocols.hj212 import events as ev
from protocols.hj212.session import SessionConfig

T0 = datetime(2016, 8, 1, 8, 58, 57, 223000)  # QN=20160801085857223 of every flow
MN = "010000A8900016F000169DC0"
CONFIG = SessionConfig(mn=MN, pw="123456", st="32")
FLOWS: dict[str, list[bytes]] = {}
for _frame in hj212_flows():
    FLOWS.setdefault(_frame.section.split()[0], []).append(_frame.raw)


def frames(data: bytes) -> list[bytes]:
    return [b"##" + part for part in data.split(b"##")[1:]]


def pair(**platform: bool) -> tuple[DeviceSession, PlatformSession]:
    return DeviceSession(CONFIG), PlatformSession(CONFIG, **platform)


def deliver(
    sender: hj212.session.Session, receiver: hj212.session.Session, now: datetime
) -> list[bytes]:
    data = sender.data_to_send()
    receiver.receive_data(data, now)
    return frames(data)


def test_c1_set_overtime_and_recount() -> None:
    device, platform = pair()
    qn = platform.request(Command.SET_TIMEOUT_RETRY, T0, Cp.build(OverTime=5, ReCount=3))
    assert deliver(platform, device, T0) == FLOWS["C.1"][:1]
    (received,) = device.events()
    assert isinstance(received, ev.RequestReceived)
    request = received.request
    device.accept(request)
    device.set_timing(request.cp.over_time or 0, request.cp.re_count or 0)
    device.complete(request, ExeRtn.OK)
    assert deliver(device, platform, T0) == FLOWS["C.1"][1:]
    assert list(platform.events()) == [ev.RequestAccepted(qn), ev.RequestCompleted(qn, ExeRtn.OK)]
    assert (device.config.over_time, device.config.re_count) == (5, 3)
    assert platform.pending == device.pending == []


def test_c2_get_device_time_answers_with_the_requests_qn() -> None:
    device, platform = pair()
    qn = platform.request(Command.GET_TIME, T0, Cp.build(PolId="w01018"))
    assert deliver(platform, device, T0) == FLOWS["C.2"][:1]
    (received,) = device.events()
    assert isinstance(received, ev.RequestReceived)
    device.accept(received.request)
    device.send_data(
        received.request, Cp.build(PolId="w01018", SystemTime=T0.replace(microsecond=0))
    )
    device.complete(received.request)
    sent = deliver(device, platform, T0)
    expected = FLOWS["C.2"][1:]
    assert sent[0] == expected[0] and sent[2] == expected[2]
    # The flow's data frame has a stray space from the PDF ("&& PolId="): compare decoded.
    assert hj212.decode(sent[1]) == hj212.decode(expected[1]).replace(lenience=frozenset())
    got = list(platform.events())
    assert got[0] == ev.RequestAccepted(qn)
    assert isinstance(got[1], ev.RequestData) and got[1].packet.cp.system_time == datetime(
        2016, 8, 1, 8, 58, 57
    )
    assert got[2] == ev.RequestCompleted(qn, ExeRtn.OK)


def test_c4_device_time_calibration_request_is_answered_9013() -> None:
    device, platform = pair()
    qn = device.notify(Command.TIME_CALIBRATION_REQUEST, Cp.build(PolId="w01018"), T0)
    deliver(device, platform, T0)
    (note,) = platform.events()
    assert isinstance(note, ev.NotificationReceived)
    answer = deliver(platform, device, T0)
    assert hj212.decode(answer[0]) == hj212.decode(FLOWS["C.4"][1]).replace(lenience=frozenset())
    assert list(device.events()) == [ev.NotificationAnswered(qn)]


@pytest.mark.parametrize(
    ("section", "cn", "cp", "answer"),
    [
        ("C.5", Command.GET_RTD_INTERVAL, Cp(), Cp.build(RtdInterval=30)),
        ("C.8", Command.SET_MIN_INTERVAL, Cp.build(MinInterval=10), None),
        ("C.10/C.11", Command.REALTIME_DATA, Cp(), None),
    ],
)
def test_get_and_set_requests_write_the_flow_bytes(
    section: str, cn: int, cp: Cp, answer: Cp | None
) -> None:
    device, platform = pair()
    platform.request(cn, T0, cp)
    assert deliver(platform, device, T0) == FLOWS[section][:1]
    (received,) = device.events()
    assert isinstance(received, ev.RequestReceived)
    device.accept(received.request)
    if answer is not None:
        device.send_data(received.request, answer)
    device.complete(received.request)
    count = 3 if answer is not None else 2
    assert deliver(device, platform, T0) == FLOWS[section][1 : 1 + count]


def test_c11_platform_stops_realtime_data_with_a_notification() -> None:
    device, platform = pair()
    qn = platform.notify(Command.STOP_REALTIME_DATA, T0)
    assert deliver(platform, device, T0) == FLOWS["C.10/C.11"][3:4]
    assert isinstance(device.next_event(), ev.NotificationReceived)
    assert deliver(device, platform, T0) == FLOWS["C.10/C.11"][4:5]
    assert list(platform.events()) == [ev.NotificationAnswered(qn)]


def test_c24_upload_with_ack_is_answered_9014() -> None:
    device, platform = pair()
    cp = Cp.build(data_time=T0.replace(microsecond=0), RestartTime=datetime(2016, 8, 1, 8, 56, 24))
    qn = device.upload(Command.RESTART_TIME, cp, T0)
    assert deliver(device, platform, T0) == FLOWS["C.24"][:1]
    (data,) = platform.events()
    assert isinstance(data, ev.DataReceived) and data.request_qn is None
    assert deliver(platform, device, T0) == FLOWS["C.24"][1:]
    assert list(device.events()) == [ev.UploadAcknowledged(qn, Command.RESTART_TIME, 1)]


def test_c20_history_request_records_get_new_qns() -> None:
    device, platform = pair()
    window = Cp.build(BeginTime=datetime(2016, 8, 1, 8, 40), EndTime=datetime(2016, 8, 1, 8, 40))
    qn = platform.request(Command.MINUTE_DATA, T0, window)
    assert deliver(platform, device, T0) == FLOWS["C.20"][:1]
    request = device.next_event().request  # type: ignore[union-attr]
    device.accept(request)
    record = Cp.build(
        data_time=datetime(2016, 8, 1, 8, 40),
        pollutants=[
            Pollutant("a05001", {"Avg": Decimal("401.2"), "Cou": Decimal("12.5")}, flag="N")
        ],
    )
    record_qn = device.send_record(request, record, T0 + timedelta(milliseconds=311))
    device.complete(request)
    sent = deliver(device, platform, T0 + timedelta(seconds=1))
    assert sent[0] == FLOWS["C.20"][1] and sent[2] == FLOWS["C.20"][2]
    assert record_qn == "20160801085857534" != qn  # the flow's example record QN
    events = list(platform.events())
    assert events[0] == ev.RequestAccepted(qn)
    assert isinstance(events[1], ev.DataReceived) and events[1].request_qn == qn
    assert events[2] == ev.RequestCompleted(qn, ExeRtn.OK)


def test_unacknowledged_upload_is_resent_recount_times_then_the_link_is_down() -> None:
    device = DeviceSession(CONFIG.with_timing(over_time=5, re_count=3))
    qn = device.upload(Command.MINUTE_DATA, Cp.build(data_time=T0.replace(microsecond=0)), T0)
    first = device.data_to_send()
    now = T0
    for attempt in range(2, 5):
        assert device.next_deadline() == now + timedelta(seconds=5)
        now = device.next_deadline() or now
        device.handle_timer(now)
        assert device.data_to_send() == first, f"attempt {attempt} resends the same frame"
    now += timedelta(seconds=5)
    device.handle_timer(now)
    assert device.data_to_send() == b""
    assert list(device.events()) == [ev.UploadFailed(qn, Command.MINUTE_DATA, 4), ev.LinkDown()]
    assert device.link_down and device.next_deadline() is None
    # The next answer brings the link back.
    again = device.upload(Command.MINUTE_DATA, Cp(), now)
    platform = PlatformSession(CONFIG)
    deliver(device, platform, now)
    deliver(platform, device, now)
    assert list(device.events()) == [
        ev.LinkUp(),
        ev.UploadAcknowledged(again, Command.MINUTE_DATA, 1),
    ]


def test_platform_request_without_9011_fails_after_retries() -> None:
    platform = PlatformSession(CONFIG.with_timing(over_time=10, re_count=2))
    qn = platform.request(Command.GET_TIME, T0)
    platform.data_to_send()
    for seconds in (10, 20, 30):
        platform.handle_timer(T0 + timedelta(seconds=seconds))
    assert list(platform.events()) == [
        ev.RequestFailed(qn, 3, "no 9011 after 3 tries, 10 s apart"),
        ev.LinkDown(),
    ]


def test_2025_resends_carry_the_rf_marker() -> None:
    config = SessionConfig(mn=MN, pw="123456", st="32", edition=hj212.HJ212_2025)
    device = DeviceSession(config)
    device.upload(Command.MINUTE_DATA, Cp(), T0)
    assert b"RF=1" not in device.data_to_send()
    device.handle_timer(T0 + timedelta(seconds=10))
    resent = hj212.decode(device.data_to_send())
    assert resent.extra == (("RF", "1"),) and resent.flag == hj212.Flag(2, False, True)


@pytest.mark.parametrize(
    ("platform_config", "code"),
    [(replace(CONFIG, pw="wrong"), QnRtn.BAD_PW), (replace(CONFIG, mn="OTHER"), QnRtn.BAD_MN)],
)
def test_device_refuses_requests_with_wrong_credentials(
    platform_config: SessionConfig, code: QnRtn
) -> None:
    device = DeviceSession(CONFIG)
    platform = PlatformSession(platform_config)
    qn = platform.request(Command.GET_TIME, T0)
    deliver(platform, device, T0)
    (refused,) = device.events()
    assert isinstance(refused, ev.RequestRefused) and refused.qn_rtn == code
    deliver(device, platform, T0)
    assert list(platform.events()) == [ev.RequestRejected(qn, code)]


def test_a_request_damaged_in_transit_gets_qnrtn_9() -> None:
    device = DeviceSession(CONFIG)
    damaged = FLOWS["C.1"][0].replace(b"OverTime=5", b"OverTime=6")
    device.receive_data(damaged, T0)
    kinds = [type(e).__name__ for e in device.events()]
    assert kinds == ["ProtocolError", "RequestRefused"]
    answer = hj212.decode(device.data_to_send())
    assert (answer.cn, answer.qn, answer.cp.qn_rtn) == (9011, "20160801085857223", QnRtn.BAD_CRC)


def test_answers_follow_the_order_accept_data_complete() -> None:
    device, platform = pair()
    platform.request(Command.GET_TIME, T0)
    deliver(platform, device, T0)
    request = device.next_event().request  # type: ignore[union-attr]
    with pytest.raises(hj212.SessionError, match="accept, then data, then complete"):
        device.send_data(request, Cp())
    device.accept(request)
    with pytest.raises(hj212.SessionError):
        device.accept(request)


def test_a_repeated_request_is_not_run_twice() -> None:
    device, platform = pair()
    platform.request(Command.GET_TIME, T0)
    data = platform.data_to_send()
    device.receive_data(data, T0)
    device.receive_data(data, T0 + timedelta(seconds=10))
    assert [type(e) for e in device.events()] == [ev.RequestReceived]


def test_a_request_with_the_qn_of_an_upload_in_flight_is_still_run() -> None:
    """Each side makes QNs from its own clock: a platform request can carry the QN of an
    upload that awaits its 9014. The request is answered and the upload stays open."""
    device, platform = pair()
    cp = Cp.build(data_time=T0.replace(microsecond=0), RestartTime=datetime(2016, 8, 1, 8, 56, 24))
    upload = device.upload(Command.RESTART_TIME, cp, T0)
    in_flight = device.data_to_send()  # on its way; no 9014 yet
    qn = platform.request(Command.SET_TIMEOUT_RETRY, T0, Cp.build(OverTime=5, ReCount=3))
    assert qn == upload
    deliver(platform, device, T0)
    (received,) = device.events()
    assert isinstance(received, ev.RequestReceived)
    device.accept(received.request)
    device.complete(received.request, ExeRtn.OK)
    deliver(device, platform, T0)
    assert list(platform.events()) == [ev.RequestAccepted(qn), ev.RequestCompleted(qn, ExeRtn.OK)]
    assert device.pending == [upload]
    platform.receive_data(in_flight, T0)
    assert [type(e) for e in platform.events()] == [ev.DataReceived]
    deliver(platform, device, T0)
    assert list(device.events()) == [ev.UploadAcknowledged(upload, Command.RESTART_TIME, 1)]


def test_split_upload_is_reassembled_and_acknowledged_once() -> None:
    device, platform = pair()
    many = [
        Pollutant(f"a{i:05d}", {"Avg": Decimal("1.234"), "Cou": Decimal("5.6")}, flag="N")
        for i in range(50)
    ]
    qn = device.upload(
        Command.MINUTE_DATA, Cp.build(data_time=T0.replace(microsecond=0), pollutants=many), T0
    )
    sent = deliver(device, platform, T0)
    assert len(sent) > 1
    (data,) = platform.events()
    assert isinstance(data, ev.DataReceived) and len(data.packet.cp.pollutants) == 50
    assert len(deliver(platform, device, T0)) == 1
    assert list(device.events()) == [ev.UploadAcknowledged(qn, Command.MINUTE_DATA, 1)]


def test_a_platform_that_acknowledges_late_on_purpose() -> None:
    device, platform = pair(auto_ack=False)
    qn = device.upload(Command.HOUR_DATA, Cp(), T0)
    deliver(device, platform, T0)
    (data,) = platform.events()
    assert isinstance(data, ev.DataReceived)
    device.handle_timer(T0 + timedelta(seconds=10))  # OverTime passes: resent
    assert device.data_to_send()
    platform.acknowledge(data.packet)
    deliver(platform, device, T0 + timedelta(seconds=11))
    assert list(device.events()) == [ev.UploadAcknowledged(qn, Command.HOUR_DATA, 2)]


def test_qns_are_unique_even_within_one_millisecond() -> None:
    device = DeviceSession(CONFIG)
    qns = [device.upload(Command.REALTIME_DATA, Cp(), T0, ack=False) for _ in range(3)]
    assert qns == ["20160801085857223", "20160801085857224", "20160801085857225"]


def test_a_2005_device_answers_with_the_qn_in_cp_as_the_2005_examples_do() -> None:
    # HJ/T 212-2005 Appendix C.1 (set access password).
    config = SessionConfig(mn="88888880000001", pw="123456", st="32", edition=hj212.HJ212_2005)
    device = DeviceSession(config)
    request = (
        "QN=20040516010101001;ST=32;CN=1072;PW=123456;MN=88888880000001;Flag=3;CP=&&PW=654321&&"
    )
    raw = request.encode()
    device.receive_data(b"##%04d%s%04X\r\n" % (len(raw), raw, hj212.crc16(raw)), T0)
    (received,) = device.events()
    assert isinstance(received, ev.RequestReceived)
    device.accept(received.request)
    device.complete(received.request)
    answers = [hj212.decode(f).data_segment() for f in frames(device.data_to_send())]
    assert answers == [
        "ST=91;CN=9011;PW=123456;MN=88888880000001;Flag=0;CP=&&QN=20040516010101001;QnRtn=1&&",
        "ST=91;CN=9012;PW=123456;MN=88888880000001;CP=&&QN=20040516010101001;ExeRtn=1&&",
    ]


def test_2025_sessions_exchange_encrypted_cp_and_the_heartbeat() -> None:
    options = hj212.DecodeOptions(cp_cipher=hj212.Sm4CpCipher(key=b"0123456789abcdef"))
    config = SessionConfig(mn=MN, pw="123456", st="32", edition=hj212.HJ212_2025, decode=options)
    device, platform = DeviceSession(config), PlatformSession(config)
    cp = Cp.build(data_time=T0.replace(microsecond=0), RestartTime=T0.replace(microsecond=0))
    qn = device.upload(Command.RESTART_TIME, cp, T0)
    device.heartbeat(T0)
    sent = deliver(device, platform, T0)
    assert all(b"RestartTime" not in frame for frame in sent)
    data, beat = platform.events()
    assert isinstance(data, ev.DataReceived) and data.packet.cp == cp
    assert isinstance(beat, ev.HeartbeatReceived)
    deliver(platform, device, T0)
    assert list(device.events()) == [ev.UploadAcknowledged(qn, Command.RESTART_TIME, 1)]

"""Platform commands: sent to a terminal by MN, awaited, and checked against Appendix C."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from protocols.hj212 import events as ev
from protocols.hj212.codes import Command, ExeRtn, QnRtn
from protocols.hj212.cp import Cp
from protocols.hj212.packet import Packet, decode
from simulators.platform import CommandStatus, Hj212Server, Record
from simulators.platform.commands import CommandError
from simulators.platform.flows import FlowStep, check_flow
from tests.simulators.platform.conftest import DeviceFactory
from tests.simulators.platform.device import MN, T0, Device, data_cp, minutes

pytestmark = pytest.mark.anyio

FLOWS = Path(__file__).parents[3] / "fixtures" / "vectors" / "hj212-flows.txt"


async def connected(
    centre: Hj212Server, device_factory: DeviceFactory, **options: object
) -> Device:
    device = await device_factory(centre, **options)
    device.upload(Command.REALTIME_DATA, data_cp(T0, [("a05001", "1")]))
    await centre.wait_connected(MN, timeout=5)
    await device.wait_for(ev.UploadAcknowledged)
    return device


async def test_set_timeouts_1000_completes_and_the_terminal_applies_it(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    device = await connected(centre, device_factory)
    outcome = await centre.commands(MN).set_timeouts(5, 3)
    assert outcome.ok, outcome.departures
    assert (outcome.status, outcome.qn_rtn, outcome.exe_rtn) == (CommandStatus.COMPLETED, 1, 1)
    assert (device.session.config.over_time, device.session.config.re_count) == (5.0, 3)
    # the exchange as recorded: request out, 9011 and 9012 in, all with the request's QN
    frames = record.frames(qn=outcome.qn)
    assert [(f.direction, f.cn) for f in frames] == [("out", 1000), ("in", 9011), ("in", 9012)]
    request = decode(frames[0].raw.encode())
    assert (request.st, int(request.flag or 0), request.cp.text) == (
        "32",
        5,
        "OverTime=5;ReCount=3",
    )
    assert [s.direction for s in outcome.steps] == ["out", "in", "in"]


async def test_get_time_1011_returns_the_terminals_time(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    await connected(centre, device_factory)
    outcome = await centre.commands(MN).get_time(pol_id="w01018")
    assert outcome.ok, outcome.departures
    assert outcome.value("SystemTime") == "20260101120000"
    assert [p.qn for p in outcome.data] == [outcome.qn]


async def test_set_time_intervals_and_their_gets(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    device = await connected(centre, device_factory)
    commands = centre.commands(MN)
    assert (await commands.set_time(datetime(2026, 2, 1, 8, 0))).ok
    assert (await commands.set_rtd_interval(60)).ok
    assert (await commands.set_min_interval(5)).ok
    assert (device.rtd_interval, device.min_interval) == (60, 5)
    rtd = await commands.get_rtd_interval()
    mins = await commands.get_min_interval()
    assert (rtd.ok, rtd.value("RtdInterval"), mins.ok, mins.value("MinInterval")) == (
        True,
        "60",
        True,
        "5",
    )


async def test_minute_history_2051_returns_the_records_in_the_window(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    history = {t: data_cp(t, [("a05001", f"{i}.5")], "Avg") for i, t in enumerate(minutes(T0, 10))}
    await connected(centre, device_factory, history=history)
    begin, end = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    outcome = await centre.commands(MN).minute_history(begin, end)
    assert outcome.ok, outcome.departures
    assert [p.cp.data_time for p in outcome.records] == minutes(begin, 4)
    assert all(p.qn != outcome.qn for p in outcome.records)  # each record has a new QN
    # the records are data like any other upload: they reach the readings
    minute_values = [str(r.value) for r in record.readings(cn=2051)]
    assert minute_values == ["2.5", "3.5", "4.5", "5.5"]


async def test_hour_history_with_acknowledged_records_c48(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    hours = [T0 + timedelta(hours=i) for i in range(3)]
    history = {t: data_cp(t, [("a05001", "7")], "Avg") for t in hours}
    await connected(centre, device_factory, history=history, ack_records=True)
    outcome = await centre.commands(MN).hour_history(hours[0], hours[-1])
    assert outcome.ok, outcome.departures
    assert len(outcome.records) == 3
    acks = [f.qn for f in record.frames(direction="out", cn=9014)]
    assert set(acks) >= {p.qn for p in outcome.records}


async def test_day_history_with_nothing_stored_completes_with_no_data(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    await connected(centre, device_factory)
    outcome = await centre.commands(MN).day_history(T0, T0 + timedelta(days=1))
    assert (outcome.status, outcome.exe_rtn, outcome.records) == (
        CommandStatus.FAILED,
        ExeRtn.NO_DATA,
        (),
    )
    assert outcome.departures == ()  # ExeRtn=100 is a correct answer, not a departure


async def test_a_refused_request_is_rejected_with_its_qnrtn(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    async def refuse(device: Device, request: Packet) -> None:
        device.session.reject(request, QnRtn.REJECTED)

    await connected(centre, device_factory, responder=refuse)
    outcome = await centre.commands(MN).set_min_interval(5)
    assert (outcome.status, outcome.qn_rtn, outcome.departures) == (CommandStatus.REJECTED, 2, ())


async def test_a_silent_terminal_fails_after_recount_retries(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    async def silent(device: Device, request: Packet) -> None:
        return None

    await connected(centre, device_factory, responder=silent)
    outcome = await centre.commands(MN).get_time()
    assert outcome.status is CommandStatus.FAILED
    assert outcome.reason == "no 9011 after 3 tries, 0.3 s apart"
    assert [f.note for f in record.frames(qn=outcome.qn)] == ["request", "resend", "resend"]
    assert outcome.departures == (
        f"HJ 212-2017 表 C.2 step 2: no request answer 9011 for QN {outcome.qn}",
    )


async def test_an_outer_timeout_returns_accepted_when_9012_is_late(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    async def slow(device: Device, request: Packet) -> None:
        device.session.accept(request)  # and never completes

    await connected(centre, device_factory, responder=slow)
    outcome = await centre.commands(MN, timeout=0.3).set_rtd_interval(30)
    assert (outcome.status, outcome.reason) == (CommandStatus.ACCEPTED, "no outcome within 0.3 s")


async def test_get_data_under_a_new_qn_is_named_not_missed(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    async def new_qn(device: Device, request: Packet) -> None:
        session = device.session
        session.accept(request)
        session.send_record(request, Cp.build(params={"SystemTime": T0}), T0)
        session.complete(request)

    await connected(centre, device_factory, responder=new_qn)
    got = await centre.commands(MN).get_time()
    assert len(got.departures) == 1, got.departures
    assert got.departures[0].startswith("HJ 212-2017 表 C.2: the data carries QN ")
    assert got.departures[0].endswith(f"; it must echo the request's {got.qn}")


async def test_departures_are_reported_with_the_table_and_step(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    async def sloppy(device: Device, request: Packet) -> None:
        session = device.session
        if request.cn in (Command.MINUTE_DATA,):
            # records under the request's own QN, one outside the window, 9011 after data
            session.accept(request)
            cp = data_cp(T0 - timedelta(hours=1), [("a05001", "1")], "Avg")
            session.send_data(request, cp)
            session.complete(request)
        else:  # a get answered without its data
            session.accept(request)
            session.complete(request)

    await connected(centre, device_factory, responder=sloppy)
    got = await centre.commands(MN).get_time()
    assert got.status is CommandStatus.COMPLETED and not got.ok
    assert got.departures == (
        "HJ 212-2017 表 C.2: 9012 ExeRtn=1 but the requested data (CN=1011) never came",
    )
    history = await centre.commands(MN).minute_history(T0, T0 + timedelta(minutes=5))
    assert history.departures == (
        f"HJ 212-2017 表 C.20 step 5: a record reuses the request's QN {history.qn}; "
        "each needs a new QN",
        "HJ 212-2017 表 C.20 step 5: record DataTime 20260101110000 is outside "
        "BeginTime…EndTime 20260101120000…20260101120500",
    )


async def test_commands_need_a_connected_terminal(centre: Hj212Server) -> None:
    with pytest.raises(CommandError, match="no terminal with MN X is connected"):
        await centre.commands("X").get_time()


async def test_a_lost_connection_fails_the_command(
    centre: Hj212Server, device_factory: DeviceFactory
) -> None:
    async def hang_up(device: Device, request: Packet) -> None:
        device.session.accept(request)
        device.flush()
        await device.close()

    await connected(centre, device_factory, responder=hang_up)
    outcome = await centre.commands(MN).get_time()
    assert (outcome.status, outcome.reason) == (CommandStatus.FAILED, "the connection was lost")


# ---- the checker against the standard's own examples ----------------------------------------


def flow_sections() -> dict[str, list[tuple[str, bytes]]]:
    sections: dict[str, list[tuple[str, bytes]]] = {}
    title = ""
    for line in FLOWS.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            title = line[4:]
            sections[title] = []
        elif line.startswith(("P->D ##", "D->P ##")):
            frame = line[5:].replace("\\r\\n", "\r\n").encode()
            sections[title].append((line[:4], frame))
    return sections


@pytest.mark.parametrize("title", [t for t in flow_sections() if "(2081)" not in t])
def test_the_appendix_c_examples_pass_the_flow_check(title: str) -> None:
    frames = flow_sections()[title]
    request = decode(frames[0][1])
    if request.cn in (Command.STOP_REALTIME_DATA, Command.TIME_CALIBRATION_REQUEST):
        pytest.skip("notifications are answered by the session, not a request flow")
    steps = []
    for direction, raw in frames:
        if direction == "P->D" and decode(raw).cn != request.cn:
            break  # C.10/C.11: the stop notification that follows is another exchange
        steps.append(
            FlowStep(0.0, "out" if direction == "P->D" else "in", raw.decode(), decode(raw))
        )
    assert request.qn is not None
    cp = request.cp
    departures = check_flow(request.cn, request.qn, steps, begin=cp.begin_time, end=cp.end_time)
    assert departures == []


def test_the_flow_check_on_a_constructed_bad_sequence() -> None:
    qn = "20160801085857223"
    base = "ST=91;CN={cn};PW=123456;MN=010000A8900016F000169DC0;Flag={flag};CP=&&{cp}&&"

    def frame(cn: int, cp: str, flag: int = 4, q: str = qn) -> FlowStep:
        packet = Packet(cn, "91", "010000A8900016F000169DC0", "123456", Cp.parse(cp), q)
        from protocols.hj212.packet import Flag

        packet = packet.replace(flag=Flag.from_int(flag))
        return FlowStep(0.0, "in", base, packet)

    steps = [frame(9012, "ExeRtn=1"), frame(9011, "QnRtn=1", flag=5, q="20160801085857224")]
    assert check_flow(1064, qn, steps) == [
        "HJ 212-2017 表 C.8 step 2: 9012 arrived before the request answer 9011",
        "HJ 212-2017 表 C.8: 9011 carries QN 20160801085857224, the request's is 20160801085857223",
        "HJ 212-2017 表 C.8: 9011 asks for an answer (Flag A=1); answers are not answered",
    ]

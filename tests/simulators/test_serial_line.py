"""The simulated RS-485 line: pty and link, byte pacing both ways, framing, faults on answers.

A real client (pyserial, in a thread so the line's event loop keeps running) reads the pty's
terminal end and timestamps what it receives on the same monotonic clock the line uses.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import tty
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import serial

from common.clock import RealClock
from protocols import dlt645
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.schema import Bus, Fault, Fleet
from simulators.meters.serial_buses import running_serial_buses, serve_serial_buses
from simulators.meters.serial_line import (
    Layout,
    SerialLine,
    collide,
    damage,
    frames_by_silence,
    modbus_gap,
    stream_frames,
)

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        return await main()

    return asyncio.run(wrapped())


def bus(baud: int = 9600, framing: str = "8E1", link: str | None = None) -> Bus:
    return Bus(id="b", protocol="dlt645", baud=baud, framing=framing, link=link)


def port(line: SerialLine, timeout: float = 0.05) -> Any:
    framing = line.bus.framing
    return serial.Serial(
        line.address, line.bus.baud, bytesize=int(framing[0]), parity=framing[1], timeout=timeout
    )


def receive_times(ser: Any, count: int, limit: float = 3.0) -> list[tuple[float, int]]:
    """(monotonic time, bytes received so far) after each read, until ``count`` bytes."""
    out: list[tuple[float, int]] = []
    total = 0
    deadline = time.monotonic() + limit
    while total < count and time.monotonic() < deadline:
        chunk = ser.read(max(1, ser.in_waiting))
        if chunk:
            total += len(chunk)
            out.append((time.monotonic(), total))
    return out


# ---- the pty and its link ---------------------------------------------------------------------
def test_the_line_is_a_pty_with_a_link_that_goes_away(tmp_path: Path) -> None:
    link = tmp_path / "ttyMETER"

    async def main() -> None:
        async with SerialLine(bus(link=str(link)), RealClock()) as line:
            assert line.path.startswith("/dev/pts/")
            assert os.readlink(link) == line.path
            assert line.address == str(link)
            ser = port(line)
            ser.close()
        assert not link.exists() and not link.is_symlink()

    run(main)


def test_a_stale_link_is_replaced_but_a_file_is_not(tmp_path: Path) -> None:
    link = tmp_path / "ttyMETER"
    link.symlink_to("/dev/pts/nowhere")

    async def main() -> None:
        async with SerialLine(bus(link=str(link)), RealClock()) as line:
            assert os.readlink(link) == line.path
        link.write_text("not a link")
        with pytest.raises(FileExistsError, match="not a symlink"):
            async with SerialLine(bus(link=str(link)), RealClock()):
                pass
        with pytest.raises(FileNotFoundError, match="is missing"):
            async with SerialLine(bus(link=str(tmp_path / "no" / "tty")), RealClock()):
                pass

    run(main)


def test_an_8e1_port_can_be_opened_again_and_again() -> None:
    """A pty refuses a parity-only termios change (EINVAL): the line keeps the reopen working."""

    async def main() -> None:
        async with SerialLine(bus(framing="8E1"), RealClock()) as line:
            for n in range(1, 4):
                ser = port(line)
                ser.write(b"\x00")
                # the line re-arms the port when it reads: close once it has (a fixed 10 ms
                # wait was too short on a loaded machine, and the next open failed)
                for _ in range(500):
                    if line.rx_bytes == n:
                        break
                    await asyncio.sleep(0.01)
                ser.close()
            assert line.rx_bytes == 3

    run(main)


# ---- outbound pacing ----------------------------------------------------------------------------
def test_the_terminal_receives_no_byte_before_the_wire_could_carry_it() -> None:
    async def main() -> None:
        async with SerialLine(bus(9600, "8E1"), RealClock()) as line:
            ser = port(line)
            data = bytes(range(60))
            reader = asyncio.create_task(asyncio.to_thread(receive_times, ser, len(data)))
            end = await line.send(data)
            times = await reader
            ser.close()
        char = 11 / 9600
        start = end - len(data) * char
        assert times[-1][1] == len(data)
        for t, count in times:  # byte k arrives no earlier than start + (k + 1) chars
            assert count <= (t - start) / char + 1e-6
        # And not late: 25 ms leaves room for a busy machine to wake the reading thread.
        assert times[-1][0] - end < 0.025

    run(main)


def test_frame_pacing_hands_over_a_whole_transmission_when_its_last_byte_is_due() -> None:
    """Frame pacing (long virtual runs): nothing before the last byte's time, all of it then."""

    async def main() -> None:
        async with SerialLine(bus(9600, "8E1"), RealClock(), pacing="frame") as line:
            ser = port(line)
            data = bytes(range(60))
            reader = asyncio.create_task(asyncio.to_thread(receive_times, ser, len(data)))
            before = time.monotonic()
            end = await line.send(data)
            times = await reader
            ser.close()
        assert end - before == pytest.approx(len(data) * 11 / 9600, abs=0.005)
        assert times[0][0] >= end - 1e-6
        assert [count for _, count in times][-1] == len(data)

    run(main)


def test_long_transmissions_keep_to_the_baud_rate_without_drift() -> None:
    async def main() -> None:
        async with SerialLine(bus(57600, "8N1"), RealClock()) as line:
            ser = port(line)
            data = bytes(2000)  # 347 ms on the wire
            reader = asyncio.create_task(asyncio.to_thread(receive_times, ser, len(data)))
            before = time.monotonic()
            end = await line.send(data)
            times = await reader
            ser.close()
        wire = len(data) * 10 / 57600
        assert end - before == pytest.approx(wire, abs=0.005)
        assert times[-1][0] - before == pytest.approx(wire, abs=0.01)

    run(main)


def test_one_talker_at_a_time() -> None:
    async def main() -> None:
        async with SerialLine(bus(115200, "8N1"), RealClock()) as line:
            ser = port(line)
            first, second = await asyncio.gather(line.send(bytes(100)), line.send(bytes(100)))
            assert abs(second - first) == pytest.approx(100 * line.char_s, rel=1e-6)
            # Nor over the terminal: an answer waits until inbound bytes have arrived.
            ser.write(bytes(200))
            received, last_end = 0, 0.0
            while received < 200:  # the pty may hand the 200 bytes over in pieces
                arrival = await line.next_arrival()
                assert arrival is not None
                received, last_end = received + len(arrival.data), arrival.end
            end = await line.send(b"\x01", at=0.0)
            assert end == pytest.approx(last_end + line.char_s)
            ser.close()

    run(main)


def terminal_end(line: SerialLine) -> int:
    """The terminal's end of the pty, raw, for writing at chosen virtual instants."""
    fd = os.open(line.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


def test_frame_pacing_lets_inbound_bytes_push_a_planned_answer_back_until_it_starts() -> None:
    """A frame-paced answer is planned ahead (one clock step), yet the wire is as if the meter
    had waited for its moment: what the terminal sends before the answer's start delays it
    (half-duplex), what it sends after collides with it."""

    async def main() -> None:
        clock = VirtualClock(1_767_196_800.0)
        async with SerialLine(bus(9600, "8N1"), clock, pacing="frame") as line:
            char = line.char_s
            fd = terminal_end(line)
            try:
                answer = asyncio.create_task(line.send(bytes(10), at=0.1))
                await clock.sleep_until(0.05)
                os.write(fd, bytes(100))  # on the wire until 0.05 + 100 chars, past 0.1
                end = await answer
                assert end == pytest.approx(0.05 + 100 * char + 10 * char)
                assert line.collisions == 0
                assert clock.monotonic() == end
                assert len(os.read(fd, 100)) == 10  # written whole at its end

                answer = asyncio.create_task(line.send(bytes(10), at=0.3))
                await clock.sleep_until(0.305)
                os.write(fd, bytes(5))  # the meter is talking: a collision, no delay
                assert await answer == pytest.approx(0.3 + 10 * char)
                assert line.collisions == 5
            finally:
                os.close(fd)

    run(main)


def test_under_frame_pacing_an_exchange_costs_the_clock_one_step(tmp_path: Path) -> None:
    """The request is handed to the meter as soon as it is read, stamped with its last byte's
    arrival; the answer, with the values of the instant it starts, reaches the terminal when
    its last byte would: time moves once, to that instant."""
    fleet = small_fleet(tmp_path / "tty645")
    fleet.clock = clock = VirtualClock(datetime.now(UTC).timestamp())
    fleet.serial_pacing = "frame"
    request = dlt645.encode(dlt645.read_request(dlt645.Address("000000000001"), 0x00010000))

    async def main() -> tuple[bytes, float, SerialLine]:
        async with running_serial_buses(fleet) as lines:
            line = lines["b645"]
            fd = terminal_end(line)
            loop = asyncio.get_running_loop()
            replied: asyncio.Future[bytes] = loop.create_future()

            def on_reply() -> None:
                if not replied.done():
                    replied.set_result(os.read(fd, 100))

            loop.add_reader(fd, on_reply)
            try:
                steps = clock.steps
                os.write(fd, request)
                reply = await replied
                assert clock.steps == steps + 1
                return reply, clock.monotonic(), line
            finally:
                loop.remove_reader(fd)
                os.close(fd)

    reply, answered, line = run(main)
    (value,) = dlt645.read_values(dlt645.decode(reply))
    observed = fleet.observations[-1]
    started = answered - len(reply) * line.char_s
    delay = started - len(request) * line.char_s  # the request began at 0
    low, high = line.bus.response_delay_ms
    assert low / 1000 <= delay <= high / 1000
    assert observed.t == pytest.approx(clock.time() - len(reply) * line.char_s, abs=1e-6)
    assert value.value == observed.value


# ---- inbound timing and framing ---------------------------------------------------------------
def test_inbound_bytes_arrive_one_character_after_another() -> None:
    async def main() -> None:
        async with SerialLine(bus(9600, "8E1"), RealClock()) as line:
            ser = port(line)
            written = time.monotonic()
            ser.write(bytes(20))
            first = await line.next_arrival()
            assert first is not None
            ser.write(bytes(5))  # written long before the first 20 finished arriving
            second = await line.next_arrival()
            ser.close()
        assert first is not None and second is not None
        assert first.start == pytest.approx(written, abs=0.005)
        if len(first.data) == 20:
            assert first.end == pytest.approx(first.start + 20 * 11 / 9600)
        assert second.start == pytest.approx(first.end)  # queued behind on the wire

    run(main)


def test_a_frame_is_handed_over_only_when_its_last_byte_has_arrived() -> None:
    request = dlt645.encode(dlt645.read_request(dlt645.Address("000000000001"), 0x00010000))

    async def main() -> None:
        async with SerialLine(bus(2400, "8E1"), RealClock()) as line:
            ser = port(line)
            written = time.monotonic()
            ser.write(request)
            frames = stream_frames(line, dlt645.StreamDecoder())
            async with aclosing(frames):
                frame, end = await anext(frames)
                handed = time.monotonic()
            ser.close()
        assert isinstance(frame, dlt645.Frame) and frame.di == 0x00010000
        wire = len(request) * 11 / 2400  # 92 ms
        assert end == pytest.approx(written + wire, abs=0.005)
        assert handed >= end

    run(main)


def test_modbus_frames_end_at_a_silence_of_three_and_a_half_characters() -> None:
    async def main() -> None:
        line_bus = Bus(id="m", protocol="modbus-rtu", baud=1200, framing="8N1")
        char = 10 / 1200
        gap = modbus_gap(line_bus)
        assert gap == pytest.approx(3.5 * char)
        async with SerialLine(line_bus, RealClock()) as line:
            ser = port(line)
            frames = frames_by_silence(line, gap)
            async with aclosing(frames):
                # Two writes 10 ms apart: the second queues behind the first on the wire.
                ser.write(b"\x01\x02\x03\x04")
                time.sleep(0.01)
                ser.write(b"\x05\x06\x07\x08")
                data, ready = await anext(frames)
                assert data == bytes(range(1, 9))
                assert time.monotonic() >= ready
                # Two writes more than 3.5 characters of silence apart: two frames.
                ser.write(b"\x11\x12")
                await asyncio.sleep(2 * char + gap + 0.02)
                ser.write(b"\x13\x14")
                first, _ = await anext(frames)
                second, _ = await anext(frames)
            ser.close()
        assert (first, second) == (b"\x11\x12", b"\x13\x14")

    run(main)


def test_the_modbus_gap_is_fixed_above_19200_baud() -> None:
    fast = Bus(id="m", protocol="modbus-rtu", baud=115200, framing="8N1")
    assert modbus_gap(fast) == 0.00175


# ---- faults on answers --------------------------------------------------------------------
REPLY = bytes.fromhex("FE FE FE FE 68 94 35 21 90 88 55 68 91 08 33 33 34 33 59 35 33 33 81 16")
SUM_LAYOUT = Layout(preamble=4, checksum=slice(-2, -1))


def fault(kind: str) -> Fault:
    return Fault.model_validate({"meter": "m", "kind": kind})


@pytest.mark.parametrize("seed", range(20))
def test_bad_checksum_changes_only_the_checksum(seed: int) -> None:
    out = damage(REPLY, fault("bad_checksum"), SUM_LAYOUT, random.Random(seed))
    changed = [i for i, (a, b) in enumerate(zip(out, REPLY, strict=True)) if a != b]
    assert changed == [len(REPLY) - 2]


@pytest.mark.parametrize("seed", range(20))
def test_garbled_changes_one_to_three_bytes_after_the_preamble(seed: int) -> None:
    out = damage(REPLY, fault("garbled"), SUM_LAYOUT, random.Random(seed))
    changed = [i for i, (a, b) in enumerate(zip(out, REPLY, strict=True)) if a != b]
    assert 1 <= len(changed) <= 3 and min(changed) >= 4


@pytest.mark.parametrize("seed", range(20))
def test_truncated_is_a_strict_prefix_past_the_preamble(seed: int) -> None:
    out = damage(REPLY, fault("truncated"), SUM_LAYOUT, random.Random(seed))
    assert 4 < len(out) < len(REPLY) and REPLY.startswith(out)


def test_other_faults_leave_the_bytes_alone() -> None:
    for kind in ("slow", "exception", "frozen"):
        assert damage(REPLY, fault(kind), SUM_LAYOUT, random.Random(0)) == REPLY
    assert damage(REPLY, None, SUM_LAYOUT, random.Random(0)) == REPLY


def test_colliding_answers_are_neither_answer() -> None:
    assert collide([b"\xf0\x0f", b"\x3c"]) == b"\x30\x0f"


# ---- the runner -------------------------------------------------------------------------------
def small_fleet(link: Path) -> FleetRuntime:
    start = datetime.now(UTC) - timedelta(hours=1)
    spec = Fleet.model_validate(
        {
            "name": "line",
            "start": start.isoformat(),
            "plant": {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]},
            "buses": [{"id": "b645", "protocol": "dlt645", "baud": 115200, "link": str(link)}],
            "meters": [
                {
                    "id": "em",
                    "protocol": "dlt645-2007",
                    "bus": "b645",
                    "address": "000000000001",
                    "points": [{"di": "00010000", "quantity": "grid.energy_import_kwh"}],
                }
            ],
        }
    )
    return FleetRuntime(spec)


def test_the_runner_announces_endpoints_and_cleans_up_when_cancelled(tmp_path: Path) -> None:
    link = tmp_path / "tty645"
    fleet = small_fleet(link)

    async def main() -> None:
        opened = asyncio.Event()
        task = asyncio.create_task(serve_serial_buses(fleet, ready=lambda _lines: opened.set()))
        await opened.wait()
        assert link.is_symlink()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert not link.is_symlink()
    endpoints = {(e.meter, e.protocol, e.address) for e in fleet.endpoints}
    assert endpoints == {
        ("b645", "dlt645", str(link)),
        ("em", "dlt645-2007", f"{link} address 000000000001"),
    }


def test_a_bad_meter_is_refused_before_any_pty_opens(tmp_path: Path) -> None:
    spec = small_fleet(tmp_path / "tty645").spec.model_dump(mode="json")
    spec["meters"][0]["points"][0]["di"] = "00990000"
    bad = FleetRuntime(Fleet.model_validate(spec))

    async def main() -> None:
        with pytest.raises(ValueError, match="DI 00990000: not in the DL/T 645 registry"):
            async with running_serial_buses(bad):
                pass

    run(main)
    assert not (tmp_path / "tty645").exists()

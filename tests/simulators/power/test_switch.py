"""Power switches: a Modbus relay (a real pymodbus server), an operator (scripted), a process."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.power import (
    ModbusRelayConfig,
    ModbusRelaySwitch,
    OperatorPromptSwitch,
    PowerCutMode,
    PowerState,
    PowerSwitch,
    ProcessPowerSwitch,
    StdinPrompt,
    SwitchError,
    SwitchOutcome,
    VolatileMount,
)
from tests.simulators.power.conftest import needs_fuse, on_mount, run

UNIT = 3
COIL = 5

# ---- a relay module on the wire ---------------------------------------------------------------


class Relay:
    """A relay module: coils 0..15 of unit UNIT; ``stuck`` welds the contacts (writes no-op)."""

    def __init__(self) -> None:
        self.stuck = False
        self.writes: list[tuple[int, bool]] = []
        self.device = SimDevice(
            id=UNIT,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, datatype=DataType.BITS)],
                [SimData(0, datatype=DataType.REGISTERS)],
                [SimData(0, datatype=DataType.REGISTERS)],
            ),
            action=self._action,
        )

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == 5 and values is not None:
            self.writes.append((address, bool(values[0])))
            if self.stuck:  # the coil keeps what it had, whatever was asked
                at = address - start_address
                values[0] = bool(registers[at // 16] >> (at % 16) & 1)
        return None


@asynccontextmanager
async def relay_server(relay: Relay, *, rtu: bool = False) -> AsyncIterator[int]:
    """A pymodbus server for the relay on a free port: Modbus TCP, or RTU framing over TCP."""
    server: ModbusTcpServer | ModbusSerialServer
    if rtu:
        server = ModbusSerialServer(
            relay.device, framer=FramerType.RTU, port="socket://127.0.0.1:0"
        )
    else:
        server = ModbusTcpServer(relay.device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        listener = cast(asyncio.Server, server.transport)  # where pymodbus keeps its listener
        port: int = listener.sockets[0].getsockname()[1]
        yield port
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


async def coil_seen_by_another_client(port: int) -> bool:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        answer = await client.read_coils(COIL, count=1, device_id=UNIT)
        return bool(answer.bits[0])
    finally:
        client.close()


def state(switch: PowerSwitch) -> PowerState:
    """The switch's state now (a call, so the type checker does not pin it between awaits)."""
    return switch.state


def test_a_relay_on_its_normally_open_contact_is_energised_for_power() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay) as port:
            config = ModbusRelayConfig(host="127.0.0.1", port=port, unit_id=UNIT, coil=COIL)
            async with ModbusRelaySwitch(config) as switch:
                assert state(switch) == PowerState.UNKNOWN
                assert await switch.read_state() == PowerState.OFF  # coil off: contact open
                assert await switch.restore() == SwitchOutcome.DONE
                assert state(switch) == PowerState.ON
                assert await coil_seen_by_another_client(port) is True
                assert await switch.cut() == SwitchOutcome.DONE
                assert state(switch) == PowerState.OFF
                assert await coil_seen_by_another_client(port) is False
        assert relay.writes == [(COIL, True), (COIL, False)]

    run(main())


def test_a_relay_on_its_normally_closed_contact_is_energised_to_cut() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay) as port:
            config = ModbusRelayConfig(
                host="127.0.0.1", port=port, unit_id=UNIT, coil=COIL, normally_closed=True
            )
            switch = ModbusRelaySwitch(config, name="bay 2 supply")
            try:
                assert switch.name == "bay 2 supply"
                assert await switch.read_state() == PowerState.ON  # coil off: NC contact closed
                await switch.cut()
                assert await coil_seen_by_another_client(port) is True
                await switch.restore()
                assert await coil_seen_by_another_client(port) is False
            finally:
                await switch.aclose()

    run(main())


def test_a_relay_over_modbus_rtu() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay, rtu=True) as port:
            config = ModbusRelayConfig(
                serial_port=f"socket://127.0.0.1:{port}", unit_id=UNIT, coil=COIL
            )
            async with ModbusRelaySwitch(config) as switch:
                await switch.restore()
                await switch.cut()
        assert relay.writes == [(COIL, True), (COIL, False)]

    run(main())


def test_a_welded_relay_is_caught_by_reading_the_coil_back() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay) as port:
            config = ModbusRelayConfig(host="127.0.0.1", port=port, unit_id=UNIT, coil=COIL)
            async with ModbusRelaySwitch(config) as switch:
                await switch.restore()
                relay.stuck = True
                with pytest.raises(SwitchError, match="reads back 1: the power is still on"):
                    await switch.cut()
                assert state(switch) == PowerState.ON

    run(main())


def test_a_relay_that_is_not_there_is_an_error_naming_it() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay) as port:
            pass  # closed again: nobody listens on that port now
        config = ModbusRelayConfig(host="127.0.0.1", port=port, unit_id=UNIT, timeout=0.5)
        switch = ModbusRelaySwitch(config)
        with pytest.raises(SwitchError, match=f"cannot connect .*127.0.0.1:{port}"):
            await switch.cut()

    run(main())


def test_a_wrong_unit_id_is_refused_by_the_relay() -> None:
    async def main() -> None:
        relay = Relay()
        async with relay_server(relay) as port:
            config = ModbusRelayConfig(host="127.0.0.1", port=port, unit_id=UNIT + 1, coil=COIL)
            async with ModbusRelaySwitch(config) as switch:
                with pytest.raises(SwitchError, match="refused"):
                    await switch.cut()

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of host"),
        ({"host": "h", "serial_port": "/dev/ttyS0"}, "exactly one of host"),
        ({"host": "h", "unit_id": 248}, "unit_id"),
        ({"host": "h", "coil": -1}, "coil"),
        ({"host": "h", "port": 0}, "port"),
        ({"serial_port": "/dev/ttyS0", "parity": "X"}, "parity"),
        ({"host": "h", "timeout": 0}, "timeout"),
    ],
)
def test_relay_configuration_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModbusRelayConfig(**kwargs)  # type: ignore[arg-type]


# ---- an operator ------------------------------------------------------------------------------


def scripted(*answers: str | None) -> tuple[Callable[[str], Awaitable[str | None]], list[str]]:
    """A prompt that answers from a script; the messages shown are kept."""
    shown: list[str] = []
    queue = list(answers)

    async def prompt(message: str) -> str | None:
        shown.append(message)
        return queue.pop(0)

    return prompt, shown


class InstantClock:
    """Time passes at once: a timeout fires as soon as nothing else is ready."""

    def time(self) -> float:
        return 0.0

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def test_an_operator_who_confirms_switches_the_power() -> None:
    async def main() -> None:
        prompt, shown = scripted("", "yes")
        switch: PowerSwitch = OperatorPromptSwitch(prompt=prompt, what="terminal TX-1")
        assert state(switch) == PowerState.UNKNOWN
        assert await switch.cut() == SwitchOutcome.DONE
        assert state(switch) == PowerState.OFF
        assert await switch.restore() == SwitchOutcome.DONE
        assert state(switch) == PowerState.ON
        assert "Cut the power of terminal TX-1" in shown[0]
        assert "Restore the power of terminal TX-1" in shown[1]

    run(main())


def test_an_operator_who_declines_leaves_the_power_as_it_was() -> None:
    async def main() -> None:
        prompt, _ = scripted("", "no")
        switch = OperatorPromptSwitch(prompt=prompt)
        await switch.restore()
        assert await switch.cut() == SwitchOutcome.DECLINED
        assert state(switch) == PowerState.ON

    run(main())


def test_an_unclear_answer_is_asked_again() -> None:
    async def main() -> None:
        prompt, shown = scripted("maybe", "done")
        switch = OperatorPromptSwitch(prompt=prompt)
        assert await switch.cut() == SwitchOutcome.DONE
        assert len(shown) == 2 and "'maybe'" in shown[1]

    run(main())


def test_no_answer_in_time_is_pending_operator() -> None:
    async def main() -> None:
        never = asyncio.Event()
        asked: list[str] = []

        async def silent(message: str) -> str | None:
            asked.append(message)
            await never.wait()
            return ""

        switch = OperatorPromptSwitch(prompt=silent, timeout=60, clock=InstantClock())
        assert await switch.cut() == SwitchOutcome.PENDING_OPERATOR
        assert state(switch) == PowerState.UNKNOWN
        assert len(asked) == 1

    run(main())


def test_nobody_at_the_terminal_is_pending_operator() -> None:
    async def main() -> None:
        prompt, _ = scripted(None)  # end of input: no operator at all
        switch = OperatorPromptSwitch(prompt=prompt)
        assert await switch.restore() == SwitchOutcome.PENDING_OPERATOR

    run(main())


def test_the_stdin_prompt_reads_lines_from_a_pipe() -> None:
    async def main() -> None:
        read_end, write_end = os.pipe()
        os.write(write_end, b"yes\nno\n")
        os.close(write_end)
        out = io.StringIO()
        with os.fdopen(read_end) as stream:
            prompt = StdinPrompt(stream, out)
            switch = OperatorPromptSwitch(prompt=prompt)
            assert await switch.cut() == SwitchOutcome.DONE
            assert await switch.restore() == SwitchOutcome.DECLINED
            assert await switch.restore() == SwitchOutcome.PENDING_OPERATOR  # end of input
        assert out.getvalue().count("> ") == 3

    run(main())


# ---- a process ------------------------------------------------------------------------------

#: Writes one file it fsyncs and one it does not, says so, then waits to be killed.
TERMINAL = """
import os, sys, time
d = sys.argv[1]
with open(os.path.join(d, "synced"), "w") as f:
    f.write("synced"); f.flush(); os.fsync(f.fileno())
with open(os.path.join(d, "unsynced"), "w") as f:
    f.write("unsynced")
print("up", flush=True)
time.sleep(60)
"""


async def wait_until_up(switch: ProcessPowerSwitch) -> None:
    assert switch.process is not None and switch.process.stdout is not None
    assert await switch.process.stdout.readline() == b"up\n"


@needs_fuse
def test_a_process_switch_kills_the_terminal_and_drops_what_it_never_synced(
    tmp_path: Path,
) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        argv = [sys.executable, "-c", TERMINAL, str(mnt)]
        switch = ProcessPowerSwitch(argv, mount=mount, stdout=asyncio.subprocess.PIPE)
        assert switch.mode == PowerCutMode.FUSE
        try:
            first = await switch.start()
            await wait_until_up(switch)
            assert await switch.cut() == SwitchOutcome.DONE
            assert first.returncode == -9
            assert state(switch) == PowerState.OFF
            assert switch.last_cut is not None and switch.last_cut.bytes_dropped == 8
            assert await switch.restore() == SwitchOutcome.DONE
            assert switch.process is not first and state(switch) == PowerState.ON
            # what the new life sees: the first life's synced file, and its own writes
            await wait_until_up(switch)
            assert (backing / "synced").read_text() == "synced"
            assert (backing / "unsynced").read_text() == ""
            with pytest.raises(SwitchError, match="on already"):
                await switch.restore()
        finally:
            await switch.aclose()

    on_mount(tmp_path, body)


def test_without_a_mount_a_process_switch_only_kills_and_says_so(tmp_path: Path) -> None:
    async def main() -> None:
        argv = [sys.executable, "-c", TERMINAL, str(tmp_path)]
        switch = ProcessPowerSwitch(argv, stdout=asyncio.subprocess.PIPE)
        assert switch.mode == PowerCutMode.SIGKILL_ONLY
        assert "unsynced writes survive" in switch.mode_reason
        try:
            await switch.start()
            await wait_until_up(switch)
            await switch.cut()
            # the weakness the mode's name admits: the kernel kept what was never fsynced
            assert (tmp_path / "unsynced").read_text() == "unsynced"
        finally:
            await switch.aclose()

    run(main())


def test_a_process_switch_needs_a_command() -> None:
    with pytest.raises(ValueError, match="empty"):
        ProcessPowerSwitch([])

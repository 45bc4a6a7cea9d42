"""Power switches: what the bench flips to cut and restore a terminal's supply.

- :class:`ModbusRelaySwitch`: a Modbus relay module (TCP or RTU) wired into the supply.
- :class:`OperatorPromptSwitch`: a person at the bench, asked to do it and to confirm.
- :class:`ProcessPowerSwitch`: a terminal that is a process here: SIGKILL, and the volatile
  mount (:mod:`.mount`) drops what it never fsynced; restore restarts it.

Every switch answers ``cut()``/``restore()`` with a :class:`SwitchOutcome`; a switch that could
not do it raises :class:`SwitchError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from common.clock import Clock, RealClock
from simulators.power.mount import (
    CutReport,
    PowerCutMode,
    PowerError,
    VolatileMount,
    power_cut_mode,
)
from simulators.tasks import cancel_and_wait


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"  # not read yet, or an operator never said


class SwitchOutcome(StrEnum):
    DONE = "done"
    #: nobody confirmed in time: the step awaits a person (the verdict of the same name)
    PENDING_OPERATOR = "pending-operator"
    #: the operator said no (e.g. the terminal's supply is not reachable today)
    DECLINED = "declined"


class SwitchError(PowerError):
    """A switch could not switch; the message says which and why."""


class PowerSwitch(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def state(self) -> PowerState: ...

    async def cut(self) -> SwitchOutcome: ...

    async def restore(self) -> SwitchOutcome: ...


# ---- Modbus relay -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModbusRelayConfig:
    """Where the relay is and how it is wired. Give ``host`` (TCP) or ``serial_port`` (RTU)."""

    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    unit_id: int = 1
    coil: int = 0
    #: the supply runs through the relay's NC contact: energising the coil cuts the power
    normally_closed: bool = False
    timeout: float = 3.0  # per request, in seconds of real time (the relay is real)
    retries: int = 1

    def __post_init__(self) -> None:
        if (self.host is None) == (self.serial_port is None):
            raise ValueError("ModbusRelayConfig: give exactly one of host (TCP) and serial_port")
        if not 0 <= self.unit_id <= 247:
            raise ValueError(f"ModbusRelayConfig.unit_id: 0..247, not {self.unit_id}")
        if not 0 <= self.coil <= 0xFFFF:
            raise ValueError(f"ModbusRelayConfig.coil: 0..65535, not {self.coil}")
        if not 0 < self.port <= 0xFFFF:
            raise ValueError(f"ModbusRelayConfig.port: 1..65535, not {self.port}")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"ModbusRelayConfig.parity: N, E or O, not {self.parity!r}")
        if self.timeout <= 0:
            raise ValueError(f"ModbusRelayConfig.timeout must be positive, not {self.timeout}")

    @property
    def where(self) -> str:
        at = f"{self.host}:{self.port}" if self.host is not None else f"{self.serial_port}"
        return f"{at} unit {self.unit_id} coil {self.coil}"

    def coil_for(self, power_on: bool) -> bool:
        """The coil value that gives this power state (NO contact: energised is on)."""
        return power_on != self.normally_closed


class ModbusRelaySwitch:
    """A relay module's coil, written and then read back to confirm."""

    def __init__(self, config: ModbusRelayConfig, *, name: str | None = None) -> None:
        self.config = config
        self._name = name or f"modbus-relay {config.where}"
        self._state = PowerState.UNKNOWN
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> PowerState:
        return self._state

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        c = self.config
        if c.host is not None:
            client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusTcpClient(
                c.host, port=c.port, timeout=c.timeout, retries=c.retries
            )
        else:
            assert c.serial_port is not None
            client = AsyncModbusSerialClient(
                c.serial_port,
                baudrate=c.baudrate,
                parity=c.parity,
                stopbits=c.stopbits,
                bytesize=c.bytesize,
                timeout=c.timeout,
                retries=c.retries,
            )
        if not await client.connect():
            client.close()
            raise SwitchError(f"{self.name}: cannot connect to the relay at {c.where}")
        self._client = client
        return client

    async def read_state(self) -> PowerState:
        """Read the coil and say what the supply is."""
        client = await self._connected()
        c = self.config
        try:
            answer = await client.read_coils(c.coil, count=1, device_id=c.unit_id)
        except ModbusException as exc:
            raise SwitchError(f"{self.name}: reading the coil failed: {exc}") from exc
        if answer.isError():
            raise SwitchError(f"{self.name}: the relay refused to read the coil: {answer}")
        coil = bool(answer.bits[0])
        self._state = PowerState.ON if coil == c.coil_for(True) else PowerState.OFF
        return self._state

    async def _switch(self, power_on: bool) -> SwitchOutcome:
        client = await self._connected()
        c = self.config
        wanted = c.coil_for(power_on)
        try:
            answer = await client.write_coil(c.coil, wanted, device_id=c.unit_id)
        except ModbusException as exc:
            self._state = PowerState.UNKNOWN
            raise SwitchError(f"{self.name}: writing the coil failed: {exc}") from exc
        if answer.isError():
            self._state = PowerState.UNKNOWN
            raise SwitchError(f"{self.name}: the relay refused to write the coil: {answer}")
        state = await self.read_state()
        target = PowerState.ON if power_on else PowerState.OFF
        if state != target:
            raise SwitchError(
                f"{self.name}: wrote the coil {int(wanted)} to switch the power {target}, "
                f"but it reads back {int(not wanted)}: the power is still {state}"
            )
        return SwitchOutcome.DONE

    async def cut(self) -> SwitchOutcome:
        return await self._switch(False)

    async def restore(self) -> SwitchOutcome:
        return await self._switch(True)

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def __aenter__(self) -> ModbusRelaySwitch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# ---- an operator ------------------------------------------------------------------------

#: Shows a message and returns the operator's answer, or None when nobody can answer (EOF).
Prompt = Callable[[str], Awaitable[str | None]]

_CONFIRM = frozenset({"", "y", "yes", "ok", "done"})
_DECLINE = frozenset({"n", "no", "skip"})


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class StdinPrompt:
    """Asks on stderr, reads a line from stdin without blocking the event loop."""

    def __init__(self, stream: IO[str] | None = None, out: IO[str] | None = None) -> None:
        self._stream = stream
        self._out = out
        self._pending = b""

    async def __call__(self, message: str) -> str | None:
        out = self._out or sys.stderr
        out.write(message + "\n> ")
        out.flush()
        stream = self._stream or sys.stdin
        if stream is None or stream.closed:
            return None
        fd = stream.fileno()
        loop = asyncio.get_running_loop()
        while b"\n" not in self._pending:
            ready: asyncio.Future[None] = loop.create_future()
            try:
                loop.add_reader(fd, _wake, ready)
            except (PermissionError, ValueError):  # a regular file: it never blocks for long
                line = await asyncio.to_thread(stream.readline)
                return line.rstrip("\n") if line else None
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace")


class OperatorPromptSwitch:
    """A person cuts and restores the power when asked, and confirms.

    No answer within ``timeout`` (clock seconds) is :attr:`SwitchOutcome.PENDING_OPERATOR`, and
    the power state is then unknown. ``no``/``n``/``skip`` declines; Enter, ``y``, ``yes``,
    ``ok`` and ``done`` confirm; anything else is asked again.
    """

    def __init__(
        self,
        name: str = "operator",
        *,
        prompt: Prompt | None = None,
        timeout: float = 300.0,
        what: str = "the terminal under test",
        clock: Clock | None = None,
    ) -> None:
        self._name = name
        self._prompt: Prompt = prompt or StdinPrompt()
        self.timeout = timeout
        self.what = what
        self._clock = clock or RealClock()
        self._state = PowerState.UNKNOWN

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> PowerState:
        return self._state

    async def cut(self) -> SwitchOutcome:
        return await self._ask(
            f"[{self.name}] Cut the power of {self.what} now, then press Enter "
            "('no' if you cannot).",
            PowerState.OFF,
        )

    async def restore(self) -> SwitchOutcome:
        return await self._ask(
            f"[{self.name}] Restore the power of {self.what} now, then press Enter "
            "('no' if you cannot).",
            PowerState.ON,
        )

    async def _ask(self, message: str, target: PowerState) -> SwitchOutcome:
        deadline = asyncio.ensure_future(self._clock.sleep(self.timeout))
        try:
            while True:
                asked = asyncio.ensure_future(self._prompt(message))
                done, _ = await asyncio.wait({asked, deadline}, return_when=asyncio.FIRST_COMPLETED)
                if asked not in done:
                    await cancel_and_wait(asked)
                    self._state = PowerState.UNKNOWN
                    return SwitchOutcome.PENDING_OPERATOR
                answer = asked.result()
                if answer is None:  # nobody there to answer
                    self._state = PowerState.UNKNOWN
                    return SwitchOutcome.PENDING_OPERATOR
                word = answer.strip().lower()
                if word in _CONFIRM:
                    self._state = target
                    return SwitchOutcome.DONE
                if word in _DECLINE:
                    return SwitchOutcome.DECLINED
                message = f"[{self.name}] Please answer Enter/yes (done) or no: {answer!r}?"
        finally:
            deadline.cancel()


# ---- a process on this machine ------------------------------------------------------------


class ProcessPowerSwitch:
    """The supply of a terminal that is a process here.

    ``cut`` first cuts the volatile mount holding the terminal's files (unsynced data gone,
    every later write fails), then SIGKILLs the process group; ``restore`` restores the mount
    and starts ``argv`` again. Without a mount the mode is ``sigkill-only``: the kernel keeps
    the page cache, so writes the terminal never fsynced survive, and :attr:`mode_reason` says
    so for the report.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        mount: VolatileMount | None = None,
        name: str | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("ProcessPowerSwitch.argv: the command to (re)start is empty")
        self.argv = list(argv)
        self.mount = mount
        self._name = name or f"process {Path(self.argv[0]).name}"
        self._cwd = cwd
        self._env = dict(env) if env is not None else None
        self._stdout = stdout
        self._stderr = stderr
        self.process: asyncio.subprocess.Process | None = None
        self.last_cut: CutReport | None = None
        self._state = PowerState.OFF
        if mount is not None:
            self.mode = PowerCutMode.FUSE
            self.mode_reason = f"unsynced writes under {mount.mountpoint} are dropped"
        else:
            self.mode = PowerCutMode.SIGKILL_ONLY
            capability = power_cut_mode()
            self.mode_reason = (
                "no volatile mount given: the process is only killed and its unsynced "
                f"writes survive in the page cache ({capability.reason})"
            )

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> PowerState:
        return self._state

    async def start(self) -> asyncio.subprocess.Process:
        """Switch on the first time (same as restore)."""
        await self.restore()
        assert self.process is not None
        return self.process

    async def cut(self) -> SwitchOutcome:
        if self.mount is not None:
            self.last_cut = await self.mount.cut()
        await self._kill()
        self._state = PowerState.OFF
        return SwitchOutcome.DONE

    async def restore(self) -> SwitchOutcome:
        if self.process is not None and self.process.returncode is None:
            raise SwitchError(f"{self.name}: the power is on already (pid {self.process.pid})")
        if self.mount is not None:
            await self.mount.restore()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self._cwd,
                env=self._env,
                stdout=self._stdout,
                stderr=self._stderr,
                start_new_session=True,  # a group of its own, so the kill takes its children
            )
        except OSError as exc:
            raise SwitchError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        self._state = PowerState.ON
        return SwitchOutcome.DONE

    async def _kill(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def aclose(self) -> None:
        """Kill the process if it runs (the mount is the caller's to close)."""
        await self._kill()
        self._state = PowerState.OFF

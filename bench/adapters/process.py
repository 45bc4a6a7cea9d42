"""The reference terminal as a process of its own, judged as a stranger's box would be (target
kind ``process``): ``python -m reference_terminal --config FILE``, started, cut and restarted
by the bench.

- **Configuration**: generated as for the in-process terminal (``bench.adapters
  .reference_setup``: the fleet's wiring, the PIXIT, the uplink pointed at the rig's centres,
  accounts, SM2 identity and TLS enrolment, applications, mutations), plus the management API
  on a loopback port the adapter chose (and the SM channel when declared), written to
  ``workdir/terminal.yaml``; ``adapter.command`` runs on it (``{config}`` is its path).
- **Power**: the store's directory on the FUSE volatile disk, served from the bench's side
  (the terminal writes through the kernel). A cut: the disk drops every unsynced write and
  fails everything after, then SIGKILL of the process group (``simulators.power
  .ProcessPowerSwitch`` starts and kills it; the disk is cut here, since a torn cut's disk
  dies by itself and the disk must be readable while the power is off, for
  :meth:`stored_data`). ``torn_after`` arms the disk to die before the terminal's n-th write
  or sync from now, counting every write of the process (the in-process adapter counts the
  acknowledging file's alone, which it can name from the terminal's store; from outside, a
  count over all writes tears a different write in each run of one seed). Without FUSE: the
  kill alone, ``PowerCut.mode == "kill"`` with the reason. Power on restarts the same command
  on the same configuration file (which the terminal rewrites, with fsync, when the
  management API changes its configuration).
- **Time**: in virtual time the rig's clock leads the process (``bench.adapters
  .process_clock``: ``--follow-clock DIR``); booting takes none of it (the clock is held while
  the process starts). In wall time the same without the follower.
- **Boot** is the process alive and, in virtual time, its control line answering (the
  terminal opens it once it is ready). With ``management.profile: carbench`` the adapter then
  waits for the management API to serve (in wall time, with no control line, to say it runs),
  and gives the suites a :class:`~conformance.management.Management` on it; with ``none`` it
  never touches the API (a stranger's box has none): :attr:`management` raises
  :class:`DutError` and :meth:`configure` is inconclusive.
- **What the lab knows**: points, MN/PW, the device certificate, the stored data's files and
  the application packages come from what the adapter generated (its wiring), not from the
  device's report. An unattended stretch is a plain one (it reads its meters over their
  wire); :meth:`age` moves the epoch its follower clock starts from (virtual time only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import yaml

from bench.adapters.changes import apply_changes
from bench.adapters.management_server import free_port
from bench.adapters.process_clock import ProcessFollower
from bench.adapters.reference_setup import ReferenceSetup, point_bindings, stored_files
from bench.scenario.target import tear_disk
from common.clock import Clock
from conformance.dut import (
    AppPackages,
    CentreEndpoint,
    Change,
    ClockMode,
    DutError,
    PointBinding,
    PowerCut,
)
from conformance.management import ChannelAccess, Management, ManagementUnavailable
from conformance.target import Target
from conformance.verdicts import Inconclusive
from protocols.smchannel import ServerTrust
from reference_terminal.config import TerminalConfig
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa
from simulators.power import ProcessPowerSwitch, SwitchError, VolatileMount

#: The command when the target names none: this interpreter running the reference terminal.
DEFAULT_COMMAND = (sys.executable, "-m", "reference_terminal", "--config", "{config}")
#: The option that has it follow the rig's clock (virtual time), with its directory.
FOLLOW_OPTION = "--follow-clock"
#: The exit status with which ``python -m reference_terminal`` refuses to start (its stored
#: credentials fail their check, ISC-2 §7.4.1.4).
REFUSED = 3
#: Wall seconds a process with no management API and no control line (wall time, profile
#: ``none``) must stay up to count as booted: a terminal refusing its configuration or its
#: stored credentials exits within it.
ALIVE_AFTER_S = 3.0
#: Wall seconds an orderly stop (SIGTERM) may take before the process is killed.
STOP_TIMEOUT_S = 30.0
#: Wall seconds between looks at a booting management API.
HEALTH_POLL_S = 0.05
#: How much of the terminal's log a boot failure quotes.
LOG_TAIL = 1500
#: Where this checkout's packages are: the child imports them whatever its working directory.
_REPO = Path(__file__).resolve().parents[2]


class ProcessDut:
    """The reference terminal in a process of its own (see the module text)."""

    def __init__(
        self,
        target: Target,
        *,
        fleet: FleetRuntime,
        clock: Clock,
        clock_mode: ClockMode,
        workdir: Path,
        ca: TestCa | None = None,
        client_ca: ClientCa | None = None,
    ) -> None:
        if target.adapter.kind != "process":
            raise DutError(f"target {target.name!r} is not a terminal run as a process")
        if target.adapter.config is not None:
            raise DutError(
                "adapter.config: a process target runs the reference terminal on the "
                "configuration the bench generates; a program with a configuration of its own "
                "is an external target (power.switch: process)"
            )
        if clock_mode is ClockMode.VIRTUAL and not isinstance(clock, VirtualClock):
            raise DutError("virtual time needs the rig's VirtualClock to lead the process")
        self._target = target
        self.fleet = fleet
        self.clock = clock
        self._clock_mode = clock_mode
        self.workdir = workdir
        self.setup = ReferenceSetup(
            target, fleet=fleet, workdir=workdir, ca=ca, client_ca=client_ca
        )
        self.host = "127.0.0.1"
        self.api_port = free_port(self.host)
        self.channel_port: int | None = None
        self._channel: ChannelAccess | None = None
        if ca is not None and self.setup.sm_channel_declared():
            self.channel_port = free_port(self.host)
            trust = ServerTrust(ca=ca.certificate, subject=self.setup.subject())
            self._channel = ChannelAccess(self.host, self.channel_port, trust)
        self._management: Management | None = None
        if target.management.profile == "carbench":
            self._management = self._client(still=True)
        self.config_file = workdir / "terminal.yaml"
        self.log_path = workdir / "terminal.log"
        self.config: TerminalConfig | None = None
        self.mount: VolatileMount | None = None
        self.power_note = ""
        self.switch: ProcessPowerSwitch | None = None
        self.follower: ProcessFollower | None = None
        self.boots = 0
        self._powered = False
        self._stack = AsyncExitStack()

    # ---- Dut -------------------------------------------------------------------------------
    @property
    def target(self) -> Target:
        return self._target

    @property
    def clock_mode(self) -> ClockMode:
        return self._clock_mode

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def management(self) -> Management:
        if self._management is None:
            raise DutError(
                f"{self._target.name} declares no management profile (management.profile: "
                "none): the bench may not read it back or configure it through one"
            )
        return self._management

    def mn(self, centre: str) -> str:
        return self.setup.mns[centre]

    def pw(self, centre: str) -> str:
        return self._target.parameters.pw

    def points(self) -> Sequence[PointBinding]:
        return point_bindings(self._config())

    async def start(self, centres: Sequence[CentreEndpoint]) -> None:
        with self._still():  # setting up takes no terminal time
            self.workdir.mkdir(parents=True, exist_ok=True)
            disk = await self.setup.disk(self._stack)
            self.mount, self.power_note = disk.mount, disk.note
            self.config = await self.setup.configuration(
                centres, disk.directory, self._stack, admin_host=self.host, api=self._api()
            )
            self.config_file.write_text(
                yaml.safe_dump(self.config.model_dump(mode="json"), allow_unicode=True),
                encoding="utf-8",
            )
            if isinstance(self.clock, VirtualClock) and self._clock_mode is ClockMode.VIRTUAL:
                self.follower = ProcessFollower(self.clock)
            log = self._stack.enter_context(self.log_path.open("ab"))
            self.switch = ProcessPowerSwitch(
                self._command(),
                name=f"process {self._target.name}",
                cwd=self.workdir,
                env=self._environment(),
                stdout=log,
                stderr=log,
            )
        await self.power_on()

    async def stop(self) -> None:
        """An orderly shutdown (SIGTERM: the terminal closes its store), then the disk."""
        with self._still():
            switch = self.switch
            if switch is not None and switch.process is not None:
                process = switch.process
                if process.returncode is None:
                    if self.follower is not None:
                        await self.follower.count_forced()
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
                    except TimeoutError:
                        await switch.aclose()
            self._powered = False
            if self.follower is not None:
                await self.follower.detach()
        if self._management is not None:
            await self._management.aclose()
        await self._stack.aclose()
        if self.follower is not None:
            self.follower.close()

    async def power_off(self, *, torn_after: int | None = None) -> PowerCut:
        switch = self._switch()
        mount = self.mount
        if self.follower is not None:
            with self._still():
                await self.follower.count_forced()
        if mount is None:
            with self._still():  # the cut is an instant
                await switch.cut()
                await self._gone()
                self.setup.power_lost()
            return PowerCut("process", "kill", self.power_note)
        # the terminal runs on (in time) to the write the cut lands in
        torn = bool(torn_after) and await tear_disk(mount, self.clock, torn_after or 0)
        with self._still():
            stats = await mount.stats() if torn_after else None
            if stats is None or stats.powered:
                dropped = (await mount.cut()).bytes_dropped
            else:  # the disk died by itself, inside a write
                dropped = stats.bytes_dropped
            await switch.cut()
            await self._gone()
            self.setup.power_lost()
            # nothing runs on it until the next boot; its files can be read meanwhile
            await mount.restore()
        return PowerCut("fuse", "fuse", self.power_note, bytes_dropped=dropped, torn=torn)

    async def power_on(self) -> None:
        switch = self._switch()
        with self._still():  # booting takes no terminal time (its wall time varies)
            if self.follower is not None:
                self.follower.prepare()
            try:
                await switch.restore()
            except SwitchError as exc:  # on already, or the command cannot start
                raise DutError(str(exc)) from exc
            self._powered = True
            self.boots += 1
            try:
                await self._booted()
            except BaseException:
                await switch.cut()
                await self._gone()
                raise

    async def configure(self, *changes: Change) -> None:
        if self._management is None:
            raise Inconclusive(
                "needs the carbench management profile or an operator: the target declares "
                "no management profile (management.profile: none), so the bench cannot change "
                "the terminal's configuration"
            )
        changes = await self.setup.through_relays(changes, self._stack)
        current = await self._management.config()
        with self._still():  # an operator's change is an instant; applying it needs no time
            await self._management.put_config(apply_changes(current, changes))
        # the lab's own record of the wiring follows what it asked for
        mine = apply_changes(self._config().model_dump(mode="json"), changes)
        self.config = TerminalConfig.model_validate(mine)

    def app_packages(self) -> AppPackages:
        return self.setup.app_packages()

    def device_certificate(self) -> str | None:
        return self.setup.certificate

    def stored_data(self) -> Mapping[str, Path]:
        return stored_files(self._config(), enrolled=self.setup.certificate is not None)

    async def age(self, seconds: float) -> None:
        follower = self.follower
        if follower is None:
            raise Inconclusive(
                f"the bench keeps this terminal's clock only in virtual time, so it cannot age "
                f"it by {seconds / 86400:.0f} days in wall time: run with --clock virtual"
            )
        await self.power_off()
        follower.offset += seconds  # its battery-backed clock ran on while it was off
        await self.power_on()

    @contextlib.asynccontextmanager
    async def unattended(self) -> AsyncIterator[None]:
        yield  # a process reads its meters over their wire, whatever the stretch

    def describe(self) -> dict[str, Any]:
        switch = self.switch
        process = None if switch is None else switch.process
        return {
            "kind": "process",
            "mutation": self._target.adapter.mutation,
            "pid": None if process is None else process.pid,
            "command": self._command(),
            "clock": self._clock_mode.value,
            "power": "fuse" if self.mount is not None else "kill",
            "power_note": self.power_note,
            "management": f"http://{self.host}:{self.api_port}",
            "management_profile": self._target.management.profile,
            "management_channel": None
            if self.channel_port is None
            else f"SM channel {self.host}:{self.channel_port}",
            "store": None if self.config is None else self.config.storage.url,
            "configuration": str(self.config_file),
            "log": str(self.log_path),
            "boots": self.boots,
            "settles": None if self.follower is None else self.follower.settles,
            "forced_steps": None if self.follower is None else self.follower.forced_steps,
            "relays": {n: r.fault for n, r in self.setup.relays.items()},
            "stopped_by_itself": self._stopped_by_itself(),
        }

    # ---- inside ----------------------------------------------------------------------------
    def _still(self) -> contextlib.AbstractContextManager[None]:
        """Virtual time stands still while the bench does what takes no terminal time
        (starting it, a cut's bookkeeping, reading it back)."""
        if isinstance(self.clock, VirtualClock):
            return self.clock.hold()
        return contextlib.nullcontext()

    def _switch(self) -> ProcessPowerSwitch:
        if self.switch is None:
            raise DutError("the terminal process was not started")
        return self.switch

    def _config(self) -> TerminalConfig:
        if self.config is None:
            raise DutError("the terminal process was not started: no configuration yet")
        return self.config

    def _api(self) -> dict[str, Any]:
        """Its management API on the loopback port chosen, with the SM channel when declared
        (served whatever the profile: the terminal has it; the bench uses it only with the
        carbench profile)."""
        api: dict[str, Any] = {"host": self.host, "port": self.api_port}
        if self.channel_port is not None:
            api["sm_channel"] = {"host": self.host, "port": self.channel_port}
        return api

    def _command(self) -> list[str]:
        command = list(self._target.adapter.command or DEFAULT_COMMAND)
        argv = [part.replace("{config}", str(self.config_file)) for part in command]
        if self.follower is not None:
            argv += [FOLLOW_OPTION, str(self.follower.directory.path)]
        return argv

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
        return env

    def _alive(self) -> bool:
        process = self._switch().process
        return process is not None and process.returncode is None

    async def _booted(self) -> None:
        """Wait until it is up: its control line answers (virtual time) or it stayed alive
        (wall time); then, with the carbench profile, until its API says it is running."""
        timeout = self._target.adapter.boot_timeout_s
        what = f"the terminal process ({' '.join(self._command()[:4])} …)"
        try:
            if self.follower is not None:
                await self.follower.attach(self._alive, timeout, what)
            elif self._management is None:
                deadline = time.monotonic() + ALIVE_AFTER_S
                while self._alive() and time.monotonic() < deadline:
                    await asyncio.sleep(HEALTH_POLL_S)
                if not self._alive():
                    raise DutError(f"{what} stopped while booting")
            if self._management is not None:
                await self._api_running(timeout, what)
        except DutError as exc:
            raise DutError(await self._boot_failure(str(exc))) from None

    async def _api_running(self, timeout: float, what: str) -> None:
        """Wait until its API serves. When its control line has answered, the terminal is
        ready and any answer will do (unauthenticated: an account's state, such as a
        password expired while it was aged, is the suites' business). Without one, until
        ``/health`` says it runs, or refuses the account for a reason of its own (403): the
        login worked, so the terminal is up. Each try with a client of its own: a login
        refused while the terminal starts (503) stays refused in the client that tried."""
        ready = self.follower is not None
        deadline = time.monotonic() + timeout
        while True:
            if not self._alive():
                raise DutError(f"{what} stopped while booting")
            probe = self._client(still=False)
            try:
                response = await probe.request("GET", "/health", authenticated=not ready)
            except ManagementUnavailable:
                response = None
            finally:
                await probe.aclose()
            if response is not None and (ready or response.status_code in (200, 403)):
                return
            if time.monotonic() > deadline:
                raise DutError(f"{what}: its management API was not serving after {timeout:g} s")
            await asyncio.sleep(HEALTH_POLL_S)  # it boots in wall time; the clock is held

    def _client(self, *, still: bool) -> Management:
        """A client of its API (carbench profile) with the target's accounts, through the SM
        channel when declared; ``still``: reading it back holds virtual time."""
        return Management.declared(
            self._target.management,
            f"http://{self.host}:{self.api_port}",
            still=self._still if still else None,
            channel=self._channel,
        )

    async def _boot_failure(self, message: str) -> str:
        """``message`` with how the process ended and the end of its log."""
        process = self._switch().process
        if process is not None and process.returncode is None:
            return f"{message} (log: {self.log_path})"
        status = None if process is None else process.returncode
        tail = self._log_tail()
        if status == REFUSED:  # as the in-process adapter says it
            return f"the terminal refused to start: {tail}"
        return f"{message} (exit status {status}): {tail}"

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return "no log"
        return text[-LOG_TAIL:] or "no messages"

    async def _gone(self) -> None:
        """The process is dead: its time no longer waits for it."""
        self._powered = False
        if self.follower is not None:
            await self.follower.detach()

    def _stopped_by_itself(self) -> str | None:
        """Why a terminal that was not switched off stopped (None: it has not)."""
        switch = self.switch
        process = None if switch is None else switch.process
        if not self._powered or process is None or process.returncode is None:
            return None
        return f"exit status {process.returncode} (log: {self.log_path})"

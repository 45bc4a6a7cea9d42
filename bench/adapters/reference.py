"""The reference terminal as a device under test, in the bench's own event loop and clock.

- Configuration: as ``bench.adapters.reference_setup`` generates it for the target (the
  fleet's wiring, the PIXIT, the uplink pointed at the bench's centres, accounts, enrolment,
  applications, mutations), handed to the terminal's app factory.
- Power: ``bench.scenario.target.ReferenceTarget`` — the store on the FUSE volatile disk, so a
  cut loses every write not fsynced, then the terminal stops dead. Without FUSE (or with
  ``power.switch: process``) a cut only stops the terminal: unsynced writes survive, and
  ``PowerCut.mode`` is ``kill`` with the reason, for the report.
- Management API: the terminal's own (``reference_terminal.api``) served on a loopback port,
  down while the power is off. The suites read the terminal only through it: with
  ``feature:sm-management-channel`` through its dedicated SM port (``protocols.smchannel``, the
  terminal known by the certificate the bench's CA issued), the plain port left to the console.
- Mutations (``adapter.mutation``), for the mutation check (``fixtures/mutations.yaml``),
  all by configuration or by the uplink relay of ``bench.adapters.relay``
  (``bench.adapters.reference_setup`` lists them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.adapters.changes import apply_changes
from bench.adapters.management_server import ManagementServer
from bench.adapters.reference_setup import ReferenceSetup, point_bindings, stored_files
from bench.adapters.relay import BrokenUplink
from bench.scenario.model_link import ModelLink
from bench.scenario.target import ReferenceTarget, TargetError
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
from conformance.management import ChannelAccess, Management
from conformance.target import Target
from protocols.smchannel import ServerTrust
from reference_terminal.acquisition.drivers import Wiring
from reference_terminal.api import create_app
from reference_terminal.api.channel_server import ChannelCredentials, channel_protocol
from reference_terminal.config import TerminalConfig
from reference_terminal.security.errors import SecurityError
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa
from simulators.power import VolatileMount


class ReferenceDut:
    """The reference terminal, in-process (see the module text)."""

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
        if target.adapter.kind != "reference":
            raise DutError(f"target {target.name!r} is not the reference terminal")
        self._target = target
        self.fleet = fleet
        self.clock = clock
        self._clock_mode = clock_mode
        self.workdir = workdir
        self.server = ManagementServer()
        self.setup = ReferenceSetup(
            target, fleet=fleet, workdir=workdir, ca=ca, client_ca=client_ca
        )
        #: The dedicated SM management port (ISC-2 §7.4.1.2), when declared: the suites then
        #: speak to the terminal only through it; the plain port stays for the web console.
        self.channel_server: ManagementServer | None = None
        channel: ChannelAccess | None = None
        if ca is not None and self.setup.sm_channel_declared():
            self.channel_server = ManagementServer()
            channel = ChannelAccess(
                self.channel_server.host,
                self.channel_server.port,
                ServerTrust(ca=ca.certificate, subject=self.setup.subject()),
            )
        self._management = Management.declared(
            target.management, self.server.base_url, still=self._still, channel=channel
        )
        self.runner: ReferenceTarget | None = None
        self.config: TerminalConfig | None = None
        self.mount: VolatileMount | None = None
        self.power_note = ""
        self._stack = AsyncExitStack()

    # ---- Dut ---------------------------------------------------------------------------
    @property
    def target(self) -> Target:
        return self._target

    @property
    def clock_mode(self) -> ClockMode:
        return self._clock_mode

    @property
    def powered(self) -> bool:
        return self.runner is not None and self.runner.powered

    @property
    def management(self) -> Management:
        return self._management

    @property
    def relays(self) -> dict[str, BrokenUplink]:
        return self.setup.relays

    def mn(self, centre: str) -> str:
        return self.setup.mns[centre]

    def pw(self, centre: str) -> str:
        return self._target.parameters.pw

    def points(self) -> Sequence[PointBinding]:
        return point_bindings(self._live_config())

    def _still(self) -> contextlib.AbstractContextManager[None]:
        """Virtual time stands still while the bench does what takes no terminal time
        (mounting its disk, booting it, a cut's bookkeeping, reading it back)."""
        if isinstance(self.clock, VirtualClock):
            return self.clock.hold()
        return contextlib.nullcontext()

    async def start(self, centres: Sequence[CentreEndpoint]) -> None:
        with self._still():
            disk = await self.setup.disk(self._stack)
            self.mount, self.power_note = disk.mount, disk.note
            self.config = await self.setup.configuration(
                centres, disk.directory, self._stack, admin_host=self.server.host
            )
            self.runner = ReferenceTarget(self.config, self.clock, self.mount)
        await self.power_on()

    async def stop(self) -> None:
        await self.server.stop()
        if self.channel_server is not None:
            await self.channel_server.stop()
        if self.runner is not None:
            await self.runner.stop()
        await self._management.aclose()
        await self._stack.aclose()

    async def power_off(self, *, torn_after: int | None = None) -> PowerCut:
        runner = self._runner()
        if runner.terminal is not None:
            # the configuration file survives a cut (the API writes it with fsync): boot on it
            runner.config = runner.terminal.config
        dropped_before = runner.bytes_dropped
        # the terminal runs on (in time) to the write the cut lands in
        torn = bool(torn_after) and self.mount is not None and await runner.tear(torn_after or 0)
        with self._still():  # the cut is an instant
            await runner.power_off()
            self.setup.power_lost()
            await self.server.stop(abort=True)
            if self.channel_server is not None:
                await self.channel_server.stop(abort=True)
        if self.mount is not None:
            return PowerCut(
                "fuse",
                "fuse",
                self.power_note,
                bytes_dropped=runner.bytes_dropped - dropped_before,
                torn=torn,
            )
        return PowerCut("process", "kill", self.power_note)

    async def power_on(self) -> None:
        runner = self._runner()
        with self._still():  # booting takes no terminal time (its wall time varies)
            try:  # one app: both ports share sessions, lockouts
                app = await runner.power_on(create_app)
            except SecurityError as exc:  # as its process does: it does not start on them
                raise DutError(f"the terminal refused to start: {exc}") from exc
            except TargetError as exc:
                raise DutError(str(exc)) from exc
            assert runner.terminal is not None
            await self.server.start(runner.terminal, app)
            if self.channel_server is not None:
                credentials = ChannelCredentials.from_config(runner.terminal.config)
                self.channel_server.http = channel_protocol(credentials)
                await self.channel_server.start(runner.terminal, app)

    async def configure(self, *changes: Change) -> None:
        changes = await self.setup.through_relays(changes, self._stack)
        current = await self._management.config()
        with self._still():  # an operator's change is an instant; applying it needs no time
            await self._management.put_config(apply_changes(current, changes))

    def app_packages(self) -> AppPackages:
        return self.setup.app_packages()

    def device_certificate(self) -> str | None:
        return self.setup.certificate

    def stored_data(self) -> Mapping[str, Path]:
        enrolled = self.setup.certificate is not None  # its SM2 key is on its disk
        return stored_files(self._live_config(), enrolled=enrolled)

    async def age(self, seconds: float) -> None:
        await self.power_off()
        try:
            self._runner().rtc.jump(seconds)
        finally:
            await self.power_on()

    @contextlib.asynccontextmanager
    async def unattended(self) -> AsyncIterator[None]:
        """The terminal reads its meters' models while the stretch lasts, their wire again
        after it (each switch rebuilds its acquisition, as a new configuration does). The
        pushing meters pause meanwhile: nothing receives what they push."""
        runner = self._runner()
        wire = runner.wiring
        pushed = self.fleet.push
        await self._rewire(ModelLink(self.fleet))
        self.fleet.set_push(False)
        try:
            yield
        finally:
            self.fleet.set_push(pushed)
            await self._rewire(wire)

    async def _rewire(self, wiring: Wiring) -> None:
        runner = self._runner()
        runner.wiring = wiring  # the terminal of the next power-on too
        if runner.terminal is not None:
            with self._still():
                await runner.terminal.rewire(wiring)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "reference",
            "mutation": self._target.adapter.mutation,
            "clock": self._clock_mode.value,
            "power": "fuse" if self.mount is not None else "kill",
            "power_note": self.power_note,
            "management": self.server.base_url,
            "management_channel": None
            if self.channel_server is None
            else f"SM channel {self.channel_server.host}:{self.channel_server.port}",
            "store": None if self.config is None else self.config.storage.url,
            "relays": {n: r.fault for n, r in self.relays.items()},
            "stopped_by_itself": None if self.runner is None else self.runner.stopped_by_itself,
        }

    # ---- inside --------------------------------------------------------------------------
    def _runner(self) -> ReferenceTarget:
        if self.runner is None:
            raise DutError("the reference terminal was not started")
        return self.runner

    def _live_config(self) -> TerminalConfig:
        runner = self.runner
        if runner is not None and runner.terminal is not None:
            return runner.terminal.config
        if runner is not None:
            return runner.config
        if self.config is None:
            raise DutError("the reference terminal was not started: no configuration yet")
        return self.config

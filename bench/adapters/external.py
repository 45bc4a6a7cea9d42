"""An external terminal as a device under test: a vendor's box on the lab network, or any
terminal program started as a process on this machine.

The bench reaches it only as a lab would:

- its **management interface** (``target.management``: the carbench REST profile) to read
  back what it stored, configure it, point its uplink;
- its **power switch** (``target.power.switch``): ``process`` (SIGKILL of its process group
  and a restart of ``adapter.command``: the OS keeps unsynced writes, said in the report),
  ``modbus-relay`` (a relay in its supply), ``operator`` (a person, prompted), or ``none``;
- **prompts** to an operator for what cannot be automated (pointing its uplink by hand,
  switching the supply): no answer in time is *pending-operator*.

It runs on the wall clock only (the bench cannot own a device's time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Literal

from bench.adapters.changes import apply_changes, render_code
from common.clock import Clock, RealClock
from conformance.dut import (
    AppPackage,
    AppPackages,
    CentreEndpoint,
    Change,
    ClockMode,
    DutError,
    MoveCentre,
    PointBinding,
    PowerCut,
)
from conformance.management import Management, ManagementUnavailable
from conformance.target import AppFile, Target
from conformance.verdicts import Inconclusive, PendingOperator
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa
from simulators.power import (
    ModbusRelayConfig,
    ModbusRelaySwitch,
    OperatorPromptSwitch,
    PowerSwitch,
    ProcessPowerSwitch,
    StdinPrompt,
    SwitchOutcome,
)

PUSHED = {"mqtt"}


class ExternalDut:
    def __init__(
        self,
        target: Target,
        *,
        fleet: FleetRuntime,
        clock: Clock,
        clock_mode: ClockMode,
        workdir: Path,
        ca: TestCa | None = None,  # the adapters' one signature: a device's keys are its own
        client_ca: ClientCa | None = None,
    ) -> None:
        if target.adapter.kind != "external":
            raise DutError(f"target {target.name!r} is not an external device")
        if clock_mode is not ClockMode.REAL:
            raise Inconclusive(
                f"{target.name} is an external device: it runs on the wall clock only "
                "(run with --clock real)"
            )
        base_url = target.management.base_url
        if base_url is None or target.management.profile == "none":
            raise DutError(
                "management.base_url: an external device needs its management interface's "
                "address (carbench profile) for the suites to read back what it stored"
            )
        self._target = target
        self.fleet = fleet
        self.clock = clock
        self.workdir = workdir
        self._management = Management.declared(target.management, base_url)
        self.switch: PowerSwitch | None = None
        self._stack = AsyncExitStack()
        self._powered = False
        self._bindings: list[PointBinding] = []
        self._mns: dict[str, str] = {}
        self._prompt = StdinPrompt()
        self.log_path = workdir / "terminal.log"

    # ---- Dut ---------------------------------------------------------------------------
    @property
    def target(self) -> Target:
        return self._target

    @property
    def clock_mode(self) -> ClockMode:
        return ClockMode.REAL

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def management(self) -> Management:
        return self._management

    def mn(self, centre: str) -> str:
        return self._mns[centre]

    def pw(self, centre: str) -> str:
        return self._target.parameters.pw

    def points(self) -> Sequence[PointBinding]:
        return list(self._bindings)

    async def start(self, centres: Sequence[CentreEndpoint]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.switch = self._make_switch()
        await self._switch_on()
        await self._wait_for_management()
        for index, centre in enumerate(self._target.uplink.centres):
            self._mns[centre.name] = self._target.mn(centre.name, index)
        await self._point_uplink(centres)
        await self._learn_points()

    async def stop(self) -> None:
        switch = self.switch
        if isinstance(switch, ProcessPowerSwitch | ModbusRelaySwitch):
            await switch.aclose()
        await self._management.aclose()
        await self._stack.aclose()

    async def power_off(self, *, torn_after: int | None = None) -> PowerCut:
        # A switch in the supply cannot wait for a write to land among: torn_after is moot.
        switch = self._need_switch("cut the power")
        outcome = await switch.cut()
        self._check(outcome, "cut the power")
        self._powered = False
        if isinstance(switch, ProcessPowerSwitch):
            return PowerCut("process", "kill", switch.mode_reason)
        if isinstance(switch, ModbusRelaySwitch):
            return PowerCut("modbus-relay", "relay", f"relay {switch.name}")
        return PowerCut("operator", "operator", "an operator switched the supply")

    async def power_on(self) -> None:
        switch = self._need_switch("restore the power")
        self._check(await switch.restore(), "restore the power")
        self._powered = True
        await self._wait_for_management()

    async def configure(self, *changes: Change) -> None:
        current = await self._management.config()
        await self._management.put_config(apply_changes(current, changes))

    def app_packages(self) -> AppPackages:
        files = self._target.parameters.apps
        if files is None:
            raise Inconclusive(
                "the target gives no signed application packages (parameters.apps) to install",
                "ISC-2 §8.4",
            )

        def load(spec: AppFile) -> AppPackage:
            try:
                return AppPackage(
                    spec.name, spec.version, spec.package.read_bytes(), spec.signature.read_bytes()
                )
            except OSError as exc:
                raise DutError(
                    f"parameters.apps: cannot read {exc.filename}: {exc.strerror}"
                ) from None

        broken = None if files.broken is None else load(files.broken)
        return AppPackages(load(files.first), load(files.upgrade), broken)

    def device_certificate(self) -> str | None:
        # an external terminal's certificate comes from its own PKI: not in the target file yet
        return None

    def stored_data(self) -> Mapping[str, Path]:
        return {}  # its disk is inside the box

    async def age(self, seconds: float) -> None:
        raise Inconclusive(
            f"the bench does not keep this device's clock, so it cannot age it by "
            f"{seconds / 86400:.0f} days: leave the device in service that long and check by hand"
        )

    @contextlib.asynccontextmanager
    async def unattended(self) -> AsyncIterator[None]:
        yield  # a device on the bench reads its meters over their wire, whatever the stretch

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "external",
            "management": self._management.base_url,
            "power": self._target.power.switch,
            "uplink_pointing": self._target.uplink.pointing,
            "points": len(self._bindings),
        }

    # ---- power -------------------------------------------------------------------------
    def _make_switch(self) -> PowerSwitch | None:
        power = self._target.power
        match power.switch:
            case "process":
                argv = self._command()
                log = self._stack.enter_context(self.log_path.open("ab"))
                return ProcessPowerSwitch(
                    argv, name=f"process {self._target.name}", stdout=log, stderr=log
                )
            case "modbus-relay":
                relay = power.relay
                assert relay is not None  # the schema insists
                return ModbusRelaySwitch(
                    ModbusRelayConfig(
                        host=relay.host,
                        port=relay.port,
                        serial_port=relay.serial_port,
                        unit_id=relay.unit_id,
                        coil=relay.coil,
                        normally_closed=relay.normally_closed,
                    )
                )
            case "operator":
                return OperatorPromptSwitch(
                    timeout=power.operator_timeout_s,
                    what=self._target.name,
                    clock=RealClock(),
                    prompt=self._prompt,
                )
        return None

    def _command(self) -> list[str]:
        adapter = self._target.adapter
        if not adapter.command:
            raise DutError("adapter.command: a process power switch needs the command to start")
        config = "" if adapter.config is None else str(adapter.config)
        return [part.replace("{config}", config) for part in adapter.command]

    async def _switch_on(self) -> None:
        switch = self.switch
        if switch is None:
            self._powered = True  # no switch: it is on, as the lab found it
            return
        self._check(await switch.restore(), "switch the terminal on")
        self._powered = True

    def _need_switch(self, what: str) -> PowerSwitch:
        if self.switch is None:
            raise Inconclusive(
                f"cannot {what}: the target declares no power switch (power.switch: none)"
            )
        return self.switch

    def _check(self, outcome: SwitchOutcome, what: str) -> None:
        if outcome is SwitchOutcome.PENDING_OPERATOR:
            raise PendingOperator(f"nobody confirmed the request to {what}")
        if outcome is SwitchOutcome.DECLINED:
            raise Inconclusive(f"the operator declined to {what}")

    async def _wait_for_management(self) -> None:
        deadline = time.monotonic() + self._target.adapter.boot_timeout_s
        while True:
            try:
                health = await self._management.health()
            except ManagementUnavailable:
                health = None
            if health is not None and health.get("state") == "running":
                return
            if time.monotonic() > deadline:
                raise DutError(
                    f"{self._target.name}: the management interface at "
                    f"{self._management.base_url} was not running after "
                    f"{self._target.adapter.boot_timeout_s:g} s (log: {self.log_path})"
                )
            await asyncio.sleep(0.2)  # a real device boots in wall time

    # ---- uplink and points -----------------------------------------------------------------
    async def _point_uplink(self, centres: Sequence[CentreEndpoint]) -> None:
        pointing = self._target.uplink.pointing
        if pointing == "fixed":
            return
        if pointing == "management-api":
            moves = [MoveCentre(c.name, c.host, c.port) for c in centres]
            await self.configure(*moves)
            return
        lines = [f"  {c.name}: {c.protocol} {c.host}:{c.port}{c.path}" for c in centres]
        message = (
            f"Point the uplink of {self._target.name} at the bench's centres, then press "
            "Enter ('no' if you cannot):\n" + "\n".join(lines)
        )
        await self._ask(message, "point the uplink at the bench")

    async def _ask(self, message: str, what: str) -> None:
        """A confirm-or-decline question to the operator (Enter/yes, or no)."""
        try:
            async with asyncio.timeout(self._target.power.operator_timeout_s):
                answer = await self._prompt(message)
        except TimeoutError:
            answer = None
        if answer is None:
            raise PendingOperator(f"nobody confirmed the request to {what}")
        if answer.strip().lower() in ("n", "no", "skip"):
            raise Inconclusive(f"the operator declined to {what}")

    async def _learn_points(self) -> None:
        listed = {str(p["id"]): p for p in await self._management.points()}
        config = await self._management.config()
        codes = {
            str(e["point"]): render_code(e["code"])
            for e in config.get("uplink", {}).get("codes", [])
        }
        declared = {m.point: m for m in self._target.parameters.points}
        bindings = []
        for point_id, info in listed.items():
            if not info.get("configured", True) or info.get("virtual"):
                continue  # gone, or computed (its windows are judged, not its acquisition)
            mapped = declared.get(point_id)
            protocol = str(info.get("protocol") or "")
            acquisition: Literal["polled", "pushed", "manual"] = "polled"
            if info.get("acquisition") in ("pushed", "manual"):
                acquisition = info["acquisition"]
            if protocol in PUSHED:
                acquisition = "pushed"
            bindings.append(
                PointBinding(
                    point=point_id,
                    meter=mapped.meter if mapped else info.get("device"),
                    quantity=mapped.quantity if mapped else (info.get("name") or None),
                    protocol=protocol,
                    kind="counter" if info.get("kind") == "counter" else "gauge",
                    decimals=int(info.get("decimals") or 0),
                    group=str(info.get("group") or ""),
                    acquisition=acquisition,
                    code=(mapped.code if mapped and mapped.code else codes.get(point_id)),
                    unit=str(info.get("unit") or ""),
                )
            )
        self._bindings = bindings

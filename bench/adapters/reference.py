"""The reference terminal as a device under test, in the bench's own event loop and clock.

- Configuration: the wiring a technician would do for the bench's fleet
  (``bench.terminal_for_fleet``), the periods, MN/PW, OverTime/ReCount and real-time interval
  of the target's test parameters, and its uplink pointed at the bench's centres (their fault
  proxies): each HJ 212 and HTTPS centre with real-time, minute, hourly and daily data.
- Power: ``bench.scenario.target.ReferenceTarget`` — the store on the FUSE volatile disk, so a
  cut loses every write not fsynced, then the terminal stops dead. Without FUSE (or with
  ``power.switch: process``) a cut only stops the terminal: unsynced writes survive, and
  ``PowerCut.mode`` is ``kill`` with the reason, for the report.
- Management API: the terminal's own (``reference_terminal.api``) served on a loopback port,
  down while the power is off. The suites read the terminal only through it: with
  ``feature:sm-management-channel`` through its dedicated SM port (``protocols.smchannel``, the
  terminal known by the certificate the bench's CA issued), the plain port left to the console.
- Mutations (``adapter.mutation``), for the mutation check, all by configuration or by the
  uplink relay of ``bench.adapters.relay``: ``sync-off`` (storage.synchronous=OFF),
  ``rt-20min`` (RtdInterval 1200 s), ``bad-crc``, ``no-extremes``, ``no-retransmission``,
  ``wrong-factor`` (the grid source accounted with another grid factor) and
  ``no-client-certificate`` (the terminal is not enrolled with the platforms' TLS client CA,
  though it declares ``feature:pki``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.adapters.apps import bench_packages, signing_key
from bench.adapters.changes import apply_changes, render_code
from bench.adapters.management_server import ManagementServer
from bench.adapters.relay import BrokenUplink, relay_fault
from bench.scenario.config import deep_merge
from bench.scenario.model_link import ModelLink
from bench.scenario.target import ReferenceTarget, TargetError
from bench.terminal_for_fleet import item_codes, terminal_config
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
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.acquisition.drivers import Wiring
from reference_terminal.api import create_app
from reference_terminal.api.channel_server import ChannelCredentials, channel_protocol
from reference_terminal.config import TerminalConfig
from reference_terminal.security.errors import SecurityError
from reference_terminal.security.identity import create_device_key, install_certificate
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.tls_client import (
    certificate_request,
    create_tls_key,
    install_tls_certificate,
)
from reference_terminal.security.users import USERS_FILE
from simulators.clock import Clock, VirtualClock
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa
from simulators.power import PowerCutMode, VolatileMount, power_cut_mode, volatile_mount

PUSHED = {"mqtt"}
#: PBKDF2 rounds of the bench's accounts (the terminal's minimum; a login or an X-Confirm costs
#: one hash, and the suites make hundreds of control operations).
KDF_ITERATIONS = 10_000


async def _hash(password: str) -> str:
    """``python -m reference_terminal.security.passwords`` (the terminal's documented tool for
    ``initial_users[].password_hash``), fed the password on stdin: without a terminal of its
    own, getpass reads it there."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reference_terminal.security.passwords",
        str(KDF_ITERATIONS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no controlling terminal: getpass falls back to stdin
    )
    out, err = await process.communicate(f"{password}\n{password}\n".encode())
    lines = out.decode().split()
    if process.returncode != 0 or not lines or not lines[-1].startswith("pbkdf2-"):
        raise DutError(f"the password tool refused a bench password: {err.decode().strip()}")
    return lines[-1]


#: The RtdInterval of the ``rt-20min`` mutation: longer than ISC-2 §7.2.4(1)'s 15 minutes.
BROKEN_REALTIME_S = 1200
#: The ``wrong-factor`` mutation: the grid source's factor, not the fleet's 0.5703 tCO2/MWh.
WRONG_GRID_FACTOR = "0.5810 tCO2/MWh"


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
        self.ca = ca
        self.client_ca = client_ca
        #: The dedicated SM management port (ISC-2 §7.4.1.2), when declared: the suites then
        #: speak to the terminal only through it; the plain port stays for the web console.
        self.channel_server: ManagementServer | None = None
        channel: ChannelAccess | None = None
        if ca is not None and target.implementation.declares("feature:sm-management-channel"):
            self.channel_server = ManagementServer()
            channel = ChannelAccess(
                self.channel_server.host,
                self.channel_server.port,
                ServerTrust(ca=ca.certificate, subject=self._subject()),
            )
        m = target.management
        self._management = Management(
            self.server.base_url,
            user=m.user,
            password=m.password,
            accounts={role: (a.user, a.password) for role, a in m.accounts.items()},
            timeout_s=m.timeout_s,
            still=self._still,
            channel=channel,
        )
        self.runner: ReferenceTarget | None = None
        self.config: TerminalConfig | None = None
        self.relays: dict[str, BrokenUplink] = {}
        self.mount: VolatileMount | None = None
        self.power_note = ""
        self._stack = AsyncExitStack()
        self._mns: dict[str, str] = {}
        self._app_key: Sm2PrivateKey | None = None
        self._certificate: str | None = None

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

    def mn(self, centre: str) -> str:
        return self._mns[centre]

    def pw(self, centre: str) -> str:
        return self._target.parameters.pw

    def points(self) -> Sequence[PointBinding]:
        config = self._live_config()
        codes = {
            c.point: render_code(c.model_dump(mode="json")["code"]) for c in config.uplink.codes
        }
        periods = {g.id: g.period_s for g in config.groups}
        out = []
        for p in config.points:
            device = config.device(p.source.device)
            if device.protocol == "manual":
                acquisition = "manual"
            elif device.protocol in PUSHED or getattr(device, "mode", "pull") == "push":
                acquisition = "pushed"
            else:
                acquisition = "polled"
            assert p.group in periods
            out.append(
                PointBinding(
                    point=p.id,
                    meter=p.source.device,
                    quantity=p.name or None,
                    # a 4–20 mA input is its own protocol to a target's statement, whatever
                    # carries its counts (CSMT §7.1 and §11.3 c) name 模拟量 4-20mA apart)
                    protocol="analog" if p.source.analog is not None else device.protocol,
                    kind=p.kind,
                    decimals=p.decimals,
                    group=p.group,
                    acquisition=acquisition,  # type: ignore[arg-type]
                    code=codes.get(p.id),
                    unit=p.unit,
                )
            )
        return out

    def _still(self) -> contextlib.AbstractContextManager[None]:
        """Virtual time stands still while the bench does what takes no terminal time
        (mounting its disk, booting it, a cut's bookkeeping, reading it back)."""
        if isinstance(self.clock, VirtualClock):
            return self.clock.hold()
        return contextlib.nullcontext()

    async def start(self, centres: Sequence[CentreEndpoint]) -> None:
        with self._still():
            directory = await self._disk()
            uplinks = await self._uplinks(centres)
            storage = f"sqlite:///{directory / 'terminal.db'}"
            self.config = self._configure(centres, uplinks, storage)
            security = await self._security(directory)
            data = self.config.model_dump(mode="json")
            if security is not None:
                data["security"] = security
            data["apps"] = self._apps(directory)
            self._identity(data, directory)
            self._client_certificate(data, directory)
            self.config = TerminalConfig.model_validate(data)
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
        current = await self._management.config()
        with self._still():  # an operator's change is an instant; applying it needs no time
            await self._management.put_config(apply_changes(current, changes))

    def app_packages(self) -> AppPackages:
        if self._app_key is None:
            raise DutError("the reference terminal was not started: no signing key yet")
        return bench_packages(self._app_key)

    def device_certificate(self) -> str | None:
        return self._certificate

    def stored_data(self) -> Mapping[str, Path]:
        config = self._live_config()
        files = {}
        if config.security.enabled:
            files["credentials"] = Path(config.security.state_dir) / USERS_FILE
        if self._certificate is not None:  # enrolled: its SM2 key is on its disk
            files["device key"] = Path(config.identity.key_file)
        return files

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

    async def _disk(self) -> Path:
        """The store's directory: a volatile-cache mount when the target cuts power with FUSE
        and this machine can, else a plain directory (cuts only kill; said in the report)."""
        backing, mountpoint = self.workdir / "disk-backing", self.workdir / "disk"
        # a new terminal: a store left by an earlier run in this directory is not its own
        shutil.rmtree(backing, ignore_errors=True)
        backing.mkdir(parents=True, exist_ok=True)
        capability = power_cut_mode()
        wanted = self._target.power.switch == "fuse"
        if wanted and capability.mode is PowerCutMode.FUSE:
            self.mount = await self._stack.enter_async_context(
                volatile_mount(backing, mountpoint, startup_timeout=None)
            )
            self.power_note = "FUSE volatile disk: a cut loses every write not fsynced"
            return mountpoint
        why = capability.reason if wanted else f"power.switch is {self._target.power.switch}"
        self.power_note = (
            f"a cut stops the terminal dead but the OS keeps its unsynced writes ({why})"
        )
        return backing

    async def _security(self, directory: Path) -> dict[str, Any] | None:
        """The management API's security (ISC-2 §7.4.1) with the target's accounts, their
        passwords hashed by the terminal's own tool; None when the target gives no accounts
        (the API then lets everybody do everything, and the security suite says so)."""
        accounts = self._target.management.accounts
        if not accounts:
            return None
        users = []
        for role, account in accounts.items():
            users.append(
                {
                    "id": account.user,
                    # the lockout probe is any role's account; an auditor can do least
                    "role": "auditor" if role == "lockout_probe" else role,
                    "password_hash": await _hash(account.password),
                }
            )
        security: dict[str, Any] = {
            "enabled": True,
            "key_file": str(directory / "keys" / "terminal.key"),
            "state_dir": str(directory / "security"),
            "initial_users": users,
            # the cheapest rounds the terminal allows: every control operation checks one
            "passwords": {"kdf_iterations": KDF_ITERATIONS},
        }
        if self._target.parameters.admin_refused_source is not None:
            # ISC-2 §7.4.1.2(3): administrators only from the address the bench connects from
            # (its own loopback address reaching the management port on it)
            security["admin_networks"] = [f"{self.server.host}/32"]
        return security

    def _identity(self, data: dict[str, Any], directory: Path) -> None:
        """Enrolment (ISC-2 §7.4.1) when the target declares ``feature:sm-crypto``: the
        terminal's SM2 key made and sealed on its disk under its master key, as its own tool
        does (``python -m reference_terminal.security.identity``), the bench's CA certifying
        it under the terminal's name, and the terminal signing every HJ 212 record."""
        if self.ca is None or not self._target.implementation.declares("feature:sm-crypto"):
            return
        keys = directory / "keys"
        master = data.setdefault("security", {}).setdefault("key_file", str(keys / "terminal.key"))
        if not Path(master).is_absolute():  # the default is relative: keep it on this disk
            master = data["security"]["key_file"] = str(keys / "terminal.key")
        key_file, certificate_file = keys / "device-sm2.sealed", keys / "device.cert.pem"
        key = create_device_key(key_file, SecretBox.from_key_file(master))
        certificate = self.ca.issue_device(key.public_key(), subject=self._subject()).to_pem()
        install_certificate(certificate_file, certificate, key)  # durably: cuts come later
        self._certificate = certificate
        data["identity"] = {
            "sign_uploads": True,
            "key_file": str(key_file),
            "certificate_file": str(certificate_file),
        }

    def _client_certificate(self, data: dict[str, Any], directory: Path) -> None:
        """Enrolment with the platforms' TLS client CA (ISC-2 §7.4.1) when the target declares
        ``feature:pki``: the terminal's P-256 key made and sealed on its disk as its own tool
        does (``python -m reference_terminal.security.tls_client``), its certificate request
        certified by the CA, and every HTTPS centre told to present the certificate."""
        target = self._target
        if self.client_ca is None or not target.implementation.declares("feature:pki"):
            return
        if target.adapter.mutation == "no-client-certificate":
            return
        keys = directory / "keys"
        master = data.setdefault("security", {}).setdefault("key_file", str(keys / "terminal.key"))
        if not Path(master).is_absolute():  # the default is relative: keep it on this disk
            master = data["security"]["key_file"] = str(keys / "terminal.key")
        key_file, certificate_file = keys / "tls-client.sealed", keys / "tls-client.cert.pem"
        key = create_tls_key(key_file, SecretBox.from_key_file(master))
        issued = self.client_ca.issue(certificate_request(key, self._subject()))
        install_tls_certificate(certificate_file, issued, key)  # durably: cuts come later
        for centre in data["uplink"]["centres"]:
            if centre["protocol"] == "https":
                centre["client_certificate"] = {
                    "certificate_file": str(certificate_file),
                    "key_file": str(key_file),
                }

    def _subject(self) -> str:
        """The CN of the device certificate the bench's CA issues."""
        return self._target.implementation.model or self._target.name

    def _apps(self, directory: Path) -> dict[str, Any]:
        """Applications (ISC-2 §8.4) on the terminal's disk, trusting a signing key of the
        bench's own, made for this run (the vendor's key, as far as the tests know)."""
        self._app_key, public = signing_key(self.workdir / "app-signing")
        return {
            "enabled": True,
            "dir": str(directory / "apps"),
            "trusted_keys": [str(public)],
        }

    async def _uplinks(self, centres: Sequence[CentreEndpoint]) -> dict[str, tuple[str, int]]:
        """Where the terminal dials each centre: the centre, or a broken-uplink relay."""
        fault = relay_fault(self._target.adapter.mutation)
        out = {}
        for centre in centres:
            address = (centre.host, centre.port)
            if fault is not None and centre.protocol == "hj212":
                relay = BrokenUplink(address, fault)
                await relay.start()
                self._stack.push_async_callback(relay.close)
                self.relays[centre.name] = relay
                address = ("127.0.0.1", relay.port)
            out[centre.name] = address
        return out

    def _configure(
        self,
        centres: Sequence[CentreEndpoint],
        uplinks: dict[str, tuple[str, int]],
        storage_url: str,
    ) -> TerminalConfig:
        target = self._target
        pixit = target.parameters
        config = terminal_config(self.fleet, storage_url=storage_url, **pixit.periods)
        coded = [p for p in config.points if config.device(p.source.device).protocol != "manual"]
        realtime = pixit.realtime_interval_s
        mutation = target.adapter.mutation
        if mutation == "rt-20min":
            realtime = BROKEN_REALTIME_S
        streams = {
            "realtime": True,
            "realtime_interval_s": realtime,
            "minute": True,
            "hourly": True,
            "daily": True,
        }
        entries = []
        for index, centre in enumerate(centres):
            self._mns[centre.name] = target.mn(centre.name, index)
            common: dict[str, Any] = {
                "name": centre.name,
                "mn": self._mns[centre.name],
                "pw": pixit.pw,
                "streams": streams,
            }
            host, port = uplinks[centre.name]
            if centre.protocol == "https":
                common |= {
                    "protocol": "https",
                    "url": f"https://{host}:{port}{centre.path}",
                    "ca_file": None if centre.ca_file is None else str(centre.ca_file),
                }
            else:
                common |= {
                    "protocol": "hj212",
                    "host": host,
                    "port": port,
                    "over_time_s": pixit.over_time_s,
                    "re_count": pixit.re_count,
                }
            entries.append(common)
        changes: dict[str, Any] = {
            "name": f"{target.name} ({target.adapter.mutation})"
            if mutation != "none"
            else target.name,
            "uplink": {"codes": item_codes(coded), "centres": entries},
        }
        if mutation == "sync-off":
            changes["storage"] = {"synchronous": "OFF"}
        data = deep_merge(config.model_dump(mode="json"), changes)
        publishing = [c for c in centres if c.factors_url and c.publisher_key]
        if data.get("accounting") and publishing:
            # the factor library is downloaded from the first centre publishing one (CSMT
            # §11.4), through its fault proxy like the uploads, trusting its publishing key
            centre = publishing[0]
            host, port = uplinks[centre.name]
            data["accounting"]["factor_download"] = {
                "url": f"https://{host}:{port}{centre.factors_path}",
                "ca_file": None if centre.ca_file is None else str(centre.ca_file),
                "trusted_keys": [str(centre.publisher_key)],
            }
        if mutation == "wrong-factor" and data.get("accounting"):
            for unit in data["accounting"]["units"]:
                for source in unit["sources"]:
                    if source["id"] == "grid":
                        source["factor"] = WRONG_GRID_FACTOR
        return TerminalConfig.model_validate(data)

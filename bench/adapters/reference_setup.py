"""How the bench sets the reference terminal up for a target, whichever way it runs it (in its
own event loop, ``bench.adapters.reference``, or as a process, ``bench.adapters.process``):

- **Its disk**: the store's directory on the FUSE volatile disk when the target cuts power
  with FUSE and this machine can (a cut loses every write not fsynced), else a plain
  directory (a cut only stops the terminal; the note says why, for the report).
- **Its configuration**: the wiring a technician would do for the bench's fleet
  (``bench.terminal_for_fleet``), the periods, MN/PW, OverTime/ReCount and real-time interval
  of the target's test parameters, and its uplink pointed at the bench's centres (their fault
  proxies): each HJ 212 and HTTPS centre with real-time, minute, hourly and daily data. Then
  the target's accounts as its initial users, its SM2 identity and TLS client key enrolled
  with the bench's CAs, applications trusting a signing key of the bench's, and the mutations
  made by configuration (``sync-off``, ``rt-20min``, ``wrong-factor``,
  ``no-client-certificate``, ``no-readings``: every device wired to nothing,
  ``bench.adapters.unwired``; ``ram-store``: its store on a RAM disk the bench empties at
  every cut) or by a broken-uplink relay (``bench.adapters.relay``; an upload address moved
  remotely keeps it, :meth:`ReferenceSetup.through_relays`).
- **What the lab knows from that wiring**: which point reads which meter and how
  (:func:`point_bindings`), the MN at each centre, the signed application packages, the files
  of its important stored data.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.adapters.apps import bench_packages, signing_key
from bench.adapters.changes import render_code, virtual_entry
from bench.adapters.emission_setup import declared_emissions
from bench.adapters.relay import BrokenUplink, relay_fault
from bench.adapters.unwired import unwired
from bench.scenario.config import deep_merge
from bench.terminal_for_fleet import item_codes, terminal_config, with_ranges_and_backups
from conformance.dut import (
    AddVirtualPoint,
    AppPackages,
    CentreEndpoint,
    Change,
    DutError,
    MoveCentre,
    PointBinding,
)
from conformance.target import Target, VirtualPointSpec
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.config import TerminalConfig
from reference_terminal.security.identity import create_device_key, install_certificate
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.tls_client import (
    certificate_request,
    create_tls_key,
    install_tls_certificate,
)
from reference_terminal.security.users import USERS_FILE
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa
from simulators.power import PowerCutMode, VolatileMount, power_cut_mode, volatile_mount

PUSHED = {"mqtt"}
#: PBKDF2 rounds of the bench's accounts (the terminal's minimum; a login or an X-Confirm costs
#: one hash, and the suites make hundreds of control operations).
KDF_ITERATIONS = 10_000
#: The RtdInterval of the ``rt-20min`` mutation: longer than ISC-2 §7.2.4(1)'s 15 minutes.
BROKEN_REALTIME_S = 1200
#: The ``wrong-factor`` mutation: the grid source's factor, not the fleet's 0.5703 tCO2/MWh.
WRONG_GRID_FACTOR = "0.5810 tCO2/MWh"


async def hash_password(password: str) -> str:
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


@dataclass(frozen=True, slots=True)
class StoreDisk:
    """Where the terminal keeps its store, keys and applications, and what a cut does there."""

    directory: Path
    mount: VolatileMount | None  # the FUSE volatile disk; None: a plain directory
    note: str  # for the report: what a power cut does to this disk, and why


def point_bindings(config: TerminalConfig) -> list[PointBinding]:
    """The points of ``config`` as the suites see them: the meter each reads, how, and the data
    item code it is uploaded under."""
    codes = {c.point: render_code(c.model_dump(mode="json")["code"]) for c in config.uplink.codes}
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


def declared_virtual_points(
    specs: Sequence[VirtualPointSpec], points: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The target's virtual points (PIXIT) as the reference terminal's ``virtual_points``
    entries and the ``uplink.codes`` rows of what they make: what the lab sets up on the box
    before the run. One reading a point this fleet's terminal lacks is left out (the PIXIT
    names the quick fleet's points); its tests say so."""
    rules: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    for spec in specs:
        if not set(spec.inputs) <= points:
            continue
        allocated = spec.operation == "allocate"
        change = AddVirtualPoint(
            spec.point,
            spec.operation,
            tuple(spec.inputs),
            factor=spec.factor,
            targets=tuple(t.point for t in spec.targets) if allocated else (),
            shares=tuple(t.share for t in spec.targets) if allocated else (),
            per_s=spec.per_s,
        )
        rules.append(virtual_entry(change))
        for point, code in spec.results():
            codes.append({"point": point, "code": _code_entry(code)})
    return rules, codes


#: A structured CSMT §7.2 data item code as it goes on the wire (the terminal's layout:
#: industry, activity, source, parameter, point number).
STRUCTURED_CODE = re.compile(
    r"(?P<industry>[A-T][0-9]{4})(?P<activity>[0-9]{2})(?P<source>[0-9]{3})"
    r"(?P<parameter>[A-Za-z0-9]{3})(?P<point>[0-9]{2})"
)


def _code_entry(code: str) -> dict[str, Any] | str:
    """A code of the wire as the terminal's ``uplink.codes`` take it: a structured code taken
    apart, an HJ 212 pollutant code as it is."""
    match = STRUCTURED_CODE.fullmatch(code)
    if match is None:
        return code
    return {**match.groupdict(), "point": int(match["point"])}


def stored_files(config: TerminalConfig, *, enrolled: bool) -> dict[str, Path]:
    """Files of its important stored data (ISC-2 §7.4.1.4) by what each holds: its accounts
    when security is on, its SM2 device key when the bench enrolled it."""
    files = {}
    if config.security.enabled:
        files["credentials"] = Path(config.security.state_dir) / USERS_FILE
    if enrolled:
        files["device key"] = Path(config.identity.key_file)
    return files


class ReferenceSetup:
    """The reference terminal's disk and configuration for ``target`` on the bench's ``fleet``
    (see the module text); what it generated stays here for the adapter to tell the suites."""

    def __init__(
        self,
        target: Target,
        *,
        fleet: FleetRuntime,
        workdir: Path,
        ca: TestCa | None = None,
        client_ca: ClientCa | None = None,
    ) -> None:
        self.target = target
        self.fleet = fleet
        self.workdir = workdir
        self.ca = ca
        self.client_ca = client_ca
        #: The MN it uses at each centre.
        self.mns: dict[str, str] = {}
        #: Broken-uplink relays by centre (a mutation's).
        self.relays: dict[str, BrokenUplink] = {}
        #: The key its applications are signed with (made at configuration).
        self.app_key: Sm2PrivateKey | None = None
        #: Its SM2 device certificate (PEM), when the bench enrolled it.
        self.certificate: str | None = None

    @property
    def ram(self) -> Path:
        """The ``ram-store`` mutation's RAM disk (a directory the bench empties at every cut)."""
        return self.workdir / "ram"

    def power_lost(self) -> None:
        """What a cut does beyond the disk: the ``ram-store`` mutant's store is gone."""
        if self.target.adapter.mutation == "ram-store":
            shutil.rmtree(self.ram, ignore_errors=True)
            self.ram.mkdir(parents=True, exist_ok=True)

    def subject(self) -> str:
        """The CN of the certificates the bench's CAs issue it."""
        return self.target.implementation.model or self.target.name

    def sm_channel_declared(self) -> bool:
        """Whether it serves the dedicated SM management port (and the bench can know it)."""
        return self.ca is not None and self.target.implementation.declares(
            "feature:sm-management-channel"
        )

    def app_packages(self) -> AppPackages:
        if self.app_key is None:
            raise DutError("the reference terminal was not started: no signing key yet")
        return bench_packages(self.app_key)

    # ---- the disk --------------------------------------------------------------------------
    async def disk(self, stack: AsyncExitStack) -> StoreDisk:
        """The store's directory: a volatile-cache mount (closed with ``stack``) when the
        target cuts power with FUSE and this machine can, else a plain directory."""
        backing, mountpoint = self.workdir / "disk-backing", self.workdir / "disk"
        # a new terminal: a store left by an earlier run in this directory is not its own
        shutil.rmtree(backing, ignore_errors=True)
        backing.mkdir(parents=True, exist_ok=True)
        capability = power_cut_mode()
        wanted = self.target.power.switch == "fuse"
        if wanted and capability.mode is PowerCutMode.FUSE:
            mount = await stack.enter_async_context(
                volatile_mount(backing, mountpoint, startup_timeout=None)
            )
            return StoreDisk(
                mountpoint, mount, "FUSE volatile disk: a cut loses every write not fsynced"
            )
        why = capability.reason if wanted else f"power.switch is {self.target.power.switch}"
        note = f"a cut stops the terminal dead but the OS keeps its unsynced writes ({why})"
        return StoreDisk(backing, None, note)

    # ---- the configuration -----------------------------------------------------------------
    async def configuration(
        self,
        centres: Sequence[CentreEndpoint],
        directory: Path,
        stack: AsyncExitStack,
        *,
        admin_host: str,
        api: dict[str, Any] | None = None,
    ) -> TerminalConfig:
        """The whole configuration, its store and keys under ``directory``; relays it needs
        are closed with ``stack``. ``admin_host``: the address the bench reaches its management
        API from; ``api``: its ``api`` section, when it serves its API itself."""
        uplinks = await self._uplinks(centres, stack)
        config = self._configure(centres, uplinks, f"sqlite:///{directory / 'terminal.db'}")
        data = config.model_dump(mode="json")
        security = await self._security(directory, admin_host)
        if security is not None:
            data["security"] = security
        data["apps"] = self._apps(directory)
        self._identity(data, directory)
        self._client_certificate(data, directory)
        if api is not None:
            data["api"] = api
        return TerminalConfig.model_validate(data)

    async def _security(self, directory: Path, admin_host: str) -> dict[str, Any] | None:
        """The management API's security (ISC-2 §7.4.1) with the target's accounts, their
        passwords hashed by the terminal's own tool; None when the target gives no accounts
        (the API then lets everybody do everything, and the security suite says so)."""
        accounts = self.target.management.accounts
        if not accounts:
            return None
        users = []
        for role, account in accounts.items():
            users.append(
                {
                    "id": account.user,
                    # the lockout probe is any role's account; an auditor can do least
                    "role": "auditor" if role == "lockout_probe" else role,
                    "password_hash": await hash_password(account.password),
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
        if self.target.parameters.admin_refused_source is not None:
            # ISC-2 §7.4.1.2(3): administrators only from the address the bench connects from
            # (its own loopback address reaching the management port on it)
            security["admin_networks"] = [f"{admin_host}/32"]
        return security

    def _identity(self, data: dict[str, Any], directory: Path) -> None:
        """Enrolment (ISC-2 §7.4.1) when the target declares ``feature:sm-crypto``: the
        terminal's SM2 key made and sealed on its disk under its master key, as its own tool
        does (``python -m reference_terminal.security.identity``), the bench's CA certifying
        it under the terminal's name, and the terminal signing every HJ 212 record."""
        if self.ca is None or not self.target.implementation.declares("feature:sm-crypto"):
            return
        keys = directory / "keys"
        master = self._master_key(data, keys)
        key_file, certificate_file = keys / "device-sm2.sealed", keys / "device.cert.pem"
        key = create_device_key(key_file, SecretBox.from_key_file(master))
        certificate = self.ca.issue_device(key.public_key(), subject=self.subject()).to_pem()
        install_certificate(certificate_file, certificate, key)  # durably: cuts come later
        self.certificate = certificate
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
        target = self.target
        if self.client_ca is None or not target.implementation.declares("feature:pki"):
            return
        if target.adapter.mutation == "no-client-certificate":
            return
        keys = directory / "keys"
        master = self._master_key(data, keys)
        key_file, certificate_file = keys / "tls-client.sealed", keys / "tls-client.cert.pem"
        key = create_tls_key(key_file, SecretBox.from_key_file(master))
        issued = self.client_ca.issue(certificate_request(key, self.subject()))
        install_tls_certificate(certificate_file, issued, key)  # durably: cuts come later
        for centre in data["uplink"]["centres"]:
            if centre["protocol"] == "https":
                centre["client_certificate"] = {
                    "certificate_file": str(certificate_file),
                    "key_file": str(key_file),
                }

    @staticmethod
    def _master_key(data: dict[str, Any], keys: Path) -> str:
        """The terminal's master key file, kept on its disk (the default is relative)."""
        master = data.setdefault("security", {}).setdefault("key_file", str(keys / "terminal.key"))
        if not Path(master).is_absolute():
            master = data["security"]["key_file"] = str(keys / "terminal.key")
        return str(master)

    def _apps(self, directory: Path) -> dict[str, Any]:
        """Applications (ISC-2 §8.4) on the terminal's disk, trusting a signing key of the
        bench's own, made for this run (the vendor's key, as far as the tests know)."""
        self.app_key, public = signing_key(self.workdir / "app-signing")
        return {
            "enabled": True,
            "dir": str(directory / "apps"),
            "trusted_keys": [str(public)],
        }

    async def through_relays(
        self, changes: Sequence[Change], stack: AsyncExitStack
    ) -> tuple[Change, ...]:
        """``changes`` with every move of a centre the terminal reaches through a broken-uplink
        relay made to a new relay in front of the new address (closed with ``stack``): the
        relay is part of the broken terminal, and an upload address changed remotely (ISC-2
        §8.3) must not heal it for the tests that follow."""
        fault = relay_fault(self.target.adapter.mutation)
        out: list[Change] = []
        for change in changes:
            if (
                fault is not None
                and isinstance(change, MoveCentre)
                and change.centre in (self.relays)
            ):
                relay = BrokenUplink((change.host, change.port), fault, clock=self.fleet.clock)
                await relay.start()
                stack.push_async_callback(relay.close)
                self.relays[change.centre] = relay
                out.append(MoveCentre(change.centre, "127.0.0.1", relay.port))
            else:
                out.append(change)
        return tuple(out)

    async def _uplinks(
        self, centres: Sequence[CentreEndpoint], stack: AsyncExitStack
    ) -> dict[str, tuple[str, int]]:
        """Where the terminal dials each centre: the centre, or a broken-uplink relay."""
        fault = relay_fault(self.target.adapter.mutation)
        out = {}
        for centre in centres:
            address = (centre.host, centre.port)
            if fault is not None and centre.protocol == "hj212":
                relay = BrokenUplink(address, fault, clock=self.fleet.clock)
                await relay.start()
                stack.push_async_callback(relay.close)
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
        target = self.target
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
            self.mns[centre.name] = target.mn(centre.name, index)
            common: dict[str, Any] = {
                "name": centre.name,
                "mn": self.mns[centre.name],
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
        if mutation == "ram-store":  # its store and intake log on a RAM disk (power_lost)
            self.ram.mkdir(parents=True, exist_ok=True)
            changes["storage"] = {"url": f"sqlite:///{self.ram / 'terminal.db'}"}
        data = deep_merge(config.model_dump(mode="json"), changes)
        data = with_ranges_and_backups(data, pixit.ranges, pixit.backups)
        rules, codes = declared_virtual_points(pixit.virtual_points, {p.id for p in config.points})
        data["virtual_points"] = [*data.get("virtual_points", []), *rules]
        data["uplink"]["codes"] += codes
        if mutation == "no-readings":
            data = unwired(data)
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
        # the emissions the lab configures before the run (PIXIT), then any mutation of them
        declared_emissions(data, pixit.emissions)
        if mutation == "wrong-factor" and data.get("accounting"):
            for unit in data["accounting"]["units"]:
                for source in unit["sources"]:
                    if source["id"] == "grid":
                        source["factor"] = WRONG_GRID_FACTOR
        return TerminalConfig.model_validate(data)

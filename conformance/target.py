"""Target files (``fixtures/targets/*.yaml``): the terminal under test, as a lab describes it.

A target file holds

- ``implementation`` — the implementation statement (PICS): protocols, upload transports,
  HJ 212 editions, optional features and optional clauses the terminal declares. Tests of
  what it does not declare are *not applicable* (DESIGN.md).
- ``parameters`` — the test parameters (PIXIT): MN and PW per centre, acquisition periods,
  the real-time interval, OverTime/ReCount, limits, and (for an external device) which of its
  points read which of the bench's meters.
- ``management`` — where its management interface answers, and the credentials.
- ``uplink`` — which centres the bench stands up and how the terminal's uplink is pointed at
  them (by the adapter, through the management API, by an operator, or fixed).
- ``power`` — how its power is cut: the FUSE volatile disk (in-process reference terminal),
  a process switch, a Modbus relay, or an operator.
- ``adapter`` — which adapter drives it (``reference`` or ``external``), and for the
  reference terminal a deliberate fault (``mutation``) for the mutation check.

``extends: other.yaml`` takes another file as the base (nested keys merge), so a broken
variant of the reference target is a few lines. Errors name the file and the field.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from common import yaml_input
from simulators.fleet.accounting import SourceKind

Protocol = Literal[
    "modbus-tcp",
    "modbus-rtu",
    "dlt645-2007",
    "dlt645-1997",
    "cjt188",
    "opcua",
    "mqtt",
    "https",
    "sql",
    "analog",
    "manual",
]
Transport = Literal["hj212", "https"]
Edition = Literal["2005", "2017", "2025"]
ClockName = Literal["virtual", "real"]
Mutation = Literal[
    "none",
    "no-retransmission",
    "sync-off",
    "bad-crc",
    "no-extremes",
    "rt-20min",
    "wrong-factor",
    "no-client-certificate",
    "no-readings",
    "ram-store",
    "late-upload",
    "accepts-bad-requests",
]
CentreName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]

#: The optional capability that lets the suites read back and configure through the carbench
#: REST profile (declared with ``management.profile: carbench``).
MANAGEMENT_PROFILE = "carbench-management-profile"
#: Features a terminal may declare, with what each one lets the suites judge.
FEATURES: dict[str, str] = {
    "on-command-read": "reads a point at once when asked (ISC-2 §9.1)",
    "backup-device": "switches a silent point to a backup device (ISC-2 §7.2.3(1))",
    "range-check": "flags readings outside a configured min/max (CSMT §8.1.1)",
    "second-check": "flags increments over twice the monthly history (CSMT §8.1.2)",
    "interpolation": "fills fault gaps, flagged (CSMT §12.4)",
    "settlement": "daily/monthly/yearly settlement of counters (CSMT §8.2.1)",
    "virtual-points": "points computed from others: add, subtract, multiply/divide, allocate, "
    "integrate (CSMT §8.3.2)",
    "history-request": "serves HJ 212 history requests 2031/2051/2061",
    "platform-intervals": "takes RtdInterval/MinInterval from the platform (1061-1064)",
    "send-now": "manual 'send now' and resend of a range (CSMT §7.5)",
    "manual-backfill": "uploads corrected data for a range, audited (ISC-2 §7.2.4(5))",
    "manual-entry": "takes values entered by hand through its management interface",
    "monthly-upload": "uploads monthly indicators (needs a CN the platform accepts)",
    "export": "exports history as a file (ISC-2 §7.2.3(4))",
    "backup": "backs up all data as one file (ISC-2 §4.4)",
    "restore": "restores a backup (ISC-2 §4.4)",
    "health": "reports its state through the management interface (ISC-2 §8.1)",
    MANAGEMENT_PROFILE: "answers the carbench management profile "
    "(conformance/management.py), through which the suites read back what it stored and "
    "configure it: more clauses run unattended; without it they need an operator",
    "remote-config": "takes a new configuration through the management interface (ISC-2 §8.3)",
    "remote-upgrade": "installs and upgrades applications remotely (ISC-2 §8.4)",
    "accounting": "emission accounting, factors and reports (CSMT §9, ISC-2 §7.2.3(3))",
    "factor-download": "downloads the factor library from the platform that publishes it, "
    "checking the publication's SM3 digest and SM2 signature (CSMT §11.4 online; the envelope "
    "of simulators.platform.factor_library)",
    "pki": "certificates towards national/provincial platforms (ISC-2 §7.4.1)",
    "sm-crypto": "SM2/SM3/SM4 edge-to-cloud (ISC-2 §7.4.2, CSMT §7.4)",
    "sm-management-channel": "a dedicated management port whose traffic is SM2-authenticated and "
    "SM4-encrypted (ISC-2 §7.4.1.2; the carbench channel, protocols.smchannel)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetError(ValueError):
    """A target file that cannot be used; the message names the file and the field."""


class Adapter(_Strict):
    #: ``reference``: the reference terminal in the bench's event loop; ``process``: the
    #: reference terminal as a process of its own; ``external``: any other device or program.
    kind: Literal["reference", "process", "external"]
    #: Reference terminal only (in-process or as a process): a deliberate fault, for the
    #: mutation check (issue 7).
    mutation: Mutation = "none"
    #: External adapter: the command that starts the terminal as a process on this machine
    #: (power switch ``process``); ``{config}`` is replaced by ``config`` below. Process
    #: adapter: the command that runs the reference terminal (default ``python -m
    #: reference_terminal --config {config}``), ``{config}`` being the configuration the bench
    #: generates.
    command: list[str] = []
    config: Path | None = None
    #: Seconds to wait for the management API (a process: its control line) after the power
    #: comes on.
    boot_timeout_s: float = Field(60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _fits(self) -> Adapter:
        if self.kind == "external" and self.mutation != "none":
            raise ValueError("mutation: only the reference terminal's adapters can break it")
        return self


class Implementation(_Strict):
    """The implementation statement (PICS)."""

    vendor: str
    model: str
    version: str = ""  # the firmware or software version under test
    serial: str = ""  # the unit on the bench (its serial number), for the report's header
    protocols: list[Protocol] = []
    transports: list[Transport] = ["hj212"]
    editions: list[Edition] = ["2017"]
    features: list[str] = []
    #: Optional ("should", 宜) clauses the vendor claims, by ID as in CLAUSES.md.
    optional_clauses: list[str] = []
    #: Why something is not declared, shown in the reports next to not-applicable verdicts.
    notes: dict[str, str] = {}

    @model_validator(mode="after")
    def _known(self) -> Implementation:
        for i, feature in enumerate(self.features):
            if feature not in FEATURES:
                raise ValueError(
                    f"features[{i}]: unknown feature {feature!r} (known: {', '.join(FEATURES)})"
                )
        return self

    def declares(self, requirement: str) -> bool:
        """``protocol:X``, ``transport:X``, ``edition:X``, ``feature:X`` or ``clause:ID``."""
        kind, _, name = requirement.partition(":")
        match kind:
            case "protocol":
                return name in self.protocols
            case "transport":
                return name in self.transports
            case "edition":
                return name in self.editions
            case "feature":
                return name in self.features
            case "clause":
                return name in self.optional_clauses
        raise TargetError(
            f"requirement {requirement!r}: write protocol:X, transport:X, edition:X, "
            "feature:X or clause:ID"
        )


class PointMap(_Strict):
    """One of the terminal's points and the meter quantity it reads (external devices)."""

    point: str
    meter: str | None = None  # the bench fleet's meter id; None: not a fleet meter
    quantity: str | None = None
    code: str | None = None  # the data item code it is uploaded under


class AppFile(_Strict):
    """A signed application package the vendor ships for the remote-upgrade tests."""

    name: str
    version: str
    package: Path  # the package file
    signature: Path  # its signature (DER), as the terminal's install takes it


class AppFiles(_Strict):
    """ISC-2 §8.4: packages of one application: a first version, a newer one, and optionally a
    newer one that fails to start (for the rollback test)."""

    first: AppFile
    upgrade: AppFile
    broken: AppFile | None = None


#: Operations of a virtual point (CSMT §8.3.2: "数据累加、相减、乘除、分摊、积分").
VirtualOperation = Literal["add", "subtract", "multiply", "divide", "allocate", "integrate"]
#: Inputs each operation takes: (fewest, most; None: no limit).
VIRTUAL_ARITY: dict[str, tuple[int, int | None]] = {
    "add": (2, None),
    "subtract": (2, None),
    "multiply": (1, 1),
    "divide": (2, 2),
    "allocate": (1, 1),
    "integrate": (1, 1),
}


class AllocationTarget(_Strict):
    """One point an allocation makes: its fixed share of the source and its data item code."""

    point: str
    share: Decimal = Field(gt=0, le=1)
    code: str


class VirtualPointSpec(_Strict):
    """A virtual point the lab configured on the terminal before the run (CSMT §8.3.2), window
    by window: ``add`` sums ``inputs``; ``subtract`` takes the others from the first;
    ``multiply`` is ``factor`` times its one input; ``divide`` is ``factor`` times the first
    over the second; ``integrate`` turns its one input, a rate per ``per_s`` seconds, into a
    total; ``allocate`` splits its one input over ``targets`` by their shares (``point`` then
    names the rule, and each target has its own code). Inputs are the terminal's point ids;
    ``code`` is the data item code its window figures are uploaded under."""

    point: str
    operation: VirtualOperation
    inputs: list[str] = Field(min_length=1)
    code: str | None = None
    factor: Decimal = Decimal(1)
    per_s: int = Field(3600, ge=1)
    targets: list[AllocationTarget] = []

    @model_validator(mode="after")
    def _fits(self) -> VirtualPointSpec:
        fewest, most = VIRTUAL_ARITY[self.operation]
        n = len(self.inputs)
        if n < fewest or (most is not None and n > most):
            wanted = f"{fewest}" if most == fewest else f"at least {fewest}"
            raise ValueError(f"inputs: {self.operation} takes {wanted} input(s), got {n}")
        if self.operation == "allocate":
            if not self.targets or self.code is not None:
                raise ValueError("targets: an allocation's results are its targets, each coded")
            total = sum((t.share for t in self.targets), Decimal(0))
            if total != 1:
                raise ValueError(f"targets: the shares sum to {total}, not 1")
        elif self.targets or self.code is None:
            raise ValueError(f"code: a {self.operation} point is uploaded under its own code")
        return self

    def results(self) -> list[tuple[str, str]]:
        """(point, data item code) of every point it makes."""
        if self.operation == "allocate":
            return [(t.point, t.code) for t in self.targets]
        assert self.code is not None
        return [(self.point, self.code)]


#: CSMT §9.4 categories: scope 1 a) 1)–5), scope 2 b) 1)–2); biomass is reported apart.
EmissionCategory = Literal[
    "combustion",
    "process",
    "carbonates",
    "destruction_recovery",
    "sector_specific",
    "electricity",
    "heat",
    "biomass",
]
#: How this bench's reference terminal files categories in a code's activity digits (CSMT §7.2
#: names the digits, not their values; a lab declares its terminal's own).
ACTIVITY_DIGITS: dict[str, EmissionCategory] = {
    "01": "combustion",
    "02": "process",
    "03": "electricity",
    "04": "heat",
    "05": "carbonates",
    "06": "destruction_recovery",
    "07": "sector_specific",
    "08": "biomass",
}


class MeterRead(_Strict):
    """A bench meter's reading of a plant quantity (a counter: its increments are activity)."""

    meter: str
    quantity: str


class EmissionSource(_Strict):
    """An emission source as the lab configured the terminal to account it: its accounting
    unit, what feeds it, and its method (``carbench account``'s fields). ``published``: its
    library values (a ``fuel``, a named ``factor``) are those the bench's platform publishes for
    download (CSMT §11.4), not the bench's own library."""

    id: str
    unit: str
    kind: SourceKind
    #: The CSMT §9.4 category; default: the kind's (electricity and heat exported are scope 2's
    #: electricity and heat, recovered CO2 destruction_recovery, carbonate carbonates).
    category: EmissionCategory | None = None
    reads: list[MeterRead] = Field(min_length=1)
    fuel: str | None = None
    factor: str | None = None
    ncv: str | None = None
    carbon_content: str | None = None
    oxidation: str | None = None
    purity: str | None = None
    published: bool = False


class EmissionCode(_Strict):
    """A data item code the terminal uploads an emission under (CN 2051/2061/2031, ``Cou`` =
    tCO2 in the period): one source's, an accounting unit's or the whole boundary's (scope 1 +
    scope 2)."""

    code: str
    of: Literal["source", "unit", "boundary"]
    id: str | None = None  # the source's or unit's; none for the boundary


class Emissions(_Strict):
    """ISC-2 §7.2.3(3), CSMT §9: the emissions the terminal was configured to upload, judged
    against the plant's truth from the wire."""

    #: The one vintage every library value comes from.
    vintage: str | None = None
    sources: list[EmissionSource] = Field(min_length=1)
    codes: list[EmissionCode] = Field(min_length=1)
    #: A code's activity digits (characters 6–7 of a CSMT §7.2 code) → its category.
    activities: dict[str, EmissionCategory] = ACTIVITY_DIGITS
    #: How often (s) the terminal looks for a new factor publication of the bench's platform by
    #: itself (CSMT §11.4 a)); None: it does not, and the download is judged with the profile.
    factor_poll_s: float | None = Field(None, gt=0, le=7 * 86400)

    @model_validator(mode="after")
    def _references(self) -> Emissions:
        ids = [s.id for s in self.sources]
        units = {s.unit for s in self.sources}
        for i, source in enumerate(self.sources):
            if ids.index(source.id) != i:
                raise ValueError(f"sources[{i}].id: {source.id!r} is used twice")
        codes: set[str] = set()
        for i, code in enumerate(self.codes):
            known: set[str | None] = {None}
            if code.of != "boundary":
                known = set(ids) if code.of == "source" else set(units)
            if code.id not in known:
                raise ValueError(f"codes[{i}].id: {code.id!r} is no {code.of} of sources")
            if code.code in codes:
                raise ValueError(f"codes[{i}].code: {code.code!r} is used twice")
            codes.add(code.code)
        return self


#: Which minute window an increment between two reads counts in (``Tolerances``).
CounterRule = Literal["middle", "end", "start"]


class Tolerances(_Strict):
    """What the clauses leave open, as test parameters (PIXIT) the oracle holds the terminal to;
    the report states the values a run used (``conformance.oracle.minutes``)."""

    #: Which minute window an increment between two reads counts in: the window of the
    #: interval's middle (polls on the minute measure the minute before), its end, or its start.
    counter_window: CounterRule = "middle"
    #: The terminal stamps a reading at most this long after its meter answered.
    stamp_lag_s: float = Field(1.0, ge=0, le=60)
    #: A reading its meter gave this close before a power cut may be lost (ISC-2 §9.2 keeps
    #: data across power loss without saying from which instant).
    cut_loss_s: float = Field(5.0, ge=0, le=3600)
    #: A minute window reaches the centres at most this long after the read that settles it
    #: (CSMT §12.3.2 asks for timely data without a figure).
    upload_lag_s: float = Field(30.0, ge=0, le=3600)


class Parameters(_Strict):
    """Test parameters (PIXIT)."""

    #: MN per centre (HJ 212 表 5: 24 characters for 2017).
    mn: dict[str, Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,24}$")]] = {}
    pw: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,9}$")] = "123456"
    #: Acquisition period (s) per point group of the terminal.
    periods: dict[str, Annotated[float, Field(gt=0)]] = {
        "serial": 60.0,
        "network": 60.0,
        "push": 60.0,
    }
    #: RtdInterval the terminal starts with (ISC-2 §7.2.4(1) asks for 15 minutes).
    realtime_interval_s: int = Field(900, ge=30, le=3600)
    over_time_s: int = Field(10, ge=1, le=99)
    re_count: int = Field(3, ge=1, le=99)
    #: ISC-2 §9.4: edge processing latency limit.
    latency_limit_ms: float = Field(20.0, gt=0)
    #: ISC-2 §7.2.3(4): days of history kept online (≥ 183).
    history_days: int | None = Field(None, ge=1)
    #: ISC-2 §7.4.1.2(3): an address of the bench's host from which the terminal must refuse an
    #: administrator's login (the address the bench otherwise connects from being allowed).
    #: None: the clause is not judged.
    admin_refused_source: IPvAnyAddress | None = None
    #: What the clauses leave open (see :class:`Tolerances`).
    tolerances: Tolerances = Tolerances()
    #: The bench fleet whose points the set-up below names (``ranges``, ``backups``,
    #: ``virtual_points``, ``emissions``: the configuration the lab gave the terminal before the
    #: run); a run on another fleet has none of it (:meth:`set_up_for`). None: any fleet.
    set_up_fleet: str | None = None
    #: CSMT §8.1.1: valid ranges the lab set on points before the run (point id → [min, max],
    #: bounds included); none: the range check is not applicable.
    ranges: dict[str, tuple[Decimal, Decimal]] = {}
    #: ISC-2 §7.2.3(1): backup devices the lab set before the run (point id → the point that
    #: reads the same quantity from its backup device); none: the switch-over is not applicable.
    backups: dict[str, str] = {}
    #: External devices: the terminal's points and the bench's meters they read.
    points: list[PointMap] = []
    #: Virtual points the terminal was configured with before the run (CSMT §8.3.2), judged
    #: from their uploaded window figures; none: the virtual-point tests are not applicable.
    virtual_points: list[VirtualPointSpec] = []
    #: External devices declaring remote-upgrade: signed packages to install (the reference
    #: adapter signs its own).
    apps: AppFiles | None = None
    #: The emissions the terminal uploads (ISC-2 §7.2.3(3), CSMT §9); none: the wire
    #: accounting tests are not applicable.
    emissions: Emissions | None = None

    def set_up_for(self, fleet: str) -> Parameters:
        """These parameters for a run on ``fleet``: without the set-up declared for another
        (its tests are then not applicable: nothing declared to judge)."""
        if self.set_up_fleet in (None, fleet):
            return self
        return self.model_copy(
            update={"ranges": {}, "backups": {}, "virtual_points": [], "emissions": None}
        )

    @model_validator(mode="after")
    def _ranges_and_backups(self) -> Parameters:
        for point, (low, high) in self.ranges.items():
            if low >= high:
                raise ValueError(f"ranges.{point}: min {low} is not below max {high}")
        for point, backup in self.backups.items():
            if backup == point:
                raise ValueError(f"backups.{point}: a point is not its own backup")
        return self


class Account(_Strict):
    user: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
    password: str


#: Accounts a target may give: the three roles of ISC-2 §7.4.1.2(1), and a throwaway account
#: the lockout test may lock (ISC-2 §7.4.1.1(2)).
ACCOUNT_ROLES = ("administrator", "security_operator", "auditor", "lockout_probe")


class ManagementChannel(_Strict):
    """The dedicated SM management port (``feature:sm-management-channel``): where it answers
    and how the bench knows the terminal there — a CA that issued its certificate, or its SM2
    public key (pinned). The reference adapter knows all three itself."""

    address: str | None = None  # host:port; None: the adapter knows
    ca_file: Path | None = None  # PEM
    server_key_file: Path | None = None  # PEM
    subject: str | None = None  # the CN the certificate must name


class Management(_Strict):
    """The management interface. ``profile: carbench`` is the REST API the reference terminal
    serves (``conformance/management.py`` lists what the suites use); ``none``: the suites read
    nothing back and tests that need it are inconclusive.

    ``accounts`` by role: the suites configure as the administrator, operate (on-command
    reads, manual values, uploads) as the security operator and read the audit trail as the
    auditor (separation of duties, ISC-2 §7.4.1.2). ``user``/``password``: one account for all
    (a terminal without roles)."""

    base_url: str | None = None  # None: the adapter knows (reference terminal)
    profile: Literal["carbench", "none"] = "carbench"
    user: str | None = None
    password: str | None = None
    token: str | None = None
    accounts: dict[str, Account] = {}
    timeout_s: float = Field(30.0, gt=0, le=600)
    #: When set, every request goes through the SM channel (and is judged there).
    channel: ManagementChannel | None = None

    @model_validator(mode="after")
    def _roles(self) -> Management:
        for role in self.accounts:
            if role not in ACCOUNT_ROLES:
                raise ValueError(f"accounts.{role}: roles are {', '.join(ACCOUNT_ROLES)}")
        return self


class CentreSpec(_Strict):
    name: CentreName
    protocol: Transport = "hj212"


class UplinkSpec(_Strict):
    #: ``adapter``: the adapter configures it; ``management-api``: the bench rewrites the
    #: centres' addresses through the management API; ``operator``: a person does it when
    #: prompted; ``fixed``: the terminal already uploads to ``fixed_ports`` on this machine.
    pointing: Literal["adapter", "management-api", "operator", "fixed"] = "adapter"
    centres: list[CentreSpec] = Field(
        default_factory=lambda: [
            CentreSpec(name="provincial"),
            CentreSpec(name="group"),
            CentreSpec(name="enterprise", protocol="https"),
        ],
        min_length=1,
    )
    fixed_ports: dict[str, int] = {}

    @model_validator(mode="after")
    def _unique(self) -> UplinkSpec:
        names = [c.name for c in self.centres]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ValueError(f"centres[{i}].name: {name!r} is used twice")
        if self.pointing == "fixed":
            missing = [n for n in names if n not in self.fixed_ports]
            if missing:
                raise ValueError(f"fixed_ports: no port for {', '.join(missing)}")
        return self


class Wiring(_Strict):
    """Fixed addresses for the bench's meters, so that a real box can be wired to them once
    (the run prints the whole wiring sheet). Unnamed ones get a free port or a fresh
    pseudo-terminal each run."""

    #: Meter id → the TCP port it listens on (Modbus TCP, OPC UA, HTTPS collectors).
    ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = {}
    #: Serial bus id → a symlink the bench points at its pseudo-terminal (a lab bridges it to
    #: an RS-485 adapter, e.g. with socat, or a terminal on this machine opens it).
    links: dict[str, Annotated[str, Field(min_length=1, max_length=255)]] = {}


class Relay(_Strict):
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = None
    unit_id: int = Field(1, ge=0, le=247)
    coil: int = Field(0, ge=0, le=65535)
    normally_closed: bool = False


class PowerSpec(_Strict):
    switch: Literal["fuse", "process", "modbus-relay", "operator", "none"] = "fuse"
    relay: Relay | None = None
    #: Seconds an operator has to confirm a power step before it is pending-operator.
    operator_timeout_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _relay(self) -> PowerSpec:
        if self.switch == "modbus-relay" and self.relay is None:
            raise ValueError("relay: a modbus-relay switch needs the relay's address")
        return self


class Target(_Strict):
    name: str
    description: str = ""
    adapter: Adapter
    implementation: Implementation
    parameters: Parameters = Parameters()
    management: Management = Management()
    uplink: UplinkSpec = UplinkSpec()
    wiring: Wiring = Wiring()
    power: PowerSpec = PowerSpec()
    #: Clock modes the terminal can run in (an external device: real only).
    clocks: list[ClockName] = ["real"]
    #: Operator records and vendor declarations of the lab and declared clauses (answers
    #: files, ``conformance.operator_records``, relative to the target file that names them;
    #: a later file's record of a clause replaces an earlier one's).
    records: list[str] = []

    @field_validator("records", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else [] if value is None else value

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if self.adapter.kind == "external" and "virtual" in self.clocks:
            raise ValueError("clocks: an external device runs on the wall clock only (real)")
        if self.adapter.kind == "external" and self.power.switch == "fuse":
            raise ValueError(
                "power.switch: fuse is the in-process reference terminal's disk; an external "
                "device needs process, modbus-relay, operator or none"
            )
        if self.adapter.kind == "external" and self.uplink.pointing == "adapter":
            raise ValueError(
                "uplink.pointing: an external device is pointed by management-api, operator "
                "or fixed"
            )
        listed = self.implementation.declares(f"feature:{MANAGEMENT_PROFILE}")
        if listed and self.management.profile != "carbench":
            raise ValueError(
                f"implementation.features lists {MANAGEMENT_PROFILE} but management.profile is "
                f"{self.management.profile!r}: the profile is declared there (carbench)"
            )
        if self.adapter.kind == "process" and self.power.switch not in ("fuse", "process"):
            raise ValueError(
                "power.switch: the bench cuts a terminal it runs as a process with the FUSE "
                "disk under its store (fuse) or by killing it (process)"
            )
        if self.adapter.kind == "process" and self.uplink.pointing != "adapter":
            raise ValueError(
                "uplink.pointing: the bench points a process it configures itself (adapter)"
            )
        return self

    def declares(self, requirement: str) -> bool:
        """Whether the target declares ``requirement`` (``Implementation.declares``); the
        carbench management profile is declared by ``management.profile: carbench``."""
        if requirement == f"feature:{MANAGEMENT_PROFILE}":
            return self.management.profile == "carbench"
        return self.implementation.declares(requirement)

    def mn(self, centre: str, index: int) -> str:
        """The MN the terminal uses at ``centre`` (PIXIT, else a bench default)."""
        return self.parameters.mn.get(centre) or f"010000A8900016F0001{index:05d}"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise TargetError(f"{path}: extends itself (through {' -> '.join(map(str, seen))})")
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TargetError(yaml_input.where(str(path), exc)) from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: a target is a mapping (name, adapter, implementation, …)")
    records = data.get("records")  # relative to the file that names them
    if isinstance(records, str | list):
        files = [records] if isinstance(records, str) else records
        data["records"] = [str((path.parent / str(f)).resolve()) for f in files]
    base = data.pop("extends", None)
    if base is None:
        return data
    return _merge(_read((path.parent / str(base)).resolve(), (*seen, path)), data)


def load_target(path: str | Path) -> Target:
    """Read and validate a target file (and the files it extends)."""
    path = Path(path).resolve()
    data = _read(path)
    config = (data.get("adapter") or {}).get("config")
    if isinstance(config, str):  # relative to the target file, like a scenario's fleet
        data["adapter"]["config"] = str((path.parent / config).resolve())
    try:
        return Target.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise TargetError(f"{path}: invalid target\n{problems}") from None

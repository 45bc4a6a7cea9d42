"""The terminal's configuration as validated data (ISC-2 §7.2.2 configuration tool, CSMT §11.3).

One file (YAML or JSON) gives the serial buses, the devices on them or on the network, the
points each device yields, the point groups and their periods, processing rules and storage.
Every error names the field.
"""

from __future__ import annotations

import warnings
from datetime import date
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, model_validator

from common import yaml_input
from reference_terminal.accounting.configuration import Accounting
from reference_terminal.uplink.codes import HJ212_CODE, ItemCode

Id = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A configuration that cannot run; the message lists each problem with its field."""


# ---- serial buses and devices ------------------------------------------------------------------


class SerialBus(Strict):
    """An RS-485/RS-232 port. One request is in flight on it at a time (ISC-2 §7.1.1)."""

    id: Id
    port: str  # /dev/ttyUSB0, /dev/pts/N …
    protocol: Literal["modbus-rtu", "dlt645", "cjt188"]
    baud: int = Field(9600, ge=300, le=921600)
    framing: Annotated[str, Field(pattern=r"^[78][NEO][12]$")] = "8E1"
    #: Quiet time between one answer and the next request (some meters need it).
    turnaround_ms: float = Field(5.0, ge=0, le=2000)


class DeviceBase(Strict):
    id: Id
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    # The activity-data source list (ISC-2 §7.3.1): name and model, installed location,
    # accuracy and calibration interval of the instrument, as the plant's meter ledger has them.
    model: str = ""
    location: str = ""
    accuracy: str = ""
    calibration_interval_days: int | None = Field(None, ge=1, le=3650)
    calibrated_on: date | None = None
    #: Measurement level (GB 17167 一级/二级/三级: enterprise, unit, equipment), for the ledger.
    level: int | None = Field(None, ge=1, le=3)


class ModbusTcpDevice(DeviceBase):
    protocol: Literal["modbus-tcp"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=247)


class ModbusRtuDevice(DeviceBase):
    protocol: Literal["modbus-rtu"]
    bus: Id
    unit_id: int = Field(ge=1, le=247)


class Dlt645Device(DeviceBase):
    protocol: Literal["dlt645-2007", "dlt645-1997"]
    bus: Id
    address: Annotated[str, Field(pattern=r"^[0-9]{12}$")]


class Cjt188Device(DeviceBase):
    protocol: Literal["cjt188"]
    bus: Id
    meter_type: Literal["water", "hot_water", "gas", "heat", "cooling"]
    address: Annotated[str, Field(pattern=r"^[0-9]{14}$")]
    di_order: Literal["standard", "swapped"] = "standard"
    unit_first: bool = False


class OpcUaDevice(DeviceBase):
    protocol: Literal["opcua"]
    endpoint: str  # opc.tcp://host:port/path
    namespace: str = "urn:carbench:plant"


class MqttDevice(DeviceBase):
    """A collector publishing JSON readings to a broker; the terminal subscribes."""

    protocol: Literal["mqtt"]
    host: str
    port: int = Field(1883, ge=1, le=65535)
    topic: str


class HttpsDevice(DeviceBase):
    """A collector's HTTPS API: pulled (GET ``url``) or pushing to the terminal's intake."""

    protocol: Literal["https"]
    url: str = ""
    ca_file: str | None = None
    mode: Literal["pull", "push"] = "pull"


class SqlDevice(DeviceBase):
    """A plant database read with a query returning (name, value) rows (SQLAlchemy URL)."""

    protocol: Literal["sql"]
    url: str
    query: str


class ManualDevice(DeviceBase):
    """Values entered by hand or imported from CSV (ISC-2 §7.2.2, CSMT §11.6)."""

    protocol: Literal["manual"]


Device = Annotated[
    ModbusTcpDevice
    | ModbusRtuDevice
    | Dlt645Device
    | Cjt188Device
    | OpcUaDevice
    | MqttDevice
    | HttpsDevice
    | SqlDevice
    | ManualDevice,
    Field(discriminator="protocol"),
]

# ---- points -----------------------------------------------------------------------------------


class Register(Strict):
    table: Literal["holding", "input"] = "holding"
    address: int = Field(ge=0, le=65535)
    type: Literal["uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
    word_order: Literal["big", "little"] = "big"
    scale: Decimal = Decimal(1)


class Analog(Strict):
    """A 4–20 mA input read as a raw register: raw_min..raw_max maps onto low..high."""

    raw_min: Decimal = Decimal(4000)
    raw_max: Decimal = Decimal(20000)
    low: Decimal
    high: Decimal


# pydantic warns that a field named "register" shadows ABCMeta.register, a class method that is
# never called on a model; the name is the Modbus one, so keep it and skip the warning.
warnings.filterwarnings("ignore", message='Field name "register" in "Source"', category=UserWarning)


class Source(Strict):
    """Where a point's value comes from on one device (the fields that device's protocol uses)."""

    device: Id
    register: Register | None = None  # Modbus
    di: str | None = None  # DL/T 645 data identifier, e.g. "00010000"
    index: int = Field(0, ge=0)  # element of a block DI
    field: str | None = None  # CJ/T 188 reading field, e.g. "current_total"
    node: str | None = None  # OPC UA node id, e.g. "ns=2;s=dcs.Clinker_t"
    name: str | None = None  # MQTT/HTTPS value name, SQL row name
    analog: Analog | None = None


class Point(Strict):
    id: Id
    name: str = ""
    unit: str = ""
    #: ``counter``: a cumulative register (energy, volume), increments derived, rollover handled;
    #: ``gauge``: an instantaneous value (power, temperature).
    kind: Literal["counter", "gauge"] = "gauge"
    group: Id
    source: Source
    backup: Source | None = None  # switched to when the source falls silent (ISC-2 §7.2.3(1))
    decimals: int = Field(2, ge=0, le=6)
    min: Decimal | None = None  # range check, CSMT §8.1.1
    max: Decimal | None = None
    full_scale: Decimal | None = None  # counter rollover, CSMT §8.2.2
    #: Second check (CSMT §8.1.2): an increment above this many times the historical
    #: valid monthly total of the source is suspect. None disables it.
    history_factor: Decimal | None = Decimal(2)
    #: The activity data this point measures (ISC-2 §7.3.1 "关联的排放源活动数据").
    activity: str = ""


class Group(Strict):
    id: Id
    #: Acquisition period, 1 s to 3 h (ISC-2 §9.1, CSMT §11.2).
    period_s: float = Field(ge=1, le=10800)


class Processing(Strict):
    #: A point silent this long (of due readings) switches to its backup (ISC-2 §7.2.3(1)).
    gap_threshold_s: float = Field(10.0, gt=0, le=86400)
    interpolation: Literal["linear", "nearest"] = "linear"
    #: How long after its end a gauge's real-time window still takes values: reads in flight
    #: and collectors that stamp values and send them a little later. A value later than this
    #: is stored but left out of the window sent (an event says so).
    window_lag_s: float = Field(30.0, ge=0, le=3600)


class Storage(Strict):
    #: SQLAlchemy URL; the default is SQLite in WAL mode with synchronous=FULL (FACTS.md).
    url: str = "sqlite:///data/terminal.db"
    retention_days: int = Field(400, ge=183, description="≥ 6 months online, ISC-2 §7.2.3(4)")
    batch_max: int = Field(5000, ge=1, le=100_000)
    #: SQLite only. FULL is what survives a power cut in WAL mode; NORMAL and OFF exist for a
    #: bench to show that its power cuts catch a terminal that cuts this corner.
    synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL"
    #: SQLite only: a write is durable once appended and synced to a log beside the database
    #: (``storage/intake_log.py``) and applied to the database behind, which keeps a write's
    #: latency to one small sync (ISC-2 §9.4). Off: every write waits for its own commit.
    intake_log: bool = True
    #: New readings and derived values gather in tables keyed time first until there are this
    #: many, then move to the tables keyed point first (``storage/store.py``, "Recent and
    #: settled"). Larger: fewer, larger moves (less written per reading); smaller: smaller
    #: recent tables for the queries that scan them.
    settle_rows: int = Field(200_000, ge=1_000, le=5_000_000)
    #: CPUs the store's threads (writer, intake, checkpointer, readers) are kept to; empty:
    #: wherever the system runs them. Beside acquisition on a gateway's other core, or on the
    #: core of the process serving its disk (a bench's simulated one, ``simulators/power``).
    cpus: list[int] = Field([], max_length=1024)
    #: Added to the nice value of the store's threads that work behind the intake log (the
    #: writer, the checkpointer): a settle or a checkpoint pass then yields a busy CPU to
    #: acquisition and the durable writes (``storage/threads.py``). bench_edge_latency's runs
    #: (10 000 readings/s, 2026-11-27): a median of 97.7 % of readings durable within 2 ms at
    #: 0, 98.6 % at 10 or 19. Linux; 0: as the process.
    background_nice: int = Field(10, ge=0, le=19)
    #: SQLite beside the intake log: how long the writer gathers acknowledged writes before
    #: applying them to the database in one transaction; a query or a close ends the wait at
    #: once. Fewer commits and half the bytes written per reading (flash wear). The p99 of
    #: bench_edge_latency (10 000 readings/s) fell on a slow disk (2026-11-25: 42–63 ms at 0,
    #: 19–23 ms at 100) and grew on a fast one, where the larger applies hold the CPU in
    #: bursts (2026-11-26: 2.2–2.7 ms at 0, 5.5–7.0 ms at 100). 0: each as it comes.
    apply_linger_ms: float = Field(0, ge=0, le=1000)
    #: ... and how many intake-log records it waits for (0: no bound but the linger's; records
    #: queued already go with them). Without a linger, it waits for as long as they take to
    #: come, unless someone needs them sooner (a query, a close, the log's rewind, a call for
    #: the writer, a wait for the writes behind). A bench in virtual time, where no number of
    #: real milliseconds says how many records come meanwhile, batches the applies so
    #: (``bench/scenario/config.py``).
    apply_records: int = Field(0, ge=0, le=100_000)
    #: SQLite: a thread folds the WAL into the database beside the writer, at most every
    #: quarter second of wall time while commits come, so that commits do not stop for it.
    #: Off: the writer does it inside the commit that fills the WAL to 1 000 pages (SQLite's
    #: own way), for a terminal that writes once a minute and has no use for the thread.
    checkpoint_thread: bool = True


class SmChannel(Strict):
    """The dedicated management port (ISC-2 §7.4.1.2): the same API inside an SM2-authenticated,
    SM4-GCM channel (``protocols.smchannel``), the terminal known by its device certificate
    (``identity``). The plain ``api`` port then belongs on the loopback (the local console)."""

    host: str = "0.0.0.0"
    port: int = Field(8443, ge=0, le=65535)
    #: SM2 public keys (PEM files) of the only clients let in; empty: any client, which then
    #: proves itself by logging in through the channel.
    client_keys: list[str] = []


class Api(Strict):
    """The management API (``python -m reference_terminal`` serves it when this is set)."""

    host: str = "127.0.0.1"
    port: int = Field(8480, ge=0, le=65535)
    sm_channel: SmChannel | None = None
    #: The largest request body a route takes (its own limit where it takes files: an
    #: application package, a manual-entry CSV, a factor library, a backup to restore).
    max_body_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    #: The largest backup ``POST /restore`` takes (a copy of the store).
    max_restore_bytes: int = Field(4 * 1024**3, ge=1024 * 1024, le=64 * 1024**3)


# ---- upload to data centres (ISC-2 §7.2.4, CSMT §7, CPCIF §8.3) --------------------------------

WEEK_S = 7 * 86400
#: 表 4: MinInterval may be 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 minutes.
MIN_INTERVALS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)


class CodeEntry(Strict):
    """One row of the data item code table: which code a point's values are filed under."""

    point: Id
    #: A structured CSMT §7.2 code, or an HJ 212 pollutant code (``a05001``).
    code: ItemCode | Annotated[str, Field(pattern=HJ212_CODE.pattern)]


class Streams(Strict):
    """What a centre is sent (ISC-2 §7.2.4(1): real-time every 15 min, daily and monthly)."""

    #: Real-time data, CN 2011: the latest reading of each point every ``realtime_interval_s``.
    realtime: bool = True
    #: RtdInterval (表 4: 30 ≤ n ≤ 3600 s); ISC-2 §7.2.4(1) says 15 minutes.
    realtime_interval_s: int = Field(900, ge=30, le=3600)
    #: Minute data, CN 2051, one frame per closed minute window.
    minute: bool = False
    #: MinInterval (表 4), minutes: how often minute data is uploaded.
    minute_interval_min: int = 1
    hourly: bool = True  # CN 2061
    daily: bool = True  # CN 2031
    #: Monthly indicators. HJ 212-2017 has no monthly command, and strict 2017 decoders refuse
    #: a CN outside 表 9, so this is off until the platform names the CN it accepts.
    monthly: bool = False
    monthly_cn: int = Field(2071, ge=1000, le=9999)

    @model_validator(mode="after")
    def _min_interval(self) -> Streams:
        if self.minute_interval_min not in MIN_INTERVALS:
            raise ValueError(
                f"minute_interval_min: {self.minute_interval_min} is not one of 表 4's "
                f"MinInterval values {list(MIN_INTERVALS)}"
            )
        return self

    def frames_per_week(self) -> int:
        """Frames a week of data makes at these rates (one per period and stream)."""
        n = 0
        if self.realtime:
            n += WEEK_S // self.realtime_interval_s
        if self.minute:
            n += WEEK_S // 60
        if self.hourly:
            n += WEEK_S // 3600
        if self.daily:
            n += 7
        if self.monthly:
            n += 1
        return n


class Backoff(Strict):
    """Reconnection delays: ``initial_s`` doubling (``multiplier``) up to ``max_s``, each spread
    by ± ``jitter`` of itself so that many terminals do not reconnect in step."""

    initial_s: float = Field(1.0, gt=0, le=3600)
    max_s: float = Field(300.0, gt=0, le=86400)
    multiplier: float = Field(2.0, ge=1, le=10)
    jitter: float = Field(0.2, ge=0, le=1)
    #: The jitter's random seed. None (the default) draws one from the OS, so terminals differ;
    #: a bench sets one so that a run repeats, reconnections included.
    seed: int | None = None

    @model_validator(mode="after")
    def _order(self) -> Backoff:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s: {self.max_s} is less than initial_s {self.initial_s}")
        return self


class OutboxLimits(Strict):
    #: Frames kept for the centre while it is unreachable. At least one week of data at the
    #: configured rates (CPCIF §8.3); reaching it raises an alarm and stops taking new frames
    #: (the data stays in the store and is queued once room is made), it never drops any.
    max_entries: int = Field(100_000, ge=1)
    #: Frames in flight at once (sent, not yet acknowledged); live frames take the first free
    #: place, the backlog the rest. Enough to keep the link busy: window × frame size ≥ the
    #: link's rate × the acknowledgement's round trip. Each refill of the window is one store
    #: transaction (the QNs given), and the backlog refills once half the window is free, so a
    #: wider one also commits less per frame: a works-fleet backlog of six hours drained in
    #: 7.0-7.1 s with 32, 8.9-9.4 s with 8 (64: 7.1-7.7 s), before the half-window refills.
    window: int = Field(32, ge=1, le=256)


class CentreBase(Strict):
    name: Id
    enabled: bool = True
    #: Device identity at this centre (HJ 212 MN; the JSON body's "MN").
    mn: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,24}$")]
    streams: Streams = Streams()
    #: Points sent; None: every point of the code table.
    points: list[Id] | None = None
    #: This centre's own code table (third parties may file differently); None: the uplink's.
    codes: list[CodeEntry] | None = None
    backoff: Backoff = Backoff()
    outbox: OutboxLimits = OutboxLimits()

    @model_validator(mode="after")
    def _week(self) -> CentreBase:
        week = self.streams.frames_per_week()
        if self.outbox.max_entries < week:
            raise ValueError(
                f"outbox.max_entries: {self.outbox.max_entries} frames hold less than one week "
                f"of data at the configured rates ({week} frames); CPCIF §8.3 asks for ≥ 1 week"
            )
        return self


class Hj212Centre(CentreBase):
    """A data centre reached over HJ 212 on TCP (ISC-2 §7.2.4)."""

    protocol: Literal["hj212"]
    host: str
    port: int = Field(ge=1, le=65535)
    pw: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,9}$")] = "123456"
    st: Annotated[str, Field(pattern=r"^[0-9]{2}$")] = "32"
    edition: Literal["2005", "2017", "2025"] = "2017"
    #: OverTime (s) and ReCount (表 1, 表 4: 0 < n ≤ 99); CN 1000 changes them at run time.
    over_time_s: int = Field(10, ge=1, le=99)
    re_count: int = Field(3, ge=1, le=99)
    #: HJ 212-2025 profile: SM4 key (32 hex digits) encrypting CP; None sends CP in clear.
    cp_key: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{32}$")] | None = None
    connect_timeout_s: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _mn(self) -> Hj212Centre:
        if self.edition != "2005" and len(self.mn) != 24:
            raise ValueError(f"mn: HJ 212-{self.edition} MN has 24 characters, got {len(self.mn)}")
        if self.cp_key is not None and self.edition != "2025":
            raise ValueError("cp_key: CP encryption belongs to the HJ 212-2025 profile")
        return self


class ClientCertificate(Strict):
    """The certificate the terminal presents to a centre that asks for one (mutual TLS, ISC-2
    §7.4.1), made with ``python -m reference_terminal.security.tls_client``."""

    #: The certificate (PEM) the platform's CA issued.
    certificate_file: str
    #: Its ECDSA P-256 key, sealed under the master key (``security.key_file``).
    key_file: str


class HttpsCentre(CentreBase):
    """A centre taking JSON over HTTPS (ISC-2 §7.2.3(6): resend until a success reply)."""

    protocol: Literal["https"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    pw: Annotated[str, Field(max_length=64)] = ""
    st: Annotated[str, Field(pattern=r"^[0-9]{2}$")] = "32"
    #: CA bundle the centre's certificate is checked against; None: the system's.
    ca_file: str | None = None
    verify: bool = True
    timeout_s: float = Field(10.0, gt=0, le=300)
    #: None: the terminal presents no certificate (TLS one way).
    client_certificate: ClientCertificate | None = None


Centre = Annotated[Hj212Centre | HttpsCentre, Field(discriminator="protocol")]


class Uplink(Strict):
    """Every data centre the terminal uploads to (≥ 2 at once plus third parties, ISC-2
    §7.2.4(3), CSMT §7.3), and the data item code table (CSMT §7.2)."""

    centres: list[Centre] = []
    codes: list[CodeEntry] = []
    #: HJ 212 times (DataTime, QN, BeginTime) are plant-local: China Standard Time by default.
    utc_offset_s: int = Field(8 * 3600, ge=-14 * 3600, le=14 * 3600)
    #: How long after a period ends its frames are built (late windows go in the next frame).
    grace_s: float = Field(5.0, ge=0, le=600)

    @model_validator(mode="after")
    def _unique(self) -> Uplink:
        names = [c.name for c in self.centres]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ValueError(f"centres[{i}].name: {name!r} is used twice")
        for where, table in [("codes", self.codes)] + [
            (f"centres[{i}].codes", c.codes) for i, c in enumerate(self.centres)
        ]:
            seen: set[str] = set()
            for j, entry in enumerate(table or []):
                if entry.point in seen:
                    raise ValueError(f"{where}[{j}].point: {entry.point!r} has two codes")
                seen.add(entry.point)
        return self


# ---- security of the management interface (ISC-2 §7.4.1, SSEA §5.5.3) -------------------------

#: The three roles of ISC-2 §7.4.1.2(1): 系统管理员, 安全操作员, 安全审计员
#: (``reference_terminal.security.roles.Role`` has the same values; a test keeps them equal).
RoleName = Literal["administrator", "security_operator", "auditor"]
#: What ``python -m reference_terminal.security.passwords`` prints: PBKDF2-HMAC-SM3.
PASSWORD_HASH_PATTERN = r"^pbkdf2-sm3\$[0-9]{1,8}\$[A-Za-z0-9_-]{16,64}\$[A-Za-z0-9_-]{43}$"


class PasswordRules(Strict):
    """ISC-2 §7.4.1.1(1): 身份鉴别信息应具有复杂度要求，并进行有效期限制."""

    min_length: int = Field(8, ge=8, le=64)
    #: How many of the four classes (lower case, upper case, digit, symbol) a password mixes.
    min_classes: int = Field(3, ge=2, le=4)
    max_age_days: int = Field(90, ge=1, le=3650)
    #: A new password may not be one of the user's last ``history`` passwords.
    history: int = Field(3, ge=0, le=24)
    #: PBKDF2-HMAC-SM3 rounds for new hashes (≈ 0.25 s on a desktop core at 100 000).
    kdf_iterations: int = Field(100_000, ge=10_000, le=10_000_000)


class Lockout(Strict):
    """ISC-2 §7.4.1.1(2): 限制非法登录次数."""

    max_failures: int = Field(5, ge=1, le=100)
    lock_s: float = Field(600.0, ge=60, le=86400)


class SessionRules(Strict):
    """ISC-2 §7.4.1.1(2): 结束会话 … 当登录连接超时自动退出."""

    idle_timeout_s: float = Field(600.0, ge=30, le=86400)
    lifetime_s: float = Field(8 * 3600.0, ge=60, le=7 * 86400)
    #: Sessions open at once (CPCIF §6.2 asks for > 1 000 users online).
    max_sessions: int = Field(5000, ge=1, le=1_000_000)


class InitialUser(Strict):
    """An account made on the first start (when the user file does not exist yet): its password
    is a hash (never clear text in the configuration) or a one-time password read from an
    environment variable, which must be changed at the first login."""

    id: Id
    role: RoleName
    password_hash: Annotated[str, Field(pattern=PASSWORD_HASH_PATTERN)] | None = None
    password_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")] | None = None

    @model_validator(mode="after")
    def _one_password(self) -> InitialUser:
        if (self.password_hash is None) == (self.password_env is None):
            raise ValueError(
                "password_hash: give exactly one of password_hash (made by python -m "
                "reference_terminal.security.passwords) and password_env (a one-time password)"
            )
        return self


class Security(Strict):
    """Users, roles, sessions, audit and secrets at rest of the management API (ISC-2 §7.4.1).

    Off unless enabled, but ``python -m reference_terminal`` serves an API without it only when
    the file says ``enabled: false`` (and warns at every start): a file silent about security
    is refused, so the product never starts open by accident."""

    enabled: bool = False
    #: The master key (SM4 + HMAC-SM3 of stored credentials, the audit seals); created 0600 on
    #: first use. Outside the store: a copy of the database (a backup) does not carry it.
    key_file: str = "data/keys/terminal.key"
    #: Where the sealed user file and the audit anchor live.
    state_dir: str = "data/security"
    #: ISC-2 §7.4.1.2(3): where an administrator may log in from.
    admin_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    initial_users: list[InitialUser] = []
    passwords: PasswordRules = PasswordRules()
    lockout: Lockout = Lockout()
    sessions: SessionRules = SessionRules()

    @model_validator(mode="after")
    def _accounts(self) -> Security:
        ids = [u.id for u in self.initial_users]
        for i, user_id in enumerate(ids):
            if ids.index(user_id) != i:
                raise ValueError(f"initial_users[{i}].id: {user_id!r} is used twice")
        if self.enabled and not any(u.role == "administrator" for u in self.initial_users):
            raise ValueError(
                "initial_users: security is enabled but no administrator is given "
                "(ISC-2 §7.4.1.2(1): 应具有系统管理员、安全操作员和安全审计员三种角色账户)"
            )
        return self


# ---- device identity (ISC-2 §7.4.1, §7.4.2; CSMT §7.4) ------------------------------------------


class Identity(Strict):
    """The terminal's SM2 key pair and device certificate (``reference_terminal.security
    .identity``), and whether it signs the HJ 212 records it uploads (``SM2Sign`` in CP, over
    the canonical form of ``protocols.hj212.record_signature``). Read at start only."""

    sign_uploads: bool = False
    #: The SM2 private key, sealed under the master key (``security.key_file``).
    key_file: str = "data/keys/device-sm2.sealed"
    #: The device certificate (PEM) a CA issued for that key.
    certificate_file: str | None = None

    @model_validator(mode="after")
    def _certified(self) -> Identity:
        if self.sign_uploads and self.certificate_file is None:
            raise ValueError(
                "certificate_file: signing uploads needs the device certificate a platform "
                "verifies them with (ISC-2 §7.4.1: PKI certificates)"
            )
        return self


# ---- application modules (ISC-2 §8.4, §4.3) ------------------------------------------------------


class Apps(Strict):
    """Applications installed, upgraded and uninstalled remotely as SM2-signed packages
    (``reference_terminal.operations.packages``), each run as a process of its own without
    access to the store. Read at start only: a running terminal's trust anchors cannot be
    changed remotely."""

    enabled: bool = False
    #: Where installed applications live (each version in a directory of its own).
    dir: str = "data/apps"
    #: SM2 public keys (PEM files) a package's signature must verify with.
    trusted_keys: list[str] = []
    max_package_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    #: Wall seconds an application has to say it is ready (a bound on a process starting,
    #: not a time of the terminal's clock); longer is a failed start, rolled back.
    start_timeout_s: float = Field(10.0, gt=0, le=300)


# ---- virtual points (CSMT §8.3.2, ISC-2 §7.2.3(2bis)) ------------------------------------------
# Points computed from others: add, subtract, multiply, divide, allocate and integrate. What each
# computes, and how, is in ``reference_terminal.processing.virtual``; here is what a user writes.
# Each model checks itself (arity, shares); which points exist, their kinds and cycles are
# checked against the whole configuration by ``TerminalConfig`` (through that module's ``plan``).


class _Virtual(Strict):
    id: Id
    name: str = ""
    #: Empty: add, subtract and allocate take their inputs' unit.
    unit: str = ""
    #: Decimal places of the result; None: the rule in ``processing/virtual.py``.
    decimals: int | None = Field(None, ge=0, le=6)


def _once(where: str, ids: list[str]) -> None:
    for i, x in enumerate(ids):
        if ids.index(x) != i:
            raise ValueError(f"{where}[{i}]: {x!r} is listed twice")


class AddPoint(_Virtual):
    """CSMT §8.3.2 a): "利用加法原则,从多个活动数据汇总某个排放源数据"."""

    op: Literal["add"]
    inputs: list[Id]

    @model_validator(mode="after")
    def _arity(self) -> AddPoint:
        if len(self.inputs) < 2:
            raise ValueError(
                f"inputs: add sums two or more points, got {len(self.inputs)} "
                f"({', '.join(self.inputs) or 'none'}); to scale one point use multiply"
            )
        _once("inputs", self.inputs)
        return self


class SubtractPoint(_Virtual):
    """CSMT §8.3.2 b): "利用减法原则,从某个活动数据中减去不相关活动数据"."""

    op: Literal["subtract"]
    minuend: Id
    subtrahends: list[Id]

    @model_validator(mode="after")
    def _arity(self) -> SubtractPoint:
        if not self.subtrahends:
            raise ValueError(f"subtrahends: subtract takes at least one point from {self.minuend}")
        _once("subtrahends", self.subtrahends)
        if self.minuend in self.subtrahends:
            raise ValueError(f"subtrahends: {self.minuend!r} is the minuend too")
        return self


class MultiplyPoint(_Virtual):
    """CSMT §8.3.2 c): "利用乘法原则,通过某个典型活动数据计算某个排放源数据"; ``factor`` is a
    constant (a density, a unit conversion)."""

    op: Literal["multiply"]
    inputs: list[Id]
    factor: Decimal = Decimal(1)

    @model_validator(mode="after")
    def _arity(self) -> MultiplyPoint:
        if not self.inputs:
            raise ValueError("inputs: multiply needs at least one point (times factor)")
        if not self.factor.is_finite():
            raise ValueError(f"factor: {self.factor} is not a number")
        return self


class DividePoint(_Virtual):
    op: Literal["divide"]
    numerator: Id
    denominator: Id
    factor: Decimal = Decimal(1)

    @model_validator(mode="after")
    def _finite(self) -> DividePoint:
        if not self.factor.is_finite():
            raise ValueError(f"factor: {self.factor} is not a number")
        return self


class AllocatePoint(_Virtual):
    """CSMT §8.3.2 d): "利用分摊原则,从某个活动数据分摊到多个排放源数据". ``id`` names the rule;
    the results are the ``targets``. ``shares`` are fixed fractions summing to 1; ``basis`` are
    points whose figures in the same window give the proportions; with both, the shares are used
    when the basis sums to zero."""

    op: Literal["allocate"]
    source: Id
    targets: list[Id]
    shares: list[Decimal] | None = None
    basis: list[Id] | None = None

    @model_validator(mode="after")
    def _weights(self) -> AllocatePoint:
        n = len(self.targets)
        if n == 0:
            raise ValueError("targets: allocate splits its source over at least one point")
        _once("targets", self.targets)
        if self.id in self.targets:
            k = self.targets.index(self.id)
            raise ValueError(f"targets[{k}]: {self.id!r} is the allocation's own id")
        if self.shares is None and self.basis is None:
            raise ValueError(
                "shares: allocate needs shares (fractions summing to 1), basis or both"
            )
        if self.shares is not None:
            if len(self.shares) != n:
                raise ValueError(f"shares: {len(self.shares)} shares for {n} targets")
            for i, share in enumerate(self.shares):
                if not share.is_finite() or not 0 <= share <= 1:
                    raise ValueError(f"shares[{i}]: {share} is not a fraction between 0 and 1")
            total = sum(self.shares, Decimal(0))
            if total != 1:
                raise ValueError(
                    f"shares: they sum to {total}, not 1 (each target's fraction of the source)"
                )
        if self.basis is not None and len(self.basis) != n:
            raise ValueError(f"basis: {len(self.basis)} basis points for {n} targets")
        return self


class IntegratePoint(_Virtual):
    """CSMT §8.3.2 积分: a rate point (e.g. steam flow in t/h) integrated into a total."""

    op: Literal["integrate"]
    source: Id
    method: Literal["trapezoid", "step"] = "trapezoid"
    #: The rate's time unit in seconds: 3600 for "per hour", 1 for "per second".
    per_s: Decimal = Field(Decimal(3600), gt=0, allow_inf_nan=False)
    #: Two readings further apart than this are not integrated across (an event says so); None:
    #: always integrate (gaps are normally filled by interpolation first).
    max_step_s: float | None = Field(None, gt=0, allow_inf_nan=False)


VirtualPoint = Annotated[
    AddPoint | SubtractPoint | MultiplyPoint | DividePoint | AllocatePoint | IntegratePoint,
    Field(discriminator="op"),
]


def virtual_outputs(rule: VirtualPoint) -> list[str]:
    """The points a virtual point makes: its id, or an allocation's targets."""
    return list(rule.targets) if isinstance(rule, AllocatePoint) else [rule.id]


class TerminalConfig(Strict):
    name: str = "carbench reference terminal"
    api: Api | None = None
    buses: list[SerialBus] = []
    devices: list[Device] = []
    groups: list[Group] = []
    points: list[Point] = []
    processing: Processing = Processing()
    storage: Storage = Storage()
    uplink: Uplink = Uplink()
    security: Security = Security()
    apps: Apps = Apps()
    identity: Identity = Identity()
    #: Points computed from others (CSMT §8.3.2); checked against ``points`` below.
    virtual_points: list[VirtualPoint] = []
    #: Carbon accounting (CSMT §9): boundary, methods, factor library, alarms; None: none.
    accounting: Accounting | None = None

    @model_validator(mode="after")
    def _uplink_references(self) -> TerminalConfig:
        points = {p.id for p in self.points}
        points.update(x for v in self.virtual_points for x in virtual_outputs(v))
        tables = [("uplink.codes", self.uplink.codes)]
        for i, centre in enumerate(self.uplink.centres):
            tables.append((f"uplink.centres[{i}].codes", centre.codes or []))
            table = centre.codes if centre.codes is not None else self.uplink.codes
            coded = {e.point for e in table}
            for j, point in enumerate(centre.points or []):
                if point not in coded:
                    raise ValueError(
                        f"uplink.centres[{i}].points[{j}]: {point!r} has no data item code "
                        "(CSMT §7.2)"
                    )
        for where, table in tables:
            for j, entry in enumerate(table):
                if entry.point not in points:
                    raise ValueError(f"{where}[{j}].point: no point {entry.point!r}")
        return self

    @model_validator(mode="after")
    def _references(self) -> TerminalConfig:
        buses = {b.id: b for b in self.buses}
        devices = {d.id: d for d in self.devices}
        groups = {g.id for g in self.groups}
        if len(buses) != len(self.buses):
            raise ValueError("buses: ids must be unique")
        if len(devices) != len(self.devices):
            raise ValueError("devices: ids must be unique")
        for i, device in enumerate(self.devices):
            bus = getattr(device, "bus", None)
            if bus is not None:
                if bus not in buses:
                    raise ValueError(f"devices[{i}].bus: no bus {bus!r}")
                family = "modbus-rtu" if device.protocol == "modbus-rtu" else device.protocol[:6]
                if buses[bus].protocol != family:
                    raise ValueError(
                        f"devices[{i}].bus: {device.protocol} on a {buses[bus].protocol} bus"
                    )
        seen: set[str] = set()
        for i, point in enumerate(self.points):
            if point.id in seen:
                raise ValueError(f"points[{i}].id: {point.id!r} is used twice")
            seen.add(point.id)
            if point.group not in groups:
                raise ValueError(f"points[{i}].group: no group {point.group!r}")
            for where, source in (("source", point.source), ("backup", point.backup)):
                if source is not None and source.device not in devices:
                    raise ValueError(f"points[{i}].{where}.device: no device {source.device!r}")
        return self

    @model_validator(mode="after")
    def _virtual_points(self) -> TerminalConfig:
        """Virtual points against the metered ones: inputs exist, kinds fit, no id twice, no
        cycle (the messages name the field, e.g. ``virtual_points[1].inputs[0]``)."""
        if self.virtual_points:
            # processing imports this module: the check is there, imported when needed
            from reference_terminal.processing.virtual import plan  # noqa: PLC0415

            plan(self.points, self.virtual_points)
        return self

    @model_validator(mode="after")
    def _accounting(self) -> TerminalConfig:
        """The accounting section against the points and the factor library (messages name
        the field, e.g. ``accounting.units[0].sources[1].fuel``)."""
        if self.accounting is not None:
            from reference_terminal.accounting.bindings import check  # noqa: PLC0415

            check(self.accounting, self.points, self.virtual_points)
        return self

    def device(self, device_id: str) -> Device:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)


def load_config(path: str | Path) -> TerminalConfig:
    path = Path(path)
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
        return TerminalConfig.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_input.where(str(path), exc)) from None
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError(
            f"{path}: invalid terminal configuration\n" + "\n".join(problems)
        ) from None

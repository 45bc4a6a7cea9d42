"""A fleet file as validated data: the plant, its serial buses, its meters and their faults.

Every meter point names a plant quantity (``grid.energy_import_kwh``) and the resolution the
meter shows it with; the fleet checks that every named quantity, bus and meter exists.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.fleet.accounting import Accounting
from simulators.plant.sources import quantities
from simulators.plant.spec import Identifier, PlantSpec


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MeterId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class Point(Strict):
    """One value a meter exposes: which plant quantity, and how the meter shows it."""

    quantity: str
    #: Decimal places the meter shows (its resolution; ISC-2 §9.3 "same significant digits").
    decimals: int = Field(2, ge=0, le=6)
    #: Counters truncate (a register shows whole units passed); instruments round.
    rounding: Literal["floor", "half_even"] = "half_even"
    #: Meter full scale: a counter rolls over to zero past it (CSMT §8.2.2). None: no limit.
    full_scale: Decimal | None = None


class NamedPoint(Point):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")


# ---- serial buses --------------------------------------------------------------------------


class Bus(Strict):
    """An RS-485 bus: the terminal opens ``link`` (a pty); every meter on it shares the line."""

    id: Identifier
    protocol: Literal["modbus-rtu", "dlt645", "cjt188"]
    baud: int = Field(9600, ge=300, le=921600)
    #: data bits, parity (N/E/O), stop bits — DL/T 645 and CJ/T 188 use 8E1, Modbus RTU 8N1/8E1.
    framing: Annotated[str, Field(pattern=r"^[78][NEO][12]$")] = "8E1"
    #: Where to put a symlink to the terminal's end of the pty (None: only the /dev/pts path).
    link: str | None = None
    #: Meter answer delay, uniform in this range (DL/T 645: 20–500 ms allowed).
    response_delay_ms: tuple[float, float] = (20.0, 80.0)

    @property
    def bits_per_char(self) -> int:
        data, parity, stop = int(self.framing[0]), self.framing[1], int(self.framing[2])
        return 1 + data + (parity != "N") + stop

    @model_validator(mode="after")
    def _delays(self) -> Bus:
        low, high = self.response_delay_ms
        if not 0 <= low <= high <= 10_000:
            raise ValueError("response_delay_ms must be (low, high) with 0 <= low <= high <= 10000")
        return self


# ---- meters ---------------------------------------------------------------------------------


class Nameplate(Strict):
    """What the plant's meter ledger says of a meter (ISC-2 §7.3.1 "活动数据来源一览表": name and
    model, location, accuracy, calibration interval); the terminal lists it as configured."""

    model: str = Field(min_length=1)
    location: str = Field(min_length=1)
    accuracy: str = Field(min_length=1, description="accuracy class, e.g. 0.5S, 1.0, 2 %")
    calibration_interval_days: int = Field(ge=1, le=3650)
    calibrated_on: date | None = None
    #: Measurement level (GB 17167: 1 enterprise boundary, 2 unit, 3 equipment).
    level: int | None = Field(None, ge=1, le=3)


class Register(Point):
    """A Modbus register (or register pair/quad) holding one point."""

    address: int = Field(ge=0, le=65535)
    table: Literal["holding", "input"] = "holding"
    type: Literal["uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
    word_order: Literal["big", "little"] = "big"
    #: Integer registers hold round(value / scale); e.g. scale 0.01 keeps two decimals.
    scale: Decimal = Decimal(1)

    @property
    def words(self) -> int:
        return {"16": 1, "32": 2, "64": 4}[self.type[-2:]]


class ModbusTcpMeter(Strict):
    id: MeterId
    protocol: Literal["modbus-tcp"]
    nameplate: Nameplate | None = None
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0: any free port")
    unit_id: int = Field(1, ge=0, le=247)
    registers: list[Register] = Field(min_length=1)


class ModbusRtuMeter(Strict):
    id: MeterId
    protocol: Literal["modbus-rtu"]
    nameplate: Nameplate | None = None
    bus: Identifier
    unit_id: int = Field(ge=1, le=247)
    registers: list[Register] = Field(min_length=1)


class Dlt645Point(Point):
    """A data identifier; block DIs (0201FF00 …) list one quantity per element."""

    di: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$|^[0-9A-Fa-f]{8}$")]
    quantity: str = ""
    quantities: list[str] = []

    @model_validator(mode="after")
    def _one_or_block(self) -> Dlt645Point:
        if bool(self.quantity) == bool(self.quantities):
            raise ValueError("give either quantity (one value) or quantities (a block DI)")
        return self


class Dlt645Meter(Strict):
    id: MeterId
    protocol: Literal["dlt645-2007", "dlt645-1997"]
    nameplate: Nameplate | None = None
    bus: Identifier
    address: Annotated[str, Field(pattern=r"^[0-9]{12}$")]
    points: list[Dlt645Point] = Field(min_length=1)


class Cjt188Meter(Strict):
    id: MeterId
    protocol: Literal["cjt188"]
    nameplate: Nameplate | None = None
    bus: Identifier
    meter_type: Literal["water", "hot_water", "gas", "heat", "cooling"]
    address: Annotated[str, Field(pattern=r"^[0-9]{14}$")]
    #: Reading fields → points: water/gas ``current_total`` (and ``settlement_total``); heat
    #: ``current_heat``, ``heat_power``, ``flow``, ``total_flow``, ``supply_temp``, ``return_temp``.
    fields: dict[str, Point] = Field(min_length=1)
    di_order: Literal["standard", "swapped"] = "standard"
    unit_first: bool = False


class OpcUaServer(Strict):
    id: MeterId
    protocol: Literal["opcua"]
    nameplate: Nameplate | None = None
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    namespace: str = "urn:carbench:plant"
    #: How often the server refreshes its tags from the plant.
    update_s: float = Field(1.0, gt=0, le=3600)
    tags: list[NamedPoint] = Field(min_length=1)


class MqttCollector(Strict):
    id: MeterId
    protocol: Literal["mqtt"]
    nameplate: Nameplate | None = None
    topic: str = Field(pattern=r"^[^#+]+$")
    interval_s: float = Field(10.0, gt=0, le=86400)
    qos: Literal[0, 1, 2] = 1
    points: list[NamedPoint] = Field(min_length=1)


class HttpsCollector(Strict):
    id: MeterId
    protocol: Literal["https"]
    nameplate: Nameplate | None = None
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    #: Push readings here every ``interval_s`` (the terminal's HTTPS intake); None: pull only.
    push_url: str | None = None
    interval_s: float = Field(60.0, gt=0, le=86400)
    points: list[NamedPoint] = Field(min_length=1)


class ManualEntry(Strict):
    """Data with no online source, written as CSV files for the terminal's manual import."""

    id: MeterId
    protocol: Literal["manual"]
    nameplate: Nameplate | None = None
    period: Literal["daily", "monthly"] = "monthly"
    points: list[NamedPoint] = Field(min_length=1)


class AnalogChannel(Point):
    """One 4–20 mA input of an analog module: a transmitter ranged ``low``..``high`` on its loop
    (4 mA at ``low``, 20 mA at ``high``), read as counts in input register ``channel``.

    ``decimals`` is the resolution the chain is read at: one count is (high − low) / 16000, so
    a range of 0–160 shows 0.01 a count (see ``simulators.meters.analog``)."""

    channel: int = Field(ge=0, le=63)
    low: Decimal
    high: Decimal
    #: The module's counts are scaled, not cut: the terminal rounds its scaled value half-even.
    rounding: Literal["half_even"] = "half_even"

    @model_validator(mode="after")
    def _range(self) -> AnalogChannel:
        if self.high <= self.low:
            raise ValueError(
                f"channel {self.channel}: high {self.high} is not above low {self.low}"
            )
        return self


class AnalogModule(Strict):
    """A 4–20 mA analog input module on Modbus TCP (one unit id, one input register per
    channel, counts in µA): the transmitters of quantities no meter of their own reports."""

    id: MeterId
    protocol: Literal["analog"]
    nameplate: Nameplate | None = None
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0: any free port")
    unit_id: int = Field(1, ge=0, le=247)
    channels: list[AnalogChannel] = Field(min_length=1)

    @model_validator(mode="after")
    def _channels(self) -> AnalogModule:
        used = [c.channel for c in self.channels]
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise ValueError(f"channels used twice: {twice}")
        return self


class SqlHistorian(Strict):
    """A plant system's database (MES, DCS historian) that records its tags every
    ``interval_s``: tables ``<prefix>_tags``, ``<prefix>_history`` and ``<prefix>_live``
    (``simulators.meters.sql_historian``), read by the terminal with SQL."""

    id: MeterId
    protocol: Literal["sql"]
    nameplate: Nameplate | None = None
    #: A SQLAlchemy URL (e.g. ``postgresql+psycopg://bench@localhost/plant``); None: a SQLite
    #: file in the run's work directory. The bench owns the tables: they are emptied at start.
    url: str | None = None
    prefix: Identifier = "plant"
    interval_s: float = Field(10.0, gt=0, le=86400)
    #: History older than this is deleted (a historian's archive retention).
    history_days: float = Field(31.0, gt=0, le=3660)
    tags: list[NamedPoint] = Field(min_length=1)


Meter = Annotated[
    ModbusTcpMeter
    | ModbusRtuMeter
    | Dlt645Meter
    | Cjt188Meter
    | OpcUaServer
    | MqttCollector
    | HttpsCollector
    | ManualEntry
    | AnalogModule
    | SqlHistorian,
    Field(discriminator="protocol"),
]

# ---- faults -----------------------------------------------------------------------------------

FaultKind = Literal[
    "no_answer",
    "bad_checksum",
    "garbled",
    "truncated",
    "slow",
    "frozen",
    "spike",
    "rollover",
    "replaced",
    "clock_drift",
    "exception",
]
#: Faults in how a meter answers (the bytes), as against what it reads (the values).
COMMUNICATION_FAULTS = frozenset(
    {"no_answer", "bad_checksum", "garbled", "truncated", "slow", "exception"}
)


class Fault(Strict):
    """A fault of one meter over a time window (from/until: offsets from the fleet's start)."""

    meter: MeterId
    kind: FaultKind
    start: timedelta = timedelta(0)
    end: timedelta | None = None  # None: until the end of the run
    #: The fraction of requests affected (communication faults).
    probability: float = Field(1.0, gt=0, le=1)
    #: slow: the answer delay; spike: the factor applied; clock_drift: seconds per day;
    #: rollover: how far below full scale the counter stands when the window opens.
    delay_ms: float = Field(1500.0, ge=0, le=60_000)
    factor: float = 10.0
    drift_s_per_day: float = 30.0
    headroom: Decimal = Decimal("1")
    #: Only these points (quantity names); empty: all of the meter's points.
    quantities: list[str] = []

    @model_validator(mode="after")
    def _window(self) -> Fault:
        if self.end is not None and self.end <= self.start:
            raise ValueError("a fault's end must come after its start")
        return self


# ---- the fleet --------------------------------------------------------------------------------


class Fleet(Strict):
    name: str
    description: str = ""
    seed: int = 0
    #: When the plant starts (its counters are zero then); needs a time zone.
    start: datetime
    plant: PlantSpec
    buses: list[Bus] = []
    meters: list[Meter] = Field(min_length=1)
    faults: list[Fault] = []
    #: How the plant is accounted for (sources read by which meters, their methods).
    accounting: Accounting | None = None

    @model_validator(mode="after")
    def _accounting_reads(self) -> Fleet:
        if self.accounting is None:
            return self
        shown = {m.id: set(point_quantities(m)) for m in self.meters}
        for where, read in self.accounting.reads():
            if read.meter not in shown:
                raise ValueError(f"{where}.meter: no meter {read.meter!r}")
            if read.quantity not in shown[read.meter]:
                raise ValueError(
                    f"{where}.quantity: meter {read.meter} does not show {read.quantity!r}"
                )
        return self

    @model_validator(mode="after")
    def _references(self) -> Fleet:
        # Messages start with the path of the offending field: the loader turns it into a line.
        if self.start.tzinfo is None:
            raise ValueError("start: needs a time zone, e.g. 2026-01-01T00:00:00+08:00")
        kinds = {q.name: q.kind for source in self.plant.sources for q in quantities(source)}
        known = set(kinds)
        buses: dict[str, Bus] = {}
        for i, bus in enumerate(self.buses):
            if bus.id in buses:
                raise ValueError(f"buses[{i}].id: {bus.id!r} is used twice")
            buses[bus.id] = bus
        ids: set[str] = set()
        for i, meter in enumerate(self.meters):
            if meter.id in ids:
                raise ValueError(f"meters[{i}].id: {meter.id!r} is used twice")
            ids.add(meter.id)
            bus_id = getattr(meter, "bus", None)
            if bus_id is not None:
                on = buses.get(bus_id)
                if on is None:
                    raise ValueError(f"meters[{i}].bus: no bus {bus_id!r} in buses")
                family = "modbus-rtu" if meter.protocol == "modbus-rtu" else meter.protocol[:6]
                if on.protocol != family:
                    raise ValueError(
                        f"meters[{i}].bus: a {meter.protocol} meter on {on.protocol} bus {on.id}"
                    )
            for name in point_quantities(meter):
                if name not in known:
                    raise ValueError(f"meters[{i}]: no plant quantity {name!r} (meter {meter.id})")
        databases: dict[tuple[str, str], str] = {}
        for i, meter in enumerate(self.meters):
            if isinstance(meter, AnalogModule):
                for channel in meter.channels:
                    if kinds.get(channel.quantity) == "total":
                        raise ValueError(
                            f"meters[{i}]: channel {channel.channel} carries the counter "
                            f"{channel.quantity!r}; a 4–20 mA loop carries a rate or a state"
                        )
            if isinstance(meter, SqlHistorian) and meter.url is not None:
                key = (meter.url, meter.prefix)
                if key in databases:
                    raise ValueError(
                        f"meters[{i}].prefix: {meter.prefix!r} is {databases[key]}'s tables "
                        "in the same database"
                    )
                databases[key] = meter.id
        for i, fault in enumerate(self.faults):
            if fault.meter not in ids:
                raise ValueError(f"faults[{i}].meter: no meter {fault.meter!r}")
        return self

    def meter(self, meter_id: str) -> Meter:
        for meter in self.meters:
            if meter.id == meter_id:
                return meter
        raise KeyError(meter_id)

    def bus(self, bus_id: str) -> Bus:
        for bus in self.buses:
            if bus.id == bus_id:
                return bus
        raise KeyError(bus_id)


def points_of(meter: Meter) -> list[Point]:
    match meter:
        case ModbusTcpMeter() | ModbusRtuMeter():
            return list(meter.registers)
        case Dlt645Meter():
            return list(meter.points)
        case Cjt188Meter():
            return list(meter.fields.values())
        case OpcUaServer():
            return list(meter.tags)
        case MqttCollector() | HttpsCollector() | ManualEntry():
            return list(meter.points)
        case AnalogModule():
            return list(meter.channels)
        case SqlHistorian():
            return list(meter.tags)
    raise TypeError(meter)


def point_quantities(meter: Meter) -> list[str]:
    out: list[str] = []
    for point in points_of(meter):
        if isinstance(point, Dlt645Point) and point.quantities:
            out += point.quantities
        else:
            out.append(point.quantity)
    return out

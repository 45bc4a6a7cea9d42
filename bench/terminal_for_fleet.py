"""A terminal configuration that reads every meter of a running fleet: the wiring a technician
would do on site, done from the fleet's endpoints (the bench knows where each meter listens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from reference_terminal.config import TerminalConfig
from simulators.fleet import FleetRuntime
from simulators.fleet.schema import (
    AnalogModule,
    Cjt188Meter,
    Dlt645Meter,
    HttpsCollector,
    ManualEntry,
    ModbusRtuMeter,
    ModbusTcpMeter,
    MqttCollector,
    OpcUaServer,
    Point,
    SqlHistorian,
)
from simulators.meters.analog import COUNTS_4MA, COUNTS_20MA
from simulators.meters.sql_historian import live_query

#: Acquisition periods by kind of link: serial buses are slow, networks fast.
PERIODS = {"serial": 5.0, "network": 2.0, "push": 10.0}
#: The bench's factor library: the terminal's built-in one, as far as the bench knows.
FACTORS = Path(__file__).resolve().parents[1] / "fixtures" / "factors"
METHOD_FIELDS = ("fuel", "factor", "ncv", "carbon_content", "oxidation", "purity")


def _endpoint(fleet: FleetRuntime, meter_id: str) -> str:
    for endpoint in fleet.endpoints:
        if endpoint.meter == meter_id:
            return endpoint.address
    raise KeyError(f"meter {meter_id} has not announced where it listens")


def _point(
    fleet: FleetRuntime, point_id: str, point: Point, group: str, source: dict[str, Any]
) -> dict[str, Any]:
    total = fleet.plant.quantity(point.quantity).kind == "total"
    return {
        "id": point_id,
        "name": point.quantity,
        "unit": fleet.plant.quantity(point.quantity).unit,
        "kind": "counter" if total else "gauge",
        "group": group,
        "decimals": point.decimals,
        "full_scale": None if point.full_scale is None else str(point.full_scale),
        "source": source,
        "activity": point.quantity,  # the plant quantity is the activity datum it measures
    }


def _registers(
    fleet: FleetRuntime, meter: ModbusTcpMeter | ModbusRtuMeter, group: str
) -> list[dict[str, Any]]:
    """Terminal points for a Modbus meter's registers, with the same layout."""
    return [
        _point(
            fleet,
            f"{meter.id}.{r.address}",
            r,
            group,
            {
                "device": meter.id,
                "register": {
                    "table": r.table,
                    "address": r.address,
                    "type": r.type,
                    "word_order": r.word_order,
                    "scale": str(r.scale),
                },
            },
        )
        for r in meter.registers
    ]


def _modbus_tcp_device(meter_id: str, where: str, unit_id: int) -> dict[str, Any]:
    host, _, rest = where.partition(":")
    return {
        "id": meter_id,
        "protocol": "modbus-tcp",
        "host": host,
        "port": int(rest.split()[0]),
        "unit_id": unit_id,
    }


def _analog_channels(fleet: FleetRuntime, meter: AnalogModule) -> list[dict[str, Any]]:
    """Terminal points for an analog module's channels: the input register of counts, scaled
    4–20 mA onto the transmitter's range, and that range as the point's valid range (a count
    outside it is a saturated or broken loop, CSMT §8.1.1)."""
    out = []
    for channel in meter.channels:
        point = _point(
            fleet,
            f"{meter.id}.ch{channel.channel}",
            channel,
            "network",
            {
                "device": meter.id,
                "register": {"table": "input", "address": channel.channel, "type": "uint16"},
                "analog": {
                    "raw_min": str(COUNTS_4MA),
                    "raw_max": str(COUNTS_20MA),
                    "low": str(channel.low),
                    "high": str(channel.high),
                },
            },
        )
        out.append(point | {"min": str(channel.low), "max": str(channel.high)})
    return out


def terminal_config(fleet: FleetRuntime, *, storage_url: str, **periods: float) -> TerminalConfig:
    """Devices and points for every meter of ``fleet`` (manual entries become manual points)."""
    period = {**PERIODS, **periods}
    buses: dict[str, dict[str, Any]] = {}
    devices: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for meter in fleet.spec.meters:
        where = _endpoint(fleet, meter.id) if not isinstance(meter, ManualEntry) else ""
        if hasattr(meter, "bus"):
            bus = fleet.spec.bus(meter.bus)
            buses.setdefault(
                bus.id,
                {
                    "id": bus.id,
                    "port": where.split()[0],
                    "protocol": bus.protocol,
                    "baud": bus.baud,
                    "framing": bus.framing,
                },
            )
        match meter:
            case ModbusTcpMeter():
                devices.append(_modbus_tcp_device(meter.id, where, meter.unit_id))
                points += _registers(fleet, meter, "network")
            case ModbusRtuMeter():
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "modbus-rtu",
                        "bus": meter.bus,
                        "unit_id": meter.unit_id,
                        "timeout_s": 2.0,
                    }
                )
                points += _registers(fleet, meter, "serial")
            case Dlt645Meter():
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": meter.protocol,
                        "bus": meter.bus,
                        "address": meter.address,
                        "timeout_s": 2.0,
                    }
                )
                for dp in meter.points:
                    names = dp.quantities or [dp.quantity]
                    for index, quantity in enumerate(names):
                        single = dp.model_copy(update={"quantity": quantity, "quantities": []})
                        suffix = f"{dp.di}" if len(names) == 1 else f"{dp.di}.{index}"
                        points.append(
                            _point(
                                fleet,
                                f"{meter.id}.{suffix}",
                                single,
                                "serial",
                                {"device": meter.id, "di": dp.di, "index": index},
                            )
                        )
            case Cjt188Meter():
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "cjt188",
                        "bus": meter.bus,
                        "meter_type": meter.meter_type,
                        "address": meter.address,
                        "di_order": meter.di_order,
                        "unit_first": meter.unit_first,
                        "timeout_s": 2.0,
                    }
                )
                for name, field in meter.fields.items():
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{name}",
                            field,
                            "serial",
                            {"device": meter.id, "field": name},
                        )
                    )
            case OpcUaServer():
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "opcua",
                        "endpoint": where,
                        "namespace": meter.namespace,
                    }
                )
                for tag in meter.tags:
                    node = f"ns=2;s={meter.id}.{tag.name}"
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{tag.name}",
                            tag,
                            "network",
                            {"device": meter.id, "node": node},
                        )
                    )
            case MqttCollector():
                broker, _, topic = where.removeprefix("mqtt://").partition("/")
                host, _, port = broker.partition(":")
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "mqtt",
                        "host": host,
                        "port": int(port),
                        "topic": topic,
                    }
                )
                for named in meter.points:
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{named.name}",
                            named,
                            "push",
                            {"device": meter.id, "name": named.name},
                        )
                    )
            case HttpsCollector():
                url, _, ca = where.partition(" (ca: ")
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "https",
                        "url": f"{url}/readings",
                        "ca_file": ca.rstrip(")"),
                        "mode": "pull",
                    }
                )
                for named in meter.points:
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{named.name}",
                            named,
                            "network",
                            {"device": meter.id, "name": named.name},
                        )
                    )
            case AnalogModule():
                devices.append(_modbus_tcp_device(meter.id, where, meter.unit_id))
                points += _analog_channels(fleet, meter)
            case SqlHistorian():
                devices.append(
                    {
                        "id": meter.id,
                        "protocol": "sql",
                        "url": where,
                        "query": live_query(meter.prefix),
                        "timeout_s": 5.0,
                    }
                )
                for tag in meter.tags:
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{tag.name}",
                            tag,
                            "network",
                            {"device": meter.id, "name": tag.name},
                        )
                    )
            case ManualEntry():
                devices.append({"id": meter.id, "protocol": "manual"})
                for named in meter.points:
                    points.append(
                        _point(
                            fleet,
                            f"{meter.id}.{named.name}",
                            named,
                            "push",
                            {"device": meter.id, "name": named.name},
                        )
                    )
        if meter.nameplate is not None:  # the meter ledger, as the source list shows it
            devices[-1].update(meter.nameplate.model_dump(mode="json", exclude_none=True))
    data: dict[str, Any] = {
        "name": f"reference terminal for fleet {fleet.spec.name}",
        "buses": list(buses.values()),
        "devices": devices,
        "groups": [{"id": kind, "period_s": seconds} for kind, seconds in period.items()],
        "points": points,
        "storage": {"url": storage_url},
    }
    accounting = accounting_section(fleet, devices, points, storage_url)
    if accounting is not None:
        data["accounting"] = accounting
    return TerminalConfig.model_validate(data)


def accounting_section(
    fleet: FleetRuntime,
    devices: Sequence[dict[str, Any]],
    points: Sequence[dict[str, Any]],
    storage_url: str,
) -> dict[str, Any] | None:
    """The terminal's ``accounting`` section for the fleet's (None: the fleet has none): each
    source's reads become the terminal points reading them, the bench's library is the built-in
    one, imported libraries go beside the store, and every metered source point gets an alarm
    on a jump of its minute emission (ISC-2 §7.2.6)."""
    acc = fleet.spec.accounting
    if acc is None:
        return None
    by_read = {(p["source"]["device"], p["name"]): p["id"] for p in points}
    manual = {d["id"] for d in devices if d["protocol"] == "manual"}
    units, alarms = [], []
    for unit in acc.units:
        sources = []
        for source in unit.sources:
            bound = [by_read[(r.meter, r.quantity)] for r in source.reads]
            entry: dict[str, Any] = {
                "id": source.id,
                "name": source.name,
                "kind": source.kind,
                "points": bound,
            }
            entry |= {f: getattr(source, f) for f in METHOD_FIELDS if getattr(source, f)}
            sources.append(entry)
            for read, point in zip(source.reads, bound, strict=True):
                if read.meter not in manual:
                    alarms.append(
                        {
                            "id": f"jump-{point}",
                            "type": "anomaly",
                            "point": point,
                            "period": "minute",
                            "ratio": "5",
                            "window": 30,
                            "min_history": 6,
                            "floor": "0.001",
                        }
                    )
        units.append({"id": unit.id, "name": unit.name, "sources": sources})
    store_dir = Path(storage_url.removeprefix("sqlite:///")).parent
    return {
        "enterprise": acc.enterprise.model_dump(),
        "library": [str(FACTORS)],
        "imports_dir": str(store_dir / "factors"),
        "vintage": acc.vintage,
        "description": acc.description,
        "units": units,
        "bases": {
            name: {
                "points": [by_read[(r.meter, r.quantity)] for r in basis.reads],
                "name": basis.name,
                "unit": basis.unit,
            }
            for name, basis in acc.bases.items()
        },
        "alarms": alarms,
    }


def item_codes(points: Sequence[Any]) -> list[dict[str, Any]]:
    """A CSMT §7.2 item code per point (cement works, one source number each), as the
    ``uplink.codes`` entries of a terminal configuration."""
    return [
        {
            "point": p.id,
            "code": {
                "industry": "C3011",
                "activity": "03",
                "source": f"{n:03d}",
                "parameter": "e01",
                "point": 1,
            },
        }
        for n, p in enumerate(points, start=1)
    ]


def with_ranges_and_backups(
    data: dict[str, Any],
    ranges: Mapping[str, tuple[Decimal, Decimal]],
    backups: Mapping[str, str],
) -> dict[str, Any]:
    """``data`` (a terminal configuration as JSON data) set up as a lab sets the box up for a
    target's test parameters: each point of ``ranges`` with its valid ``min``/``max`` (CSMT
    §8.1.1), each point of ``backups`` with the source of the point named there as its
    ``backup`` (ISC-2 §7.2.3(1)). A point this configuration lacks is left out (the PIXIT names
    the quick fleet's points): the tests that need it say so."""
    points = {p["id"]: dict(p) for p in data.get("points", [])}
    for point, (low, high) in ranges.items():
        if point in points:
            points[point] |= {"min": str(low), "max": str(high)}
    for point, backup in backups.items():
        if point in points and backup in points:
            points[point]["backup"] = dict(points[backup]["source"])
    return {**data, "points": list(points.values())}

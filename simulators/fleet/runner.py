"""Running a fleet: every meter served on its protocol until cancelled.

``run_fleet`` is the whole fleet as one task (a TaskGroup of the protocol servers);
``running_fleet`` is the same as an async context manager that returns once every meter is
listening — what tests and the ``carbench fleet up`` command use. ``running_fleet(serve=False)``
serves no protocol at all, for a bench that reads the meters' models
(``bench/scenario/model_link.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from common.clock import Clock, RealClock
from simulators.fleet.loader import load_fleet
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import (
    AnalogModule,
    Cjt188Meter,
    Dlt645Meter,
    Fleet,
    HttpsCollector,
    ManualEntry,
    ModbusRtuMeter,
    ModbusTcpMeter,
    MqttCollector,
    OpcUaServer,
    SqlHistorian,
)
from simulators.meters.broker import private_broker
from simulators.meters.https import serve_https
from simulators.meters.manual import write_manual_entries
from simulators.meters.modbus_tcp import endpoint, serve_modbus_tcp
from simulators.meters.mqtt import serve_mqtt
from simulators.meters.opcua import endpoint_path, serve_opcua
from simulators.meters.serial_buses import serve_serial_buses
from simulators.meters.sql_historian import serve_sql_historians
from simulators.tasks import cancel_and_wait


class FleetStartError(RuntimeError):
    """The fleet did not come up: which meters never started listening, and why."""


async def run_fleet(
    fleet: FleetRuntime, *, manual_dir: Path | None = None, work_dir: Path | None = None
) -> None:
    """Serve every meter of ``fleet`` until cancelled; manual-entry CSVs go to ``manual_dir``,
    plant databases (SQLite) to ``work_dir`` (None: a temporary directory while it runs)."""
    protocols = {meter.spec.protocol for meter in fleet.meters.values()}
    async with contextlib.AsyncExitStack() as stack:
        if "sql" in protocols and work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-")))
        broker = None
        if "mqtt" in protocols:  # a private broker: the machine's own is never used
            broker = await stack.enter_async_context(private_broker())
        if "manual" in protocols and manual_dir is not None:
            for path in write_manual_entries(fleet, manual_dir, until=fleet.now()):
                fleet.listening(path.stem, "manual", str(path))
        async with asyncio.TaskGroup() as group:
            group.create_task(_keep_plant_ready(fleet), name="plant")
            if "modbus-tcp" in protocols or "analog" in protocols:
                group.create_task(serve_modbus_tcp(fleet), name="modbus-tcp")
            if fleet.spec.buses:
                group.create_task(serve_serial_buses(fleet), name="serial buses")
            if "opcua" in protocols:
                group.create_task(serve_opcua(fleet), name="opcua")
            if broker is not None:
                group.create_task(serve_mqtt(fleet, broker), name="mqtt")
            if "https" in protocols:
                group.create_task(serve_https(fleet), name="https")
            if "sql" in protocols:
                assert work_dir is not None
                group.create_task(serve_sql_historians(fleet, work_dir), name="sql")


async def run_unserved(fleet: FleetRuntime, *, manual_dir: Path | None = None) -> None:
    """Serve no meter: each says where it would listen (:func:`unserved_endpoint`), manual
    entries are written as ``run_fleet`` writes them, and the plant is kept ready, until
    cancelled. Starting the servers (an OPC UA address space, a broker, TLS, ptys) took half
    of a model-read scenario's start, for nobody."""
    if manual_dir is not None:
        for path in write_manual_entries(fleet, manual_dir, until=fleet.now()):
            fleet.listening(path.stem, "manual", str(path))
    for meter in fleet.meters.values():
        spec = meter.spec
        if isinstance(spec, ManualEntry):
            continue
        where = unserved_endpoint(meter)
        if isinstance(spec, _ON_A_BUS):  # the bus is where its meters are
            fleet.listening(spec.bus, fleet.spec.bus(spec.bus).protocol, where)
        fleet.listening(meter.id, spec.protocol, where)
    await _keep_plant_ready(fleet)


#: The host an unserved meter names: nothing listens there, and nothing dials it.
UNSERVED_HOST = "model"
_ON_A_BUS = (ModbusRtuMeter, Dlt645Meter, Cjt188Meter)


def unserved_endpoint(meter: MeterRuntime) -> str:
    """The address an unserved meter announces, in its protocol server's form (a terminal's
    configuration is made from it as from a served one's)."""
    spec = meter.spec
    if isinstance(spec, _ON_A_BUS):
        return f"{UNSERVED_HOST}:{spec.bus}"
    match spec:
        case ModbusTcpMeter() | AnalogModule():
            return endpoint(UNSERVED_HOST, 502, spec.unit_id)
        case OpcUaServer():
            return f"opc.tcp://{UNSERVED_HOST}:4840{endpoint_path(meter.id)}"
        case MqttCollector():
            return f"mqtt://{UNSERVED_HOST}:1883/{spec.topic}"
        case HttpsCollector():
            return f"https://{UNSERVED_HOST}:443 (ca: none)"
        case SqlHistorian():
            return f"sqlite:///{UNSERVED_HOST}-{meter.id}.db"
    raise ValueError(f"meter {meter.id}: a {spec.protocol} meter listens nowhere")


async def _keep_plant_ready(fleet: FleetRuntime) -> None:
    """Compute each plant day before the meters need it (a day costs every source a few ms;
    at local midnight every meter would otherwise wait for all of them at once)."""
    while True:
        fleet.plant.prepare(fleet.now())
        fleet.plant.prepare(fleet.now() + PREPARE_AHEAD_S)
        await fleet.clock.sleep(PREPARE_AHEAD_S / 2)


PREPARE_AHEAD_S = 1800.0


def waiting_for(fleet: FleetRuntime) -> set[str]:
    """Meters (or, for serial meters, their buses) that have not announced an endpoint yet."""
    announced = {endpoint.meter for endpoint in fleet.endpoints}
    missing = set()
    for meter in fleet.meters.values():
        if meter.spec.protocol == "manual":
            continue
        bus = getattr(meter.spec, "bus", None)
        if meter.id not in announced and (bus is None or bus not in announced):
            missing.add(meter.id)
    return missing


@contextlib.asynccontextmanager
async def running_fleet(
    spec: Fleet | str | Path,
    *,
    clock: Clock | None = None,
    manual_dir: Path | None = None,
    work_dir: Path | None = None,
    timeout: float = 60.0,
    serial_pacing: Literal["char", "frame"] = "char",
    opcua_refresh: Literal["periodic", "on_read"] = "periodic",
    push: bool = True,
    serve: bool = True,
) -> AsyncIterator[FleetRuntime]:
    """Start the fleet, wait until every meter listens, yield it; stop it on exit. Without
    ``serve``, no meter is served on its protocol (:func:`run_unserved`)."""
    if not isinstance(spec, Fleet):
        spec = load_fleet(spec)
    fleet = FleetRuntime(
        spec,
        clock or RealClock(),
        serial_pacing=serial_pacing,
        opcua_refresh=opcua_refresh,
        push=push,
    )
    running = (
        run_fleet(fleet, manual_dir=manual_dir, work_dir=work_dir)
        if serve
        else run_unserved(fleet, manual_dir=manual_dir)
    )
    task = asyncio.create_task(running, name=f"fleet {spec.name}")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while waiting_for(fleet):
            if task.done():
                task.result()  # raises what stopped it
                raise FleetStartError("the fleet stopped before every meter was listening")
            if loop.time() > deadline:
                missing = ", ".join(sorted(waiting_for(fleet))[:20])
                raise FleetStartError(f"not listening after {timeout:g} s: {missing}")
            await asyncio.sleep(0.02)  # polling the bench's own start-up, not plant time
        yield fleet
    finally:
        await cancel_and_wait(task)

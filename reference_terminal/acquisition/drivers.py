"""Which driver serves which device: the one place that knows every acquisition protocol.

Polled devices (the scheduler calls ``driver.read`` every period)::

    buses = make_buses(config.buses, clock)
    drivers = {d.id: make_driver(d, buses=buses, clock=clock) for d in config.devices
               if is_polled(d)}

Push devices deliver by themselves to an async ``deliver(raws)`` callback (the scheduler's sink
has that shape)::

    for device in config.devices:
        if isinstance(device, MqttDevice):
            group.create_task(MqttIntake(device, requests_for(config, device.id), deliver,
                                         clock).run())
    intake = HttpsIntake()             # mount intake.router on the terminal's HTTPS app
    for device in https push devices:
        intake.add(device, requests_for(config, device.id), deliver)

Manual devices have no driver: values come through
:func:`~reference_terminal.acquisition.manual.enter_value` and
:func:`~reference_terminal.acquisition.manual.import_csv`.

The terminal takes its drivers from a :class:`Wiring`; :data:`WIRE` (these functions) is the
terminal as deployed. A bench may wire it otherwise (``bench/scenario/model_link.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from common.clock import Clock
from reference_terminal.acquisition.cjt188 import Cjt188Driver
from reference_terminal.acquisition.dlt645 import Dlt645Driver
from reference_terminal.acquisition.driver import Driver
from reference_terminal.acquisition.https import HttpsPullDriver
from reference_terminal.acquisition.modbus import ModbusRtuDriver, ModbusTcpDriver
from reference_terminal.acquisition.opcua import OpcUaDriver
from reference_terminal.acquisition.serial_port import BusArbiter
from reference_terminal.acquisition.sql import SqlDriver
from reference_terminal.config import (
    Cjt188Device,
    Device,
    Dlt645Device,
    HttpsDevice,
    ManualDevice,
    ModbusRtuDevice,
    ModbusTcpDevice,
    MqttDevice,
    OpcUaDevice,
    Point,
    SerialBus,
    Source,
    SqlDevice,
    TerminalConfig,
)

__all__ = ["WIRE", "Wiring", "is_polled", "make_buses", "make_driver", "requests_for"]


def is_polled(device: Device) -> bool:
    """Whether the scheduler reads ``device`` (False: it pushes, or is entered by hand)."""
    if isinstance(device, MqttDevice | ManualDevice):
        return False
    return not (isinstance(device, HttpsDevice) and device.mode == "push")


def make_buses(buses: Iterable[SerialBus], clock: Clock) -> dict[str, BusArbiter]:
    """One arbiter per serial bus; each opens its port on first use."""
    return {bus.id: BusArbiter(bus, clock) for bus in buses}


def _arbiter(device: Device, buses: Mapping[str, BusArbiter]) -> BusArbiter:
    bus = getattr(device, "bus", "")
    try:
        return buses[bus]
    except KeyError:
        raise ValueError(f"device {device.id}: no bus {bus!r} among {sorted(buses)}") from None


def make_driver(device: Device, *, buses: Mapping[str, BusArbiter], clock: Clock) -> Driver:
    """The driver of a polled device; ValueError for push and manual devices (see the module
    docstring) and for a serial device whose bus is missing or of another protocol."""
    match device:
        case ModbusTcpDevice():
            return ModbusTcpDriver(device, clock)
        case ModbusRtuDevice():
            return ModbusRtuDriver(device, _arbiter(device, buses), clock)
        case Dlt645Device():
            return Dlt645Driver(device, _arbiter(device, buses), clock)
        case Cjt188Device():
            return Cjt188Driver(device, _arbiter(device, buses), clock)
        case OpcUaDevice():
            return OpcUaDriver(device, clock)
        case SqlDevice():
            return SqlDriver(device, clock)
        case HttpsDevice() if device.mode == "pull":
            return HttpsPullDriver(device, clock)
    raise ValueError(
        f"device {device.id} ({device.protocol}) is not polled: "
        + (
            "values are entered by hand or imported"
            if isinstance(device, ManualDevice)
            else "it pushes (MqttIntake / HttpsIntake)"
        )
    )


class Wiring(Protocol):
    """How the terminal reaches its devices: which it polls, and each one's driver."""

    def polled(self, device: Device) -> bool: ...

    def driver(self, device: Device, *, buses: Mapping[str, BusArbiter], clock: Clock) -> Driver:
        """The driver of a device :meth:`polled` says is polled; ValueError if it cannot be
        built (the configuration is then refused)."""
        ...


class _Wire:
    """Each device over its own protocol (:func:`is_polled`, :func:`make_driver`)."""

    def polled(self, device: Device) -> bool:
        return is_polled(device)

    def driver(self, device: Device, *, buses: Mapping[str, BusArbiter], clock: Clock) -> Driver:
        return make_driver(device, buses=buses, clock=clock)


WIRE: Wiring = _Wire()


def requests_for(config: TerminalConfig, device_id: str) -> list[tuple[Point, Source]]:
    """Every (point, source) served by ``device_id``: points whose source, or whose backup,
    is on it (a push device delivers all of them with each message)."""
    out: list[tuple[Point, Source]] = []
    for point in config.points:
        if point.source.device == device_id:
            out.append((point, point.source))
        elif point.backup is not None and point.backup.device == device_id:
            out.append((point, point.backup))
    return out

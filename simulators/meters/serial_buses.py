"""Every serial bus of a fleet: one paced pty per bus, its meters answering on it.

The fleet runner calls :func:`serve_serial_buses` (runs until cancelled); tests and tools that
need the ptys first use :func:`running_serial_buses`. Each bus is announced with
``fleet.listening(bus_id, protocol, path)`` and each of its meters with
``fleet.listening(meter_id, meter protocol, "path unit 5" / "path address 000000000001" …)``,
where ``path`` is the bus's link if it names one, else its ``/dev/pts/N``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Final, Protocol

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Bus
from simulators.meters.cjt188_bus import Cjt188Bus
from simulators.meters.dlt645_bus import Dlt645Bus
from simulators.meters.modbus_rtu import ModbusRtuBus
from simulators.meters.serial_line import SerialLine

__all__ = ["BUS_SERVERS", "BusServer", "running_serial_buses", "serve_serial_buses"]


class BusServer(Protocol):
    """The meters of one bus, answering on its line."""

    @property
    def meters(self) -> list[tuple[MeterRuntime, str]]:
        """Each meter with where it is on the bus ("unit 5", "address 000000000001" …)."""
        ...

    async def serve(self, line: SerialLine) -> None:
        """Answer requests on ``line`` until cancelled."""
        ...


BUS_SERVERS: Final[dict[str, Callable[[FleetRuntime, Bus], BusServer]]] = {
    "modbus-rtu": ModbusRtuBus,
    "dlt645": Dlt645Bus,
    "cjt188": Cjt188Bus,
}


async def serve_serial_buses(
    fleet: FleetRuntime, *, ready: Callable[[Mapping[str, SerialLine]], None] | None = None
) -> None:
    """Serve every bus of ``fleet`` until cancelled; ptys and links are removed on the way out.

    Every bus's meters are checked before any pty opens (a bad point raises ``ValueError``
    naming the meter). ``ready`` is called with the open lines, by bus id, once all of them
    are listening.
    """
    servers = [(bus, BUS_SERVERS[bus.protocol](fleet, bus)) for bus in fleet.spec.buses]
    if not servers:
        return
    async with AsyncExitStack() as stack:
        lines: dict[str, SerialLine] = {}
        for bus, server in servers:
            line = await stack.enter_async_context(
                SerialLine(bus, fleet.clock, pacing=fleet.serial_pacing)
            )
            lines[bus.id] = line
            fleet.listening(bus.id, bus.protocol, line.address)
            for meter, where in server.meters:
                fleet.listening(meter.id, meter.spec.protocol, f"{line.address} {where}")
        async with asyncio.TaskGroup() as group:
            for bus, server in servers:
                group.create_task(server.serve(lines[bus.id]), name=f"serial bus {bus.id}")
            if ready is not None:
                ready(lines)


@asynccontextmanager
async def running_serial_buses(fleet: FleetRuntime) -> AsyncIterator[Mapping[str, SerialLine]]:
    """:func:`serve_serial_buses` in the background for the ``async with`` body, which gets the
    open lines by bus id; stopped (and cleaned up) when the body ends."""
    opened: asyncio.Future[Mapping[str, SerialLine]] = asyncio.get_running_loop().create_future()

    def on_ready(lines: Mapping[str, SerialLine]) -> None:
        opened.set_result(lines)

    task = asyncio.create_task(serve_serial_buses(fleet, ready=on_ready), name="serial buses")
    await asyncio.wait((opened, task), return_when=asyncio.FIRST_COMPLETED)
    if not opened.done():  # it ended before opening: a bad fleet (raises here), or no buses
        opened.cancel()
        await task
        lines: Mapping[str, SerialLine] = {}
    else:
        lines = opened.result()
    try:
        yield lines
    finally:
        task.cancel()
        await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError("the serial buses failed while in use") from task.exception()

"""OPC UA servers: a plant's DCS or energy-management system, as the terminal sees it.

One asyncua server per :class:`~simulators.fleet.schema.OpcUaServer` meter, endpoint
``opc.tcp://HOST:PORT/carbench/<meter id>`` (no security, anonymous: a lab DCS gateway; port 0
takes a free port, and the real one is what :meth:`FleetRuntime.listening` records). Address
space, in the meter's ``namespace``::

    Objects/<meter id>                 object,   NodeId ns=N;s=<meter id>
        <tag name>                     variable, NodeId ns=N;s=<meter id>.<tag name>, Double

Each tag is a **Double** holding the value the meter shows (``MeterRuntime.read``: the plant's
truth with value faults, cut to the tag's decimals and rounding). Double because it is what DCS
and EMS tags are, what every client reads, and it carries the value exactly enough: the shown
decimal has at most 15 significant digits, so ``repr(double)`` gives it back digit for digit.
(OPC UA's Decimal type is a structure most clients and asyncua do not decode.) The variable's
Description names the plant quantity, unit and resolution.

Every ``update_s`` the server reads all tags at ``fleet.now()`` and writes them with
SourceTimestamp = ServerTimestamp = that reading time (fleet time, not the wall clock, so
virtual time shows through; the server's own wall-clock ``CurrentTime`` writer is off and
``Server.ServerStatus.CurrentTime`` follows the fleet clock instead). With the fleet's
``opcua_refresh = "on_read"`` (long virtual-time runs) the refreshes a client could see are made
when it reads instead, to what the periodic loop would show then (:class:`_OnRead`): a
second's refresh no longer costs a clock step.

Communication faults, drawn once per refresh; a fault with ``quantities`` hits only those tags:

* ``no_answer`` → StatusCode ``BadCommunicationError``; the tag is not read, so its value stops
  updating (a Bad DataValue carries no value: OPC UA Part 4 has the value null when the status
  is Bad, and asyncua sends none);
* ``exception`` → ``BadSensorFailure``, likewise;
* ``garbled``, ``truncated``, ``bad_checksum`` (the DCS got a damaged answer from its field
  device; OPC UA itself never delivers damaged bytes) → ``UncertainLastUsableValue`` with the
  last good value;
* ``slow`` → the tags' new values are written ``delay_ms`` late, stamped with the reading time.

In every non-good case the timestamps are the time the failure was seen (Part 4: the source
timestamp of a non-good value is when the non-good status was recognised).
"""

from __future__ import annotations

import asyncio  # TaskGroup and serving until cancelled only: time comes from fleet.clock
import logging
import math
from copy import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from asyncua import ua as _ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.server.server import Server

from common.clock import time_at
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Fault, NamedPoint, OpcUaServer

log = logging.getLogger(__name__)

#: asyncua annotates with its own int/str/datetime subclasses (ua.Int32, ua.DateTime …) that
#: plain values never match, and re-exports its names implicitly; type its ``ua`` as Any.
ua: Any = _ua

#: Fault kind → the StatusCode its tags get (values stay as they were).
FAULT_STATUS: Final = {
    "no_answer": ua.StatusCodes.BadCommunicationError,
    "exception": ua.StatusCodes.BadSensorFailure,
    "garbled": ua.StatusCodes.UncertainLastUsableValue,
    "truncated": ua.StatusCodes.UncertainLastUsableValue,
    "bad_checksum": ua.StatusCodes.UncertainLastUsableValue,
}


def endpoint_path(meter_id: str) -> str:
    return f"/carbench/{meter_id}"


@dataclass
class _Tag:
    point: NamedPoint
    node_id: Any  # a ua.NodeId
    last: float = 0.0  # the last good value, kept through Uncertain statuses


async def serve_opcua(fleet: FleetRuntime) -> None:
    """Serve every OPC UA meter of the fleet until cancelled; each server stops cleanly.

    Returns at once if the fleet has no OPC UA meter.
    """
    meters = [(m, m.spec) for m in fleet.meters.values() if isinstance(m.spec, OpcUaServer)]
    async with asyncio.TaskGroup() as group:
        for meter, spec in meters:
            group.create_task(_serve_one(fleet, meter, spec))


async def _serve_one(fleet: FleetRuntime, meter: MeterRuntime, spec: OpcUaServer) -> None:
    server = Server()
    await server.init()  # fills the standard address space: the slow part (about a second)
    server.set_endpoint(f"opc.tcp://{spec.host}:{spec.port}{endpoint_path(meter.id)}")
    server.set_server_name(f"carbench OPC UA server {meter.id}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.set_identity_tokens([ua.AnonymousIdentityToken])  # no user tokens over no security
    server.disable_clock()  # it would write wall-clock time every second; ours is fleet.clock
    server.set_force_server_timestamp(False)  # likewise: we stamp with the reading time
    tags = await _build_address_space(fleet, meter, spec, server)
    await _refresh(fleet, meter, server, tags)  # values in place before any client connects
    try:
        await server.start()
    except OSError as error:
        raise OSError(
            error.errno,
            f"OPC UA server {meter.id}: cannot listen on {spec.host}:{spec.port}: {error}",
        ) from error
    try:
        await server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_StartTime)).write_value(
            ua.Variant(datetime.fromtimestamp(fleet.now(), UTC), ua.VariantType.DateTime)
        )
        port = server.bserver.port if server.bserver is not None else spec.port
        address = f"opc.tcp://{spec.host}:{port}{endpoint_path(meter.id)}"
        fleet.listening(meter.id, "opcua", address)
        log.info("OPC UA server %s at %s", meter.id, address)
        clock = fleet.clock
        due = clock.monotonic()
        if fleet.opcua_refresh == "on_read":
            on_read = _OnRead(fleet, meter, server, tags, spec.update_s, since=due)
            server.subscribe_server_callback(CallbackType.PreRead, on_read.catch_up)
            await asyncio.Event().wait()  # serve until cancelled
        while True:
            await fleet.pushing()  # paused with the pushing meters (FleetRuntime.push)
            due = max(due + spec.update_s, clock.monotonic())
            await clock.sleep(max(0.0, due - clock.monotonic()))
            await _refresh(fleet, meter, server, tags)
    finally:
        await server.stop()


async def _build_address_space(
    fleet: FleetRuntime, meter: MeterRuntime, spec: OpcUaServer, server: Server
) -> list[_Tag]:
    ns = await server.register_namespace(spec.namespace)
    folder = await server.nodes.objects.add_object(ua.NodeId(meter.id, ns), f"{ns}:{meter.id}")
    tags = []
    for point in spec.tags:
        node = await folder.add_variable(
            ua.NodeId(f"{meter.id}.{point.name}", ns),
            f"{ns}:{point.name}",
            ua.Variant(0.0, ua.VariantType.Double),
        )
        unit = fleet.plant.quantity(point.quantity).unit
        text = f"{point.quantity} [{unit}], {point.decimals} decimals ({point.rounding})"
        await node.write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(text)))
        )
        tags.append(_Tag(point, node.nodeid))
    return tags


def _hits(fault: Fault | None, point: NamedPoint) -> bool:
    return fault is not None and (not fault.quantities or point.quantity in fault.quantities)


Writes = list[tuple[_Tag, Any]]  # (tag, its ua.DataValue)


async def _refresh(
    fleet: FleetRuntime, meter: MeterRuntime, server: Server, tags: list[_Tag]
) -> None:
    t = fleet.now()
    fault = meter.communication_fault(t)
    now, late = _readings(meter, tags, t, fault)
    await _write(server, now)
    await _set_current_time(server, datetime.fromtimestamp(t, UTC))
    if late and fault is not None:
        await fleet.clock.sleep(fault.delay_ms / 1000.0)
        await _write(server, late)


def _readings(
    meter: MeterRuntime, tags: list[_Tag], t: float, fault: Fault | None
) -> tuple[Writes, Writes]:
    """One refresh at ``t`` under ``fault``: the writes made at once and those made late."""
    stamp = datetime.fromtimestamp(t, UTC)
    now: Writes = []
    late: Writes = []
    for tag in tags:
        hit = fault if _hits(fault, tag.point) else None
        status = ua.StatusCodes.Good
        if hit is not None and hit.kind in FAULT_STATUS:
            status = FAULT_STATUS[hit.kind]
        else:
            tag.last = float(meter.read(tag.point, t))
        value = ua.DataValue(
            ua.Variant(tag.last, ua.VariantType.Double),
            StatusCode=ua.StatusCode(status),
            SourceTimestamp=stamp,
            ServerTimestamp=stamp,
        )
        (late if hit is not None and hit.kind == "slow" else now).append((tag, value))
    return now, late


async def _write(server: Server, writes: Writes) -> None:
    for tag, value in writes:
        await server.write_attribute_value(tag.node_id, value)


def _delay(fault: Fault | None) -> float:
    """How long a refresh under ``fault`` writes its hit tags late (s)."""
    return fault.delay_ms / 1000.0 if fault is not None and fault.kind == "slow" else 0.0


class _OnRead:
    """The periodic refresh, made when a client reads (``opcua_refresh = "on_read"``).

    The loop refreshes at ``since + update_s``, ``+ 2 update_s`` …, a slow refresh holding the
    next one back until its late writes are done; each draws the meter's fault at its instant.
    A read at ``now`` sees the last refresh's writes made by then and, for tags it writes late
    and has not yet, the refresh before. So a read draws the faults of every refresh since the
    last read in order (skipping spans where no fault can play, where the loop draws nothing
    either), then writes those two refreshes. The tags show what the loop would show; what
    differs is that only these refreshes read the meter (fewer observations), and an
    Uncertain tag's last good value is the last one read.
    """

    def __init__(
        self,
        fleet: FleetRuntime,
        meter: MeterRuntime,
        server: Server,
        tags: list[_Tag],
        update_s: float,
        *,
        since: float,
    ) -> None:
        self.fleet = fleet
        self.meter = meter
        self.server = server
        self.tags = tags
        self.update_s = update_s
        self._next = since + update_s  # clock.monotonic() of the next refresh not yet made
        self._late: tuple[float, Writes] | None = None  # the last refresh's late writes, due at
        #: What a refresh writes. Reads of anything else (a client's keep-alive reading the
        #: server's state on its own wall-clock timer) must not make one: what the meter is
        #: recorded to have read would depend on that timer.
        self._refreshed = {tag.node_id for tag in tags} | {
            ua.NodeId(ua.ObjectIds.Server_ServerStatus),
            ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime),
        }

    async def catch_up(self, event: ServerItemCallback, _dispatcher: object) -> None:
        if not event.is_external:
            return  # the server's own reads (its status, while writing it)
        if not any(item.NodeId in self._refreshed for item in event.request_params.NodesToRead):
            return
        clock = self.fleet.clock
        now = clock.monotonic()
        due: list[tuple[float, Fault | None]] = []  # refreshes since the last read; last two
        while self._next <= now:
            if self.meter.quiet_between(time_at(clock, self._next), time_at(clock, now)):
                skipped = math.floor((now - self._next) / self.update_s)
                while skipped and self._next + skipped * self.update_s > now:
                    skipped -= 1  # float rounding
                due = [(self._next + skipped * self.update_s, None)]
                self._next += (skipped + 1) * self.update_s
                break
            at = self._next
            fault = self.meter.communication_fault(time_at(clock, at))
            due = [*due[-1:], (at, fault)]
            self._next = at + max(self.update_s, _delay(fault))
        if due:
            await self._made(due, now)
        if self._late is not None and self._late[0] <= now:
            await _write(self.server, self._late[1])
            self._late = None

    async def _made(self, due: list[tuple[float, Fault | None]], now: float) -> None:
        clock = self.fleet.clock
        if self._late is not None:  # done before the next refresh began
            await _write(self.server, self._late[1])
            self._late = None
        at, fault = due[-1]
        if len(due) == 2 and fault is not None:
            # Its faults leave some tags as the refresh before left them: every write of that
            # one was done before this one began.
            before, before_fault = due[0]
            early, late = _readings(self.meter, self.tags, time_at(clock, before), before_fault)
            await _write(self.server, early + late)
        t = time_at(clock, at)
        early, late = _readings(self.meter, self.tags, t, fault)
        await _write(self.server, early)
        await _set_current_time(self.server, datetime.fromtimestamp(t, UTC))
        if late:
            self._late = (at + _delay(fault), late)


async def _set_current_time(server: Server, stamp: datetime) -> None:
    status = server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus))
    current = copy(await status.read_value())  # the stored object: never change it in place
    current.CurrentTime = stamp
    await status.write_value(current)
    await server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime)).write_value(
        ua.Variant(stamp, ua.VariantType.DateTime)
    )

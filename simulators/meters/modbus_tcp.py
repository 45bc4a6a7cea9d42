"""Modbus TCP meters: pymodbus servers that answer from the plant at the moment of each request.

``serve_modbus_tcp(fleet)`` serves every ``modbus-tcp`` meter of a fleet until cancelled. Meters
that name the same ``host:port`` share one server as distinct unit ids (a gateway, or a meter
with several logical devices); a meter with port 0 gets a port of its own, chosen by the OS
(as if it had its own IP address), so fleets need not invent port numbers. Each meter's
endpoint is announced with ``fleet.listening(meter, "modbus-tcp", "127.0.0.1:15020 unit 3")``.
Analog input modules (``analog`` meters) are served the same way, their channels as input
registers of counts (``simulators.meters.analog``), announced as ``analog``.

pymodbus does the Modbus: each meter is a ``SimDevice`` whose read-only register blocks mirror
the meter's register map, so pymodbus answers requests for unmapped addresses with exception
0x02 and writes to the measurements with 0x02 too. The device's ``action`` callback fills the
requested registers with ``MeterRuntime.read(point, fleet.now())`` just before pymodbus copies
them into the answer, so every value is the plant's at request time, with the meter's faults and
resolution. Function codes a meter does not implement (coils, diagnostics …) get 0x01; a unit id
nobody answers to gets 0x0B (gateway target failed to respond), as pymodbus itself would.

Communication faults are played per request, before the meter even looks at it, through a thin
subclass of pymodbus's per-connection handler (pymodbus has no hook to drop or damage an answer;
the subclass also starts each request as a plain task, see ``handle_later``):

- ``no_answer``: nothing is sent (nor recorded as said); the terminal's timeout fires.
- ``slow``: the answer leaves ``Fault.delay_ms`` late, its values read when it leaves.
- ``exception``: exception 0x04 (server device failure) instead of data.
- Modbus TCP has no checksum (TCP's own checksum covers the network, not the device), so the
  byte faults mean what can still go wrong between a meter's firmware and the wire:

  - ``garbled``: one to three data bytes of the PDU are changed; header, function code and
    byte count are intact. The frame is well formed and wrong: nothing in Modbus TCP can detect
    it, only the terminal's plausibility checks can.
  - ``truncated``: the ADU stops short (header and at least the function code sent, at least
    one byte missing) while the MBAP length field still counts the whole PDU: the terminal
    waits for bytes that never come, and must throw the partial ADU away (or reconnect) before
    the next answer on this connection, which stays open.
  - ``bad_checksum``: the closest thing TCP has, the MBAP length field, is one too small, so the
    frame ends a byte early: the PDU's byte count disagrees with its data and a stray byte
    follows on the stream.

pymodbus's server handles one request at a time per connection (it keeps the last request on
the connection, and a send clears the receive buffer), which is what Modbus masters do; a
terminal that pipelines several requests on one connection will lose all but the first.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterable
from decimal import Decimal
from random import Random
from typing import Any, Final

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import AnalogModule, Fault, ModbusTcpMeter, Register
from simulators.meters.analog import AnalogInputs
from simulators.meters.registers import Encoder, encoder
from simulators.plant import PlantTimeError
from simulators.tasks import cancel_and_wait

PROTOCOL: Final = "modbus-tcp"
#: Meter kinds answering on Modbus TCP: meters, and 4–20 mA input modules (counts per channel).
SERVED: Final = frozenset({PROTOCOL, "analog"})
#: Read holding/input registers; the writes only so the meter can refuse them (0x02: read-only).
SUPPORTED_FUNCTIONS: Final = frozenset({3, 4, 6, 16, 23})
_READ_TABLES: Final = {3: "holding", 4: "input"}
_BYTE_FAULTS: Final = frozenset({"garbled", "truncated", "bad_checksum"})
_MBAP: Final = 7  # transaction id, protocol id, length, unit id


# ---- one meter ----------------------------------------------------------------------------


class _Table:
    """One register table (holding or input) of a meter, for finding what a request covers.

    Kept as a few flat lists rather than an object per register: a fleet of a thousand
    meters has fifty thousand registers, and every object that lives as long as the server is
    one more for Python's collector to walk on each full pass (a pause in every answer).
    """

    def __init__(self, meter: str, name: str, registers: Iterable[Register]) -> None:
        ordered = sorted(registers, key=lambda r: r.address)
        self.registers = ordered
        self.starts = [r.address for r in ordered]
        self.ends = [r.address + r.words for r in ordered]
        self.encoders: list[Encoder] = [encoder(r) for r in ordered]  # shared by equal layouts
        for at in range(1, len(ordered)):
            if self.starts[at] < self.ends[at - 1]:
                raise ValueError(
                    f"meter {meter}: {name} registers at {self.starts[at - 1]} and "
                    f"{self.starts[at]} overlap"
                )

    def covering(self, address: int, count: int) -> range:
        """Indexes of the registers with at least one word in ``[address, address + count)``."""
        first = max(bisect.bisect_right(self.starts, address) - 1, 0)
        if first < len(self.ends) and self.ends[first] <= address:
            first += 1
        return range(first, bisect.bisect_left(self.starts, address + count))

    def simdata(self) -> list[SimData]:
        """The table as pymodbus blocks: read-only runs, the gaps between them invalid (0x02)."""
        if not self.registers:  # pymodbus needs a block in every table: one invalid register
            return [SimData(0, datatype=DataType.INVALID)]
        runs: list[list[int]] = []  # [start, end] of back-to-back registers: one SimData each
        for start, end in zip(self.starts, self.ends, strict=True):
            if runs and runs[-1][1] == start:
                runs[-1][1] = end
            else:
                runs.append([start, end])
        return [
            SimData(start, count=end - start, datatype=DataType.REGISTERS, readonly=True)
            for start, end in runs
        ]


class MeterDevice:
    """One Modbus TCP meter (or analog input module) as a pymodbus ``SimDevice`` whose
    registers fill on each read."""

    def __init__(self, fleet: FleetRuntime, meter: MeterRuntime) -> None:
        spec = meter.spec
        registers: list[Register]
        self._read: Callable[[Register, float], Decimal]
        if isinstance(spec, ModbusTcpMeter):
            registers, self._read = list(spec.registers), meter.read
        elif isinstance(spec, AnalogModule):
            inputs = AnalogInputs(meter)
            registers, self._read = inputs.registers, inputs.read
        else:
            raise TypeError(f"meter {meter.id} is {spec.protocol}, not {PROTOCOL}")
        self.fleet = fleet
        self.meter = meter
        self.spec = spec
        self.unit_id = spec.unit_id
        self.tables = {
            name: _Table(meter.id, name, (r for r in registers if r.table == name))
            for name in ("holding", "input")
        }
        no_bits = [SimData(0, datatype=DataType.BITS)]  # never reached: coils are refused 0x01
        self.device = SimDevice(
            id=self.unit_id,
            simdata=(
                no_bits,
                list(no_bits),
                self.tables["holding"].simdata(),
                self.tables["input"].simdata(),
            ),
            action=self._fill,
        )

    async def _fill(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before it answers: write the values of now into its registers."""
        table = _READ_TABLES.get(function_code)
        if table is None or values is not None:
            return None  # writes never get here: the blocks are read-only
        t = self.fleet.now()
        found = self.tables[table]
        try:
            for i in found.covering(address, count):
                at = found.starts[i] - start_address
                value = self._read(found.registers[i], t)
                registers[at : at + found.ends[i] - found.starts[i]] = found.encoders[i](value)
        except PlantTimeError:  # before the plant's start there is nothing to measure yet
            return ExcCodes.DEVICE_FAILURE
        return None


# ---- faults on the wire -------------------------------------------------------------------


def damage(adu: bytes, kind: str, rng: Random) -> bytes:
    """A Modbus TCP answer (a whole ADU) as ``garbled``, ``truncated`` or ``bad_checksum``."""
    if kind == "truncated":
        return adu[: rng.randrange(_MBAP + 1, len(adu))]
    if kind == "bad_checksum":
        length = int.from_bytes(adu[4:6], "big") - 1
        return adu[:4] + length.to_bytes(2, "big") + adu[6:]
    if kind == "garbled":
        # data only: past the function code, and past the byte count of a read answer
        first = _MBAP + (2 if adu[_MBAP] in _READ_TABLES and len(adu) > _MBAP + 2 else 1)
        first = min(first, len(adu) - 1)
        out = bytearray(adu)
        for at in rng.sample(range(first, len(adu)), min(rng.randint(1, 3), len(adu) - first)):
            out[at] ^= rng.randint(1, 255)
        return bytes(out)
    raise ValueError(f"not a byte fault: {kind!r}")


class _Connection(ServerRequestHandler):
    """pymodbus's handler for one TCP connection, with the meter's communication faults."""

    def __init__(self, owner: _MeterServer) -> None:
        # pymodbus leaves its handler's methods unannotated: hence the ignores below
        traces = (owner.trace_packet, owner.trace_pdu, owner.trace_connect)
        super().__init__(owner, *traces)  # type: ignore[no-untyped-call]
        self.owner = owner
        self._damage: tuple[str, Random] | None = None

    def handle_later(self) -> None:
        # pymodbus hands each request to the loop with run_coroutine_threadsafe, a self-pipe
        # write and a lock per request although it is on the loop's thread already; a plain
        # task is the same on one thread, a third cheaper per read, and one we can cancel.
        task = self.loop.create_task(self.handle_request())
        self.owner.in_flight.add(task)
        task.add_done_callback(self.owner.in_flight.discard)

    async def handle_request(self) -> None:
        request: ModbusPDU | None = self.last_pdu
        if request is None:
            return
        device = self.owner.devices.get(request.dev_id)
        if device is None:
            self._refuse(request, ExcCodes.GATEWAY_NO_RESPONSE)
            return
        fault: Fault | None = device.meter.communication_fault(self.owner.fleet.now())
        kind = "" if fault is None else fault.kind
        if kind == "no_answer":
            return
        if fault is not None and kind == "slow":
            await self.owner.fleet.clock.sleep(fault.delay_ms / 1000.0)
        if kind == "exception":
            self._refuse(request, ExcCodes.DEVICE_FAILURE)
            return
        if request.function_code not in SUPPORTED_FUNCTIONS:
            self._refuse(request, ExcCodes.ILLEGAL_FUNCTION)
            return
        if kind in _BYTE_FAULTS:
            self._damage = (kind, device.meter.random())
        self.last_pdu = request  # a retry that came in while we slept must not take its place
        await super().handle_request()  # type: ignore[no-untyped-call]

    def _refuse(self, request: ModbusPDU, code: ExcCodes) -> None:
        response = ExceptionResponse(
            request.function_code,
            exception_code=code,
            device_id=request.dev_id,
            transaction=request.transaction_id,
        )
        self.server_send(response, self.last_addr)

    def server_send(self, pdu: ModbusPDU | None, addr: Any) -> None:
        planned, self._damage = self._damage, None
        if planned is None or pdu is None:
            super().server_send(pdu, addr)  # type: ignore[no-untyped-call]
            return
        kind, rng = planned
        adu: bytes = self.framer.buildFrame(self.trace_pdu(True, pdu))
        self.send(self.trace_packet(True, damage(adu, kind, rng)), addr=addr)


class _MeterServer(ModbusTcpServer):
    """One listening socket: the meters (unit ids) behind one host:port."""

    def __init__(self, fleet: FleetRuntime, host: str, port: int, devices: list[MeterDevice]):
        super().__init__([d.device for d in devices], address=(host, port))
        self.fleet = fleet
        self.host = host
        self.devices = {d.unit_id: d for d in devices}
        self.in_flight: set[asyncio.Task[Any]] = set()

    def callback_new_connection(self) -> _Connection:
        return _Connection(self)

    @property
    def bound_port(self) -> int:
        """The port the OS gave us (the one asked for, or a free one for port 0)."""
        sockets = getattr(self.transport, "sockets", None) or ()
        for sock in sockets:
            port: int = sock.getsockname()[1]
            return port
        raise RuntimeError("the server is not listening")

    async def start(self) -> None:
        try:
            await self.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus swallows the OSError and says only this
            units = ", ".join(d.meter.id for d in self.devices.values())
            address = self.comm_params.source_address
            raise OSError(f"{PROTOCOL}: cannot listen on {address} for {units}") from exc

    async def stop(self) -> None:
        in_flight = list(self.in_flight)  # answers still waiting (slow meters)
        for task in in_flight:
            task.cancel()
        await self.shutdown()  # type: ignore[no-untyped-call]  # closes all connections too
        await cancel_and_wait(*in_flight)


# ---- the fleet ----------------------------------------------------------------------------


def _groups(fleet: FleetRuntime) -> dict[tuple[str, int, str], list[MeterDevice]]:
    """Meters by listening socket: a shared host:port, or a port 0 meter alone."""
    groups: dict[tuple[str, int, str], list[MeterDevice]] = {}
    for meter in fleet.meters.values():
        spec = meter.spec
        if not isinstance(spec, ModbusTcpMeter | AnalogModule):
            continue
        key = (spec.host, spec.port, spec.id if spec.port == 0 else "")
        group = groups.setdefault(key, [])
        taken = {d.unit_id: d.meter.id for d in group}
        if spec.unit_id in taken:
            raise ValueError(
                f"meters {taken[spec.unit_id]} and {spec.id} both answer as unit "
                f"{spec.unit_id} on {spec.host}:{spec.port}"
            )
        group.append(MeterDevice(fleet, meter))
    return groups


def endpoint(host: str, port: int, unit_id: int) -> str:
    """How an endpoint is announced: ``127.0.0.1:15020 unit 3`` (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port} unit {unit_id}"


def parse_endpoint(address: str) -> tuple[str, int, int]:
    """``"127.0.0.1:15020 unit 3"`` → ``("127.0.0.1", 15020, 3)``: for clients and tests."""
    where, _, unit = address.partition(" unit ")
    host, _, port = where.rpartition(":")
    return host.strip("[]"), int(port), int(unit)


async def serve_modbus_tcp(fleet: FleetRuntime) -> None:
    """Serve every Modbus TCP meter of ``fleet`` until cancelled, then close every server."""
    servers = [
        _MeterServer(fleet, host, port, devices)
        for (host, port, _), devices in _groups(fleet).items()
    ]
    started: list[_MeterServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
            for device in server.devices.values():
                fleet.listening(
                    device.meter.id,
                    device.spec.protocol,
                    endpoint(server.host, server.bound_port, device.unit_id),
                )
        await asyncio.Future()  # until cancelled
    finally:
        for server in started:
            await server.stop()

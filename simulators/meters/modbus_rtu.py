"""Modbus RTU meters sharing a serial line, answering per unit id from their register maps.

pymodbus does the Modbus side: ``FramerRTU`` for the CRC and the ADU, ``DecodePDU`` for the
request PDUs, a ``SimDevice`` per meter (its registers as read-only ``SimData`` blocks, holding
and input tables apart) for address checks and the exception answers, and the PDU classes'
own ``datastore_update`` for the answers. The register values come from the plant through
``MeterRuntime.read`` at the instant the meter answers (the device's ``action`` hook fills
them), laid out by :mod:`simulators.meters.registers` exactly as the Modbus TCP meters do.
pymodbus's own serial server cannot sit on our paced line (it writes to the port itself, at
once, and cannot drop or damage an answer), so this module does the I/O through
:class:`SerialLine`.

Behaviour on the bus: requests for other unit ids, with a bad CRC or too short get silence;
broadcasts (unit 0) are never answered (every register here is read-only, so they change
nothing); function codes 3 and 4 read, 6 and 16 are decoded and refused with exception 02
(illegal data address: measured values cannot be written); any other function code gets
exception 01 (illegal function).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from typing import Final, cast

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Bus, ModbusRtuMeter, Register
from simulators.meters.registers import Encoder, encoder
from simulators.meters.serial_line import (
    Answer,
    Layout,
    SerialLine,
    answer,
    frames_by_silence,
    modbus_gap,
)
from simulators.plant import PlantTimeError

__all__ = ["SUPPORTED_FUNCTIONS", "ModbusRtuBus"]

READ_HOLDING: Final = 3
READ_INPUT: Final = 4
WRITE_SINGLE: Final = 6
WRITE_MULTIPLE: Final = 16
SUPPORTED_FUNCTIONS: Final = frozenset({READ_HOLDING, READ_INPUT, WRITE_SINGLE, WRITE_MULTIPLE})
#: The ``exception`` fault: "server device failure".
FAULT_EXCEPTION: Final = ExcCodes.DEVICE_FAILURE
MIN_FRAME: Final = 4  # unit, function, CRC
RTU_LAYOUT: Final = Layout(preamble=0, checksum=slice(-2, None))


class _Device:
    """One meter: its registers as a pymodbus SimDevice whose action reads the plant."""

    def __init__(self, fleet: FleetRuntime, spec: ModbusRtuMeter) -> None:
        self.fleet = fleet
        self.spec = spec
        self.runtime = fleet.meters[spec.id]
        self.answer_time: float | None = None  # the wall time the answer being built reads at
        # Each table's registers with their encoders, built once and used on every read.
        self.tables: dict[str, list[tuple[Register, Encoder]]] = {"holding": [], "input": []}
        for register in spec.registers:
            self.tables[register.table].append((register, encoder(register)))
        try:
            self.device = SimDevice(
                id=spec.unit_id,
                simdata=(
                    # Coils and discrete inputs: the device has none; their function codes are
                    # refused before the datastore (pymodbus needs a non-empty block here).
                    [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                    [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                    _blocks(self.tables["holding"]),
                    _blocks(self.tables["input"]),
                ),
                action=self._fill,
            )
        except TypeError as exc:  # pymodbus reports overlapping blocks as TypeError
            raise ValueError(f"modbus-rtu meter {spec.id}: bad register map: {exc}") from exc

    async def _fill(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this after its address checks: write the live values in place."""
        if set_values is not None:  # writes never get here: every block is read-only
            return ExcCodes.ILLEGAL_ADDRESS
        table = "input" if function_code == READ_INPUT else "holding"
        t = self.answer_time if self.answer_time is not None else self.fleet.now()
        try:
            for register, encode in self.tables[table]:
                first, end = register.address, register.address + register.words
                if first >= address + count or end <= address:
                    continue
                words = encode(self.runtime.read(register, t))
                registers[first - start_address : end - start_address] = words
        except PlantTimeError:  # before the plant's start there is nothing to measure yet
            return ExcCodes.DEVICE_FAILURE
        return None


def _blocks(table: Sequence[tuple[Register, Encoder]]) -> list[SimData]:
    """A table as pymodbus blocks: read-only, the gaps between them invalid (exception 02)."""
    if not table:  # pymodbus needs a block in every table: one invalid register
        return [SimData(0, datatype=DataType.INVALID)]
    return [
        SimData(r.address, count=r.words, values=0, datatype=DataType.REGISTERS, readonly=True)
        for r, _ in table
    ]


class ModbusRtuBus:
    """The Modbus RTU meters of one bus."""

    protocol: Final = "modbus-rtu"

    def __init__(self, fleet: FleetRuntime, bus: Bus) -> None:
        if bus.protocol != "modbus-rtu":
            raise ValueError(f"bus {bus.id} is a {bus.protocol} bus, not modbus-rtu")
        self.fleet = fleet
        self.bus = bus
        self.devices: dict[int, _Device] = {}
        for meter in fleet.spec.meters:
            if isinstance(meter, ModbusRtuMeter) and meter.bus == bus.id:
                if meter.unit_id in self.devices:
                    other = self.devices[meter.unit_id].spec.id
                    raise ValueError(
                        f"bus {bus.id}: meters {other} and {meter.id} share unit id {meter.unit_id}"
                    )
                self.devices[meter.unit_id] = _Device(fleet, meter)
        self.datastore = SimCore([device.device for device in self.devices.values()])
        self.decoder = DecodePDU(is_server=True)
        self.framer = FramerRTU(self.decoder)

    @property
    def meters(self) -> list[tuple[MeterRuntime, str]]:
        """Each meter with where it is on the bus."""
        return [(d.runtime, f"unit {unit}") for unit, d in sorted(self.devices.items())]

    async def serve(self, line: SerialLine) -> None:
        async with aclosing(frames_by_silence(line, modbus_gap(self.bus))) as frames:
            async for data, ready_at in frames:
                answers = self.answers(data)
                if answers:
                    await answer(line, self.fleet, answers, ready_at)

    def answers(self, data: bytes) -> list[Answer]:
        """Who answers the frame ``data``, and with what (empty: silence)."""
        if len(data) < MIN_FRAME:
            return []
        if not FramerRTU.check_CRC(data[:-2], int.from_bytes(data[-2:], "big")):
            return []  # a damaged request: a real slave discards it silently
        device = self.devices.get(data[0])
        if device is None:  # another unit's request, or a broadcast (unit 0)
            return []
        unit, function = data[0], data[1]

        def error(code: ExcCodes) -> bytes:
            return self.framer.buildFrame(ExceptionResponse(function, code, device_id=unit))

        request = self.decoder.decode(data[1:-2]) if function in SUPPORTED_FUNCTIONS else None
        if request is None:
            code = (
                ExcCodes.ILLEGAL_FUNCTION
                if function not in SUPPORTED_FUNCTIONS
                else ExcCodes.ILLEGAL_VALUE  # a supported function with a bad count or length
            )

            async def refuse(_t: float = 0.0) -> bytes:
                return error(code)

            return [Answer(device.runtime, refuse, refuse, RTU_LAYOUT)]
        request.dev_id = unit

        async def build(t: float) -> bytes:
            device.answer_time = t
            # pymodbus's own server hands its SimCore to datastore_update too; the parameter's
            # annotation is narrower than what the method uses (async_getValues/setValues).
            response = await request.datastore_update(
                cast(ModbusServerContext, self.datastore), unit
            )
            response.dev_id = unit
            return self.framer.buildFrame(response)

        async def failure() -> bytes:
            return error(FAULT_EXCEPTION)

        return [Answer(device.runtime, build, failure, RTU_LAYOUT)]

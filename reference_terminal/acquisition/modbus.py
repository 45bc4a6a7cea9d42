"""Modbus TCP and RTU drivers (GB/T 19582): registers read in as few FC03/FC04 requests as the
map allows, decoded exactly.

Planning (:func:`plan_reads`): a device's requested registers are grouped per table (holding →
FC03, input → FC04) into runs of contiguous or overlapping addresses of at most 125 words. Gaps
are never bridged: meters answer an unmapped address with exception 02, which would lose the
whole run.

Decoding (:func:`register_value`): integers are raw × scale exactly; floats are the shortest
decimal that reads back as the same float (for float32, the same float32), so a meter showing
1234.56 gives 1234.56, not 1234.560058…, then × scale. Not-a-number and infinities are errors.
A point with ``analog`` is a 4–20 mA input: low + (raw − raw_min) × (high − low) / (raw_max −
raw_min), raw being the decoded register value.

Failures: an exception reply sets ``RawValue.error`` on the points of that request; timeouts and
damaged answers are retried (``retries``), then set the error on their points. When no request
of the read got an answer at all the whole read raises :class:`DriverError`; after a request
timed out the remaining ones are not tried (the device is gone), their points say so.

TCP uses pymodbus's ``AsyncModbusTcpClient`` (one per device, its own timeout; after a
timeout the connection is closed, so a late answer cannot pass for the next one, and the next
request connects again). RTU uses pymodbus's request and response PDUs and its CRC over the
bus's :class:`~reference_terminal.acquisition.serial_port.SerialPort`, one exchange at a time
through the bus's :class:`BusArbiter`: the response timeout is the device's, on the terminal's
clock, and the port is shared by every meter of the bus.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact
from typing import Final, Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
)

from common.clock import Clock
from protocols.errors import CodecError
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.float32 import shortest_float32_text
from reference_terminal.acquisition.serial_port import (
    BusArbiter,
    ExchangeError,
    SerialPortError,
    transact,
)
from reference_terminal.config import (
    Analog,
    ModbusRtuDevice,
    ModbusTcpDevice,
    Point,
    Register,
    Source,
)
from reference_terminal.construct import new_raw_value
from reference_terminal.model import RawValue

__all__ = [
    "MAX_WORDS",
    "Block",
    "ModbusRtuDriver",
    "ModbusTcpDriver",
    "analog_value",
    "plan_reads",
    "register_value",
]

Table = Literal["holding", "input"]
MAX_WORDS: Final = 125  # FC03/FC04 limit
WORDS: Final[dict[str, int]] = {
    "uint16": 1,
    "int16": 1,
    "uint32": 2,
    "int32": 2,
    "uint64": 4,
    "int64": 4,
    "float32": 2,
    "float64": 4,
}
FUNCTION: Final[dict[str, int]] = {"holding": 3, "input": 4}
#: Enough digits that a register (≤ 20 digits) times any configured scale is exact.
EXACT: Final = Context(prec=200, traps=[Inexact])
#: The longest silence inside an RTU answer before it counts as truncated. RTU's own limit is
#: 1.5 characters, but USB adapters and the OS deliver bytes in bursts.
RTU_IDLE_MIN_S: Final = 0.1
#: Failures after which the device is taken to be gone for the rest of this read.
GONE: Final = frozenset({"timeout", "refused", "port"})


# ---- planning ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """One FC03/FC04 request: ``count`` words from ``start``; ``members`` index the requests
    whose registers it covers."""

    table: Table
    start: int
    count: int
    members: tuple[int, ...]

    @property
    def function(self) -> int:
        return FUNCTION[self.table]


def plan_reads(registers: Sequence[Register | None], max_words: int = MAX_WORDS) -> list[Block]:
    """Group registers (None: skipped) into as few reads as contiguity and ``max_words`` allow;
    holding first, then input, each in address order."""
    blocks: list[Block] = []
    for table in ("holding", "input"):
        wanted = sorted(
            (r.address, i, r) for i, r in enumerate(registers) if r is not None and r.table == table
        )
        start = end = -1
        members: list[int] = []
        for address, index, register in wanted:
            stop = address + WORDS[register.type]
            if members and address <= end and max(end, stop) - start <= max_words:
                end = max(end, stop)
                members.append(index)
                continue
            if members:
                blocks.append(Block(table, start, end - start, tuple(members)))
            start, end, members = address, stop, [index]
        if members:
            blocks.append(Block(table, start, end - start, tuple(members)))
    return blocks


def register_problem(register: Register | None) -> str | None:
    """Why a source's register cannot be read (None: it can)."""
    if register is None:
        return "configuration: the source names no Modbus register"
    if register.address + WORDS[register.type] > 0x10000:
        return f"configuration: {register.type} at {register.address} runs past register 65535"
    return None


# ---- decoding -------------------------------------------------------------------------------


def register_value(words: Sequence[int], register: Register) -> Decimal:
    """The value ``words`` (in address order) hold for ``register``: exact, see the module
    docstring. Raises ValueError for NaN and infinities."""
    return _decoder(register.type, register.word_order, str(register.scale))(words)


Decoder = Callable[[Sequence[int]], Decimal]


@functools.cache
def _decoder(type_: str, word_order: str, scale_text: str) -> Decoder:
    """:func:`register_value` for one register layout, everything about it worked out once
    (a device is read every period with the same few layouts). The scale comes as its text:
    ``2`` and ``2.0`` are equal Decimals but give products with different digits."""
    size = WORDS[type_]
    words_format = struct.Struct(f">{size}H")
    little = word_order == "little"
    scale = Decimal(scale_text)
    unscaled = scale == 1
    signed = type_.startswith("int")
    floating = _FLOAT32 if type_ == "float32" else _FLOAT64 if type_ == "float64" else None

    def decode(words: Sequence[int]) -> Decimal:
        if len(words) != size:
            raise ValueError(f"{type_} takes {size} registers, found {len(words)}")
        raw = words_format.pack(*(list(words)[::-1] if little else words))
        number: Decimal
        if floating is _FLOAT32:
            number = _shortest_float32(_FLOAT32.unpack(raw)[0])
        elif floating is not None:
            x: float = floating.unpack(raw)[0]
            _check_finite(x)
            number = Decimal(repr(x))  # repr is the shortest text that reads back as x
        else:
            number = Decimal(int.from_bytes(raw, "big", signed=signed))
        if unscaled:
            return number
        return EXACT.multiply(number, scale)

    return decode


_FLOAT32: Final = struct.Struct(">f")
_FLOAT64: Final = struct.Struct(">d")


def _check_finite(x: float) -> None:
    if not math.isfinite(x):
        raise ValueError(f"the register holds {x!r}, not a number")


def _shortest_float32(x: float) -> Decimal:
    """The shortest decimal that rounds to the same float32 (what the meter displays)."""
    _check_finite(x)
    return Decimal(shortest_float32_text(x))


def analog_value(raw: Decimal, analog: Analog) -> Decimal:
    """A 4–20 mA reading scaled onto its range; exact whenever the division is."""
    span = analog.raw_max - analog.raw_min
    if span == 0:
        raise ValueError("analog: raw_min equals raw_max")
    numerator = EXACT.multiply(EXACT.subtract(raw, analog.raw_min), analog.high - analog.low)
    quotient = numerator / span  # 28 significant digits when the division is not exact
    return EXACT.add(analog.low, quotient)


def words_text(words: Sequence[int]) -> str:
    """Registers as the raw text a reading keeps: ``"0001 ABCD"`` (one per reading: in C)."""
    size = len(words)
    packer = _WORDS_FORMATS[size] if size < len(_WORDS_FORMATS) else struct.Struct(f">{size}H")
    return packer.pack(*words).hex(" ", 2).upper()


_WORDS_FORMATS: Final = tuple(struct.Struct(f">{n}H") for n in range(MAX_WORDS + 1))
#: A float's (or analog input's) display quantum by the point's decimals.
_QUANTA: Final = tuple(Decimal(1).scaleb(-d) for d in range(19))


def exception_text(code: int) -> str:
    try:
        name = ExcCodes(code).name.lower().replace("_", " ")
    except ValueError:
        name = "unknown exception"
    return f"exception {code:02X} ({name})"


class ExceptionReply(Exception):
    """The device answered with a Modbus exception."""

    def __init__(self, code: int) -> None:
        super().__init__(exception_text(code))
        self.code = code


# ---- the shared read -----------------------------------------------------------------------------


class ModbusDriver:
    """What the TCP and RTU drivers share: planning, retries, decoding, failure rules. A
    transport is its ``_fetch``."""

    def __init__(self, device: ModbusTcpDevice | ModbusRtuDevice, clock: Clock) -> None:
        self.device_id = device.id
        self.unit_id = device.unit_id
        self.timeout_s = device.timeout_s
        self.retries = device.retries
        self.clock = clock
        self._plans: dict[tuple[int, ...], _Plan] = {}

    async def _fetch(self, block: Block) -> list[int]:
        """One attempt at one block: the words, or ExchangeError / ExceptionReply."""
        raise NotImplementedError

    async def _fetch_retrying(self, block: Block) -> list[int]:
        last: ExchangeError | None = None
        tried = 0
        for _ in range(self.retries + 1):
            tried += 1
            try:
                return await self._fetch(block)
            except ExchangeError as exc:
                last = exc
                if exc.kind == "port":
                    break
        assert last is not None
        raise ExchangeError(last.kind, f"{last.detail} ({tried} attempt(s))")

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        plan = self._plan(requests)
        results: list[RawValue | None] = [None] * len(requests)
        for i, problem in plan.problems:
            results[i] = self._error(requests[i][0], problem)
        answered = False
        failure: ExchangeError | None = None
        for block, members in plan.blocks:
            if failure is not None and failure.kind in GONE:
                for i in block.members:
                    results[i] = self._error(requests[i][0], f"not read: {failure}")
                continue
            try:
                words = await self._fetch_retrying(block)
            except ExceptionReply as exc:
                answered = True
                for i in block.members:
                    results[i] = self._error(requests[i][0], str(exc))
                continue
            except ExchangeError as exc:
                failure = exc
                for i in block.members:
                    results[i] = self._error(requests[i][0], str(exc))
                continue
            answered = True
            t = self.clock.time()
            for i, offset, size, decode, floating in members:
                point, source = requests[i]
                mine = words[offset : offset + size]
                results[i] = self._decoded(point, source, mine, decode, floating, t)
        if failure is not None and not answered:
            raise DriverError(self.device_id, str(failure), kind=failure.kind)
        return [r for r in results if r is not None]

    def _plan(self, requests: Sequence[tuple[Point, Source]]) -> _Plan:
        """The blocks to read for these sources, planned once: a device is asked the same
        sources every period. Keyed by the sources' identities, which the plan keeps alive
        (so no other object can take one of their ids while it is cached)."""
        key = tuple([id(source) for _, source in requests])
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            plan = self._plans[key] = _Plan.of([source for _, source in requests])
        return plan

    def _value(
        self, point: Point, source: Source, block: Block, words: Sequence[int], t: float
    ) -> RawValue:
        register = source.register
        assert register is not None
        offset = register.address - block.start
        mine = words[offset : offset + WORDS[register.type]]
        decode = _decoder(register.type, register.word_order, str(register.scale))
        floating = register.type.startswith("float")
        return self._decoded(point, source, mine, decode, floating, t)

    def _decoded(
        self,
        point: Point,
        source: Source,
        mine: Sequence[int],
        decode: Decoder,
        floating: bool,
        t: float,
    ) -> RawValue:
        raw = words_text(mine)
        try:
            value = decode(mine)
            analog = source.analog
            if analog is not None:
                value = analog_value(value, analog)
            if analog is not None or floating:
                # A float (or a scaled analog input) carries no resolution of its own: the
                # point's configured decimals are the meter's display (ISC-2 §9.3).
                decimals = point.decimals
                quantum = _QUANTA[decimals] if decimals < len(_QUANTA) else _quantum(decimals)
                value = value.quantize(quantum, ROUND_HALF_EVEN)
        except (ValueError, ArithmeticError) as exc:
            return new_raw_value(point.id, None, raw, t, self.device_id, f"value: {exc}")
        return new_raw_value(point.id, value, raw, t, self.device_id)

    def _error(self, point: Point, message: str) -> RawValue:
        return RawValue(point.id, None, "", self.clock.time(), self.device_id, message)


#: Read plans a driver keeps (one per set of sources it is asked: normally one, a few with
#: backup sources); past it they are forgotten and planned again.
PLANS_KEPT: Final = 16


def _quantum(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one read goes: the sources it plans for (kept alive: the cache key is their ids),
    each unreadable one's problem by request index, and each block with its members'
    (index, offset in the block, words, decoder, whether a float)."""

    sources: tuple[Source, ...]
    problems: tuple[tuple[int, str], ...]
    blocks: tuple[tuple[Block, tuple[tuple[int, int, int, Decoder, bool], ...]], ...]

    @classmethod
    def of(cls, sources: Sequence[Source]) -> _Plan:
        problems: list[tuple[int, str]] = []
        registers: list[Register | None] = []
        for i, source in enumerate(sources):
            problem = register_problem(source.register)
            if problem is not None:
                problems.append((i, problem))
                registers.append(None)
            else:
                registers.append(source.register)
        blocks = []
        for block in plan_reads(registers):
            members = []
            for i in block.members:
                register = registers[i]
                assert register is not None
                members.append(
                    (
                        i,
                        register.address - block.start,
                        WORDS[register.type],
                        _decoder(register.type, register.word_order, str(register.scale)),
                        register.type.startswith("float"),
                    )
                )
            blocks.append((block, tuple(members)))
        return cls(tuple(sources), tuple(problems), tuple(blocks))


def _check_words(pdu: ModbusPDU, block: Block) -> list[int]:
    if pdu.isError():
        raise ExceptionReply(pdu.exception_code)
    if pdu.function_code != block.function:
        raise ExchangeError(
            "garbled", f"function {pdu.function_code} answered a function {block.function} read"
        )
    words = list(pdu.registers)
    if len(words) != block.count:
        raise ExchangeError(
            "garbled", f"{len(words)} registers answered a read of {block.count} at {block.start}"
        )
    return words


# ---- TCP ------------------------------------------------------------------------------------


class ModbusTcpDriver(ModbusDriver):
    """A Modbus TCP device (or a gateway's unit), one connection kept open between reads."""

    def __init__(self, device: ModbusTcpDevice, clock: Clock) -> None:
        super().__init__(device, clock)
        self.device = device
        self.host = device.host
        self.port = device.port
        self.connects = 0
        self._client: AsyncModbusTcpClient | None = None

    def _modbus(self) -> AsyncModbusTcpClient:
        """The client, made on first use (pymodbus needs the running loop for it)."""
        if self._client is None:
            device = self.device
            # pymodbus retries only timeouts and never damaged answers: the driver retries
            # itself. reconnect_delay=0: no reconnect task in the background; the next
            # request connects.
            self._client = AsyncModbusTcpClient(
                device.host,
                port=device.port,
                timeout=device.timeout_s,
                retries=0,
                reconnect_delay=0,
                name=f"modbus-tcp {device.id}",
            )
        return self._client

    async def _fetch(self, block: Block) -> list[int]:
        client = self._modbus()
        where = f"{self.host}:{self.port} unit {self.unit_id}"
        if not client.connected:
            if not await client.connect():
                raise ExchangeError("refused", f"cannot connect to {where}")
            self.connects += 1
        try:
            if block.table == "holding":
                pdu = await client.read_holding_registers(
                    block.start, count=block.count, device_id=self.unit_id
                )
            else:
                pdu = await client.read_input_registers(
                    block.start, count=block.count, device_id=self.unit_id
                )
        except ConnectionException as exc:
            client.close()
            raise ExchangeError("refused", f"{where}: {exc}") from exc
        except ModbusIOException as exc:
            # No answer in time. Close: a late answer must not pass for the next request's.
            client.close()
            raise ExchangeError(
                "timeout", f"no answer from {where} within {self.timeout_s:g} s"
            ) from exc
        except ModbusException as exc:
            client.close()
            raise ExchangeError("garbled", f"{where}: {exc}") from exc
        return _check_words(pdu, block)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()


# ---- RTU ------------------------------------------------------------------------------------


class ModbusFrameError(CodecError):
    """An RTU answer that is not a good frame."""

    protocol = "modbus-rtu"


class RtuAnswerDecoder:
    """Cuts the answer to one FC03/FC04 request out of the bytes a serial port delivers.

    The answer's length follows from its header (unit, function, byte count, or the 5-byte
    exception). Bytes that cannot start it (another unit's late answer, noise) are skipped.
    """

    def __init__(self, unit: int, function: int, count: int) -> None:
        self.unit = unit
        self.function = function
        self.count = count
        self._buffer = bytearray()
        self.discarded = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | CodecError]:
        self._buffer += data
        return self._scan()

    def idle(self) -> list[bytes | CodecError]:
        out = self._scan()
        if self._buffer:
            out.append(
                ModbusFrameError(
                    f"truncated: the answer stopped after {len(self._buffer)} bytes",
                    reason="truncated",
                )
            )
            self._buffer.clear()
        return out

    def _scan(self) -> list[bytes | CodecError]:
        out: list[bytes | CodecError] = []
        buf = self._buffer
        while len(buf) >= 3:
            if buf[0] != self.unit or buf[1] not in (self.function, self.function | 0x80):
                del buf[0]
                self.discarded += 1
                continue
            if buf[1] & 0x80:
                size = 5
            else:
                if buf[2] != 2 * self.count:
                    out.append(
                        ModbusFrameError(
                            f"garbled: byte count {buf[2]} for {self.count} registers",
                            reason="length",
                        )
                    )
                    buf.clear()
                    return out
                size = 5 + buf[2]
            if len(buf) < size:
                return out
            frame = bytes(buf[:size])
            del buf[:size]
            if FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")):
                out.append(frame)
            else:
                out.append(ModbusFrameError("checksum: CRC mismatch", reason="crc"))
        return out


_REQUESTS: Final[dict[str, Callable[..., ModbusPDU]]] = {
    "holding": ReadHoldingRegistersRequest,
    "input": ReadInputRegistersRequest,
}


class ModbusRtuDriver(ModbusDriver):
    """A Modbus RTU meter on a shared serial bus."""

    def __init__(self, device: ModbusRtuDevice, arbiter: BusArbiter, clock: Clock) -> None:
        super().__init__(device, clock)
        if arbiter.bus.protocol != "modbus-rtu":
            raise ValueError(f"device {device.id}: bus {arbiter.bus.id} is not a modbus-rtu bus")
        self.arbiter = arbiter
        self._framer = FramerRTU(DecodePDU(is_server=False))
        self._decoder = DecodePDU(is_server=False)

    async def _fetch(self, block: Block) -> list[int]:
        request = _REQUESTS[block.table](
            dev_id=self.unit_id, address=block.start, count=block.count
        )
        adu = self._framer.buildFrame(request)
        decoder = RtuAnswerDecoder(self.unit_id, block.function, block.count)
        try:
            async with self.arbiter.exchange(self.device_id) as port:
                idle_s = max(3.5 * port.char_s, RTU_IDLE_MIN_S)
                answer = await transact(
                    port,
                    self.clock,
                    adu,
                    decoder,
                    lambda _frame: True,
                    timeout_s=self.timeout_s,
                    idle_s=idle_s,
                )
        except SerialPortError as exc:
            raise ExchangeError("port", str(exc)) from exc
        pdu = self._decoder.decode(answer[1:-2])
        if pdu is None:
            raise ExchangeError("garbled", f"undecodable answer {answer.hex(' ')}")
        return _check_words(pdu, block)

    async def close(self) -> None:
        """The port belongs to the bus's arbiter, which closes it."""

"""Serial lines: an asyncio serial port, the arbiter that shares one bus among its meters, and
one request/answer exchange on it.

:class:`SerialPort` opens the device with pyserial, every setting (baud rate, data bits, parity,
stop bits) given to the constructor in one go: a Linux pty refuses a later termios change that
touches only the parity (pyserial issue #196). Reads are non-blocking, driven by
``loop.add_reader`` on the port's descriptor; no threads.

:class:`BusArbiter` is the bus (ISC-2 §7.1.1): one exchange in flight at a time, the waiting
exchanges served first come first served (so meters with requests waiting take turns: a meter
with five DIs to read, or retrying a failed one, queues each request behind the others'), and
the bus's turnaround gap kept between the end of one exchange and the next request. It opens the
port on first use and again after the port failed (an unplugged USB adapter).

:func:`transact` sends one request and waits for the frame that answers it, with a response
timeout and an idle limit inside a frame; what goes wrong comes out as :class:`ExchangeError`
with a ``kind`` (timeout, checksum, garbled, truncated) the drivers retry on.

All waiting is on the terminal's :class:`~common.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import serial

from common.clock import Clock
from protocols.errors import CodecError
from reference_terminal.config import SerialBus

__all__ = [
    "BusArbiter",
    "ExchangeError",
    "FrameDecoder",
    "SerialPort",
    "SerialPortError",
    "Turn",
    "transact",
    "within",
]

READ_SIZE: Final = 4096
PARITIES: Final = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
TURNS_KEPT: Final = 1000

T = TypeVar("T")
F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)


class SerialPortError(Exception):
    """The port cannot be opened, or failed while in use; the message names the port."""


class ExchangeError(Exception):
    """One exchange brought no usable answer. ``kind``: timeout, checksum, garbled, truncated,
    port."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message if message.startswith(kind) else f"{kind}: {message}")
        self.kind = kind
        self.detail = message


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, or :class:`TimeoutError` once ``seconds`` have passed on
    ``clock`` (``asyncio.timeout`` would use the loop's time, not the terminal's clock)."""
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(max(0.0, seconds)))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    if task.cancelled():
        raise TimeoutError(f"no result within {seconds:g} s")
    return task.result()


def bits_per_char(framing: str) -> int:
    """Start bit + data bits + parity bit + stop bits of a framing such as ``8E1``."""
    return 1 + int(framing[0]) + (framing[1] != "N") + int(framing[2])


# ---- the port ----------------------------------------------------------------------------------


class SerialPort:
    """One serial device, opened by :meth:`open` inside a running event loop."""

    def __init__(self, path: str, *, baud: int, framing: str = "8E1") -> None:
        if framing[1] not in PARITIES or framing[0] not in "78" or framing[2] not in "12":
            raise ValueError(f"framing: expected e.g. 8E1 or 8N1, found {framing!r}")
        self.path = path
        self.baud = baud
        self.framing = framing
        #: One character's time on the wire, in seconds.
        self.char_s = bits_per_char(framing) / baud
        self._serial: serial.Serial | None = None
        self._fd = -1
        self._rx = bytearray()
        self._readable = asyncio.Event()
        self._tx = bytearray()
        self._tx_done: asyncio.Future[None] | None = None
        self._failure: OSError | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.discarded = 0  # bytes dropped unread before a request (late answers, noise)

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._failure is None

    def open(self) -> None:
        loop = asyncio.get_running_loop()
        data, parity, stop = self.framing[0], self.framing[1], self.framing[2]
        try:
            # Every setting in the constructor: one termios change, never a parity-only one.
            port = serial.Serial(
                port=self.path,
                baudrate=self.baud,
                bytesize=int(data),
                parity=PARITIES[parity],
                stopbits=int(stop),
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialPortError(
                f"serial port {self.path} ({self.baud} {self.framing}): cannot open: {exc}"
            ) from exc
        self._serial = port
        try:
            self._fd = port.fileno()
            os.set_blocking(self._fd, False)
            self._failure = None
            self._rx.clear()
            loop.add_reader(self._fd, self._on_readable)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # loop closed, fd gone
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
        if self._tx_done is not None and not self._tx_done.done():
            self._tx_done.set_exception(
                SerialPortError(f"serial port {self.path} closed while writing")
            )
        self._tx.clear()
        self._fd = -1
        with contextlib.suppress(OSError, serial.SerialException):
            port.close()
        self._readable.set()

    # ---- reading ---------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:  # end of file: the device went away
            self._fail(OSError(errno.EIO, "end of file"))
            return
        self._rx += data
        self.bytes_in += len(data)
        self._readable.set()

    def _fail(self, exc: OSError) -> None:
        self._failure = exc
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._fd)
        self._readable.set()

    def _check(self) -> None:
        if self._serial is None:
            raise SerialPortError(f"serial port {self.path} is not open")
        if self._failure is not None:
            raise SerialPortError(
                f"serial port {self.path} failed: {self._failure.strerror or self._failure}"
            )

    def discard_input(self) -> int:
        """Drop whatever was received and not read (a late answer, line noise)."""
        n = len(self._rx)
        self.discarded += n
        self._rx.clear()
        return n

    async def read(self, clock: Clock, deadline: float) -> bytes:
        """The bytes received so far, waiting for some until ``deadline`` (the clock's
        monotonic seconds); ``b""`` when the deadline passes first."""
        while not self._rx:
            self._check()
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return b""
            self._readable.clear()
            with contextlib.suppress(TimeoutError):
                await within(clock, remaining, self._readable.wait())
        self._check()
        data = bytes(self._rx)
        self._rx.clear()
        return data

    # ---- writing ---------------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        """Write ``data``; returns once the driver took every byte (not when they left the
        wire: that takes ``len(data) × char_s`` more)."""
        self._check()
        self._tx += data
        self._flush()
        if self._tx:
            loop = asyncio.get_running_loop()
            self._tx_done = loop.create_future()
            loop.add_writer(self._fd, self._on_writable)
            await self._tx_done
        self._check()

    def _flush(self) -> None:
        while self._tx:
            try:
                written = os.write(self._fd, self._tx)
            except BlockingIOError:
                return
            except OSError as exc:
                self._tx.clear()
                self._fail(exc)
                return
            self.bytes_out += written
            del self._tx[:written]

    def _on_writable(self) -> None:
        self._flush()
        if not self._tx:
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_writer(self._fd)
            if self._tx_done is not None and not self._tx_done.done():
                self._tx_done.set_result(None)


# ---- the bus -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange's use of the bus (clock monotonic seconds), for evidence and tests."""

    device: str
    asked: float
    started: float  # after the wait for the bus and its turnaround gap
    ended: float


class BusArbiter:
    """One serial bus shared by its meters: one exchange at a time, first come first served,
    ``bus.turnaround_ms`` of quiet between an exchange's end and the next request."""

    def __init__(
        self,
        bus: SerialBus,
        clock: Clock,
        *,
        port_factory: Callable[[SerialBus], SerialPort] | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self._make_port = port_factory or _default_port
        self._port: SerialPort | None = None
        self._busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._quiet_until = -math.inf
        self.in_flight = 0
        self.max_in_flight = 0  # stays 1 if the arbiter works
        self.max_waiting = 0
        self.turns: deque[Turn] = deque(maxlen=TURNS_KEPT)

    @property
    def turnaround_s(self) -> float:
        """The bus's turnaround gap; on Modbus RTU never below the t3.5 frame silence
        (Modbus over serial line V1.02 §2.5.1.1: 1.75 ms above 19200 baud)."""
        gap = self.bus.turnaround_ms / 1000.0
        if self.bus.protocol == "modbus-rtu":
            char_s = bits_per_char(self.bus.framing) / self.bus.baud
            gap = max(gap, 3.5 * char_s if self.bus.baud <= 19200 else 0.00175)
        return gap

    @property
    def port(self) -> SerialPort | None:
        """The port, once an exchange opened it."""
        return self._port

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    @contextlib.asynccontextmanager
    async def exchange(self, device: str) -> AsyncIterator[SerialPort]:
        """Hold the bus for one exchange of ``device``; yields the open port.

        Raises :class:`SerialPortError` when the port cannot be opened; a port that fails
        during the exchange is closed, to be opened afresh by the next one.
        """
        asked = self.clock.monotonic()
        await self._acquire()
        try:
            gap = self._quiet_until - self.clock.monotonic()
            if gap > 0:
                await self.clock.sleep(gap)
            port = self._open()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            started = self.clock.monotonic()
            try:
                yield port
            except SerialPortError:
                self._drop_port()
                raise
            finally:
                self.in_flight -= 1
                ended = self.clock.monotonic()
                self._quiet_until = ended + self.turnaround_s
                self.turns.append(Turn(device, asked, started, ended))
        finally:
            self._release()

    def close(self) -> None:
        self._drop_port()

    # ---- FIFO lock ---------------------------------------------------------------------------
    async def _acquire(self) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.max_waiting = max(self.max_waiting, self.waiting)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the bus, then cancelled: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # ownership passes straight on: _busy stays set
                return
        self._busy = False

    # ---- the port ----------------------------------------------------------------------------
    def _open(self) -> SerialPort:
        if self._port is not None and self._port.is_open:
            return self._port
        self._drop_port()
        port = self._make_port(self.bus)
        port.open()
        self._port = port
        return port

    def _drop_port(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


def _default_port(bus: SerialBus) -> SerialPort:
    return SerialPort(bus.port, baud=bus.baud, framing=bus.framing)


# ---- one exchange --------------------------------------------------------------------------------


class FrameDecoder(Protocol[F_co]):
    """What protocols.dlt645.StreamDecoder and protocols.cjt188.StreamDecoder offer."""

    def feed(self, data: bytes) -> Sequence[F_co | CodecError]: ...

    def idle(self) -> Sequence[F_co | CodecError]: ...

    @property
    def pending(self) -> int: ...


def error_kind(error: CodecError) -> str:
    """A codec's complaint as an exchange failure kind."""
    if error.reason in ("checksum", "crc"):
        return "checksum"
    if error.reason == "truncated":
        return "truncated"
    return "garbled"


async def transact(
    port: SerialPort,
    clock: Clock,
    request: bytes,
    decoder: FrameDecoder[F],
    accept: Callable[[F], bool],
    *,
    timeout_s: float,
    idle_s: float,
) -> F:
    """Send ``request`` and return the first frame ``accept`` takes as its answer.

    ``timeout_s`` counts from when the request's last byte has left the wire; ``idle_s`` is
    the longest silence allowed inside a frame. Frames ``accept`` refuses (another meter's
    late answer) are skipped. Raises :class:`ExchangeError`: ``timeout`` (nothing came),
    ``checksum``/``garbled``/``truncated`` (something came, but not a good frame).
    """
    port.discard_input()
    await port.send(request)
    deadline = clock.monotonic() + len(request) * port.char_s + timeout_s
    received = 0
    ignored = 0  # whole frames that were not the answer
    last_rx = clock.monotonic()
    while True:
        wait_until = deadline
        if decoder.pending:
            wait_until = min(deadline, last_rx + idle_s)
        data = await port.read(clock, wait_until)
        items: Sequence[F | CodecError]
        if data:
            received += len(data)
            last_rx = clock.monotonic()
            items = decoder.feed(data)
        else:
            pending = decoder.pending
            items = decoder.idle() if pending else ()
            if pending and not items:
                raise ExchangeError(
                    "truncated", f"the line went quiet {pending} bytes into an answer"
                )
        for item in items:
            if isinstance(item, CodecError):
                raise ExchangeError(error_kind(item), str(item))
            if accept(item):
                return item
            ignored += 1
        if not data and clock.monotonic() >= deadline:
            if ignored:
                raise ExchangeError(
                    "timeout",
                    f"no answer within {timeout_s:g} s ({ignored} other frame(s) ignored)",
                )
            if received:
                raise ExchangeError(
                    "garbled", f"{received} bytes received in {timeout_s:g} s, but no frame"
                )
            raise ExchangeError("timeout", f"no answer within {timeout_s:g} s")

"""A simulated RS-485 line: a pseudo-terminal pair paced at the bus's baud rate.

The terminal under test opens the pty's terminal end (``/dev/pts/N``, or ``Bus.link``, a symlink
to it) like any serial port; the bench reads and writes the master end with asyncio. A pty
carries bytes instantly whatever baud rate the terminal sets, so the line keeps wire time
itself, in both directions, on the fleet's clock:

- inbound (terminal → meters): each byte finishes arriving one character time after the
  previous one finished, or after it was read if the line was idle
  (``arrival = max(previous arrival, time read) + char time``); frames are handed to the meters
  only once their last byte has arrived (:func:`stream_frames`, :func:`frames_by_silence`);
- outbound (meters → terminal): :meth:`SerialLine.send` writes each byte no earlier than the
  moment its last bit would have left the wire, scheduled against the transmission's start
  time so sleep overshoot never accumulates.

Under ``frame`` pacing (long virtual-time runs) a whole exchange costs the clock one step: a
frame is handed to the meters as soon as its bytes are read, stamped with the instant its last
byte arrives, and the meters answer for the instants they would (faults drawn when the request
ended, values read when the answer starts); the answer is then planned on the line and written
when its last byte is due. Bytes the terminal sends meanwhile still push a planned answer back
(half-duplex) exactly as they would have had the meter waited for its moment.

The bus is half-duplex: one transmission at a time, never over inbound traffic. The last part
of the module plays the communication faults of a meter's answer (:func:`answer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import random
import select
import struct
import termios
import tty
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol, TypeVar

from common.clock import Clock, time_at
from simulators.clock import VirtualClock
from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import Bus, Fault

__all__ = [
    "Answer",
    "Arrival",
    "Layout",
    "LineClosed",
    "SerialLine",
    "StreamDecoder",
    "answer",
    "collide",
    "damage",
    "frames_by_silence",
    "modbus_gap",
    "stream_frames",
]

READ_SIZE: Final = 4096
#: How outbound bytes are paced: ``char`` writes each byte when its stop bit would leave the
#: wire; ``frame`` writes a whole transmission when its last byte would, and hands inbound
#: frames over as soon as they are read (see the module's docstring). The terminal sees the
#: same end times either way, and ``frame`` costs one clock step an exchange instead of one a
#: byte: the choice for long virtual-time runs, where clock steps dominate the wall time.
Pacing = Literal["char", "frame"]
#: DL/T 645 allows at most 500 ms between the bytes of one frame; CJ/T 188 masters keep to the
#: same. A frame still incomplete after that much silence will never complete.
STREAM_IDLE_S: Final = 0.5
# Float slack when deciding how many bytes are due at an instant computed from the same sums.
_EPSILON: Final = 1e-9


class LineClosed(RuntimeError):
    """The line was closed while someone waited on it."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """Bytes the terminal wrote, with when they were on the wire (clock.monotonic() seconds)."""

    data: bytes
    start: float  # the first byte's start bit
    char_s: float  # one character's time on the wire

    @property
    def end(self) -> float:
        """When the last byte's stop bit has arrived."""
        return self.start + len(self.data) * self.char_s

    def byte_end(self, index: int) -> float:
        return self.start + (index + 1) * self.char_s


@dataclass(slots=True)
class _Planned:
    """A transmission ``frame`` pacing has planned but not yet written (clock.monotonic() s)."""

    at: float  # when it was asked to start: inbound bytes read by then still push it back
    free: float  # when the line is free for it (the last transmission, inbound traffic)
    duration: float

    @property
    def end(self) -> float:
        return max(self.at, self.free) + self.duration


class SerialLine:
    """One bus's pty pair, paced at ``bus.baud`` with ``bus.bits_per_char`` bits a character.

    Use as ``async with SerialLine(bus, clock) as line``; :attr:`address` is what the terminal
    opens (the link if the bus names one, else the pty path).
    """

    def __init__(self, bus: Bus, clock: Clock, *, pacing: Pacing = "char") -> None:
        self.bus = bus
        self.clock = clock
        self.pacing = pacing
        self.char_s = bus.bits_per_char / bus.baud
        self.path = ""  # the terminal's end, /dev/pts/N, once open
        self.link: Path | None = None
        self._master = -1
        self._slave = -1
        self._inbox: deque[Arrival] = deque()
        self._wakeup = asyncio.Event()
        self._rx_end = 0.0  # when the last inbound byte finished arriving
        self._tx_end = 0.0  # when the last outbound byte finished leaving
        self._planned: _Planned | None = None  # frame pacing: the transmission being waited out
        self._tx_lock = asyncio.Lock()
        self._closed = False
        self._failure: OSError | None = None
        self._unwatch: Callable[[], None] | None = None
        self._poll = select.poll()
        self._terminal_waiting = 0  # bytes the terminal had not read at the last look
        # Evidence about the line itself, for reports.
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.tx_dropped = 0  # bytes the terminal left unread until the pty buffer was full
        self.collisions = 0  # inbound bytes that started while a meter was talking

    # ---- opening and closing ----------------------------------------------------------------
    @property
    def address(self) -> str:
        return str(self.link) if self.link is not None else self.path

    def open(self) -> None:
        """Create the pty pair and the link; start reading. Needs a running event loop."""
        loop = asyncio.get_running_loop()
        # The bench keeps the terminal end's descriptor (``_slave``) open for the line's life:
        # with no one holding it, the master reports a hang-up (EIO) in a tight loop until the
        # terminal opens the port.
        self._master, self._slave = os.openpty()
        try:
            # Raw at once: a fresh pty echoes and translates, and its XON/XOFF handling would
            # swallow 0x11 and 0x13 (DL/T 645's read and read-address codes). The terminal's
            # own settings replace these when it opens the port.
            tty.setraw(self._slave)
            self._arm_termios()
            os.set_blocking(self._master, False)
            self.path = os.ttyname(self._slave)
            if self.bus.link is not None:
                self.link = _make_link(Path(self.bus.link), self.path, self.bus.id)
            loop.add_reader(self._master, self._on_readable)
            if isinstance(self.clock, VirtualClock):
                self._poll.register(self._master, select.POLLIN)
                self._poll.register(self._slave, select.POLLIN)
                self._unwatch = self.clock.watch(self._in_flight)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._master >= 0:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = -1
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1
        if self.link is not None:
            # Only our own link: someone may have replaced it meanwhile.
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.path:
                    self.link.unlink()
            self.link = None

    def _arm_termios(self) -> None:
        """Keep ECHOK set on the terminal end, so the terminal's next tcsetattr changes a flag.

        A Linux pty has no parity or character size: tcsetattr drops PARENB/CS7 silently when
        it changes anything else, and fails with EINVAL when it changes nothing else (pyserial
        issue #196). A terminal opening an 8E1 port a second time asks for exactly that. Its
        open clears ECHOK (raw mode), so with ECHOK set the request always changes something.
        ECHOK does nothing without ICANON, so it never alters the bytes.
        """
        attrs = termios.tcgetattr(self._slave)
        if not attrs[3] & termios.ECHOK:
            attrs[3] |= termios.ECHOK
            termios.tcsetattr(self._slave, termios.TCSANOW, attrs)

    async def __aenter__(self) -> SerialLine:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _in_flight(self) -> bool:
        """Whether bytes were inside the pty that neither end had been told of (for the virtual
        clock, :meth:`VirtualClock.watch`). A pty hands written bytes to the other end from a
        kernel worker, a moment later: time moving meanwhile let the bench read requests and the
        terminal answers milliseconds late (2–17 % of them in a 35-minute works-fleet run).
        Polling an end makes the kernel hand over what is pending at once."""
        if self._failure is not None:
            return False  # no longer read: readable for ever
        polled = self._poll.poll(0)
        # For the terminal: bytes it has not read yet, unless they were there last time too (a
        # terminal that has closed its port or does not read it must not stop the clock).
        waiting = _waiting(self._slave)
        fresh = waiting > 0 and waiting != self._terminal_waiting
        self._terminal_waiting = waiting
        return fresh or any(fd == self._master for fd, _ in polled)

    # ---- time -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.monotonic()

    async def sleep_until(self, when: float) -> None:
        """Sleep until the clock's monotonic time reaches ``when`` (an absolute deadline)."""
        delay = when - self.clock.monotonic()
        if delay > 0:
            await self.clock.sleep(delay)

    # ---- inbound ----------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no terminal end open (we hold one, so only briefly)
                return
            # Anything else will repeat on every poll: stop reading and tell the waiters.
            self._failure = exc
            asyncio.get_running_loop().remove_reader(self._master)
            self._wakeup.set()
            return
        if not data:
            return
        read_at = self.clock.monotonic()
        self._arm_termios()  # the terminal has opened (and set up) the port: re-arm
        start = max(self._rx_end, read_at)
        planned = self._planned
        # A planned answer is on the wire from its ``at`` on; before that the meter has not
        # begun, and what the terminal sends pushes the answer back instead (half-duplex).
        on_air = planned is not None and read_at > planned.at
        talking_until = planned.end if planned is not None and on_air else self._tx_end
        if start < talking_until:
            self.collisions += len(data)
        arrival = Arrival(data, start, self.char_s)
        self._rx_end = arrival.end
        if planned is not None and read_at <= planned.at:
            planned.free = max(planned.free, arrival.end)
        self.rx_bytes += len(data)
        self._inbox.append(arrival)
        self._wakeup.set()

    async def next_arrival(self, deadline: float | None = None) -> Arrival | None:
        """The next bytes the terminal wrote, as soon as they are read (their wire times say
        when they arrive); None once the clock passes ``deadline`` with nothing read."""
        while not self._inbox:
            if self._closed or self._failure is not None:
                raise LineClosed(
                    f"serial line of bus {self.bus.id} is closed"
                    + (f": {self._failure}" if self._failure is not None else "")
                ) from self._failure
            self._wakeup.clear()
            if deadline is None:
                await self._wakeup.wait()
                continue
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return None
            waiter = asyncio.ensure_future(self._wakeup.wait())
            timer = asyncio.ensure_future(self.clock.sleep(remaining))
            try:
                await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                timer.cancel()
        return self._inbox.popleft()

    def push_back(self, arrival: Arrival) -> None:
        """Return an arrival to the front of the inbox (a framer read one too many)."""
        self._inbox.appendleft(arrival)

    # ---- outbound ---------------------------------------------------------------------------
    async def send(self, data: bytes, *, at: float | None = None) -> float:
        """Transmit ``data`` starting no earlier than ``at`` (monotonic seconds), after any
        transmission or inbound traffic in progress; returns when its last byte left the wire.

        Byte ``k`` reaches the terminal no earlier than ``start + (k + 1) × char time``.
        """
        requested = at if at is not None else self.clock.monotonic()  # before queueing
        async with self._tx_lock:
            if self.pacing == "frame":
                return await self._send_frame(data, requested)
            start = max(requested, self._tx_end)
            start = max(start, self._rx_end)  # half-duplex: no talking over the terminal
            end = start + len(data) * self.char_s
            self._tx_end = end
            await self.sleep_until(start)
            sent = 0
            while sent < len(data):
                if self._closed:
                    raise LineClosed(f"serial line of bus {self.bus.id} is closed")
                now = self.clock.monotonic()
                due = min(len(data), int((now - start) / self.char_s + _EPSILON))
                if now >= start + (sent + 1) * self.char_s:
                    # Far from the clock's zero, float rounding can leave the division a hair
                    # short of a deadline already reached; never wait for it again (a spin).
                    due = max(due, sent + 1)
                if due > sent:
                    self._write(data[sent:due])
                    sent = due
                if sent < len(data):
                    await self.sleep_until(start + (sent + 1) * self.char_s)
            return end

    async def _send_frame(self, data: bytes, requested: float) -> float:
        """``frame`` pacing: plan the transmission, sleep until its last byte is due, write it
        whole. Its start is fixed at ``requested`` (or once the line was free): inbound bytes
        read until then push it back, as they would have had the sender waited until then."""
        # Serialised by the lock: the previous transmission has been written by now.
        at = max(requested, self.clock.monotonic())
        planned = _Planned(at, max(self._tx_end, self._rx_end), len(data) * self.char_s)
        self._planned = planned
        try:
            end = planned.end
            while True:  # pushed back only by inbound traffic, which moves the end later
                await self.sleep_until(end)
                if planned.end <= end:
                    break
                end = planned.end
        finally:
            self._planned = None
        self._tx_end = end
        if self._closed:
            raise LineClosed(f"serial line of bus {self.bus.id} is closed")
        self._write(data)
        return end

    def _write(self, chunk: bytes) -> None:
        try:
            written = os.write(self._master, chunk)
        except BlockingIOError:
            written = 0
        # Bytes the terminal does not take are lost, as on a wire nobody listens to.
        self.tx_dropped += len(chunk) - written
        self.tx_bytes += written


def _waiting(fd: int) -> int:
    """Bytes an end of the pty holds for its reader (FIONREAD; the kernel worker's pending
    bytes not counted)."""
    count: int = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    return count


def _make_link(link: Path, target: str, bus_id: str) -> Path:
    """Point ``link`` at the pty, replacing a stale symlink but never a file or directory."""
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise FileExistsError(
            f"bus {bus_id}: link {link} exists and is not a symlink; refusing to replace it"
        )
    if not link.parent.is_dir():
        raise FileNotFoundError(f"bus {bus_id}: link {link}: directory {link.parent} is missing")
    link.symlink_to(target)
    return link


# ---- frames out of the inbound bytes --------------------------------------------------------
F_co = TypeVar("F_co", covariant=True)


class StreamDecoder(Protocol[F_co]):
    """What protocols.dlt645.StreamDecoder and protocols.cjt188.StreamDecoder share."""

    def feed(self, data: bytes) -> Sequence[F_co]: ...

    def idle(self) -> Sequence[F_co]: ...

    @property
    def pending(self) -> int: ...


async def stream_frames(
    line: SerialLine, decoder: StreamDecoder[F_co], *, idle_s: float = STREAM_IDLE_S
) -> AsyncGenerator[tuple[F_co, float], None]:
    """Self-delimiting frames (DL/T 645, CJ/T 188) with the instant their last byte arrived,
    each yielded no earlier than that instant (under ``frame`` pacing: as soon as it is read).

    Bytes are fed one at a time so every frame knows which byte completed it; after ``idle_s``
    of silence with a frame pending the decoder is told the line went idle.
    """
    last_end = 0.0
    while True:
        deadline = last_end + idle_s if decoder.pending else None
        arrival = await line.next_arrival(deadline)
        if arrival is None:
            for item in decoder.idle():
                yield item, last_end
            continue
        data = arrival.data
        for index in range(len(data)):
            for item in decoder.feed(data[index : index + 1]):
                end = arrival.byte_end(index)
                if line.pacing == "char":
                    await line.sleep_until(end)
                yield item, end
        last_end = arrival.end


def modbus_gap(bus: Bus) -> float:
    """Modbus RTU's t3.5 silence: 3.5 characters, fixed at 1.75 ms above 19200 baud
    (Modbus over serial line V1.02 §2.5.1.1)."""
    return 3.5 * bus.bits_per_char / bus.baud if bus.baud <= 19200 else 0.00175


async def frames_by_silence(
    line: SerialLine, gap_s: float
) -> AsyncGenerator[tuple[bytes, float], None]:
    """Frames delimited by ``gap_s`` of silence (Modbus RTU), each yielded at the instant the
    silence after it was complete, with that instant."""
    buffer = bytearray()
    end = 0.0
    while True:
        arrival = await line.next_arrival(end + gap_s if buffer else None)
        if arrival is not None and (not buffer or arrival.start < end + gap_s):
            buffer += arrival.data
            end = arrival.end
            continue
        if arrival is not None:
            line.push_back(arrival)  # starts the next frame
        ready = end + gap_s
        await line.sleep_until(ready)
        yield bytes(buffer), ready
        buffer.clear()


# ---- answers and their faults ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Layout:
    """Where an answer's parts sit, so a fault damages the right bytes."""

    preamble: int  # leading wake-up bytes (FE …) that garbling and truncation leave alone
    checksum: slice  # the check bytes: slice(-2, -1) for a sum before 0x16, slice(-2, None) CRC


@dataclass(frozen=True, slots=True)
class Answer:
    """What one meter would say to a request, built only when it speaks.

    ``build(t)`` makes the normal answer at wall time ``t`` (reading the meter's values then);
    ``error()`` the protocol's error answer, played for the ``exception`` fault. Both are
    coroutines because pymodbus's datastore is.
    """

    meter: MeterRuntime
    build: Callable[[float], Awaitable[bytes]]
    error: Callable[[], Awaitable[bytes]]
    layout: Layout


def damage(data: bytes, fault: Fault | None, layout: Layout, rng: random.Random) -> bytes:
    """``data`` as the ``bad_checksum``, ``garbled`` or ``truncated`` fault sends it."""
    if fault is None or not data:
        return data
    wire = bytearray(data)
    body = range(min(layout.preamble, len(wire) - 1), len(wire))
    if fault.kind == "bad_checksum":
        start, stop, _ = layout.checksum.indices(len(wire))
        for index in range(start, stop):
            wire[index] ^= rng.randrange(1, 256)
    elif fault.kind == "garbled":
        for index in rng.sample(body, min(len(body), rng.randint(1, 3))):
            wire[index] ^= rng.randrange(1, 256)  # never zero: the byte really changes
    elif fault.kind == "truncated":
        del wire[rng.randint(body.start + 1, len(wire) - 1) :]
    return bytes(wire)


def collide(answers: Sequence[bytes]) -> bytes:
    """Several meters talking at once (a wildcard request on a shared bus): the line carries
    neither answer. Modelled as the bitwise AND of the bytes, as long as the longest."""
    out = bytearray(b"\xff" * max(len(a) for a in answers))
    for data in answers:
        for index, byte in enumerate(data):
            out[index] &= byte
    return bytes(out)


async def answer(
    line: SerialLine, fleet: FleetRuntime, answers: Sequence[Answer], ready_at: float
) -> None:
    """Let the meters in ``answers`` answer a request whose end they knew at ``ready_at``.

    Each meter draws its communication fault (no_answer → silence; slow → its delay_ms instead
    of the bus's response delay; exception → its error answer; bad_checksum, garbled, truncated
    → damaged bytes). Several answering meters collide (:func:`collide`) from the earliest start.
    Faults are drawn for ``ready_at`` and values read for the answer's start, whenever this
    runs: under ``frame`` pacing that is before either instant (one clock step an exchange).
    """
    bus = line.bus
    planned: list[tuple[float, Answer, Fault | None]] = []
    asked = time_at(fleet.clock, ready_at)
    for candidate in answers:
        fault = candidate.meter.communication_fault(asked)
        if fault is not None and fault.kind == "no_answer":
            continue
        if fault is not None and fault.kind == "slow":
            delay = fault.delay_ms / 1000.0
        else:
            delay = candidate.meter.response_delay(*bus.response_delay_ms)
        planned.append((ready_at + delay, candidate, fault))
    if not planned:
        return
    at = min(when for when, _, _ in planned)
    if line.pacing == "char":
        await line.sleep_until(at)  # real time: build the answer when the meter would
    t = time_at(fleet.clock, at)
    wires = []
    for _, candidate, fault in planned:
        if fault is not None and fault.kind == "exception":
            data = await candidate.error()
        else:
            data = await candidate.build(t)
        wires.append(damage(data, fault, candidate.layout, candidate.meter.random()))
    await line.send(wires[0] if len(wires) == 1 else collide(wires), at=at)

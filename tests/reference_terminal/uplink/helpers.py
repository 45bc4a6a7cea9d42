"""What the uplink tests share: a small HJ 212 centre on a loopback socket (driven by
``protocols.hj212.PlatformSession``), a clock that runs faster than the wall, and a terminal
configuration with two coded points."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.clock import RealClock
from protocols.hj212 import Cp, Packet, PlatformSession, SessionConfig
from protocols.hj212 import events as ev
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, WindowFigures
from reference_terminal.storage.store import Store
from reference_terminal.uplink.outbox import Outbox
from reference_terminal.uplink.producer import Producer
from reference_terminal.uplink.service import coding_for
from reference_terminal.uplink.settings import CentreSettings

MN_A = "010000A8900016F000169DC0"
MN_B = "010000A8900016F000169DC1"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC; a whole hour in China time too


class ScaledClock:
    """Wall time sped up ``speed`` times: real sockets keep their real timing while the
    terminal's schedules (minutes, OverTime, backoff) pass quickly."""

    def __init__(self, speed: float = 60.0, start: float = T0) -> None:
        self.speed = speed
        self.start = start
        self._m0 = asyncio.get_running_loop().time()

    def time(self) -> float:
        return self.start + (asyncio.get_running_loop().time() - self._m0) * self.speed

    def monotonic(self) -> float:
        return self.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


@dataclass
class Upload:
    conn: int
    cn: int
    qn: str
    data_time: datetime | None
    codes: tuple[str, ...]
    packet: Packet
    at: float  # loop time of arrival


@dataclass
class Centre:
    """An HJ 212 centre: records every upload, acknowledges it (or not), sends requests."""

    mn: str
    pw: str = "123456"
    ack: bool = True
    ack_delay_s: float = 0.0
    uploads: list[Upload] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _conns: list[tuple[PlatformSession, asyncio.StreamWriter]] = field(default_factory=list)
    _events: asyncio.Queue[ev.Event] = field(default_factory=asyncio.Queue)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: what ended a connection other than the terminal closing it (for a failing test to say)
    errors: list[str] = field(default_factory=list)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close the listener and every connection: the port then refuses connections."""
        if self._server is not None:
            self._server.close()
            for _, writer in self._conns:
                writer.close()
            await self._server.wait_closed()
            self._server = None
        self._conns.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = PlatformSession(SessionConfig(self.mn, self.pw, "32"), auto_ack=False)
        conn = len(self._conns)
        self._conns.append((session, writer))
        try:
            while data := await reader.read(65536):
                session.receive_data(data, datetime.now())
                for event in session.events():
                    if isinstance(event, ev.DataReceived):
                        self._record(conn, event.packet)
                        if event.packet.ack_requested and self.ack:
                            self._acknowledge(session, writer, event.packet)
                    else:
                        await self._events.put(event)
                writer.write(session.data_to_send())
        except (ConnectionError, OSError):
            pass
        except Exception as exc:
            self.errors.append(f"connection {conn}: {exc!r}")
            raise
        finally:
            writer.close()

    def _record(self, conn: int, packet: Packet) -> None:
        loop = asyncio.get_running_loop()
        codes = tuple(packet.cp.pollutants)
        upload = Upload(conn, packet.cn, packet.qn or "", packet.cp.data_time, codes, packet, 0.0)
        upload.at = loop.time()
        self.uploads.append(upload)

    def _acknowledge(
        self, session: PlatformSession, writer: asyncio.StreamWriter, packet: Packet
    ) -> None:
        async def later() -> None:
            await asyncio.sleep(self.ack_delay_s)
            session.acknowledge(packet)
            writer.write(session.data_to_send())

        if self.ack_delay_s:
            task = asyncio.create_task(later())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            session.acknowledge(packet)

    async def request(self, cn: int, cp: Cp | None = None, timeout: float = 10) -> list[ev.Event]:
        """Send a request on the latest connection; the events up to its 9012 (or refusal)."""
        session, writer = self._conns[-1]
        qn = session.request(cn, datetime.now(), cp)
        writer.write(session.data_to_send())
        seen: list[ev.Event] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self._events.get()
                seen.append(event)
                if isinstance(event, ev.RequestCompleted | ev.RequestRejected) and event.qn == qn:
                    return seen

    def history_records(self, since: int) -> list[Upload]:
        return [u for u in self.uploads[since:] if not u.packet.ack_requested]

    async def wait_for(self, test: Callable[[], bool], timeout: float = 10) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not test():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"not within {timeout:g} s: {self.summary()}") from None

    def summary(self) -> str:
        """What this centre has seen, in a line: uploads per connection, QNs, errors."""
        per_conn = Counter(u.conn for u in self.uploads)
        return (
            f"centre {self.mn[-4:]}: {len(self.uploads)} uploads "
            f"({len({u.qn for u in self.uploads})} QNs) over connections {dict(per_conn)} "
            f"of {len(self._conns)}; errors {self.errors or 'none'}"
        )


def posix(local: datetime) -> float:
    """A China-time DataTime as POSIX seconds."""
    return local.replace(tzinfo=UTC).timestamp() - 8 * 3600


def local_midnight(t: float) -> float:
    return (t + 8 * 3600) // 86400 * 86400 - 8 * 3600


def config(
    tmp_path: Path,
    centres: list[dict[str, Any]],
    *,
    db: str = "terminal.db",
) -> TerminalConfig:
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "manual", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [
                {"id": "P1", "kind": "counter", "group": "g", "source": {"device": "manual"}},
                {"id": "P2", "kind": "gauge", "group": "g", "source": {"device": "manual"}},
            ],
            "storage": {"url": f"sqlite:///{tmp_path / db}"},
            "uplink": {
                "codes": [
                    {
                        "point": "P1",
                        "code": {
                            "industry": "C3011",
                            "activity": "03",
                            "source": "001",
                            "parameter": "e01",
                            "point": 1,
                        },
                    },
                    {"point": "P2", "code": "a05001"},
                ],
                "centres": centres,
            },
        }
    )


def hj212_centre(name: str, mn: str, port: int, **more: Any) -> dict[str, Any]:
    streams = more.pop("streams", {"realtime": False, "minute": True})
    return {
        "name": name,
        "protocol": "hj212",
        "host": "127.0.0.1",
        "port": port,
        "mn": mn,
        "streams": streams,
        "backoff": {"initial_s": 2, "max_s": 10},
        **more,
    }


def minute_rows(start: float, minutes: int, *, quality: Quality = Quality.GOOD) -> list[Derived]:
    """What processing stores for closed minute windows of P1 (counter) and P2 (gauge)."""
    rows = []
    for m in range(minutes):
        t = start + 60 * m
        for point, value in (("P1", Decimal("1.25") + m), ("P2", Decimal("400.5"))):
            figures = WindowFigures(value + 1, value - 1, value - 1, value + 1)
            rows.append(Derived(point, "minute", t, t + 60, value, quality, "", t + 60, figures))
    return rows


@contextlib.asynccontextmanager
async def running(terminal: Terminal) -> AsyncIterator[Store]:
    task = asyncio.create_task(terminal.run())
    try:
        async with asyncio.timeout(20):
            await terminal.ready.wait()
        assert terminal.store is not None
        yield terminal.store
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


#: The plant's offset from UTC in the producers' configurations (+08:00).
OFFSET_S = 8 * 3600


def producers(
    store: Store, cfg: TerminalConfig, *, bounds: tuple[int, ...] = (10_000, 10_000)
) -> list[Producer]:
    """A producer for each centre of ``cfg`` (its outbox bounded by ``bounds``), on ``store``."""
    made = []
    for centre, bound in zip(cfg.uplink.centres, bounds, strict=False):
        outbox = Outbox(store, centre.name, bound, RealClock(), OFFSET_S)
        made.append(
            Producer(
                centre,
                coding_for(cfg, centre),
                store,
                RealClock(),
                outbox,
                CentreSettings.configured(centre),
                utc_offset_s=OFFSET_S,
                grace_s=5.0,
            )
        )
    return made

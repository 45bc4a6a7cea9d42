"""Terminal backfill through a slow link: ``python -m benchmarks.bench_backfill [--days 7]``.

A week's backlog (ISC-2 §7.2.4(5), CPCIF §8.3) of 100 points at 1-minute resolution — one
2051 frame per minute, 100 factor codes each, split into packets as HJ 212 requires — sits in
the terminal's outbox. The terminal's HJ 212 client sends it to a ``PlatformSession`` receiver
through a loopback relay holding each direction to ``--rate`` bytes/s with a token bucket
(64 kB/s by default). Figure: achieved throughput (bytes through the relay, terminal → centre,
first byte to last acknowledgement) over the link's limit; the issue's target is ≥ 0.9.

The data's time is compressed (a week of minutes stored at once); the link's is not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from benchmarks.harness import Figure, report
from common.clock import RealClock
from protocols.hj212 import PlatformSession, SessionConfig
from protocols.hj212 import events as ev
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink.service import Uplink

MN = "010000A8900016F000169DC0"
POINTS = 100
CHUNK = 4096  # bytes a relay pump moves at most per step
BUCKET = 4096  # token bucket depth: bursts stay short


class Relay:
    """A TCP relay on 127.0.0.1 limiting each direction to ``rate`` bytes/s."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self.upstream_bytes = 0
        self.first_byte_at: float | None = None
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        # a handler cancelled at shutdown is the benchmark ending, not an error
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                self._pump(reader, up_writer, upstream=True),
                self._pump(up_reader, writer, upstream=False),
                return_exceptions=True,
            )
        writer.close()
        up_writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        tokens, last = float(BUCKET), time.perf_counter()
        while data := await reader.read(CHUNK):
            if upstream and self.first_byte_at is None:
                self.first_byte_at = time.perf_counter()
            view = memoryview(data)
            while view:
                now = time.perf_counter()
                tokens = min(float(BUCKET), tokens + (now - last) * self.rate)
                last = now
                if tokens < 1:
                    await asyncio.sleep((1 - tokens) / self.rate)
                    continue
                n = min(len(view), int(tokens))
                writer.write(view[:n])
                tokens -= n
                view = view[n:]
                if upstream:
                    self.upstream_bytes += n
            await writer.drain()


class Receiver:
    """The centre: a PlatformSession per connection, acknowledging every upload."""

    def __init__(self) -> None:
        self.frames = 0
        self.codes = 0
        self.data_times: list[datetime] = []
        self.last_at = 0.0
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = PlatformSession(SessionConfig(MN, "123456", "32"))
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._receive(session, reader, writer)

    async def _receive(
        self, session: PlatformSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            session.receive_data(data, datetime.now())
            for event in session.events():
                if isinstance(event, ev.DataReceived):
                    self.frames += 1
                    self.codes += len(event.packet.cp.pollutants)
                    if event.packet.cp.data_time is not None:
                        self.data_times.append(event.packet.cp.data_time)
                    self.last_at = time.perf_counter()
            writer.write(session.data_to_send())


def _config(url: str, port: int, window: int) -> TerminalConfig:
    points = [f"P{i:03d}" for i in range(POINTS)]
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "manual", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [{"id": p, "group": "g", "source": {"device": "manual"}} for p in points],
            "storage": {"url": url},
            "uplink": {
                "codes": [{"point": p, "code": f"e{i + 1:05d}"} for i, p in enumerate(points)],
                "centres": [
                    {
                        "name": "national",
                        "protocol": "hj212",
                        "host": "127.0.0.1",
                        "port": port,
                        "mn": MN,
                        "streams": {
                            "realtime": False,
                            "minute": True,
                            "hourly": False,
                            "daily": False,
                        },
                        "outbox": {"max_entries": 200_000, "window": window},
                    }
                ],
            },
        }
    )


def _backlog(start: float, minutes: int) -> list[Derived]:
    return [
        Derived(
            f"P{p:03d}",
            "minute",
            start + 60 * m,
            start + 60 * m + 60,
            Decimal(100 + p) + Decimal(m % 997) / 100,
            Quality.GOOD,
        )
        for m in range(minutes)
        for p in range(POINTS)
    ]


async def run(days: float, rate: float, window: int) -> dict[str, float]:
    minutes = int(days * 1440)
    with tempfile.TemporaryDirectory() as tmp:
        receiver = Receiver()
        await receiver.start()
        relay = Relay(receiver.port, rate)
        await relay.start()
        url = sqlite_url(Path(tmp) / "terminal.db")
        config = _config(url, relay.port, window)
        clock = RealClock()
        async with await Store.open(url) as store:
            uplink = Uplink(config, store, clock)
            await uplink.prepare()
            now = clock.time()
            start = now - now % 60 - minutes * 60
            t0 = time.perf_counter()
            for day in range(0, minutes, 1440):  # a day at a time: bounded memory
                await store.write_derived(_backlog(start + day * 60, min(1440, minutes - day)))
            stored_s = time.perf_counter() - t0
            centre = uplink.centres["national"]
            assert centre.producer is not None
            t0 = time.perf_counter()
            made = await centre.producer.produce(clock.time())
            enqueue_s = time.perf_counter() - t0
            task = asyncio.create_task(uplink.run())
            try:
                while centre.outbox.stats.acknowledged < len(made):
                    await asyncio.sleep(0.2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert relay.first_byte_at is not None
            elapsed = receiver.last_at - relay.first_byte_at
            await relay.stop()
            in_order = receiver.data_times == sorted(receiver.data_times)
            return {
                "frames": len(made),
                "received": receiver.frames,
                "values": receiver.codes,
                "bytes": relay.upstream_bytes,
                "seconds": elapsed,
                "throughput": relay.upstream_bytes / elapsed,
                "stored_s": stored_s,
                "enqueue_s": enqueue_s,
                "oldest_first": float(in_order),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="backlog length (default 7)")
    parser.add_argument("--rate", type=float, default=64 * 1024, help="link bytes/s each way")
    parser.add_argument("--window", type=int, default=16, help="frames in flight")
    args = parser.parse_args()
    result = asyncio.run(run(args.days, args.rate, args.window))
    report(
        "backfill",
        [
            Figure(
                "backfill_throughput_over_link_limit",
                result["throughput"] / args.rate,
                "ratio",
                0.9,
            ),
            Figure("backfill_throughput", result["throughput"], "B/s"),
            Figure("backlog_frames", result["frames"], "frames"),
        ],
        link_limit_bytes_per_s=args.rate,
        days=args.days,
        points=POINTS,
        window=args.window,
        detail=result,
    )


if __name__ == "__main__":
    main()

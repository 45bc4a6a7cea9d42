"""The reference terminal's uplink, CPU per unit of work: ``python -m benchmarks.bench_uplink``.

Shaped like the ``retention-48h`` scenario (issue 6): the works fleet's minute data — 200
points' minute windows (one row each, its figures beside its main one), 114 increments and a
few CO₂ rows a minute (329 derived rows, as the scenario's store holds them), 189 points coded
as the bench codes them — and two HJ 212 centres taking minute data, in a real store (SQLite,
WAL, synchronous=FULL, intake log).

- ``produce_cpu_ms``: one minute's producer scans of both centres (``Producer.produce``, run
  together as the terminal runs them), CPU time of the whole process (loop, writer thread),
  median of ``--minutes`` minutes, each after a minute of derived rows was stored and applied.
- ``drain_*_cpu_ms_per_frame``: sending a backlog of ``--backlog`` minute frames per centre as
  ``Hj212Client._dispatch`` does, per frame and part: ``load`` (the outbox read in chunks),
  ``assign_qns`` (durably, a window at a time), ``cp`` (``Frame.cp``), ``codec`` (the session
  rendering and splitting the packets: ``protocols/``, not the uplink's), ``ack`` (deleting
  the acknowledged entries). Best of ``--repeats`` drains.

CPU time (``time.process_time``), not wall time: on a shared 2-core machine it measures the
code rather than its neighbours; ``--profile`` prints cProfile's top functions instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.harness import Figure, StandingClock, report
from protocols.hj212 import EDITIONS, SessionConfig
from reference_terminal.config import Hj212Centre, TerminalConfig
from reference_terminal.model import Quality
from reference_terminal.storage.schema import Derived, WindowFigures
from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink.codes import render_code
from reference_terminal.uplink.frames import Coding, local_time
from reference_terminal.uplink.hj212_client import BACKLOG_CHUNK
from reference_terminal.uplink.outbox import START, Entry, Outbox
from reference_terminal.uplink.producer import Producer
from reference_terminal.uplink.session import UplinkSession
from reference_terminal.uplink.settings import CentreSettings

T = TypeVar("T")

POINTS = 200  # with minute figures
CODED = 189  # of which coded (the polled ones)
COUNTERS = 114  # of which counters (with increments)
CO2_ROWS = 15
UTC_OFFSET_S = 8 * 3600
GRACE_S = 5.0
T0 = 1_767_196_800.0  # 2026-01-01 00:00 +08:00, the works fleet's start
PARTS = ("load", "assign_qns", "cp", "codec", "ack")
MNS = ("010000A8900016F000100000", "010000A8900016F000100001")


class FixedClock(StandingClock):
    """A standing clock whose sleeps move no time: the uplink's timers never come due."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def _point(n: int) -> str:
    return f"em-point_{n:03d}.00010000"


def _config(url: str) -> TerminalConfig:
    points = [_point(n) for n in range(POINTS)]
    codes = [
        {
            "point": p,
            "code": {
                "industry": "C3011",
                "activity": "03",
                "source": f"{n + 1:03d}",
                "parameter": "e01",
                "point": 1,
            },
        }
        for n, p in enumerate(points[:CODED])
    ]
    centres = [
        {
            "name": name,
            "protocol": "hj212",
            "host": "127.0.0.1",
            "port": 1,
            "mn": mn,
            "streams": {"realtime": False, "minute": True, "hourly": False, "daily": False},
        }
        for name, mn in zip(("provincial", "group"), MNS, strict=True)
    ]
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "manual", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [{"id": p, "group": "g", "source": {"device": "manual"}} for p in points],
            "storage": {"url": url},
            "uplink": {"codes": codes, "centres": centres, "utc_offset_s": UTC_OFFSET_S},
        }
    )


def _coding(config: TerminalConfig) -> Coding:
    codes = {e.point: render_code(e.code) for e in config.uplink.codes}
    return Coding(codes, frozenset(_point(n) for n in range(COUNTERS)))


def _minute(start: float) -> list[Derived]:
    """A minute's derived rows in the order processing commits them."""
    m = int((start - T0) // 60)
    end = start + 60

    def value(n: int, k: int) -> Decimal:
        return Decimal((n * 7919 + m * 31 + k * 13) % 500_000) / 100

    rows = [
        Derived(_point(n), "increment", start, end, value(n, 0), Quality.GOOD, computed_at=end)
        for n in range(COUNTERS)
    ]
    for n in range(POINTS):
        figures = WindowFigures(value(n, 1), value(n, 2), value(n, 3), value(n, 4))
        rows.append(
            Derived(_point(n), "minute", start, end, value(n, 0), Quality.GOOD, "", end, figures)
        )
    rows += [
        Derived(f"co2.{n}", "co2", start, end, value(n, 9), Quality.GOOD, computed_at=end)
        for n in range(CO2_ROWS)
    ]
    return rows


async def _cpu(work: Awaitable[T], spent: list[float]) -> T:
    t0 = time.process_time()
    result = await work
    spent.append(time.process_time() - t0)
    return result


class Bench:
    def __init__(self, store: Store, config: TerminalConfig, clock: FixedClock) -> None:
        self.store = store
        self.clock = clock
        coding = _coding(config)
        self.outboxes: list[Outbox] = []
        self.producers: list[Producer] = []
        for centre in config.uplink.centres:
            outbox = Outbox(store, centre.name, centre.outbox.max_entries, clock, UTC_OFFSET_S)
            self.outboxes.append(outbox)
            self.producers.append(
                Producer(
                    centre,
                    coding,
                    store,
                    clock,
                    outbox,
                    CentreSettings.configured(centre),
                    utc_offset_s=UTC_OFFSET_S,
                    grace_s=GRACE_S,
                )
            )
        self.centres = [c for c in config.uplink.centres if isinstance(c, Hj212Centre)]
        self.minute = 0

    async def prepare(self) -> None:
        for producer in self.producers:
            await producer.prepare()
        for outbox in self.outboxes:
            await outbox.open()

    async def store_minute(self) -> float:
        start = T0 + 60 * self.minute
        self.minute += 1
        await self.store.write_derived(_minute(start))
        await self.store.run_in_writer(lambda conn: None)  # applied to the database
        return start + 60 + GRACE_S  # when the producers scan it

    async def produce(self, now: float) -> int:
        self.clock.t = now
        made = await asyncio.gather(*(p.produce(now) for p in self.producers))
        return sum(len(m) for m in made)

    async def drain(self, index: int, parts: dict[str, list[float]]) -> int:
        """Send one centre's whole outbox as its client does (every upload acknowledged at
        once); returns the frames sent. CPU per part is added to ``parts``."""
        outbox, centre = self.outboxes[index], self.centres[index]
        window = centre.outbox.window
        config = SessionConfig(
            mn=centre.mn, pw=centre.pw, st=centre.st, edition=EDITIONS[centre.edition]
        )
        session = UplinkSession(config, outbox.qns)
        now = session_time = self.clock.time()
        when = local_time(session_time, UTC_OFFSET_S)
        cursor, sent, done = START, 0, False
        while not done:
            chunk: list[Entry] = await _cpu(outbox.load(cursor, None, BACKLOG_CHUNK), parts["load"])
            done = len(chunk) < BACKLOG_CHUNK
            if chunk:
                cursor = chunk[-1].frame.data_time, chunk[-1].id
            for at in range(0, len(chunk), window):
                batch = await _cpu(outbox.assign_qns(chunk[at : at + window]), parts["assign_qns"])
                cps = []
                t0 = time.process_time()
                for entry in batch:
                    cps.append(entry.frame.cp(UTC_OFFSET_S))
                parts["cp"].append(time.process_time() - t0)
                t0 = time.process_time()
                for entry, cp in zip(batch, cps, strict=True):
                    assert entry.qn is not None
                    session.upload_as(entry.frame.cn, cp, entry.qn, when, resent=False)
                session.data_to_send()
                parts["codec"].append(time.process_time() - t0)
                # the platform's 9014s, as the client's _events takes them
                session = UplinkSession(config, outbox.qns)
                t0 = time.process_time()
                for entry in batch:
                    outbox.acknowledge(entry.id)
                await outbox.flush()
                parts["ack"].append(time.process_time() - t0)
                sent += len(batch)
        del now
        return sent


async def run(minutes: int, backlog: int, repeats: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp) / "terminal.db")
        config = _config(url)
        clock = FixedClock(T0)
        async with await Store.open(url) as store:
            bench = Bench(store, config, clock)
            await bench.prepare()
            # warm up: a few minutes stored and scanned
            for _ in range(3):
                await bench.produce(await bench.store_minute())
            transactions = 0
            spent: list[float] = []
            profiler = cProfile.Profile() if profile else None
            writer_profiler = cProfile.Profile()
            if profile:  # the scans run in the store's writer thread: profiled there
                in_writer = store.run_in_writer

                async def profiled(fn: Callable[[Any], T]) -> T:
                    return await in_writer(lambda conn: writer_profiler.runcall(fn, conn))

                store.run_in_writer = profiled  # type: ignore[method-assign]
            frames = 0
            for _ in range(minutes):
                now = await bench.store_minute()
                if profiler is not None:
                    profiler.enable()
                before = store.stats.transactions
                frames += await _cpu(bench.produce(now), spent)
                transactions += store.stats.transactions - before
                if profiler is not None:
                    profiler.disable()
            if profiler is not None:
                store.run_in_writer = in_writer  # type: ignore[method-assign]
                print("---- produce: the event loop")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
                print("---- produce: the writer thread")
                pstats.Stats(writer_profiler).sort_stats("tottime").print_stats(40)

            # the backlog: ``backlog`` minutes in each outbox (the link was down)
            drains: list[dict[str, float]] = []
            sent = 0
            for r in range(repeats):
                while await bench.outboxes[0].size() < backlog:
                    await bench.produce(await bench.store_minute())
                parts: dict[str, list[float]] = {
                    k: [] for k in ("load", "assign_qns", "cp", "codec", "ack")
                }
                profiler = cProfile.Profile() if profile and r == 0 else None
                if profiler is not None:
                    profiler.enable()
                sent = 0
                for index in range(len(bench.outboxes)):
                    sent += await bench.drain(index, parts)
                if profiler is not None:
                    profiler.disable()
                    print("---- drain")
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
                drains.append({k: 1000 * sum(v) / sent for k, v in parts.items()})
            best = {k: min(d[k] for d in drains) for k in drains[0]}
            return {
                "produce_cpu_ms": statistics.median(spent) * 1000,
                "produce_cpu_ms_best": min(spent) * 1000,
                "frames_per_minute": frames / minutes,
                "transactions_per_minute": transactions / minutes,
                "drain": best,
                "drain_frames": sent,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of producer scans")
    parser.add_argument("--backlog", type=int, default=240, help="frames per centre drained")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    out = asyncio.run(run(args.minutes, args.backlog, args.repeats, args.profile))
    drain = out.pop("drain")
    figures = [
        Figure("produce_cpu_ms", round(out["produce_cpu_ms"], 3), "ms per minute, both centres"),
        *(
            Figure(f"drain_{part}_cpu_ms_per_frame", round(ms, 4), "ms per frame")
            for part, ms in drain.items()
        ),
        Figure(
            "drain_uplink_cpu_ms_per_frame",
            round(sum(ms for part, ms in drain.items() if part != "codec"), 4),
            "ms per frame (load + assign_qns + cp + ack)",
        ),
    ]
    report(
        "uplink", figures, **{k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    )


if __name__ == "__main__":
    main()

"""The terminal's store: ``python -m benchmarks.bench_store [--url URL]`` prints one JSON object.

- ``ingest_batched``: durable ingest through ``await store.write`` (SQLite WAL +
  synchronous=FULL by default), 8 concurrent writers of 1 000 readings each, group commit up to
  ``batch_max`` (5 000) rows: readings acknowledged per second, best of 3 runs.
- ``ingest_small_writes``: the same with 1 000 concurrent writers of 5 readings each, unpaced:
  what group commit makes of many small writes.
- ``commit_latency_p50/p99``: acquisition-like load, 500 writers each storing 4 readings every
  200 ms (10 000 readings/s, phases spread), time from ``write`` to its acknowledgement.
- ``purge_nothing_due``: the retention purge every boot runs, over the 200 points stored above
  when none has a reading older than six months: median of 7.

Every acknowledgement means durable: on SQLite, appended and fdatasynced to the intake log (the
database takes the rows in behind); ``--no-intake-log``: committed and fsynced in the database.
The readings are built before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure, report
from reference_terminal.model import Reading
from reference_terminal.storage.retention import DAY_S, MIN_RETENTION_DAYS, purge, sample_reading
from reference_terminal.storage.store import Store, sqlite_url


def _readings(n: int, offset: int) -> list[Reading]:
    return [sample_reading(offset + i, points=200, period_s=1.0) for i in range(n)]


async def ingest(
    store: Store, writers: int, per_write: int, writes_each: int, offset: int
) -> float:
    """Readings per second acknowledged by ``writers`` concurrent writers."""
    batches = [
        [
            _readings(per_write, offset + (w * writes_each + k) * per_write)
            for k in range(writes_each)
        ]
        for w in range(writers)
    ]

    async def writer(mine: list[list[Reading]]) -> None:
        for batch in mine:
            await store.write(batch)

    start = time.perf_counter()
    await asyncio.gather(*(writer(mine) for mine in batches))
    return writers * per_write * writes_each / (time.perf_counter() - start)


async def paced(
    store: Store, writers: int, per_write: int, interval_s: float, seconds: float, offset: int
) -> tuple[list[float], float, float]:
    """Commit latencies (s) of writers storing ``per_write`` readings every ``interval_s``,
    the rate stored (readings/s) and the largest lag of a write behind its schedule (s)."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    end = start + seconds
    stored = 0
    lag = 0.0

    async def writer(w: int) -> None:
        nonlocal stored, lag
        tick = start + interval_s * w / writers  # phases spread over the interval
        k = 0
        while tick < end:
            await asyncio.sleep(max(0.0, tick - loop.time()))
            lag = max(lag, loop.time() - tick)
            batch = _readings(per_write, offset + (w * 100_000 + k) * per_write)
            t0 = time.perf_counter()
            await store.write(batch)
            latencies.append(time.perf_counter() - t0)
            stored += per_write
            tick += interval_s
            k += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return latencies, stored / seconds, lag


async def purge_nothing_due(store: Store) -> float:
    """Median seconds of a purge that finds nothing old enough (a day after the readings)."""
    newest = max(r.t for r in await store.readings(sample_reading(0, points=200).point, 0, 5e9))
    times = []
    for _ in range(7):
        start = time.perf_counter()
        await purge(store, MIN_RETENTION_DAYS, now=newest + DAY_S)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def run(url: str | None, seconds: float, *, intake_log: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="carbench-bench-store-") as tmp:
        store = await Store.open(url or sqlite_url(Path(tmp) / "bench.db"), intake_log=intake_log)
        try:
            durability = await store.durability()
            best = 0.0
            for r in range(3):
                best = max(best, await ingest(store, 8, 1000, 25, offset=r * 1_000_000))
            small = await ingest(store, 1000, 5, 20, offset=10_000_000)
            before = store.stats
            latencies, achieved, lag = await paced(store, 500, 4, 0.2, seconds, offset=20_000_000)
            after = store.stats
            purge_s = await purge_nothing_due(store)
        finally:
            await store.close()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    groups = after.groups - before.groups
    figures = [
        Figure("ingest_batched", round(best), "readings/s", target=100_000),
        Figure("ingest_small_writes", round(small), "readings/s"),
        Figure("paced_rate", round(achieved), "readings/s", target=10_000),
        Figure("paced_max_lag", round(lag * 1000, 2), "ms"),
        Figure("commit_latency_p50", round(statistics.median(ms), 2), "ms"),
        Figure("commit_latency_p99", round(ms[int(len(ms) * 0.99) - 1], 2), "ms"),
        Figure("commit_latency_max", round(ms[-1], 2), "ms"),
        Figure("paced_durable_groups_per_s", round(groups / seconds), "1/s"),
        Figure(
            "paced_readings_per_group",
            round((after.rows - before.rows) / max(groups, 1), 1),
            "readings",
        ),
        Figure("purge_nothing_due", round(purge_s * 1000, 1), "ms"),
    ]
    report(
        "store",
        figures,
        backend=durability,
        batch_max=store.batch_max,
        paced_load="500 writers x 4 readings every 200 ms",
        paced_seconds=seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: a scratch SQLite file)")
    parser.add_argument("--seconds", type=float, default=5.0, help="paced load duration")
    parser.add_argument("--no-intake-log", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.seconds, intake_log=not args.no_intake_log))


if __name__ == "__main__":
    main()

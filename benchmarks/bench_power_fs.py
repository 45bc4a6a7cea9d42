"""The volatile file system: ``python -m benchmarks.bench_power_fs`` prints one JSON object.

- ``commits_per_s_mount`` / ``commits_per_s_plain``: commits per second of 50-row inserts into
  SQLite (WAL, synchronous=FULL) from this process, on the volatile mount and in a plain
  directory of the same disk (best of 5 runs of 1 s). The mount's fsync copies to the backing
  file without flushing the disk, so it can beat the plain directory.
- ``commits_per_s_mount_same_cpu``: the same with this process and the file system pinned to
  one CPU: each request is then a context switch instead of a cross-CPU wake-up.
- ``commits_per_s_mount_threads``: the same on a mount running libfuse's multithreaded loop.
- ``cut_latency_idle_p50`` / ``restore_latency_idle_p50``: the round trip of ``await
  mount.cut()`` and ``await mount.restore()`` on an idle mount (20 each).
- ``cut_latency_loaded_*``: the same while a child process commits as fast as it can (the
  control thread waits for the GIL and the file system's lock).
- ``lost_<synchronous>``: acknowledged commits lost when the power is cut at a random instant
  under that child (WAL; ``--cuts`` cuts per setting), against those acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure, rate, report
from simulators.power import VolatileMount, volatile_mount

ROWS = [(k, k * 0.5, "x" * 40) for k in range(50)]

#: A terminal in miniature: commits 50-row batches and prints each batch id once committed.
WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=" + sys.argv[2])
conn.execute("CREATE TABLE reading (batch INTEGER, k INTEGER, value REAL, note TEXT)")
print("ready", flush=True)
batch = 0
while True:
    batch += 1
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO reading VALUES (?, ?, ?, ?)",
                     [(batch, k, k * 0.5, "x" * 40) for k in range(50)])
    conn.execute("COMMIT")
    print(batch, flush=True)
"""


def commits_per_second(directory: Path) -> float:
    conn = sqlite3.connect(directory / "bench.sqlite", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE reading (k INTEGER, value REAL, note TEXT)")

        def commit() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO reading VALUES (?, ?, ?)", ROWS)
            conn.execute("COMMIT")

        return rate(commit, min_seconds=1.0, repeats=5)
    finally:
        conn.close()


async def on_mount(tmp: Path, name: str, *, threads: bool = False, pin: bool = False) -> float:
    """Commits per second on a fresh mount; ``pin``: this process and the file system on one
    CPU (each request is then a context switch, not a cross-CPU wake-up)."""
    backing = tmp / f"{name}-backing"
    backing.mkdir()
    mine = os.sched_getaffinity(0)
    cpus = {min(mine)} if pin else None
    try:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        async with volatile_mount(
            backing, tmp / f"{name}-mnt", threads=threads, cpus=cpus
        ) as mount:
            return commits_per_second(mount.mountpoint)
    finally:
        os.sched_setaffinity(0, mine)


async def idle_latencies(mount: VolatileMount, count: int) -> tuple[list[float], list[float]]:
    cuts, restores = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        await mount.cut()
        t1 = time.perf_counter()
        await mount.restore()
        cuts.append(t1 - t0)
        restores.append(time.perf_counter() - t1)
    return cuts, restores


async def cut_under_writer(
    mount: VolatileMount, directory: Path, synchronous: str, rng: random.Random
) -> tuple[int, int, float, float]:
    """(acknowledged, lost, cut latency, restore latency) of one cut at a random instant."""
    directory.mkdir()
    db = directory / "store.sqlite"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(db),
        synchronous,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    assert child.stdout is not None
    if await child.stdout.readline() != b"ready\n":
        raise RuntimeError("the writer did not start")
    acknowledged: set[int] = set()

    async def collect() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            acknowledged.add(int(line))

    reading = asyncio.create_task(collect())
    await asyncio.sleep(rng.uniform(0.3, 1.0))
    t0 = time.perf_counter()
    await mount.cut()
    cut = time.perf_counter() - t0
    os.killpg(child.pid, signal.SIGKILL)
    await child.wait()
    await reading
    t1 = time.perf_counter()
    await mount.restore()
    restore = time.perf_counter() - t1
    survived: set[int] = set()
    try:
        conn = sqlite3.connect(db)
        try:
            survived = {b for (b,) in conn.execute("SELECT DISTINCT batch FROM reading")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:  # the table (or the whole file) never reached the disk
        pass
    return len(acknowledged), len(acknowledged - survived), cut, restore


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


async def run(cuts_per_setting: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="carbench-bench-power-") as name:
        tmp = Path(name)
        plain_dir = tmp / "plain"
        plain_dir.mkdir()
        plain = commits_per_second(plain_dir)
        mounted = await on_mount(tmp, "single")
        pinned = await on_mount(tmp, "pinned", pin=True)
        threaded = await on_mount(tmp, "threads", threads=True)

        backing = tmp / "cuts-backing"
        backing.mkdir()
        losses: dict[str, tuple[int, int]] = {}
        loaded_cuts: list[float] = []
        loaded_restores: list[float] = []
        async with volatile_mount(backing, tmp / "cuts-mnt") as mount:
            idle_cuts, idle_restores = await idle_latencies(mount, 20)
            for synchronous in ("FULL", "NORMAL", "OFF"):
                acked = lost = 0
                for k in range(cuts_per_setting):
                    where = mount.mountpoint / f"{synchronous}-{k}"
                    a, lo, c, r = await cut_under_writer(mount, where, synchronous, rng)
                    acked += a
                    lost += lo
                    loaded_cuts.append(c)
                    loaded_restores.append(r)
                losses[synchronous] = (lost, acked)
    figures = [
        Figure("commits_per_s_mount", round(mounted), "commits/s"),
        Figure("commits_per_s_plain", round(plain), "commits/s"),
        Figure("mount_vs_plain", round(mounted / plain, 2), "ratio"),
        Figure("commits_per_s_mount_same_cpu", round(pinned), "commits/s"),
        Figure("commits_per_s_mount_threads", round(threaded), "commits/s"),
        Figure("cut_latency_idle_p50", ms(idle_cuts, 0.5), "ms"),
        Figure("restore_latency_idle_p50", ms(idle_restores, 0.5), "ms"),
        Figure("cut_latency_loaded_p50", ms(loaded_cuts, 0.5), "ms"),
        Figure("cut_latency_loaded_max", ms(loaded_cuts, 1.0), "ms"),
        Figure("restore_latency_loaded_p50", ms(loaded_restores, 0.5), "ms"),
    ]
    figures += [
        Figure(f"lost_{sync.lower()}", lost, "acknowledged commits")
        for sync, (lost, _) in losses.items()
    ]
    report(
        "power_fs",
        figures,
        commit="50-row INSERT, journal_mode=WAL, synchronous=FULL, from the bench's process",
        acknowledged={sync.lower(): acked for sync, (_, acked) in losses.items()},
        cuts_per_setting=cuts_per_setting,
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=3, help="cuts per synchronous setting")
    parser.add_argument("--seed", type=int, default=None, help="seed of the cut instants")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    asyncio.run(run(args.cuts, seed))


if __name__ == "__main__":
    main()

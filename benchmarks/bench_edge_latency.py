"""Edge latency and durable ingest of the reference terminal: reading in → validated, derived
values updated, durably stored (ISC-2 §9.4).

Run: ``.venv/bin/python -m benchmarks.bench_edge_latency`` (prints JSON; about 5 minutes).
``--runs``, ``--seconds`` and ``--warmup`` set the paced part, ``--floor`` the machine's floor
(below), ``--interpreter-defaults`` runs without the terminal process's interpreter settings
(below), ``--no-intake-log`` with the store's ``intake_log: false`` (every write waits for its
own database commit: the path before the log), ``--background-nice 0`` with the store's
threads behind the log scheduled as readily as the event loop.

The terminal is the real one: :class:`~reference_terminal.app.Terminal` built from a
programmatic :class:`TerminalConfig` of 10 000 points (1 000 devices × 10 points; half counters
with a full scale, half gauges, range-checked, two decimals), its store opened on SQLite (WAL,
synchronous=FULL, the default) in a temporary directory and attached as ``Terminal.run`` would.
Values go in through ``Terminal.accept`` — processing (validation, increments, minute/hour/day
windows) then ``Store.write`` of the readings, events and derived rows — which returns once they
are durable: appended and fdatasynced to the store's intake log (the database takes them in
behind, in the store's writer thread, during the runs as in service). No network: the RawValues
are built before the clock runs.

1. **Edge latency** at 10 000 points/s offered: every device answers once a second with its
   10 values (a typical meter read), as acquisition delivers them; four devices answer at the
   same instant (four reads completing together) and those arrival instants are spread evenly
   over the second: 250 instants × 4 concurrent ``accept`` calls × 10 values. A reading's
   latency runs from its arrival instant (when the read completes, by the schedule) until its
   ``accept`` call returns (durable); a batch's latency counts once per value in it. The bench
   shares the terminal's event loop, as acquisition does, so a batch handed over late because
   the loop was busy (the terminal's own work: processing, a flush on the loop) waits in its
   latency, as a reading waits in a socket's buffer; the latency from the handover alone is
   reported beside it. A run lasts 60 s of readings, so it includes one close of every point's
   minute window (10 000 aggregates, 50 000 derived rows within one second), as every minute of
   operation does; several runs follow one warm-up on the same terminal and the best run (by
   p99) is reported, with every run's figures listed. Also reported: how late the bench handed
   batches over at most (the event loop's lag), this disk's fsync time for a commit-sized
   append (the floor under every durable write: one fsync per group commit), and the bytes the
   process wrote to the disk per reading (the database's WAL and checkpoints behind the intake
   log: what the log's fdatasync queues behind, and what wears a gateway's flash).

   Before the runs, ``--prefill`` seconds (300) of history are written straight to the store:
   a terminal in service has a large file, and with 10 000 points every point's newest index
   entries then sit on a leaf of their own, so each commit dirties about one page per row
   (measured here: the write volume per commit grows from ~70 KB on an empty file to ~500 KB
   on a filled one, and latency with it). An empty file would flatter the figures.

   First, with no terminal yet, **this machine's floor**: the same arrival instants, each doing
   only 0.3 ms of computing (about an instant's processing) and one append and fdatasync of an
   instant's record, nothing else running. Its share within 2 ms bounds what any terminal in
   Python can reach on this machine; on a 2-CPU virtual machine with a shared disk it moves
   with the neighbours from minute to minute, and so do the runs.

   ISC-2 §9.4 allows 20 ms; the target here is p99 ≤ 2 ms, given (harness targets are minimums)
   as "readings durable within 2 ms ≥ 99 %", with p50/p99/max as plain figures.

2. **Durable ingest** through the whole accept path (processor + store), unpaced: 8 concurrent
   callers each handing over batches of 1 000 values of the same 10 000 points, time moving on a
   second per 10 000 values: the terminal's figure, processing included (no target of its own).
   The target ≥ 100 000 readings/s is the store's: ``benchmarks/bench_store.py`` measures it
   (``ingest_batched``) and its function is re-run here so both figures come from one machine
   state. Best of 3 runs each.

The interpreter runs as in the terminal's own process (``reference_terminal.runtime``: a 0.2 ms
GIL switch interval, the cyclic collector's thresholds, the start-up heap — the 10 000 points'
configuration, the prepared RawValues — frozen before the warm-up, and again after it, once
every point's windows are open, as that process does once it has run a while); the collector's
passes during the paced runs are reported by generation (a young pass stops the event loop as
long as a full one can).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from benchmarks.bench_store import ingest as store_ingest
from benchmarks.harness import Figure, collector_pauses, pct, report
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, RawValue, Reading
from reference_terminal.runtime import (
    COLLECTOR_THRESHOLDS,
    settle_heap,
    tune_process,
)
from reference_terminal.storage.intake_log import REWIND_AT_BYTES
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url

POINTS: Final = 10_000
PER_DEVICE: Final = 10
DEVICES: Final = POINTS // PER_DEVICE
CONCURRENT: Final = 4  # devices answering at the same instant
SLOTS: Final = DEVICES // CONCURRENT  # arrival instants per second
FULL_SCALE: Final = Decimal(1_000_000)
LIMIT_S: Final = 0.002
#: Readings' time: local (UTC+8) 10:00:25 on 2026-01-05, so each 60 s run crosses one minute
#: boundary (after 35 s of the first run) and no hour boundary.
T0: Final = 1_767_578_400.0 + 25.0
MINUTE_START: Final = T0 - 25.0  # a minute boundary: readings' second of the minute counts from it
#: The floor's work per arrival instant (``machine_floor``): about what processing an instant's
#: 40 values takes here (bench_processing: ~7 µs a value), and a record of about its size.
FLOOR_BUSY_S: Final = 0.0003
FLOOR_RECORD_BYTES: Final = 6 * 1024
INGEST_WRITERS: Final = 8
INGEST_BATCH: Final = 1_000


# ---- the terminal ----------------------------------------------------------------------------


def config(storage_url: str, storage: dict[str, Any] | None = None) -> TerminalConfig:
    """The bench's terminal; ``storage``: settings of its store other than the defaults."""
    devices = [
        {"id": f"d{d:04d}", "protocol": "modbus-tcp", "host": "192.0.2.1", "unit_id": 1}
        for d in range(DEVICES)
    ]
    points = []
    for i in range(POINTS):
        counter = i % 2 == 0
        points.append(
            {
                "id": f"p{i:05d}",
                "kind": "counter" if counter else "gauge",
                "group": "fast",
                "source": {"device": f"d{i // PER_DEVICE:04d}"},
                "decimals": 2,
                "min": "0",
                "max": str(FULL_SCALE),
                "full_scale": str(FULL_SCALE) if counter else None,
            }
        )
    return TerminalConfig.model_validate(
        {
            "name": "bench edge latency",
            "devices": devices,
            "groups": [{"id": "fast", "period_s": 1}],
            "points": points,
            "storage": {"url": storage_url, **(storage or {})},
        }
    )


@contextlib.asynccontextmanager
async def terminal(directory: Path, storage: dict[str, Any] | None = None) -> Any:
    """A Terminal with its store open, as ``Terminal.run`` attaches it (without acquisition)."""
    cfg = config(sqlite_url(directory / "terminal.db"), storage)
    term = Terminal(cfg)
    async with await Store.from_config(cfg.storage) as store:
        term.store = store
        yield term


class Values:
    """RawValues of every point, second after second: counters advance (a rollover now and
    then near full scale), gauges wander; each device's values form one batch."""

    def __init__(self, seed: int = 7) -> None:
        self.rnd = random.Random(seed)
        self.registers = [
            Decimal(self.rnd.randrange(0, 99_000_000)).scaleb(-2) for _ in range(POINTS)
        ]
        self.registers[0] = FULL_SCALE - Decimal("3.00")  # one counter rolls over early on

    def second(self, t_of: Sequence[float]) -> list[list[RawValue]]:
        """One second's batches, device ``d`` answering at ``t_of[d]``."""
        rnd, registers = self.rnd, self.registers
        batches = []
        for d in range(DEVICES):
            t = t_of[d]
            device = f"d{d:04d}"
            batch = []
            for i in range(d * PER_DEVICE, (d + 1) * PER_DEVICE):
                if i % 2 == 0:
                    value = (registers[i] + Decimal(rnd.randrange(0, 500)).scaleb(-2)) % FULL_SCALE
                    value = value.quantize(Decimal("0.01"))
                    registers[i] = value
                else:
                    value = Decimal(rnd.randrange(0, 100_000)).scaleb(-2)
                batch.append(RawValue(f"p{i:05d}", value, str(value), t, device))
            batches.append(batch)
        return batches


def slot_of(device: int) -> int:
    return device // CONCURRENT


# ---- 1. edge latency ----------------------------------------------------------------------------


@dataclass
class Run:
    latencies: list[float]  # one per reading from its arrival instant, seconds, sorted
    from_handover: list[float]  # the same from when its batch was handed to accept, sorted
    lag_max: float  # how late the bench handed a batch over, seconds
    seconds: float
    calls: int
    #: readings over the limit by their second of the minute (0: the second in which every
    #: point's minute window closes)
    late_by_second: dict[int, int]

    def pct(self, q: float, *, handover: bool = False) -> float:
        return pct(self.from_handover if handover else self.latencies, q)

    def within(self, limit: float, *, handover: bool = False) -> float:
        ordered = self.from_handover if handover else self.latencies
        return 100.0 * sum(1 for x in ordered if x <= limit) / len(ordered)

    def late_seconds(self, top: int = 5) -> dict[str, Any]:
        """Where the readings over the limit were: share of them in the minute-close second,
        and the seconds of the minute holding the most."""
        late = sum(self.late_by_second.values())
        ranked = sorted(self.late_by_second.items(), key=lambda kv: -kv[1])[:top]
        return {
            "over_limit": late,
            "share_in_close_second_pct": round(100.0 * self.late_by_second.get(0, 0) / late, 1)
            if late
            else None,
            "most_by_second_of_minute": {str(s): n for s, n in ranked},
        }


async def paced(term: Terminal, seconds_of_data: list[list[list[RawValue]]]) -> Run:
    """Hand each second's batches to ``accept`` at their instants; latencies per reading.

    The instants come from a thread that sleeps until each and then wakes the event loop, as
    a socket's bytes do: the loop's own timers fire up to a millisecond late (epoll waits in
    whole milliseconds), which would count the bench's slack against the terminal."""
    latencies: list[float] = []
    from_handover: list[float] = []
    failures: list[BaseException] = []
    lags: list[float] = [0.0]
    late_by_second: dict[int, int] = {}
    pending: set[asyncio.Task[None]] = set()
    clock = time.perf_counter
    start = clock() + 0.05

    async def one(batch: list[RawValue], due: float, handed: float) -> None:
        await term.accept(batch)
        done = clock()
        latencies.extend([done - due] * len(batch))
        from_handover.extend([done - handed] * len(batch))
        if done - due > LIMIT_S:
            second = int(batch[0].t - MINUTE_START) % 60
            late_by_second[second] = late_by_second.get(second, 0) + len(batch)

    def done(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            failures.append(error)

    def hand_over(batches: list[list[RawValue]], due: float) -> None:
        handed = clock()
        lags.append(handed - due)
        for batch in batches:
            task = asyncio.create_task(one(batch, due, handed))
            pending.add(task)
            task.add_done_callback(done)

    def answering(k: int) -> list[list[RawValue]]:
        second, slot = divmod(k, SLOTS)
        return seconds_of_data[second][slot * CONCURRENT : (slot + 1) * CONCURRENT]

    instants = len(seconds_of_data) * SLOTS
    await arrive(start, instants, lambda k, due: hand_over(answering(k), due))
    calls = sum(len(answering(k)) for k in range(instants))
    while pending:
        await asyncio.wait(set(pending))
    if failures:
        raise RuntimeError(f"{len(failures)} accept calls failed") from failures[0]
    elapsed = clock() - start
    latencies.sort()
    from_handover.sort()
    return Run(latencies, from_handover, max(lags), elapsed, calls, late_by_second)


def data_seconds(values: Values, first: int, count: int) -> list[list[list[RawValue]]]:
    out = []
    for s in range(first, first + count):
        t_of = [T0 + s + slot_of(d) / SLOTS for d in range(DEVICES)]
        out.append(values.second(t_of))
    return out


def disk_bytes_written() -> int:
    """Bytes this process has sent to the disk so far (Linux ``/proc/self/io``: the store's
    threads, WAL, checkpoints and intake log together); 0 where the kernel does not say."""
    try:
        with open("/proc/self/io") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["write_bytes"])
    except (OSError, KeyError, ValueError):
        return 0


def fsync_times(directory: Path, size: int = 84 * 1024, count: int = 500) -> list[float]:
    """Seconds per fsync after appending ``size`` bytes (about one group commit's WAL frames
    here), with a pause between, as a paced writer does; sorted."""
    path = directory / "fsync-probe"
    times = []
    with path.open("wb", buffering=0) as f:
        block = b"\0" * size
        for _ in range(count):
            f.write(block)
            start = time.perf_counter()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - start)
            time.sleep(0.002)
    path.unlink()
    return sorted(times)


async def arrive(start: float, count: int, hand: Callable[[int, float], None]) -> None:
    """The arrival instants ``start + k / SLOTS`` (see :func:`paced`), for the runs and the
    machine's floor alike: ``hand(k, due)`` on the event loop at each. Returns once the last
    hand-over is queued."""
    loop = asyncio.get_running_loop()

    def arrivals() -> None:
        for k in range(count):
            due = start + k / SLOTS
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            loop.call_soon_threadsafe(hand, k, due)

    await asyncio.to_thread(arrivals)


async def machine_floor(directory: Path, seconds: int) -> list[float]:
    """Latencies, sorted, of a terminal that does only its least: at the runs' arrival instants
    (handed over the same way), ``FLOOR_BUSY_S`` of computing, then one record of
    ``FLOOR_RECORD_BYTES`` appended to a file and fdatasynced, with no thread and no database
    beside it. What this machine allows at best: the share within 2 ms here bounds the runs'."""
    clock = time.perf_counter
    latencies: list[float] = []
    record = b"\0" * FLOOR_RECORD_BYTES
    offset = 0
    fd = os.open(directory / "floor-probe", os.O_WRONLY | os.O_CREAT, 0o600)
    start = clock() + 0.05

    def instant(due: float) -> None:
        nonlocal offset
        busy_until = clock() + FLOOR_BUSY_S
        while clock() < busy_until:
            pass
        os.pwrite(fd, record, offset)
        os.fdatasync(fd)
        offset = (offset + len(record)) % REWIND_AT_BYTES  # written over, as the intake log is
        latencies.append(clock() - due)

    try:
        await arrive(start, seconds * SLOTS, lambda _k, due: instant(due))
        await asyncio.sleep(0.1)  # the last instants run
    finally:
        os.close(fd)
        (directory / "floor-probe").unlink()
    return sorted(latencies)


async def prefill(store: Store, seconds: int) -> None:
    """``seconds`` of history before T0 written straight to the store (every point's reading,
    every counter's increment, a second apart), so the runs meet a store in its steady state:
    with 10 000 points each point's newest index entries sit on a leaf page of their own, and
    every commit dirties one page per reading. A fresh, nearly empty file would flatter the
    figures (its points share leaves)."""
    chunk: list[Reading] = []
    derived: list[Derived] = []
    good = Quality.GOOD
    for k in range(seconds):
        t = T0 - seconds + k
        for i in range(POINTS):
            value = Decimal(k * 10 + i % 7).scaleb(-2)
            chunk.append(
                Reading(f"p{i:05d}", t, str(value), value, good, 2, f"d{i // PER_DEVICE:04d}")
            )
            if i % 2 == 0 and k:
                derived.append(
                    Derived(f"p{i:05d}", "increment", t - 1, t, Decimal("0.10"), good, "", t)
                )
            if len(chunk) + len(derived) >= 4_000:
                await store.write(chunk, derived=derived)
                chunk, derived = [], []
    if chunk or derived:
        await store.write(chunk, derived=derived)


# ---- 2. durable ingest -------------------------------------------------------------------------


async def ingest(term: Terminal, chunks: list[list[RawValue]]) -> float:
    """Readings/s through ``accept`` with ``INGEST_WRITERS`` callers taking chunks in turn."""
    queue = iter(chunks)

    async def caller() -> None:
        for chunk in queue:
            await term.accept(chunk)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(INGEST_WRITERS)))
    return sum(len(c) for c in chunks) / (time.perf_counter() - start)


def ingest_chunks(values: Values, first: int, seconds: int) -> list[list[RawValue]]:
    """``seconds`` seconds of every point's values in chunks of ``INGEST_BATCH``: the chunks go
    to concurrent callers in order, and each point's values stay in time order because a
    second's chunks are all taken before the next second's."""
    flat: list[RawValue] = []
    for s in range(first, first + seconds):
        for batch in values.second([T0 + s] * DEVICES):
            flat += batch
    return [flat[i : i + INGEST_BATCH] for i in range(0, len(flat), INGEST_BATCH)]


# ---- main ----------------------------------------------------------------------------------------


async def main_async(
    runs: int,
    seconds: int,
    warmup: int,
    prefill_s: int,
    floor_s: int,
    *,
    tuned: bool,
    storage: dict[str, Any],
) -> None:
    values = Values()
    with tempfile.TemporaryDirectory(prefix="carbench-bench-edge-") as tmp:
        floor = await machine_floor(Path(tmp), floor_s)
        async with terminal(Path(tmp), storage) as term:
            assert term.store is not None
            durability = await term.store.durability()
            page_size = await term.store.run_in_reader(
                lambda conn: conn.exec_driver_sql("PRAGMA page_size").scalar()
            )
            filled = time.perf_counter()
            await prefill(term.store, prefill_s)
            prefill_took = time.perf_counter() - filled
            prepared = time.perf_counter()
            warm = data_seconds(values, 0, warmup)
            batches = [data_seconds(values, warmup + r * seconds, seconds) for r in range(runs)]
            prepare_s = time.perf_counter() - prepared
            if tuned:
                settle_heap()
            await paced(term, warm)
            if tuned:  # every point's state is built: settled again, as the terminal's process
                settle_heap()  # does once it has been running for a while (runtime.py)
            results: list[Run] = []
            before, written = term.store.stats, disk_bytes_written()
            with collector_pauses() as pauses:
                for r in range(runs):
                    results.append(await paced(term, batches[r]))
                    batches[r] = []  # let the run's values go
            after, written = term.store.stats, disk_bytes_written() - written
            del warm, batches
            gc.unfreeze()
            # 2. unpaced, on the same terminal, time carrying on after the paced runs
            next_second = warmup + runs * seconds
            rates = []
            for k in range(3):
                chunks = ingest_chunks(values, next_second + k * 10, 10)
                gc.collect()
                rates.append(await ingest(term, chunks))
                del chunks
        # the store alone, as benchmarks/bench_store.py measures it (its own function)
        async with await Store.open(sqlite_url(Path(tmp) / "store-alone.db")) as alone:
            store_rates = [
                await store_ingest(alone, 8, 1000, 25, offset=r * 1_000_000) for r in range(3)
            ]
        probe = fsync_times(Path(tmp))
    best = min(results, key=lambda r: r.pct(0.99))
    ms = 1000.0
    transactions = after.transactions - before.transactions
    groups = after.groups - before.groups
    paced_s = sum(r.seconds for r in results)
    figures = [
        Figure(
            "edge latency at 10 000 points/s: readings durable within 2 ms of arriving "
            "(target p99 ≤ 2 ms; best of runs)",
            round(best.within(LIMIT_S), 3),
            "%",
            99.0,
        ),
        Figure(
            "readings durable within 2 ms of arriving, all runs together (every settle of the "
            "store's recent rows that fell in them counted)",
            round(
                sum(r.within(LIMIT_S) * len(r.latencies) for r in results)
                / sum(len(r.latencies) for r in results),
                3,
            ),
            "%",
        ),
        Figure("edge latency p50 (best run)", round(best.pct(0.50) * ms, 3), "ms"),
        Figure("edge latency p99 (best run)", round(best.pct(0.99) * ms, 3), "ms"),
        Figure("edge latency p99.9 (best run)", round(best.pct(0.999) * ms, 3), "ms"),
        Figure("edge latency max (best run)", round(best.latencies[-1] * ms, 3), "ms"),
        Figure(
            "edge latency p99 from the handover to Terminal.accept (best run; the loop's lag "
            "left out)",
            round(best.pct(0.99, handover=True) * ms, 3),
            "ms",
        ),
        Figure(
            "readings stored per second offered 10 000/s (best run)",
            round(len(best.latencies) / best.seconds, 1),
            "readings/s",
            10_000.0 * 0.99,
        ),
        Figure(
            "this machine's floor: arrival instants of 0.3 ms of computing and one 6 KB append "
            "and fdatasync each, nothing beside them, within 2 ms (bounds the runs' share)",
            round(100.0 * sum(x <= LIMIT_S for x in floor) / len(floor), 3),
            "%",
        ),
        Figure("this machine's floor: p50", round(pct(floor, 0.50) * ms, 3), "ms"),
        Figure("this machine's floor: p99", round(pct(floor, 0.99) * ms, 3), "ms"),
        Figure(
            "edge latency p99 of the worst run (ISC-2 §9.4 allows 20 ms)",
            round(max(r.pct(0.99) for r in results) * ms, 3),
            "ms",
        ),
        Figure(
            "durable ingest through the Store alone (WAL+FULL, batched: bench_store's "
            "ingest_batched, 8 writers × 1 000 readings, re-run here), best of 3",
            round(max(store_rates)),
            "readings/s",
            100_000.0,
        ),
        Figure(
            "durable ingest through Terminal.accept (processor + store, WAL+FULL), "
            f"{INGEST_WRITERS} callers × {INGEST_BATCH}-value batches, best of 3",
            round(max(rates)),
            "readings/s",
        ),
    ]
    report(
        "edge_latency",
        figures,
        backend=durability,
        sqlite_page_size=page_size,
        storage_settings=storage or "defaults",
        load={
            "points": POINTS,
            "counters": POINTS // 2,
            "gauges": POINTS // 2,
            "devices": DEVICES,
            "values_per_device_read": PER_DEVICE,
            "devices_answering_together": CONCURRENT,
            "arrival_instants_per_s": SLOTS,
            "windows": "minute, hour, day (Settings defaults)",
            "run_seconds": seconds,
            "runs": runs,
            "warmup_seconds": warmup,
            "history_prefilled_s": prefill_s,
            "history_prefill_took_s": round(prefill_took, 1),
        },
        runs=[
            {
                "p50_ms": round(r.pct(0.5) * ms, 3),
                "p99_ms": round(r.pct(0.99) * ms, 3),
                "max_ms": round(r.latencies[-1] * ms, 3),
                "within_2ms_pct": round(r.within(LIMIT_S), 3),
                "from_handover_p99_ms": round(r.pct(0.99, handover=True) * ms, 3),
                "from_handover_within_2ms_pct": round(r.within(LIMIT_S, handover=True), 3),
                "mean_ms": round(statistics.fmean(r.latencies) * ms, 3),
                "handover_lag_max_ms": round(r.lag_max * ms, 3),
                "late_readings": r.late_seconds(),
                "accept_calls": r.calls,
                "readings": len(r.latencies),
            }
            for r in results
        ],
        store_during_runs={
            "durable_groups_per_s": round(groups / paced_s, 1),
            "rows_per_group": round((after.rows - before.rows) / max(groups, 1), 1),
            "largest_group_rows": after.largest,
            "database_transactions_per_s": round(transactions / paced_s, 1),
            "disk_write_mb_per_s": round(written / paced_s / 1e6, 1),
            "disk_bytes_per_reading": round(written / sum(len(r.latencies) for r in results)),
            "settles": after.settles - before.settles,
        },
        ingest_runs_readings_s=[round(x) for x in rates],
        store_alone_runs_readings_s=[round(x) for x in store_rates],
        disk_fsync_84kb_ms={
            "p50": round(probe[len(probe) // 2] * ms, 3),
            "p99": round(probe[int(len(probe) * 0.99)] * ms, 3),
            "max": round(probe[-1] * ms, 3),
        },
        collector_passes_during_runs={
            f"gen{generation}": {"passes": len(p), "longest_ms": round(max(p, default=0.0) * ms, 2)}
            for generation, p in pauses.items()
        },
        interpreter=f"GIL switch {sys.getswitchinterval() * 1000:g} ms, "
        + (
            f"collector thresholds {COLLECTOR_THRESHOLDS}, start-up heap frozen (the terminal's)"
            if tuned
            else "the collector's defaults"
        ),
        values_prepared_s=round(prepare_s, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="per paced run (default 60)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--prefill", type=int, default=300, help="seconds of history written first (default 300)"
    )
    parser.add_argument(
        "--floor", type=int, default=30, help="seconds of the machine's floor (default 30)"
    )
    parser.add_argument("--interpreter-defaults", action="store_true")
    parser.add_argument("--no-intake-log", action="store_true")
    parser.add_argument("--settle-rows", type=int, help="storage.settle_rows (default: its own)")
    parser.add_argument(
        "--apply-linger-ms", type=float, help="storage.apply_linger_ms (default: its own)"
    )
    parser.add_argument(
        "--background-nice", type=int, help="storage.background_nice (default: its own)"
    )
    parser.add_argument(
        "--switch-interval-ms", type=float, help="GIL switch interval (default: the terminal's)"
    )
    args = parser.parse_args()
    storage: dict[str, Any] = {}  # the store's settings other than its defaults
    if args.no_intake_log:
        storage["intake_log"] = False
    if args.settle_rows is not None:
        storage["settle_rows"] = args.settle_rows
    if args.apply_linger_ms is not None:
        storage["apply_linger_ms"] = args.apply_linger_ms
    if args.background_nice is not None:
        storage["background_nice"] = args.background_nice
    if not args.interpreter_defaults:
        tune_process()
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    asyncio.run(
        main_async(
            args.runs,
            args.seconds,
            args.warmup,
            args.prefill,
            args.floor,
            tuned=not args.interpreter_defaults,
            storage=storage,
        )
    )


if __name__ == "__main__":
    main()

"""An HJ 212 centre under 1 000 uploading terminals, and holding 10 000 idle ones.

Run: ``.venv/bin/python -m benchmarks.bench_platform`` (prints JSON; about a minute).
``--seconds`` sets how long the load is held, ``--rate`` the frames/s offered, ``--idle`` the
idle connections, ``--skip-idle`` / ``--skip-load`` run one part only. ``--minute N`` runs the
minute-record part alone instead (below).

The centre runs here, alone in this process, recording every frame (and every reading) into an
SQLite file through its batching writer thread, as it does on the bench. Terminals run in other
processes (spawned, so the centre's process is measured alone):

- **load**: 1 000 terminals (500 per client process), each with its own TCP connection and MN,
  upload 2011 real-time frames with 10 pollutants (Rtd + Flag) and Flag=5, the whole load at
  ``--rate`` frames/s for ``--seconds``. Frames are encoded before the clock starts so the
  clients spend their CPU on the wire. A frame's latency counts from when it was due, not when
  it left, to the 9014 carrying its QN: a centre falling behind shows as latency rather than
  quietly as fewer frames. Target: ≥ 2 000 acknowledged frames/s with p99 < 50 ms; the harness's
  targets are minimums, so p99 is reported as "acknowledged within 50 ms ≥ 99 %".
- **idle**: ``--idle`` connections (10 000) opened by the client processes, each sending one
  frame so the centre holds a session for it, then held open; the figure is how many the centre
  holds at once, and a probe terminal's upload latency while they are held. RLIMIT_NOFILE is
  raised to its hard limit in every process.

- **minute** (``--minute N``): what a centre spends on each 189-item minute record a draining
  terminal sends (split into ~12 packets, ~188 readings): N records fed through a centre
  connection's ``data_received`` (no socket: the answers go to a stub transport), and the
  record's writer work (reading rows built, inserted, committed into an SQLite file in WAL
  mode) done in this thread every 7 records, as the writer thread does every 50 ms during a
  48-hour drain. Both in CPU time (``time.thread_time``), best of ``--repeats`` runs, each
  into a new file: ``handle`` includes the HJ 212 codec, ``record`` is all the record's own.

The machine's cores are shared by the centre and its clients (and, on this bench, by other
work): the centre's CPU use during the load is reported alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import queue
import re
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Final

from benchmarks.harness import Figure, report
from common.clock import RealClock
from protocols.hj212.cp import Cp, Pollutant
from protocols.hj212.packet import Flag, Packet
from protocols.hj212.split import split
from simulators.platform.config import Hj212Centre
from simulators.platform.record import Record
from simulators.platform.server import Hj212Server

TERMINALS: Final = 1000
CLIENT_PROCESSES: Final = 2
TARGET_RATE: Final = 2000.0
LATENCY_LIMIT_S: Final = 0.050
IDLE_TARGET: Final = 10_000
POLLUTANTS: Final = (
    "a05001",
    "a19001",
    "a00000",
    "a01012",
    "a01013",
    "a01014",
    "a21026",
    "a21002",
    "a34013",
    "a21005",
)
_QN = re.compile(rb"QN=([0-9]{17})")
T0: Final = datetime(2026, 1, 1, 8, 0, 0)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def mn_of(i: int) -> str:
    return f"BENCH{i:019d}"


def frame(terminal: int, k: int) -> tuple[str, bytes]:
    """The k-th 2011 upload of a terminal: 10 pollutants, Flag=5 (ack wanted)."""
    moment = T0 + timedelta(seconds=30 * k)
    qn = f"{(T0 + timedelta(milliseconds=k)).strftime('%Y%m%d%H%M%S')}{k % 1000:03d}"
    pollutants = [
        Pollutant(code, {"Rtd": Decimal(f"{(terminal + 7 * j + k) % 997}.{j}")}, "N")
        for j, code in enumerate(POLLUTANTS)
    ]
    cp = Cp.build(data_time=moment, pollutants=pollutants)
    packet = Packet(2011, "32", mn_of(terminal), "123456", cp, qn, Flag(1, False, True))
    return qn, packet.encode()


# ---- clients (other processes) ---------------------------------------------------------------


def load_client(
    port: int,
    terminals: list[int],
    rate: float,
    seconds: float,
    results: multiprocessing.Queue[Any],
    ready: Event,
    go: Event,
    start_at: Any,
) -> None:
    raise_nofile()
    asyncio.run(_load_client(port, terminals, rate, seconds, results, ready, go, start_at))


async def _load_client(
    port: int,
    terminals: list[int],
    rate: float,
    seconds: float,
    results: multiprocessing.Queue[Any],
    ready: Event,
    go: Event,
    start_at: Any,
) -> None:
    count = int(rate * seconds)
    n = len(terminals)
    # Pre-encoded: frame k goes to terminal k % n as that terminal's (k // n)-th upload.
    plan = [frame(terminals[k % n], k // n) for k in range(count)]
    writers: list[asyncio.StreamWriter] = []
    # QNs are unique per terminal (not across terminals): one table per connection.
    due: list[dict[bytes, float]] = [{} for _ in range(n)]
    latencies: list[float] = []

    async def read_acks(reader: asyncio.StreamReader, waiting: dict[bytes, float]) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                now = time.perf_counter()
                for qn in _QN.findall(data):
                    sent = waiting.pop(qn, None)
                    if sent is not None:
                        latencies.append(now - sent)

    readers = []
    for start in range(0, n, 100):  # dial in batches: the listen queue is finite
        opened = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in terminals[start : start + 100])
        )
        for reader, writer in opened:
            readers.append(asyncio.create_task(read_acks(reader, due[len(writers)])))
            writers.append(writer)
    ready.set()
    await asyncio.to_thread(go.wait)
    # Everyone starts at the same wall-clock instant, paced on this process's perf counter.
    t0 = time.perf_counter() + max(0.0, start_at.value - time.time())
    interval = 1.0 / rate
    k = 0
    while k < count:
        now = time.perf_counter()
        while k < count and t0 + k * interval <= now:
            qn, raw = plan[k]
            due[k % n][qn.encode()] = t0 + k * interval
            writers[k % n].write(raw)
            k += 1
        await asyncio.sleep(0.002)
    end = time.perf_counter() + 3.0  # answers still in flight
    while any(due) and time.perf_counter() < end:
        await asyncio.sleep(0.01)
    results.put({"sent": count, "acked": len(latencies), "latencies": latencies})
    for writer in writers:
        writer.close()
    for task in readers:
        task.cancel()


def idle_client(
    port: int, first: int, n: int, results: multiprocessing.Queue[Any], done: Event
) -> None:
    raise_nofile()
    asyncio.run(_idle_client(port, first, n, results, done))


async def _idle_client(
    port: int, first: int, n: int, results: multiprocessing.Queue[Any], done: Event
) -> None:
    writers: list[asyncio.StreamWriter] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame(i, 0)[1])
            await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
            writers.append(writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            failures += 1

    for start in range(first, first + n, 200):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 200, first + n))))
    results.put({"held": len(writers), "failures": failures})
    await asyncio.to_thread(done.wait)
    for writer in writers:
        writer.close()


# ---- the centre (this process) -----------------------------------------------------------


async def wait_for(results: multiprocessing.Queue[Any], count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        try:
            out.append(await asyncio.to_thread(results.get, True, 0.5))
        except queue.Empty:
            continue
    return out


async def bench_load(centre: Hj212Server, rate: float, seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Any] = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    readies = [ctx.Event() for _ in range(CLIENT_PROCESSES)]
    share = TERMINALS // CLIENT_PROCESSES
    processes = [
        ctx.Process(
            target=load_client,
            args=(
                centre.port,
                list(range(p * share, (p + 1) * share)),
                rate / CLIENT_PROCESSES,
                seconds,
                results,
                readies[p],
                go,
                start_at,
            ),
        )
        for p in range(CLIENT_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        for ready in readies:
            while not ready.is_set():
                await asyncio.sleep(0.1)
        connected = len(centre.connections)
        acks_before = centre.acks_sent
        start_at.value = time.time() + 0.5
        go.set()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        gathered = await wait_for(results, CLIENT_PROCESSES)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    latencies = sorted(x for r in gathered for x in r["latencies"])
    sent = sum(r["sent"] for r in gathered)
    acked = len(latencies)
    within = sum(1 for x in latencies if x <= LATENCY_LIMIT_S)
    return {
        "terminals_connected": connected,
        "offered_rate": rate,
        "seconds": seconds,
        "sent": sent,
        "acked": acked,
        "acks_sent_by_centre": centre.acks_sent - acks_before,
        "acked_rate": acked / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(0.99 * (acked - 1))] if latencies else None,
        "max_ms": 1000 * latencies[-1] if latencies else None,
        "within_limit": within / sent if sent else 0.0,
        "centre_cpu_share": cpu / wall,
    }


async def bench_idle(centre: Hj212Server, idle: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Any] = ctx.Queue()
    done = ctx.Event()
    share = idle // CLIENT_PROCESSES
    base = 100_000
    processes = [
        ctx.Process(target=idle_client, args=(centre.port, base + p * share, share, results, done))
        for p in range(CLIENT_PROCESSES)
    ]
    start = time.perf_counter()
    for process in processes:
        process.start()
    try:
        gathered = await wait_for(results, CLIENT_PROCESSES)
        opened_s = time.perf_counter() - start
        held = len(centre.connections)
        sessions = len(centre.by_mn)
        # a probe terminal uploads while they are all held
        reader, writer = await asyncio.open_connection("127.0.0.1", centre.port)
        probes = []
        for k in range(20):
            t = time.perf_counter()
            writer.write(frame(0, 10_000 + k)[1])
            await reader.readuntil(b"\r\n")
            probes.append(time.perf_counter() - t)
        writer.close()
    finally:
        done.set()
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
    return {
        "requested": idle,
        "held": held,
        "sessions": sessions,
        "client_failures": sum(r["failures"] for r in gathered),
        "open_seconds": opened_s,
        "probe_median_ms": 1000 * statistics.median(probes),
    }


class _StubTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def minute_records(count: int) -> list[bytes]:
    """``count`` minute records of the works fleet, a minute apart, each as its split packets'
    bytes (what a draining terminal writes for it)."""
    from benchmarks.bench_hj212 import record_items, record_packet  # noqa: PLC0415

    items = record_items()
    base = record_packet(items)
    out = []
    for k in range(count):
        moment = T0 + timedelta(minutes=k)
        cp = Cp.build(
            data_time=moment,
            pollutants=list(base.cp.pollutants.values()),
        )
        qn = f"{moment.strftime('%Y%m%d%H%M%S')}{k % 1000:03d}"
        packet = Packet(2051, "31", mn_of(0), "123456", cp, qn, Flag(1, False, True))
        out.append(b"".join(part.encode() for part in split(packet)))
    return out


def bench_minute(count: int, repeats: int) -> dict[str, Any]:
    from simulators.platform.server import Connection  # noqa: PLC0415

    records = minute_records(count)
    packets = sum(r.count(b"\r\n") for r in records)
    best_handle = best_record = float("inf")
    readings = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="carbench-bench-minute-") as directory:
            # The writer thread left asleep: this thread does its work, timed apart.
            record = Record(
                f"sqlite:///{Path(directory) / 'record.sqlite'}", flush_interval=3600, ids=(0, 2)
            )
            centre = Hj212Server(Hj212Centre(name="bench"), record, RealClock())
            conn = Connection(centre)
            conn.connection_made(_StubTransport())
            handle = writes = 0.0
            gc.collect()
            for k, data in enumerate(records, start=1):
                t = time.thread_time()
                conn.data_received(data)
                handle += time.thread_time() - t
                if k % 7 == 0 or k == count:
                    t = time.thread_time()
                    record.flush()
                    writes += time.thread_time() - t
            readings = record.count_readings()
            record.close()
        best_handle = min(best_handle, handle)
        best_record = min(best_record, writes)
    return {
        "records": count,
        "packets_per_record": packets / count,
        "readings_per_record": readings / count,
        "handle_ms_per_record": 1000 * best_handle / count,
        "record_ms_per_record": 1000 * best_record / count,
        "total_ms_per_record": 1000 * (best_handle + best_record) / count,
    }


async def main_async(args: argparse.Namespace) -> None:
    if args.minute:
        minute = bench_minute(args.minute, args.repeats)
        report(
            "platform",
            [
                Figure(
                    "centre CPU per minute record: handling", minute["handle_ms_per_record"], "ms"
                ),
                Figure(
                    "centre CPU per minute record: record", minute["record_ms_per_record"], "ms"
                ),
            ],
            minute=minute,
        )
        return
    nofile = raise_nofile()
    with tempfile.TemporaryDirectory(prefix="carbench-bench-platform-") as directory:
        record = Record(f"sqlite:///{Path(directory) / 'record.sqlite'}")
        config = Hj212Centre(name="bench", backlog=4096)
        figures: list[Figure] = []
        extra: dict[str, Any] = {"rlimit_nofile": nofile}
        async with Hj212Server(config, record, RealClock()) as centre:
            gc.freeze()  # the start-up heap lives as long as the centre
            if not args.skip_load:
                load = await bench_load(centre, args.rate, args.seconds)
                extra["load"] = load
                figures += [
                    Figure(
                        "acknowledged frames/s, 1 000 terminals",
                        load["acked_rate"],
                        "frames/s",
                        TARGET_RATE,
                    ),
                    Figure("acknowledged within 50 ms", 100 * load["within_limit"], "%", 99.0),
                    Figure("p99 ack latency", load["p99_ms"] or 0.0, "ms"),
                ]
            if not args.skip_idle:
                # fresh connections only: the load's terminals have gone
                while centre.connections:
                    await asyncio.sleep(0.1)
                idle = await bench_idle(centre, args.idle)
                extra["idle"] = idle
                figures.append(
                    Figure("idle connections held", idle["held"], "connections", IDLE_TARGET)
                )
            frames_recorded = record.count_frames()
        record.close()
        extra["frames_recorded"] = frames_recorded
        report("platform", figures, **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=TARGET_RATE)
    parser.add_argument("--idle", type=int, default=IDLE_TARGET)
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--minute", type=int, default=0, help="run the minute part: N records")
    parser.add_argument("--repeats", type=int, default=3, help="minute part: runs (best kept)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

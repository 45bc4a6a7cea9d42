"""Processing speed: RawValues through the reference terminal's :class:`Processor`.

Run: ``.venv/bin/python -m benchmarks.bench_processing`` (prints JSON).

The load is the edge-latency case: 10 000 points read once a second (half counters with a
rollover now and then, half gauges), every value validated, counters turned into increments
with the second check armed, minute/hour/day windows (and, in the second case, second windows
too) and 50 virtual sums over the counters. Throughput is the best of three runs over the same
values with a fresh processor each; per-value times are of single ``process`` calls (each
including ~0.1 µs of timer overhead). The whole reading→stored path must keep p99 ≤ 2 ms at
10 000 points/s, so processing one value should take well under 50 µs (``budget_us``).
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from benchmarks.harness import Figure, pct, report
from reference_terminal.config import Point, Source
from reference_terminal.model import RawValue
from reference_terminal.processing.pipeline import Processor, Settings
from reference_terminal.processing.virtual import AddPoint, VirtualPoint

POINTS = 10_000
ROUNDS = 20  # one value per point per second
T0 = 1_763_740_800.0 - 30  # 30 s before a local midnight: the day settles during the run
BUDGET_US = 50.0


def points() -> list[Point]:
    out = []
    for i in range(POINTS):
        counter = i % 2 == 0
        out.append(
            Point(
                id=f"P{i}",
                kind="counter" if counter else "gauge",
                group="g",
                source=Source(device=f"d{i // 50}"),
                decimals=2,
                min=Decimal(0),
                max=Decimal(1_000_000),
                full_scale=Decimal(1_000_000) if counter else None,
            )
        )
    return out


def virtual() -> list[VirtualPoint]:
    return [
        AddPoint(op="add", id=f"V{k}", inputs=[f"P{2 * (10 * k + j)}" for j in range(10)])
        for k in range(50)
    ]


def values(config: list[Point]) -> list[RawValue]:
    rnd = random.Random(7)
    registers = [Decimal(rnd.randrange(0, 100_000_000)).scaleb(-2) for _ in config]
    out = []
    for r in range(ROUNDS):
        for i, p in enumerate(config):
            if p.kind == "counter":
                registers[i] = (registers[i] + Decimal(rnd.randrange(0, 500)).scaleb(-2)) % (
                    1_000_000
                )
                value = registers[i].quantize(Decimal("0.01"))
            else:
                value = Decimal(rnd.randrange(0, 100_000)).scaleb(-2)
            out.append(RawValue(p.id, value, str(value), T0 + r + 0.02 + i * 1e-5, p.source.device))
    return out


def throughput(config: list[Point], stream: list[RawValue], settings: Settings) -> float:
    best = 0.0
    for _ in range(3):
        processor = Processor(config, settings=settings, virtual=virtual())
        process = processor.process
        start = time.perf_counter()
        for raw in stream:
            process(raw)
        best = max(best, len(stream) / (time.perf_counter() - start))
    return best


def batched(config: list[Point], stream: list[RawValue], size: int) -> float:
    best = 0.0
    batches = [stream[i : i + size] for i in range(0, len(stream), size)]
    for _ in range(3):
        processor = Processor(config, virtual=virtual())
        start = time.perf_counter()
        for batch in batches:
            processor.process_many(batch)
        best = max(best, len(stream) / (time.perf_counter() - start))
    return best


def latencies(config: list[Point], stream: list[RawValue]) -> list[float]:
    processor = Processor(config, virtual=virtual())
    process = processor.process
    clock = time.perf_counter_ns
    times = []
    for raw in stream:
        start = clock()
        process(raw)
        times.append((clock() - start) / 1000)
    times.sort()
    return times


def main() -> None:
    config = points()
    stream = values(config)
    default = Settings()
    with_seconds = Settings(windows=(1, 60, 3600))
    times = latencies(config, stream)
    figures = [
        Figure(
            "Processor.process: 10 000 points at 1 Hz, minute/hour/day windows, 50 virtual sums",
            throughput(config, stream, default),
            "values/s",
            10_000,
        ),
        Figure(
            "the same with second windows too (1 s, 1 min, 1 h, day)",
            throughput(config, stream, with_seconds),
            "values/s",
            10_000,
        ),
        Figure(
            "Processor.process_many, batches of 50 values", batched(config, stream, 50), "values/s"
        ),
        Figure("per value p50", pct(times, 0.50), "µs"),
        Figure("per value p99", pct(times, 0.99), "µs"),
        Figure("per value p99.9", pct(times, 0.999), "µs"),
        Figure("per value max", times[-1], "µs"),
    ]
    report(
        "processing",
        figures,
        points=POINTS,
        values=len(stream),
        budget_us=BUDGET_US,
        p99_within_budget=pct(times, 0.99) <= BUDGET_US,
    )


if __name__ == "__main__":
    main()

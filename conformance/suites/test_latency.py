"""Latency: edge processing (ISC-2 §9.4: minute-level figures, ≤ 20 ms), and real-time data
at the centres within 2 s of its time and refreshed every 5 min (CPCIF §6.1 c)).

ISC-2 §9.4 names no end points for its 20 ms. The wire cannot show them: after a meter's
answer the next thing on the wire is an upload the terminal sends on its own schedule (a
real-time frame at its interval, a minute once it has closed and waited for late reads), seconds
to minutes later, so the wire bounds nothing near 20 ms; and under the virtual clock no
terminal time passes while the terminal computes, so a virtual-time delay cannot fail. The
20 ms is timed from a meter's answer to the terminal's answer of an on-command read, which
needs the carbench management profile. The minute-level computation is judged on the wire.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from conformance.bench import Bench, posix
from conformance.evidence import TestLog, step
from conformance.judge import percentile
from conformance.suites.readback import judge_points
from conformance.target import MANAGEMENT_PROFILE
from conformance.verdicts import Inconclusive, NotApplicable
from protocols.hj212 import Command

READS = 60
#: ISC-2 §9.4: computation at minute level or finer.
MINUTE_S = 60.0
REALTIME_LIMIT_S = 2.0
#: CPCIF §6.1 c): data refreshed at least every 5 min.
REFRESH_LIMIT_S = 300.0


@pytest.mark.clause("ISC-2 §9.4")
@pytest.mark.requires("feature:on-command-read")
async def test_edge_processing_latency_from_the_wire(bench: Bench, evidence: TestLog) -> None:
    """From a meter's answer leaving the meter (the wire) to the processed, stored value coming
    back from the terminal (an on-command read): within the limit (ISC-2 §9.4: 20 ms), 95th
    percentile. The read is the carbench management profile's: see the module text for why the
    uploads cannot time 20 ms."""
    if not bench.dut.target.declares(f"feature:{MANAGEMENT_PROFILE}"):
        raise NotApplicable(
            "the 20 ms is timed to the answer of an on-command read of the carbench management "
            "profile, which the target does not declare; the uploads leave on the terminal's "
            "schedule, seconds after any processing, and bound nothing near 20 ms",
            "ISC-2 §9.4",
        )
    await bench.warm()
    network = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.protocol == "modbus-tcp"
    ]
    if not network:
        raise Inconclusive("no Modbus TCP point to read on command", "ISC-2 §9.4")
    binding = network[0]
    limit = bench.dut.target.parameters.latency_limit_ms
    latencies: list[float] = []
    baselines: list[float] = []  # a plain query's round trip: the management path's own cost
    answers = bench.rig.fleet.answers
    with step(f"read {binding.point} on command {READS} times"), collector_paused():
        for _ in range(READS):
            before = len(answers)
            # virtual time stands still: the rest of the bench (fleet, centres) shares this
            # process and would otherwise be timed as the terminal's processing
            with bench.rig.hold():
                answer = await bench.management.read_now(binding.point)
                back = time.perf_counter()
                await bench.management.latest(binding.point)
                baselines.append((time.perf_counter() - back) * 1000)
            values = [a for a in answer if a.get("point") == binding.point]
            if not values or values[0].get("value") is None:
                continue
            value = Decimal(str(values[0]["value"]))
            # the meter's answer that carried this value (a scheduled read may interleave)
            sent = [
                a
                for a in list(answers)[before:]
                if a.observation.meter == binding.meter
                and a.observation.quantity == binding.quantity
                and a.observation.value == value
            ]
            if sent:
                latencies.append((back - sent[-1].wall) * 1000)
    stored = await bench.management.latest(binding.point)
    assert stored is not None and stored.value is not None, "the on-command reads were not stored"
    if len(latencies) < READS // 2:
        raise Inconclusive(f"only {len(latencies)} of {READS} reads could be timed", "ISC-2 §9.4")
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    query = percentile(baselines, 0.5)
    evidence.record_measurement("query_p50_ms", query)
    evidence.record_measurement("p50_ms", p50)
    evidence.record_measurement("p95_ms", p95)
    evidence.record_measurement("max_ms", max(latencies))
    evidence.attach_json("latencies_ms.json", {"read": latencies, "query": baselines})
    if p95 > limit and query >= limit / 2:
        # the management path alone costs half the limit: this host's load, not the
        # terminal's processing, would decide the verdict (load only adds: a pass stands)
        raise Inconclusive(
            f"a plain query's round trip takes {query:.1f} ms (median), half the {limit:g} ms "
            f"limit or more: this host cannot time the terminal now (read median {p50:.1f} ms)",
            "ISC-2 §9.4",
        )
    assert p50 <= limit, f"median {p50:.1f} ms > {limit:g} ms (p95 {p95:.1f} ms)"
    if p95 > limit:
        raise Inconclusive(
            f"median {p50:.1f} ms is within {limit:g} ms but p95 {p95:.1f} ms is not; the "
            "measurement includes the management API's answer and this machine's load",
            "ISC-2 §9.4",
        )


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The bench's own garbage collector held off while it times (a full pass in its large
    heap takes tens of milliseconds, and would be charged to whatever is being timed)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.clause("ISC-2 §9.4")
async def test_edge_figures_at_minute_level(bench: Bench, evidence: TestLog) -> None:
    """The terminal computes at minute level (ISC-2 §9.4 分钟级以上计算能力): every point it
    reads from the bench's meters once a minute or faster reaches the first centre with its
    minute figures (HJ 212 2051), minute by minute as its meter's log owes them (a point it
    uploads under no item code shows nothing, and fails)."""
    await bench.warm()
    periods = bench.dut.target.parameters.periods
    points = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and float(periods.get(b.group, 60)) <= MINUTE_S
    ]
    if not points:
        raise Inconclusive("no point is read from the bench's meters once a minute", "ISC-2 §9.4")
    with step(f"the minute data of {len(points)} points against their meters' logs"):
        problems, judged = await judge_points(bench, points)
    evidence.attach_json("judged.json", judged)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.clause("CPCIF §6.1 c)")
async def test_live_data_reaches_the_centres_within_2_s_and_every_5_min(
    bench: Bench, evidence: TestLog
) -> None:
    """Real-time data arrives at every centre within 2 s of the instant it describes, and each
    centre's data of every point are refreshed (real-time or minute data) at least every 5 min."""
    await bench.warm()
    since = bench.now()
    await bench.wait(2 * bench.dut.target.parameters.realtime_interval_s + 60)
    late = []
    worst = 0.0
    count = 0
    for centre in bench.rig.centres:
        for row in bench.readings(centre.name, int(Command.REALTIME_DATA), since=since):
            if row.frame_id is None or row.value is None:
                continue
            delay = bench.rig.arrival(row.at) - posix(row.data_time)
            worst = max(worst, delay)
            count += 1
            if delay > REALTIME_LIMIT_S:
                late.append(f"{centre.name} {row.data_time} {row.code}: {delay:.2f} s")
    evidence.record_measurement("worst_s", worst)
    with step("the longest wait for a fresh value of each metered point at each centre"):
        stale, longest = _stale(bench, since)
    evidence.record_measurement("longest_refresh_s", longest)
    assert count, "no real-time value reached any centre"
    assert not late, f"{len(late)} of {count} late:\n" + "\n".join(late[:10])
    assert not stale, f"values refreshed less often than every {REFRESH_LIMIT_S:.0f} s:\n" + (
        "\n".join(stale[:10])
    )


def _stale(bench: Bench, since: float) -> tuple[list[str], float]:
    """Per centre and uploaded point read from the bench's meters, the gaps between arrivals
    of its real-time or minute values longer than the limit (from ``since`` to now; a point
    never given a value is stale throughout), and the longest gap of all."""
    end = bench.now()
    owed = {b.code for b in bench.coded() if b.acquisition != "manual" and bench.fleet_meter(b)}
    stale: list[str] = []
    longest = 0.0
    for centre in bench.rig.centres:
        arrivals: dict[str | None, list[float]] = {code: [] for code in owed}
        for command in (Command.REALTIME_DATA, Command.MINUTE_DATA):
            for row in bench.readings(centre.name, int(command), since=since):
                if row.code in arrivals and row.value is not None:
                    arrivals[row.code].append(bench.rig.arrival(row.at))
        for code, times in sorted(arrivals.items(), key=lambda item: str(item[0])):
            edges = [since, *sorted(times), end]
            gap = max(b - a for a, b in itertools.pairwise(edges))
            longest = max(longest, gap)
            if gap > REFRESH_LIMIT_S:
                stale.append(f"{centre.name} {code}: {gap:.0f} s without a fresh value")
    return stale, longest

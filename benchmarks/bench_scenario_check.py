"""A long scenario's end, offline: ``python -m benchmarks.bench_scenario_check RUN_DIR``.

Rebuilds from a kept scenario run (``bench_scenarios --keep``; the 48-hour one by default
settings: ``--scenario`` names the file it ran) what the engine's end works on, then times
that end alone, in CPU seconds of this thread (the machine's cores are shared; wall time
measures the neighbours):

- ``record_writer``: the platform record's writer on every minute reading the run's centres
  received, re-recorded into a new record through ``add_frame``/``add_readings`` (as the
  centres do) and written by ``flush`` in this thread: µs per reading.
- ``snapshot`` / ``final_values``: what the terminal acknowledged, read from the run's store
  (opened read-only) as the engine reads it: everything since the start once, and the values
  it finally holds.
- ``drain_poll``: a drain's poll that finds every centre has enough copies (a count).
- ``check``: every centre's set check (``engine.check_centre``) on copies read afresh, best of
  ``--repeats``; ``check_compare`` the same on copies already read. Figure: windows checked
  per second against the issue's 4 s for the 48-hour run's 1 088 800. ``check_forked``: the
  wall seconds of the engine's way (``check_centres``: centres after the first in forked
  children, each reading its own copies).

The run's files are not modified (the store is opened immutable, the record copied).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine

from bench.scenario.config import mn_of, scenario_config
from bench.scenario.engine import Arrivals, _fleet_spec, check_centre, check_centres
from bench.scenario.expected import MINUTE_DATA, Acknowledged
from benchmarks.harness import Figure, report
from conformance.scenario.schema import load_scenario
from protocols.hj212.cp import Pollutant
from reference_terminal.app import Terminal
from reference_terminal.runtime import COLLECTOR_THRESHOLDS
from simulators.clock import VirtualClock
from simulators.fleet.runner import running_fleet
from simulators.platform import CheckResult
from simulators.platform.record import Record

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
#: Issue 6: the 48-hour scenario's final check (1 088 800 windows) in at most 4 s.
TARGET_WINDOWS_PER_S = 1_088_800 / 4.0
T = TypeVar("T")


class _Store:
    """The part of the terminal's store ``Acknowledged`` reads: ``run_in_reader``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run_in_reader(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return fn(conn)


class _Terminal:
    def __init__(self, store: _Store) -> None:
        self.store = store


def cpu(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and the CPU seconds this thread spent on it."""
    start = time.thread_time()
    out = fn()
    return out, time.thread_time() - start


def wall(fn: Callable[[], object]) -> float:
    """The wall seconds ``fn()`` took (its work partly in forked children)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def minute_frames(path: Path) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """The kept record's frames that carried minute readings, with their readings."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    frames = db.execute(
        "SELECT id, at, centre, transport, conn, peer, mn, cn, qn, data_time, raw"
        " FROM platform_frames WHERE id IN (SELECT DISTINCT frame_id FROM platform_readings"
        f" WHERE cn = {MINUTE_DATA}) ORDER BY id"
    )
    readings = db.execute(
        "SELECT frame_id, code, mn, cn, qn, data_time, fields FROM platform_readings"
        f" WHERE cn = {MINUTE_DATA} ORDER BY frame_id, rowid"
    )
    pending = readings.fetchone()
    for frame in frames:
        rows = []
        while pending is not None and pending[0] == frame[0]:
            rows.append(pending)
            pending = readings.fetchone()
        yield frame, rows


def pollutant(code: str, fields_json: str) -> Pollutant:
    fields = json.loads(fields_json)
    flag, eflag = fields.pop("Flag", None), fields.pop("EFlag", None)
    values, texts = {}, {}
    for name, text in fields.items():
        try:
            values[name] = Decimal(text)
        except InvalidOperation:
            texts[name] = text
    return Pollutant(code, values, flag, eflag, None, texts)


def rebuild_record(kept: Path, url: str) -> tuple[Record, int, float]:
    """A new record holding the kept one's minute data, re-recorded; the readings and the
    writer's CPU seconds (``flush`` every few hundred frames, in this thread)."""
    record = Record(url, flush_interval=3600.0)  # its own thread stays asleep: we flush
    count, spent = 0, 0.0
    for n, (frame, rows) in enumerate(minute_frames(kept), 1):
        _, at, centre, transport, conn, peer, mn, cn, qn, data_time, raw = frame
        new_id = record.add_frame(
            at=at, centre=centre, transport=transport, conn=conn, peer=peer, direction="in",
            raw=raw, mn=mn, cn=cn, qn=qn, data_time=data_time, note="ack",
        )  # fmt: skip
        for _, code, r_mn, r_cn, r_qn, r_time, fields in rows:
            record.add_readings(
                new_id, at=at, centre=centre, mn=r_mn, cn=r_cn, qn=r_qn, data_time=r_time,
                pollutants=[pollutant(code, fields)],
            )  # fmt: skip
        count += len(rows)
        if n % 200 == 0:
            spent += cpu(record.flush)[1]
    spent += cpu(record.flush)[1]
    return record, count, spent


async def acknowledged_of(run: Path, scenario_file: Path) -> tuple[Acknowledged, float, float]:
    """What the run's terminal acknowledged, from its store; snapshot and final values' CPU."""
    scenario = load_scenario(scenario_file)
    spec = _fleet_spec(scenario)
    clock = VirtualClock(spec.start.timestamp())
    with clock.hold():  # the scenario's configuration needs the fleet's meters listening
        async with running_fleet(
            spec, clock=clock, serial_pacing="frame", opcua_refresh="on_read", push=False
        ) as fleet:
            ports = {c.name: 1 for c in scenario.platforms.centres}
            config = scenario_config(scenario, fleet, "sqlite://", ports)
    acknowledged = Acknowledged.of(
        config, spec.start.timestamp() + scenario.duration.total_seconds()
    )
    store = _Store(
        create_engine(f"sqlite:///file:{run / 'terminal.db'}?mode=ro&immutable=1&uri=true")
    )
    terminal = cast(Terminal, _Terminal(store))
    start = time.thread_time()
    await acknowledged.snapshot(terminal, spec.start.timestamp() + 1e9)
    snapshot = time.thread_time() - start
    start = time.thread_time()
    await acknowledged.final_values(terminal, config)
    return acknowledged, snapshot, time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a kept run directory")
    parser.add_argument("--scenario", type=Path, default=SCENARIOS / "retention-48h.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # the collector as a scenario runs it (bench.scenario.interpreter); its GIL switch interval
    # is left alone, the check running in one thread
    gc.set_threshold(*COLLECTOR_THRESHOLDS)

    acknowledged, snapshot_s, final_values_s = asyncio.run(acknowledged_of(args.run, args.scenario))
    with tempfile.TemporaryDirectory(prefix="carbench-check-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'platform-record.sqlite'}"
        record, readings, writer_s = rebuild_record(args.run / "platform-record.sqlite", url)
        try:
            centres = sorted({c for (c,) in record.engine.connect().exec_driver_sql(
                "SELECT DISTINCT centre FROM platform_readings")})  # fmt: skip
            # the engine's order: the scenario's centres as listed
            names = [c.name for c in load_scenario(args.scenario).platforms.centres]
            assert sorted(names) == centres, (names, centres)
            until = acknowledged.until_local

            def poll() -> Arrivals:
                arrivals = Arrivals(record)
                for i, name in enumerate(names):
                    assert arrivals.enough(name, mn_of(i), acknowledged.windows, until)
                return arrivals

            def check_all(arrivals: Arrivals) -> dict[str, CheckResult]:
                owed = acknowledged.owed()
                return {
                    name: check_centre(arrivals, owed, name, mn_of(i), until)
                    for i, name in enumerate(names)
                }

            polled, drain_poll_s = cpu(poll)
            check_all(polled)  # the copies read, kept for the comparisons
            compare_s = min(cpu(lambda: check_all(polled))[1] for _ in range(args.repeats))
            runs = [cpu(lambda: check_all(Arrivals(record))) for _ in range(args.repeats)]
            results, check_s = runs[0][0], min(spent for _, spent in runs)
            owed = acknowledged.owed()
            forked_s = min(
                wall(lambda: check_centres(Arrivals(record), owed, names, until))
                for _ in range(args.repeats)
            )
        finally:
            record.close()
    windows = sum(r.expected for r in results.values())
    report(
        "scenario_check",
        [
            Figure(
                "check_windows_per_s", round(windows / check_s), "windows/s", TARGET_WINDOWS_PER_S
            ),
            Figure("check", round(check_s, 3), "cpu s"),
            Figure("check_compare", round(compare_s, 3), "cpu s"),
            Figure("check_forked", round(forked_s, 3), "wall s"),
            Figure("drain_poll", round(drain_poll_s, 3), "cpu s"),
            Figure("snapshot", round(snapshot_s, 3), "cpu s"),
            Figure("final_values", round(final_values_s, 3), "cpu s"),
            Figure("record_writer", round(1e6 * writer_s / max(readings, 1), 2), "cpu µs/reading"),
        ],
        run=str(args.run),
        windows=windows,
        readings=readings,
        centres={name: r.summary().splitlines()[0] for name, r in results.items()},
    )


if __name__ == "__main__":
    main()

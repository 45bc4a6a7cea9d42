"""Long scenarios against the reference terminal: ``python -m benchmarks.bench_scenarios``
prints one JSON object.

For each scenario file and seed (and each ``--set`` variant), one run in a fresh run directory:
wall seconds (against the issue's limit: 48 h in ≤ 60 s, 7 days in ≤ 180 s) and their split
into setup, timeline, drain, check and teardown, CPU seconds (steadier than wall time on a
shared host: compare runs by both) and each phase's by thread and child process (a virtual
step waits for them all: on one core their sum is about the phase's wall time), the terminal's
store writer's busy seconds by kind of work (a virtual-time step waits while it is busy: with
the loop's work, what a virtual minute costs), virtual seconds, clock steps, and per virtual
minute the clock steps and wall milliseconds (what a long run's wall time grows by), power cuts
survived and each boot after one (power-on to ready), and what the checker found (expected,
received, lost, duplicated, unexpected). Each run is ``carbench scenario run`` in a process of
its own, as a user runs it (``command_wall_seconds``: the command's, interpreter start and exit
included); runs are sequential: on a 2-core machine two at once measure each other, so the
load average is printed beside them, and the host's pace (a 10-million-step loop's seconds,
``harness.host_pace_s``) before and after them all.
``--keep DIR`` keeps the run directories (platform record, terminal store, timeline).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scenario import load_scenario
from benchmarks.harness import host_pace_s, machine

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
#: The issue's wall-time limits (issue 6, "Time").
WALL_LIMIT_S = {"retention-48h": 60.0, "outage-7d": 180.0}


def run_one(path: Path, seed: int | None, overrides: list[str], out: Path) -> dict[str, Any]:
    """One run, as a user makes it: ``carbench scenario run`` in a process of its own (run one
    after another in this one, a run's setup and teardown met the cyclic collector walking the
    runs before it: up to 2.8 s more)."""
    scenario = load_scenario(path, seed=seed, overrides=overrides)  # a bad file fails here
    command = [sys.executable, "-c", "from bench.cli import entry; entry()", "scenario", "run"]
    command += [os.fspath(path), "--out", os.fspath(out), "--quiet"]
    command += [] if seed is None else ["--seed", str(seed)]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(
        command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    command_wall = time.perf_counter() - started
    if not (out / "outcome.json").is_file():
        raise SystemExit(
            f"{path.name} seed {seed}: no outcome (exit {done.returncode})\n{done.stderr}"
        )
    outcome = json.loads((out / "outcome.json").read_text(encoding="utf-8"))
    limit = WALL_LIMIT_S.get(scenario.name)
    minutes = max(outcome["virtual_seconds"] / 60.0, 1 / 60)
    wall = outcome["wall_seconds"]
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "overrides": overrides,
        "passed": outcome["passed"],
        "exit_status": done.returncode,
        **{key: outcome[key] for key in _AS_RECORDED},
        "wall_seconds": wall,
        # the command's, interpreter start, imports and exit included
        "command_wall_seconds": round(command_wall, 2),
        "phases_wall_s": outcome["phases"],
        "cpu_seconds": outcome["cpu_seconds"],
        "cpu_by_phase_s": outcome["cpu_by_phase"],
        "store_writer_busy_s": outcome["store_busy_s"],
        "wall_limit_s": limit,
        "within_limit": None if limit is None else wall <= limit,
        "speed_x_real_time": round(outcome["virtual_seconds"] / wall, 1),
        "clock_steps": outcome["clock_steps"],
        "clock_steps_per_virtual_minute": round(outcome["clock_steps"] / minutes, 1),
        "wall_ms_per_virtual_minute": round(1000 * wall / minutes, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "boots_after_power_cuts_wall_s": boots(out / "timeline.jsonl"),
    }


#: Reported as ``outcome.json`` has them: what the checker and the bench counted.
_AS_RECORDED = (
    "expected",
    "received",
    "lost",
    "duplicated",
    "unexpected",
    "wrong_value",
    "failed_steps",
    "power_cuts",
    "power_cut_mode",
    "bytes_dropped_by_cuts",
    "virtual_seconds",
)


def boots(timeline: Path) -> dict[str, Any]:
    """Wall seconds from each power-on to the terminal's ready (the timeline's notes): the
    store opened, the replay planned and run, the accounting resumed. What a boot costs grows
    with the store if a question it asks of every point reads that point's history."""
    each, powered = [], None
    for line in timeline.read_text(encoding="utf-8").splitlines():
        note = json.loads(line)
        if note["what"] == "power_on":
            powered = note["wall_s"]
        elif note["what"] == "terminal ready" and powered is not None:
            each.append(round(note["wall_s"] - powered, 3))
            powered = None
    return {"count": len(each), "total": round(sum(each), 2), "each": each}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios", nargs="*", type=Path, default=[SCENARIOS / "retention-48h.yaml"]
    )
    parser.add_argument("--seeds", type=int, nargs="*", help="default: each file's own seed")
    parser.add_argument(
        "--set",
        dest="variants",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="also run each with these overrides, e.g. terminal.synchronous=OFF",
    )
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    args = parser.parse_args()
    variants = [[], *([o for o in v.split(",") if o] for v in args.variants)]
    runs: list[dict[str, Any]] = []
    host = machine()  # the pace before the runs, and after them: a host's can change meanwhile
    with tempfile.TemporaryDirectory(prefix="carbench-scenarios-") as scratch:
        root = args.keep or Path(scratch)
        for path in args.scenarios:
            for seed in args.seeds or [None]:
                for overrides in variants:
                    name = f"{path.stem}-seed{seed if seed is not None else 'file'}-{len(runs)}"
                    runs.append(run_one(path, seed, overrides, root / name))
    host["pace_after_s"] = host_pace_s()
    print(json.dumps({"benchmark": "scenarios", "machine": host, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()

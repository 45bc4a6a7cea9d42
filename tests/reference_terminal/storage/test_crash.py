"""Kill -9 at random instants: once the store has opened again (applying what its intake log
holds), every reading it acknowledged is in the database exactly once, each write whole, and
the database passes ``PRAGMA integrity_check`` (several rounds on one file). This is a process
crash; a power cut (unsynced data lost) is what the syncs are for, tested with a FUSE layer in
tests/simulators/power."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from reference_terminal.storage.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parents[3]
ROUNDS = 5


def _run_and_kill(path: Path, first_id: int, rng: random.Random) -> list[int]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reference_terminal.storage.crash_writer",
            str(path),
            str(first_id),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    lines: list[bytes] = []
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line == b"ready\n":
                ready.set()
            else:
                lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert ready.wait(20), "the writer did not start"
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
        reader.join(10)
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode() if child.stderr else ""
    # a line cut short by the kill has no newline: it was not acknowledged in full
    return [int(line) for line in lines if line.endswith(b"\n")]


def _recover(path: Path) -> int:
    """Open the store as the terminal's next start does, and close it: the database then
    holds everything. Returns the points stored."""

    async def reopen() -> int:
        async with await Store.open(sqlite_url(path)) as store:
            return len(await store.points())

    return asyncio.run(reopen())


def test_acknowledged_readings_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(212)
    acknowledged: list[int] = []
    for round_ in range(ROUNDS):
        acked = _run_and_kill(path, round_ * 10_000_000, rng)
        assert acked, f"round {round_}: nothing was acknowledged before the kill"
        acknowledged += acked
        assert _recover(path) == 16

        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            notes = [int(n) for (n,) in db.execute("SELECT note FROM readings")]
            batches = db.execute(
                "SELECT json_extract(details, '$.first'), json_extract(details, '$.size') "
                "FROM events"
            ).fetchall()
        finally:
            db.close()
        stored = set(notes)
        lost = set(acknowledged) - stored
        assert not lost, (
            f"round {round_}: {len(lost)} acknowledged readings lost: {sorted(lost)[:5]}"
        )
        assert len(notes) == len(stored), "a reading was stored twice"
        # each write's readings and its event committed together, or none of them
        in_batches = {int(f) + k for f, n in batches for k in range(int(n))}
        assert in_batches == stored, "a write was committed in part"
        print(f"round {round_}: {len(acked)} acknowledged, {len(stored)} stored in all")

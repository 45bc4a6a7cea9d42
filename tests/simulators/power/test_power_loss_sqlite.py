"""Power cuts at random instants under a program committing to SQLite (FACTS.md's experiment).

A child process commits batches to SQLite on the volatile mount and reports each acknowledged
commit through a pipe. At a random instant the power is cut (the mount first, then SIGKILL),
then restored; every acknowledged batch must still be there. With synchronous=FULL none is
lost; with NORMAL or OFF some are, which is the point: a power cut that cannot make a weak
program fail proves nothing about a strong one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from simulators.power import VolatileMount
from tests.simulators.power.conftest import needs_fuse, on_mount

pytestmark = needs_fuse

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Outcome:
    acknowledged: int  # batches the program reported committed before it died
    lost: int  # of those, batches missing after the restore
    readable: bool  # the database opened and passed integrity_check
    seed: int

    def __str__(self) -> str:
        return f"{self.lost} of {self.acknowledged} acknowledged lost (seed {self.seed})"


async def cut_under_sqlite(
    mount: VolatileMount,
    directory: Path,
    *,
    synchronous: str,
    journal: str = "WAL",
    torn: bool = False,
) -> Outcome:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    directory.mkdir()
    db = directory / "store.sqlite"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.simulators.power.sqlite_writer",
        str(db),
        "--synchronous",
        synchronous,
        "--journal",
        journal,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its last words are "disk I/O error", as expected
        cwd=REPO,
        start_new_session=True,
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"
    acknowledged: set[int] = set()

    async def collect() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            acknowledged.add(int(line))

    reading = asyncio.create_task(collect())
    await asyncio.sleep(rng.uniform(0.3, 0.9))  # the random instant
    if torn:  # in the middle of a commit: before its n-th write or fsync from now
        await mount.arm(rng.randint(1, 12))
        while (await mount.stats()).powered:
            await asyncio.sleep(0.001)
    else:
        await mount.cut()
    # The writer may already be gone (the cut failed its next write and it exited; asyncio's
    # child watcher reaped it): then there is nothing to kill.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    await child.wait()
    await reading  # every line written before it died was a commit that had returned
    await mount.restore()

    survived: set[int] = set()
    readable = False
    try:
        conn = sqlite3.connect(db)
        try:
            survived = {b for (b,) in conn.execute("SELECT DISTINCT batch FROM reading")}
            readable = conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    except sqlite3.DatabaseError:  # no table, or not a database at all: everything is lost
        pass
    return Outcome(len(acknowledged), len(acknowledged - survived), readable, seed)


def test_wal_with_synchronous_full_loses_no_acknowledged_commit(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        return [
            await cut_under_sqlite(mount, mnt / f"run{k}", synchronous="FULL") for k in range(3)
        ]

    for outcome in on_mount(tmp_path, body):
        assert outcome.acknowledged >= 20, f"too few commits to judge: {outcome}"
        assert outcome.lost == 0, str(outcome)
        assert outcome.readable, str(outcome)


def test_a_cut_that_tears_a_commit_loses_no_acknowledged_commit(tmp_path: Path) -> None:
    """The cut lands inside a transaction (between its WAL writes, or before its fsync):
    that transaction was never acknowledged and may go; every earlier one stays."""

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        return [
            await cut_under_sqlite(mount, mnt / f"run{k}", synchronous="FULL", torn=True)
            for k in range(3)
        ]

    for outcome in on_mount(tmp_path, body):
        assert outcome.acknowledged >= 20, f"too few commits to judge: {outcome}"
        assert (outcome.lost, outcome.readable) == (0, True), str(outcome)


def test_rollback_journal_with_synchronous_full_loses_no_acknowledged_commit(
    tmp_path: Path,
) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> Outcome:
        return await cut_under_sqlite(mount, mnt / "run", synchronous="FULL", journal="DELETE")

    outcome = on_mount(tmp_path, body)
    assert outcome.acknowledged >= 20, f"too few commits to judge: {outcome}"
    assert (outcome.lost, outcome.readable) == (0, True), str(outcome)


def test_wal_with_synchronous_normal_loses_acknowledged_commits(tmp_path: Path) -> None:
    # NORMAL syncs the WAL only at checkpoints, so every commit since the last one is at risk;
    # but a cut that lands inside a checkpoint, after its WAL sync, finds nothing to lose (about
    # one cut in four here). So: cut again until a loss shows, six times at most.
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        outcomes: list[Outcome] = []
        while len(outcomes) < 6 and not any(o.lost for o in outcomes):
            run = mnt / f"run{len(outcomes)}"
            outcomes.append(await cut_under_sqlite(mount, run, synchronous="NORMAL"))
        return outcomes

    outcomes = on_mount(tmp_path, body)
    assert any(o.lost for o in outcomes), "; ".join(map(str, outcomes))
    # losing commits is all NORMAL may do: the database stays sound
    assert all(o.readable for o in outcomes), "; ".join(map(str, outcomes))


def test_synchronous_off_loses_acknowledged_commits(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> Outcome:
        return await cut_under_sqlite(mount, mnt / "run", synchronous="OFF")

    outcome = on_mount(tmp_path, body)
    assert outcome.acknowledged > 0
    assert outcome.lost > 0, str(outcome)

"""Power cuts under the store: a child process writes readings through ``Store.write`` on a
volatile mount (unsynced data is dropped at a cut) and reports each one acknowledged. After the
cut, the restore and the store's next opening (which applies what its intake log holds), every
acknowledged reading is in the database; with ``synchronous=OFF`` (nothing synced) the same cut
loses some, which shows the cut can catch a store that does not sync."""

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

from reference_terminal.storage.store import Store, sqlite_url
from simulators.power import VolatileMount
from tests.simulators.power.conftest import needs_fuse, on_mount

pytestmark = needs_fuse

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Outcome:
    acknowledged: int
    lost: int
    torn: bool

    def __str__(self) -> str:
        return f"{self.lost} of {self.acknowledged} acknowledged readings lost (torn: {self.torn})"


async def cut_under_the_store(
    mount: VolatileMount,
    directory: Path,
    rng: random.Random,
    *,
    synchronous: str,
    torn: bool,
    rewind_at: int | None = None,
    settle_rows: int | None = None,
) -> Outcome:
    directory.mkdir()
    db = directory / "terminal.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reference_terminal.storage.crash_writer",
        str(db),
        "0",
        synchronous,
        str(rewind_at or ""),
        str(settle_rows or ""),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its last words are disk errors, as expected
        cwd=REPO,
        start_new_session=True,
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"
    acknowledged: set[int] = set()

    async def collect() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            if line.endswith(b"\n"):  # a line cut short was not acknowledged in full
                acknowledged.add(int(line))

    reading = asyncio.create_task(collect())
    await asyncio.sleep(rng.uniform(0.3, 0.9))
    if torn:  # inside a write: before the store's n-th write or sync from now
        await mount.arm(rng.randint(1, 12))
        while (await mount.stats()).powered:
            await asyncio.sleep(0.001)
    else:
        await mount.cut()
    with contextlib.suppress(ProcessLookupError):  # it may have died of the cut already
        os.killpg(child.pid, signal.SIGKILL)
    await child.wait()
    await reading
    await mount.restore()

    store = await Store.open(sqlite_url(db), synchronous=synchronous)  # applies the log
    await store.close()
    with sqlite3.connect(db) as conn:
        stored = {int(n) for (n,) in conn.execute("SELECT note FROM readings")}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return Outcome(len(acknowledged), len(acknowledged - stored), torn)


def test_no_acknowledged_reading_is_lost_to_a_power_cut(tmp_path: Path) -> None:
    rng = random.Random(2026)

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        return [
            await cut_under_the_store(
                mount, mnt / f"run{k}", rng, synchronous="FULL", torn=k % 2 == 1
            )
            for k in range(4)
        ]

    for outcome in on_mount(tmp_path, body):
        assert outcome.acknowledged >= 100, f"too few writes to judge: {outcome}"
        assert outcome.lost == 0, str(outcome)


def test_nothing_is_lost_when_the_intake_log_has_just_started_afresh(tmp_path: Path) -> None:
    """The log gives up its records (writes over them) once the database holds them durably:
    with a log that rewinds whenever the database has caught up, every cut lands just after one.
    (A store applying the log with synchronous=NORMAL and rewinding without syncing the WAL
    lost 160–375 of about 1 000 acknowledged readings in 3 of these 4 cuts.)"""
    rng = random.Random(212)

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        return [
            await cut_under_the_store(
                mount, mnt / f"run{k}", rng, synchronous="FULL", torn=k % 2 == 1, rewind_at=1
            )
            for k in range(4)
        ]

    for outcome in on_mount(tmp_path, body):
        assert outcome.acknowledged >= 100, f"too few writes to judge: {outcome}"
        assert outcome.lost == 0, str(outcome)


def test_nothing_is_lost_to_a_cut_while_the_store_settles(tmp_path: Path) -> None:
    """A settle commits without its own fsync, then writes the WAL and the checkpoint of its
    pages out in steps (``writeback.py``): with a settle every few hundred rows, cuts land in
    those steps, and in the writes and syncs between them (torn), and lose nothing."""
    rng = random.Random(45)

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> list[Outcome]:
        return [
            await cut_under_the_store(
                mount, mnt / f"run{k}", rng, synchronous="FULL", torn=k % 2 == 1, settle_rows=300
            )
            for k in range(6)
        ]

    for outcome in on_mount(tmp_path, body):
        assert outcome.acknowledged >= 100, f"too few writes to judge: {outcome}"
        assert outcome.lost == 0, str(outcome)


def test_the_same_cut_catches_a_store_that_does_not_sync(tmp_path: Path) -> None:
    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> Outcome:
        return await cut_under_the_store(
            mount, mnt / "run", random.Random(7), synchronous="OFF", torn=False
        )

    outcome = on_mount(tmp_path, body)
    assert outcome.acknowledged >= 100
    assert outcome.lost > 0, str(outcome)

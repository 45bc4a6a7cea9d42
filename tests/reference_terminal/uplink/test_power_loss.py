"""Issue 5: a power cut at any instant never loses an acknowledged reading; duplicates after a
crash are possible only for frames the platform may not have acknowledged, and carry the same
QN and DataTime so a platform can de-duplicate.

The terminal runs as on a gateway (the ``python -m reference_terminal`` entry, on a YAML
configuration, in a process of its own) and uploads minute data to a centre of the bench's
platform simulator that acknowledges each frame after a small random delay. After a first run
has made the new centre's cursors, the process is killed with SIGKILL at a random instant
(seeded) while it uploads, ten times, with more minute windows stored before each run; then it
runs until its outbox is empty. At the platform every window the store holds has arrived with
its value, no reading came under a second QN, a frame was sent again only on the connection
after a kill, and every copy of a QN carries one DataTime. The test also checks that the kills
cut uploads short (frames sent and not acknowledged in the outbox when the process died, sent
again afterwards), so it cannot pass without testing anything.

Not checked here: the order of arrival. After a restart the windows the producer finds in the
store go out as live data before the outbox's older backlog (live first, ISC-2 §7.2.4(5)).

(A process kill, not a power cut: what a power cut adds — unsynced pages lost — is the store's
``synchronous=FULL``, measured with a FUSE layer in FACTS.md. What a kill exercises here is the
uplink's part: cursors and outbox in one transaction, a QN committed before the first send, a
frame deleted only on 9014.)
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from reference_terminal.config import TerminalConfig
from reference_terminal.storage.store import Store
from reference_terminal.uplink.service import coding_for
from simulators.platform import (
    Expected,
    Hj212Server,
    PlatformFile,
    Platforms,
    check,
    running_platforms,
)
from tests.reference_terminal.uplink.helpers import MN_A, config, hj212_centre, minute_rows

ROOT = Path(__file__).resolve().parents[3]
CENTRE = "province"
MINUTE_DATA = 2051
KILLS = 10
#: A run is killed this long after its first frame reached the platform (uniform, seeded).
KILL_AFTER_S = (0.05, 1.5)
#: The platform acknowledges each frame this long after it arrives (uniform, drawn per run).
ACK_DELAY_S = (0.02, 0.05)
#: Frames the platform has yet to receive when a run starts: more than a run can upload before
#: its kill (8 in flight, each acknowledged ≥ 20 ms late: ≤ 400 a second, ≤ 600 in 1.5 s), so
#: on any machine every kill finds the outbox holding frames.
PENDING = 700
CURSOR = "SELECT value FROM uplink_state WHERE centre = ? AND key = 'cursor.minute'"
OUTBOX = "SELECT count(*), count(qn) FROM uplink_outbox WHERE centre = ?"


def local(t: float) -> datetime:
    """A POSIX time as DataTime goes on the wire: plant-local (UTC+8), naive."""
    return (datetime.fromtimestamp(t, UTC) + timedelta(hours=8)).replace(tzinfo=None)


@dataclass
class Kill:
    after_s: float  # after the run's first frame reached the platform
    frames_in: int  # frames the platform received from this run
    outbox: int  # frames in the durable outbox after the kill
    sent_unacked: int  # of which already sent (a QN committed), acknowledgement not committed


#: A parent that imports the terminal once and forks a fresh terminal process on each line
#: of input: ``python -m reference_terminal`` spends about 2 s importing before it runs, and a
#: dozen starts would take most of the test's time. Each child runs the module's ``main`` with
#: the configuration (the same entry as ``python -m``) in a process of its own, killed by pid.
FORKER = """
import os, sys, threading, traceback
import reference_terminal.__main__ as entry
assert threading.active_count() == 1, "threads before fork"
for line in sys.stdin:
    argv = line.split()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(argv.pop(0), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            code = entry.main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Terminal:
    """The terminal process, started, killed and started again on one configuration."""

    def __init__(self, path: Path, log: Path) -> None:
        self.argv = f"{log} --config {path} --log-level WARNING\n".encode()
        self.forker: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.exit: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Terminal:
        self.forker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FORKER,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.alive():
            await self.stop(signal.SIGKILL)
        if self.forker is not None:
            assert self.forker.stdin is not None
            self.forker.stdin.close()
            try:
                await asyncio.wait_for(self.forker.wait(), 30)
            except TimeoutError:
                self.forker.kill()
                await self.forker.wait()

    async def _line(self) -> int:
        assert self.forker is not None and self.forker.stdout is not None
        line = await self.forker.stdout.readline()
        assert line, "the forking parent ended"
        return int(line)

    async def start(self) -> None:
        assert self.forker is not None and self.forker.stdin is not None
        assert not self.alive()
        self.forker.stdin.write(self.argv)
        await self.forker.stdin.drain()
        self.pid = await asyncio.wait_for(self._line(), 60)
        self.exit = asyncio.create_task(self._line())

    def alive(self) -> bool:
        return self.exit is not None and not self.exit.done()

    async def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` (unless it has ended by itself); its exit code once it is gone."""
        assert self.exit is not None
        if not self.exit.done():
            os.kill(self.pid, sig)
        code = await asyncio.wait_for(self.exit, 60)
        self.exit = None
        return code


async def until(test: Callable[[], bool], what: str, terminal: Terminal, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert terminal.alive(), f"the terminal exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.01)


def query(database: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(database, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def test_kill_9_at_random_instants_loses_no_reading_and_resends_under_the_same_qn(
    tmp_path: Path,
) -> None:
    rng = random.Random(2017)
    database = tmp_path / "terminal.db"
    url = f"sqlite:///{database}"
    spec = PlatformFile.model_validate(
        {
            "centres": [
                {
                    "name": CENTRE,
                    "protocol": "hj212",
                    "port": 0,
                    "behaviour": {"kind": "ack_late", "delay_s": 0.02},
                }
            ]
        }
    )

    async def main() -> None:
        async with running_platforms(spec) as platforms:
            centre = platforms.hj212(CENTRE)
            terminal_config = config(
                tmp_path,
                [
                    hj212_centre(
                        CENTRE,
                        MN_A,
                        centre.address[1],
                        streams={"realtime": False, "minute": True, "hourly": False},
                        backoff={"initial_s": 0.2, "max_s": 1},
                        # a narrow window keeps a backlog waiting at the kills' instants
                        outbox={"window": 8},
                    )
                ],
            )
            path = tmp_path / "terminal.yaml"
            path.write_text(yaml.safe_dump(terminal_config.model_dump(mode="json")))
            async with Terminal(path, tmp_path / "terminal.log") as terminal:
                await scenario(terminal_config, terminal, platforms, centre, database, url, rng)

    asyncio.run(main())


async def scenario(
    terminal_config: TerminalConfig,
    terminal: Terminal,
    platforms: Platforms,
    centre: Hj212Server,
    database: Path,
    url: str,
    rng: random.Random,
) -> None:
    started = time.monotonic()
    # a new centre's cursors start at what the store holds: a first run makes them, and is
    # cut off at once (a kill before any upload)
    await terminal.start()

    def cursor() -> int | None:
        try:
            rows = query(database, CURSOR, CENTRE) if database.exists() else []
        except sqlite3.OperationalError:  # the schema is being made
            return None
        return int(str(rows[0][0])) if rows else None

    await until(lambda: cursor() is not None, "the centre's cursors", terminal, 60)
    assert await terminal.stop(signal.SIGKILL) == -signal.SIGKILL
    first_cursor = cursor()
    assert first_cursor is not None

    # minute windows stored before each run, a few days back (clear of any the terminal's own
    # processing might close meanwhile), so that each run starts with PENDING to upload
    next_window = (time.time() // 86400 - 5) * 86400
    written = 0

    async def top_up() -> None:
        nonlocal next_window, written
        received = {r.data_time for r in platforms.record.readings(centre=CENTRE)}
        minutes = PENDING - (written - len(received))
        if minutes > 0:
            async with await Store.open(url) as store:
                await store.write_derived(minute_rows(next_window, minutes))
            next_window += 60 * minutes
            written += minutes

    kills: list[Kill] = []
    for _ in range(KILLS):
        await top_up()
        await centre.set_behaviour({"kind": "ack_late", "delay_s": rng.uniform(*ACK_DELAY_S)})
        before = centre.frames_in

        def uploading(before: int = before) -> bool:
            return centre.frames_in > before

        await terminal.start()
        await until(uploading, "the run's first frame", terminal, 60)
        after_s = rng.uniform(*KILL_AFTER_S)
        await asyncio.sleep(after_s)
        assert await terminal.stop(signal.SIGKILL) == -signal.SIGKILL
        ((outbox, sent),) = query(database, OUTBOX, CENTRE)
        kills.append(Kill(after_s, centre.frames_in - before, int(str(outbox)), int(str(sent))))

    # the last run goes on until it has taken every stored window and its outbox is empty
    await top_up()
    await centre.set_behaviour("ack")
    expected = stored_windows(terminal_config, database, first_cursor)
    ((top,),) = query(database, "SELECT max(id) FROM derived_values")
    await terminal.start()

    def finished() -> bool:
        ((outbox, _),) = query(database, OUTBOX, CENTRE)
        return outbox == 0 and (cursor() or 0) >= int(str(top))

    await until(finished, "every stored window acknowledged", terminal, 60)
    assert await terminal.stop(signal.SIGTERM) == 0
    elapsed = time.monotonic() - started

    # nothing lost, nothing made up; duplicates only as resends under the frame's first QN
    assert stored_windows(terminal_config, database, first_cursor) == expected
    result = check(expected, platforms.record.readings(centre=CENTRE, cn=MINUTE_DATA))
    assert result.complete, result.summary()
    assert result.new_qn_copies == 0, result.summary()
    assert result.exactly_once, result.summary()
    frames = platforms.record.frames(centre=CENTRE, direction="in")
    assert frames and all(f.ok and f.qn and f.cn == MINUTE_DATA for f in frames)
    times: dict[str, set[datetime | None]] = defaultdict(set)
    connections: dict[str, list[int]] = defaultdict(list)
    for frame in frames:
        assert frame.qn is not None
        times[frame.qn].add(frame.data_time)
        connections[frame.qn].append(frame.conn)
    several = {qn: sorted(map(str, t)) for qn, t in times.items() if len(t) > 1}
    assert not several, f"one QN, several DataTimes: {several}"
    # the platform acknowledged every frame well within OverTime: a frame went twice only when
    # a kill cut its run short, each time on the next run's connection
    again = {qn: c for qn, c in connections.items() if len(c) != len(set(c))}
    assert not again, f"sent twice on one connection: {again}"

    # … and the kills really cut uploads short: frames sent but not acknowledged (as far as
    # the store knew) when the process died, sent again under their QN by the next run
    mid_upload = [k for k in kills if k.sent_unacked > 0]
    resent_after_restart = sum(1 for c in connections.values() if len(c) > 1)
    summary = (
        f"{len(kills)} kills, {len(mid_upload)} mid-upload ("
        + ", ".join(f"{k.after_s:.2f} s: {k.frames_in} in, {k.sent_unacked} unacked" for k in kills)
        + f"); {written} windows: {result.summary()}; {resent_after_restart} QNs resent on a "
        f"new connection; {elapsed:.1f} s"
    )
    print(summary)
    assert all(k.outbox > 0 for k in kills), summary
    assert len(mid_upload) >= KILLS // 2, summary
    assert result.resends > 0 and resent_after_restart > 0, summary


def stored_windows(terminal_config: TerminalConfig, database: Path, cursor: int) -> list[Expected]:
    """Every coded point's minute window the store holds past the centre's first cursor."""
    centre = terminal_config.uplink.centres[0]
    coding = coding_for(terminal_config, centre)
    rows = query(
        database,
        "SELECT point, period_start, value FROM derived_values "
        "WHERE kind = 'minute' AND id > ? ORDER BY id",
        cursor,
    )
    out = []
    for point, start, value in rows:
        assert isinstance(point, str) and isinstance(start, float) and isinstance(value, str)
        if point in coding.codes:
            field = "Cou" if point in coding.counters else "Avg"
            out.append(
                Expected(
                    MN_A, MINUTE_DATA, local(start), coding.codes[point], Decimal(value), field
                )
            )
    return out

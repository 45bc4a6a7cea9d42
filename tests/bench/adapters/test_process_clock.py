"""The rig's clock leading a terminal process across its power cycles: the process's own
sleepers are stops on the clock's way, and a process that dies under it costs no time."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bench.adapters.process_clock import ProcessFollower
from simulators.clock import VirtualClock

pytestmark = pytest.mark.anyio

T0 = 1_767_225_600.0

#: A follower process as small as can be: it settles and advances on the control line and
#: says when its one sleeper woke, in the time it reads from the leader.
FOLLOWER = """
import asyncio, sys
from pathlib import Path
from common.clock_follower import ControlServer, FollowDirectory

async def main() -> None:
    clock = FollowDirectory(Path(sys.argv[1])).follower_clock()

    async def handle(request):
        raise ValueError(request)

    async def sleeper() -> None:
        await clock.sleep(30)
        print("woke", clock.monotonic(), clock.time(), flush=True)

    async with ControlServer(FollowDirectory(Path(sys.argv[1])).control, clock, handle):
        await sleeper()
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_led_process_wakes_on_the_rigs_time_and_its_death_costs_none() -> None:
    clock = VirtualClock(T0)
    follower = ProcessFollower(clock)
    follower.offset = 3600.0  # its battery-backed clock an hour ahead
    follower.prepare()
    repo = Path(__file__).resolve().parents[3]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FOLLOWER,
        str(follower.directory.path),
        cwd=repo,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        with clock.hold():  # its start takes none of the rig's time
            await follower.attach(lambda: child.returncode is None, 30, "the follower")
        await clock.sleep(60)
        woke = (await child.stdout.readline()).split()
        assert woke[0] == b"woke" and float(woke[1]) == 30.0  # a stop on the way to 60
        assert float(woke[2]) == T0 + 3600 + 30

        child.kill()  # the power goes while the rig's clock leads it
        await child.wait()
        await asyncio.wait_for(clock.sleep(60), 30)
        assert clock.monotonic() == 120.0 and not follower.attached
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        follower.close()

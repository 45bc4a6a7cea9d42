"""The reference terminal as a process of its own (target kind ``process``), driven as the
bench drives a stranger's box: started with ``python -m reference_terminal``, its time led by
the rig's clock across the process boundary, its power cut by the FUSE disk under its store and
a SIGKILL, read back through its management API only when the target declares the profile."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.adapters.process import ProcessDut
from conformance.dut import ClockMode, DutError, SetPeriod
from conformance.rig import Rig, running_rig
from conformance.target import Target, load_target
from conformance.verdicts import Inconclusive

PROCESS = Path(__file__).resolve().parents[3] / "fixtures" / "targets" / "reference-process.yaml"


def with_profile(profile: str) -> Target:
    """The process target with its management profile ``carbench`` or ``none``."""
    target = load_target(PROCESS)
    management = target.management.model_copy(update={"profile": profile})
    return target.model_copy(update={"management": management})


#: HJ 212 minute data.
MINUTE_DATA = 2051


@contextlib.asynccontextmanager
async def started(
    target: Target, mode: ClockMode, workdir: Path
) -> AsyncIterator[tuple[Rig, ProcessDut]]:
    """The quick rig and the terminal process on it, started; stopped (orderly) at the end."""
    async with running_rig(target, profile="quick", clock_mode=mode, workdir=workdir) as rig:
        dut = ProcessDut(
            target,
            fleet=rig.fleet,
            clock=rig.clock,
            clock_mode=rig.clock_mode,
            workdir=workdir / "dut",
            ca=rig.ca,
            client_ca=rig.client_ca,
        )
        before = rig.clock.monotonic()
        await dut.start(rig.centres)
        if mode is ClockMode.VIRTUAL:
            assert rig.clock.monotonic() == before  # booting takes none of the rig's time
        try:
            yield rig, dut
        finally:
            await dut.stop()


def exit_status(dut: ProcessDut) -> int | None:
    assert dut.switch is not None and dut.switch.process is not None
    return dut.switch.process.returncode


def test_in_virtual_time_it_boots_is_read_back_survives_power_cuts_and_stops(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with started(with_profile("carbench"), ClockMode.VIRTUAL, tmp_path) as (rig, dut):
            described = dut.describe()
            assert described["kind"] == "process" and described["pid"] != os.getpid()
            assert described["clock"] == "virtual"

            # it reads its meters over their wire, on the rig's time
            point = next(p for p in dut.points() if p.acquisition == "polled")
            await rig.sleep(180)
            before = await dut.management.readings(point.point)
            assert len(before) >= 2
            assert all(rig.now() - 180 <= r.t <= rig.now() for r in before)

            # a cut: the disk drops what was not synced, the process dies; what the terminal
            # showed as stored before it is there after it
            cut = await dut.power_off()
            assert not dut.powered and exit_status(dut) is not None
            await dut.power_on()
            assert cut.switch == cut.mode == "fuse", cut.note
            after = await dut.management.readings(point.point)
            assert {r.t for r in before} <= {r.t for r in after}

            # a torn cut, inside one of its writes
            await rig.sleep(120)
            before = await dut.management.readings(point.point)
            torn = await dut.power_off(torn_after=3)
            await dut.power_on()
            assert torn.torn
            after = await dut.management.readings(point.point)
            assert {r.t for r in before} <= {r.t for r in after}

            # and it goes on reading after the cuts
            await rig.sleep(120)
            assert len(await dut.management.readings(point.point)) > len(after)
            assert dut.describe()["stopped_by_itself"] is None
        assert exit_status(dut) == 0  # an orderly stop: its store closed tidy

    asyncio.run(main())


def test_without_a_management_profile_it_is_judged_from_the_wire_only(tmp_path: Path) -> None:
    """A stranger's box has no carbench API: boot is its control line answering, the suites
    get no management client and no configuration change, and its uploads show it works."""
    target = with_profile("none")

    async def main() -> None:
        async with started(target, ClockMode.VIRTUAL, tmp_path) as (rig, dut):
            with pytest.raises(DutError, match="declares no management profile"):
                _ = dut.management
            with pytest.raises(Inconclusive, match="needs the carbench management profile"):
                await dut.configure(SetPeriod("serial", 120))

            await rig.sleep(180)
            mn = dut.mn("provincial")
            readings = rig.record.readings(centre="provincial", mn=mn, cn=MINUTE_DATA)
            assert readings and all(r.value is not None for r in readings)

            # aged an hour while off: its clock comes back that much ahead of the rig's
            await dut.age(3600)
            seen = max(r.frame_id for r in readings)
            await rig.sleep(180)
            later = rig.record.readings(centre="provincial", mn=mn, after_frame=seen)
            minutes = [r.data_time.timestamp() for r in later if r.cn == MINUTE_DATA]
            assert minutes and min(minutes) > rig.now() + 3000

    asyncio.run(main())


def test_in_wall_time_it_boots_without_a_follower(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(with_profile("carbench"), ClockMode.REAL, tmp_path) as (_, dut):
            described = dut.describe()
            assert described["clock"] == "real" and described["settles"] is None
            assert "--follow-clock" not in described["command"]
            assert (await dut.management.health())["state"] == "running"
            with pytest.raises(Inconclusive, match="only in virtual time"):
                await dut.age(86400)
        assert exit_status(dut) == 0

    asyncio.run(main())

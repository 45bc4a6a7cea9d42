"""The reference adapter's unattended stretch (the full profile's week offline): the terminal
reads its meters' models while it lasts, keeps storing every minute, and reads the wire again
after it, a power cycle in between included."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.adapters.reference import ReferenceDut
from bench.scenario.model_link import ModelLink
from conformance.dut import ClockMode
from conformance.rig import running_rig
from conformance.target import load_target
from reference_terminal.acquisition.drivers import WIRE

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "targets" / "reference.yaml"


def test_an_unattended_stretch_reads_the_models_then_the_wire_again(tmp_path: Path) -> None:
    async def main() -> None:
        target = load_target(REFERENCE)
        async with running_rig(
            target, profile="quick", clock_mode=ClockMode.VIRTUAL, workdir=tmp_path
        ) as rig:
            dut = ReferenceDut(
                target,
                fleet=rig.fleet,
                clock=rig.clock,
                clock_mode=rig.clock_mode,
                workdir=tmp_path / "dut",
                ca=rig.ca,
                client_ca=rig.client_ca,
            )
            await dut.start(rig.centres)
            try:

                async def stale_since(t: float) -> set[str]:
                    """Read points (all but those entered by hand) with no reading since ``t``."""
                    terminal = dut.runner.terminal if dut.runner else None
                    assert terminal is not None and terminal.store is not None
                    config = terminal.config
                    read = {
                        p.id
                        for p in config.points
                        if config.device(p.source.device).protocol != "manual"
                    }
                    latest = await terminal.store.latest(read)
                    return {p for p in read if p not in latest or latest[p].t < t}

                async with dut.unattended():
                    assert dut.runner is not None and dut.runner.terminal is not None
                    assert isinstance(dut.runner.terminal.wiring, ModelLink)
                    since = rig.clock.time()
                    await rig.sleep(180)
                    assert not await stale_since(since)
                    await dut.power_off()
                    await dut.power_on()  # the stretch outlives a power cycle
                    assert isinstance(dut.runner.terminal.wiring, ModelLink)
                assert dut.runner.terminal.wiring is WIRE
                since = rig.clock.time()
                await rig.sleep(180)
                assert not await stale_since(since)
            finally:
                await dut.stop()

    asyncio.run(main())

"""The terminal a scenario runs: its meters wired as the fleet serves them, every centre behind
its fault proxy, the store on the bench's disk and none of its threads in the background."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.scenario import load_scenario
from bench.scenario.config import mn_of, scenario_config
from reference_terminal.config import Hj212Centre
from simulators.clock import VirtualClock
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet

SCENARIO = (
    Path(__file__).resolve().parents[3] / "fixtures" / "scenarios" / "retention-2h-small.yaml"
)


def test_the_scenario_terminal_reaches_each_centre_through_its_proxy_with_no_background() -> None:
    scenario = load_scenario(SCENARIO)
    spec = load_fleet(scenario.fleet)

    async def main() -> None:
        async with running_fleet(spec, clock=VirtualClock(spec.start.timestamp())) as fleet:
            config = scenario_config(
                scenario,
                fleet,
                "sqlite:///terminal.db",
                {"provincial": 41001, "group": 41002},
                store_cpus=frozenset({1}),
            )
        centres = {
            c.name: (c.port, c.mn) for c in config.uplink.centres if isinstance(c, Hj212Centre)
        }
        assert centres == {"provincial": (41001, mn_of(0)), "group": (41002, mn_of(1))}
        assert config.storage.cpus == [1]
        # virtual time waits for every thread: a nicer writer would only wait longer
        assert config.storage.background_nice == 0

    asyncio.run(main())


def test_the_uplinks_retry_in_step_when_the_scenario_says_so() -> None:
    spread, in_step = (
        load_scenario(SCENARIO),
        load_scenario(SCENARIO, overrides=["terminal.reconnect_jitter=0"]),
    )
    spec = load_fleet(spread.fleet)

    async def main() -> None:
        async with running_fleet(spec, clock=VirtualClock(spec.start.timestamp())) as fleet:
            ports = {"provincial": 41001, "group": 41002}
            for scenario, jitter in ((spread, 0.2), (in_step, 0.0)):  # 0.2: the terminal's own
                config = scenario_config(scenario, fleet, "sqlite:///t.db", ports)
                assert [c.backoff.jitter for c in config.uplink.centres] == [jitter, jitter]
                # each centre's own seed still: the delays repeat with the run
                assert len({c.backoff.seed for c in config.uplink.centres}) == 2

    asyncio.run(main())

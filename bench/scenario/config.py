"""The terminal's configuration for a scenario: the fleet's meters (wired as a technician
would), minute data to every centre through its fault proxy, the store on the bench's disk."""

from __future__ import annotations

from typing import Any

from bench.terminal_for_fleet import item_codes, terminal_config
from conformance.scenario.schema import Scenario
from reference_terminal.config import TerminalConfig
from simulators.fleet import FleetRuntime

#: Intake-log records the terminal's writer gathers before it applies them (``config.py``).
APPLY_RECORDS = 10
#: An MN per centre (24 characters, HJ 212 表 5).
MN_PREFIX = "010000A8900016F0001"


def mn_of(index: int) -> str:
    return f"{MN_PREFIX}{index:05d}"


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def scenario_config(
    scenario: Scenario,
    fleet: FleetRuntime,
    storage_url: str,
    ports: dict[str, int],
    *,
    store_cpus: frozenset[int] = frozenset(),
) -> TerminalConfig:
    """``ports``: centre name -> the port of the fault proxy in front of it; ``store_cpus``:
    where the store's threads run (beside the volatile disk's process)."""
    setup = scenario.terminal
    config = terminal_config(
        fleet,
        storage_url=storage_url,
        serial=setup.periods.serial,
        network=setup.periods.network,
        push=setup.periods.push,
    )
    data = config.model_dump(mode="json")
    data["storage"]["synchronous"] = setup.synchronous
    data["storage"]["cpus"] = sorted(store_cpus)
    # Virtual time moves only once every thread of the terminal is idle: none works in the
    # background there, and a nicer writer only waits behind the centres' process and the disk's
    # (retention-48h seed 48, three runs each: the writer's calls 18–20 s at 0 against 26–31 s
    # at 10, the run 103–116 s against 108–124 s).
    data["storage"]["background_nice"] = 0
    # ... nor a checkpointer thread: at one commit a minute the writer's own checkpoint does
    # (retention-6h seed 48, three runs each: timeline 7.4–7.9 s against 8.0–8.5 s with it)
    data["storage"]["checkpoint_thread"] = False
    # The writer applies what the intake log acknowledged ten records at a time (or as soon as
    # a scan or a query needs it): in virtual time a linger's real milliseconds would gather a
    # number of records that depends on the host's pace, and a run would not be the same run.
    # Fewer, larger transactions write each page at the tables' ends once for ten minutes
    # (retention-48h seed 48, interleaved: the 48 hours 113.7 and 106.4 s against 128.3 and
    # 116.6 s applying each record as it came).
    data["storage"]["apply_records"] = APPLY_RECORDS
    polled = [p for p in config.points if config.device(p.source.device).protocol != "manual"]
    codes = item_codes(polled)
    jitter = {} if setup.reconnect_jitter is None else {"jitter": setup.reconnect_jitter}
    centres = [
        {
            "name": centre.name,
            "protocol": "hj212",
            "host": "127.0.0.1",
            "port": ports[centre.name],
            "mn": mn_of(n),
            "over_time_s": setup.over_time_s,
            # reconnections repeat with the run, each centre's its own
            "backoff": {"seed": scenario.seed * 100 + n, **jitter},
            "streams": {
                "realtime": setup.realtime,
                "minute": True,
                "hourly": setup.hourly,
                "daily": setup.daily,
            },
        }
        for n, centre in enumerate(scenario.platforms.centres)
    ]
    data["uplink"] = {"codes": codes, "centres": centres}
    return TerminalConfig.model_validate(data)

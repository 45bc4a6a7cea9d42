"""The external adapter against a real process: the reference terminal started as
``python -m reference_terminal --config FILE`` (as a vendor's box would run), reached only
through its management API, its uplink pointed at the bench's centres through that API, its
power cut by killing the process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.adapters.external import ExternalDut
from bench.adapters.management_server import free_port
from bench.terminal_for_fleet import item_codes, terminal_config
from conformance.dut import ClockMode
from conformance.rig import running_rig
from conformance.target import Target, TargetError
from conformance.verdicts import Inconclusive

MN = {"provincial": "010000A8900016F000200000", "group": "010000A8900016F000200001"}


def external_target(config: Path, port: int) -> Target:
    return Target.model_validate(
        {
            "name": "reference terminal as an external process",
            "adapter": {
                "kind": "external",
                "command": [sys.executable, "-m", "reference_terminal", "--config", "{config}"],
                "config": str(config),
                "boot_timeout_s": 60,
            },
            "implementation": {"vendor": "carbench", "model": "reference", "protocols": []},
            "parameters": {"mn": MN, "realtime_interval_s": 30},
            "management": {"base_url": f"http://127.0.0.1:{port}"},
            "uplink": {
                "pointing": "management-api",
                "centres": [{"name": n, "protocol": "hj212"} for n in MN],
            },
            "power": {"switch": "process"},
            "clocks": ["real"],
        }
    )


def terminal_file(fleet: Any, path: Path, port: int) -> None:
    """The terminal's own configuration: the fleet's meters, and centres at an address that
    answers nothing (the bench points them at its centres through the API)."""
    config = terminal_config(
        fleet, storage_url=f"sqlite:///{path.parent / 'terminal.db'}", serial=5.0, network=5.0
    )
    data = config.model_dump(mode="json")
    polled = [p for p in config.points if config.device(p.source.device).protocol != "manual"]
    data["api"] = {"host": "127.0.0.1", "port": port}
    data["uplink"] = {
        "codes": item_codes(polled),
        "centres": [
            {
                "name": name,
                "protocol": "hj212",
                "host": "127.0.0.1",
                "port": 9,
                "mn": mn,
                "streams": {"realtime": True, "realtime_interval_s": 30, "minute": True},
                "backoff": {"initial_s": 1, "max_s": 2},
            }
            for name, mn in MN.items()
        ],
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_the_external_adapter_drives_a_terminal_process(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        config = tmp_path / "terminal.yaml"
        target = external_target(config, port)
        async with running_rig(
            target, profile="quick", clock_mode=ClockMode.REAL, workdir=tmp_path / "rig"
        ) as rig:
            terminal_file(rig.fleet, config, port)
            dut = ExternalDut(
                target,
                fleet=rig.fleet,
                clock=rig.clock,
                clock_mode=ClockMode.REAL,
                workdir=tmp_path / "dut",
            )
            try:
                await dut.start(rig.centres)
                bindings = dut.points()
                assert bindings and all(b.protocol for b in bindings)
                assert any(b.code for b in bindings), "no uploaded point learnt from the API"
                for name, mn in MN.items():
                    await rig.platforms.hj212(name).wait_connected(mn, 60)
                health = await dut.management.health()
                assert health["state"] == "running"

                cut = await dut.power_off()
                assert cut.mode == "kill" and "page cache" in cut.note
                assert not dut.powered
                await dut.power_on()
                assert (await dut.management.health())["state"] == "running"
                # the uplink was pointed through the API: the configuration file kept it
                since = rig.now()
                for _ in range(120):
                    frames = [
                        f
                        for f in rig.record.frames(centre="provincial", direction="in")
                        if f.at >= since
                    ]
                    if frames:
                        break
                    await asyncio.sleep(0.5)
                assert frames, "no frame after the power came back"
                assert {f.mn for f in frames} == {MN["provincial"]}
            finally:
                await dut.stop()

    asyncio.run(main())


def test_an_external_device_runs_on_the_wall_clock_only(tmp_path: Path) -> None:
    data = external_target(tmp_path / "c.yaml", 1).model_dump(mode="json")
    data["clocks"] = ["real", "virtual"]
    with pytest.raises(ValueError, match="clocks: an external device runs on the wall clock"):
        Target.model_validate(data)
    data["clocks"] = ["real"]
    data["power"] = {"switch": "fuse"}
    with pytest.raises(ValueError, match=r"power\.switch"):
        Target.model_validate(data)
    assert issubclass(TargetError, ValueError)


def test_the_external_adapter_refuses_virtual_time(tmp_path: Path) -> None:
    target = external_target(tmp_path / "c.yaml", 1)
    with pytest.raises(Inconclusive, match="wall clock only"):
        ExternalDut(
            target,
            fleet=None,  # type: ignore[arg-type]  # refused before the fleet is looked at
            clock=None,  # type: ignore[arg-type]
            clock_mode=ClockMode.VIRTUAL,
            workdir=tmp_path,
        )

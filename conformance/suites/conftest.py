"""Fixtures of the conformance suites: the rig (clock, fleet, platform centres behind fault
proxies), the terminal under test from ``--target``, and each test's evidence.

The rig and the terminal are session-scoped: standing them up costs seconds and the quick
profile must stay fast, so tests take turns on one running system. A test judges the data of
its own time window, and puts back whatever it disturbs (links, toxics, behaviours, faults,
configuration) before it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.adapters import load_adapter
from conformance.bench import Bench
from conformance.dut import ClockMode, Dut
from conformance.evidence import TestLog, current
from conformance.plugin import ConformanceState, state_of
from conformance.profiles import PROFILES
from conformance.progress import emit
from conformance.rig import Rig, open_rig
from conformance.target import Target
from conformance.wiring import WIRING, as_json, sheet, wiring
from simulators.clock import VirtualClock

pytest_plugins = ("conformance.plugin",)


@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> ConformanceState:
    return state_of(request.config)


@pytest.fixture(scope="session")
def target(conformance: ConformanceState) -> Target:
    if conformance.target is None:
        raise pytest.UsageError(
            conformance.target_error or "the suites need --target FILE (fixtures/targets/*.yaml)"
        )
    return conformance.target


@pytest.fixture(scope="session")
def rig(conformance: ConformanceState, target: Target) -> Iterator[Rig]:
    mode = ClockMode(conformance.clock_mode)
    if mode.value not in PROFILES[conformance.profile].clocks:
        raise pytest.UsageError(f"--profile {conformance.profile} runs on the wall clock only")
    if mode.value not in target.clocks:
        raise pytest.UsageError(
            f"--clock {mode.value}: target {target.name!r} runs on {', '.join(target.clocks)}"
        )
    loop = conformance.loop()
    made = loop.run(
        open_rig(
            target,
            profile=conformance.profile,
            clock_mode=mode,
            workdir=conformance.evidence_dir,
        ),
        timeout=300,
    )
    conformance.note("fleet", {"file": str(made.fleet_file), "name": made.fleet.spec.name})
    conformance.note("seeds", {"fleet": made.seed, "proxies": made.seed})
    conformance.note("centres", [f"{c.name} {c.protocol} {c.host}:{c.port}" for c in made.centres])
    conformance.note("virtual_start", made.fleet.spec.start.isoformat() if made.virtual else None)
    conformance.note("platform_record", str(conformance.evidence_dir / "platform-record.sqlite"))
    # where the bench's meters and centres listen: what a lab connects a real box to
    wires = wiring(made.fleet, [(c.name, c.protocol, f"{c.host}:{c.port}") for c in made.centres])
    conformance.note("wiring", as_json(wires))
    text = sheet(wires)
    (conformance.evidence_dir.parent / WIRING).write_text(text, encoding="utf-8")
    emit({"event": "wiring", "text": text})
    try:
        yield made
    finally:
        clock = made.clock
        if isinstance(clock, VirtualClock):
            conformance.note(
                "virtual_clock",
                {
                    "start": made.fleet.spec.start.isoformat(),
                    "virtual_seconds": round(clock.monotonic(), 1),
                    "steps": clock.steps,
                    "forced_steps": clock.forced_steps,
                },
            )
        loop.run(made.close(), timeout=120)


@pytest.fixture(scope="session")
def dut(conformance: ConformanceState, target: Target, rig: Rig) -> Iterator[Dut]:
    fleet = rig.fleet.spec.name
    parameters = target.parameters.set_up_for(fleet)
    if parameters is not target.parameters:
        conformance.note(
            "set_up", f"declared for fleet {target.parameters.set_up_fleet}, not {fleet}: none"
        )
        target = target.model_copy(update={"parameters": parameters})
    make = load_adapter(target.adapter.kind)
    loop = conformance.loop()
    made = make(
        target,
        fleet=rig.fleet,
        clock=rig.clock,
        clock_mode=rig.clock_mode,
        workdir=conformance.evidence_dir / "dut",
        ca=rig.ca,
        client_ca=rig.client_ca,
    )
    loop.run(made.start(rig.centres), timeout=300)
    certificate = made.device_certificate()
    if certificate is not None:  # the centres check its records' signatures (CSMT §7.4)
        rig.trust_device({c.name: made.mn(c.name) for c in rig.centres}, certificate)
    conformance.note("dut", made.describe())
    try:
        yield made
    finally:
        conformance.note("dut", made.describe())
        loop.run(made.stop(), timeout=120)


@pytest.fixture(scope="session")
def bench(conformance: ConformanceState, rig: Rig, dut: Dut) -> Bench:
    made = Bench(rig, dut, conformance.profile, conformance.manifest)
    made.t0 = rig.now()
    return made


@pytest.fixture
def evidence() -> TestLog:
    return current()


@pytest.fixture(autouse=True)
def plant_time(request: pytest.FixtureRequest, evidence: TestLog) -> Iterator[None]:
    """What each test costs in plant time, measured (``plant_s``): under the wall clock that
    is its cost in lab time, and the hil profile holds each test to a budget of it
    (``Bench.needs``). A record of a lab or declared clause needs no rig."""
    if request.node.get_closest_marker("procedures") is not None:
        yield
        return
    bench: Bench = request.getfixturevalue("bench")
    bench.test_started = bench.now()
    yield
    evidence.record_measurement("plant_s", round(bench.now() - bench.test_started, 1))

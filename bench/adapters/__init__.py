"""Terminal adapters: how the bench drives a terminal under test (``conformance.dut.Dut``).

``reference``: the reference terminal in the bench's event loop and clock; ``external``: a
device (or a program) reached through its management interface, a power switch and prompts.
Each kind is a ``carbench.adapters`` entry point (pyproject.toml) naming its factory in
``bench.adapters.factories``; the suites find them there (``conformance.adapters``).
"""

from __future__ import annotations

from pathlib import Path

from common.clock import Clock
from conformance.adapters import load_adapter
from conformance.dut import ClockMode, Dut
from conformance.target import Target
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa


def make_dut(
    target: Target,
    *,
    fleet: FleetRuntime,
    clock: Clock,
    clock_mode: ClockMode,
    workdir: Path,
    ca: TestCa | None = None,
    client_ca: ClientCa | None = None,
) -> Dut:
    """The adapter the target file asks for (not started yet), through the same entry points
    as the suites; ``ca`` certifies the reference terminal's SM2 key when the target declares
    ``feature:sm-crypto``, ``client_ca`` its TLS client key when it declares ``feature:pki``."""
    factory = load_adapter(target.adapter.kind)
    return factory(
        target,
        fleet=fleet,
        clock=clock,
        clock_mode=clock_mode,
        workdir=workdir,
        ca=ca,
        client_ca=client_ca,
    )

"""The adapters' factories, registered as ``carbench.adapters`` entry points (pyproject.toml).

Each has the one signature of :class:`conformance.adapters.AdapterFactory` and imports its
adapter only when called: looking up one kind must not load another kind's dependencies (the
reference adapter loads the whole terminal).
"""

from __future__ import annotations

from pathlib import Path

from common.clock import Clock
from conformance.dut import ClockMode, Dut
from conformance.target import Target
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa


def reference(
    target: Target,
    *,
    fleet: FleetRuntime,
    clock: Clock,
    clock_mode: ClockMode,
    workdir: Path,
    ca: TestCa | None = None,
    client_ca: ClientCa | None = None,
) -> Dut:
    """The reference terminal in the bench's event loop and clock."""
    from bench.adapters.reference import ReferenceDut  # noqa: PLC0415 - loads the terminal

    return ReferenceDut(
        target,
        fleet=fleet,
        clock=clock,
        clock_mode=clock_mode,
        workdir=workdir,
        ca=ca,
        client_ca=client_ca,
    )


def external(
    target: Target,
    *,
    fleet: FleetRuntime,
    clock: Clock,
    clock_mode: ClockMode,
    workdir: Path,
    ca: TestCa | None = None,
    client_ca: ClientCa | None = None,
) -> Dut:
    """A device reached through its management interface, a power switch and prompts; its
    keys are its own, so ``ca`` and ``client_ca`` go unused."""
    from bench.adapters.external import ExternalDut  # noqa: PLC0415

    return ExternalDut(target, fleet=fleet, clock=clock, clock_mode=clock_mode, workdir=workdir)

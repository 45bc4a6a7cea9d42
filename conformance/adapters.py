"""Terminal adapters, found by kind through the ``carbench.adapters`` entry points.

The suites drive a terminal only through :class:`conformance.dut.Dut`; what builds one lives in
``bench/`` (DESIGN.md: ``conformance/`` never imports it). Each installed package registers its
adapter kinds under the entry-point group, and a target file's ``adapter.kind`` names one.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, cast

from common.clock import Clock
from conformance.dut import ClockMode, Dut, DutError
from conformance.target import Target
from simulators.fleet import FleetRuntime
from simulators.pki import TestCa
from simulators.platform.client_tls import ClientCa

GROUP = "carbench.adapters"


class AdapterFactory(Protocol):
    """The one signature of every adapter's factory: the adapter for ``target`` (not started
    yet) on the rig's fleet and clock, its files under ``workdir``. ``ca`` certifies a
    terminal's SM2 key (``feature:sm-crypto``), ``client_ca`` its TLS client key
    (``feature:pki``); an adapter ignores what it does not use."""

    def __call__(
        self,
        target: Target,
        *,
        fleet: FleetRuntime,
        clock: Clock,
        clock_mode: ClockMode,
        workdir: Path,
        ca: TestCa | None = None,
        client_ca: ClientCa | None = None,
    ) -> Dut: ...


def installed_kinds() -> list[str]:
    """The adapter kinds the installed packages register, sorted."""
    return sorted({entry.name for entry in entry_points(group=GROUP)})


def load_adapter(kind: str) -> AdapterFactory:
    """The factory registered for ``kind``; a :class:`DutError` naming the kinds installed when
    none is (or when two packages claim it)."""
    found = entry_points(group=GROUP, name=kind)
    if not found:
        kinds = ", ".join(installed_kinds()) or "none"
        raise DutError(
            f"no terminal adapter of kind {kind!r} is installed (entry points {GROUP!r}); "
            f"installed kinds: {kinds}"
        )
    if len(found) > 1:
        claims = ", ".join(sorted(entry.value for entry in found))
        raise DutError(f"terminal adapter kind {kind!r} is registered more than once: {claims}")
    (entry,) = found
    factory = entry.load()
    if not callable(factory):
        raise DutError(f"terminal adapter {kind!r} ({entry.value}) is not callable")
    return cast(AdapterFactory, factory)

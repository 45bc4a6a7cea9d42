"""``carbench fleet``: check a fleet file, or bring a fleet up and say where every meter listens."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections import Counter
from pathlib import Path

import click

from simulators.fleet.loader import FleetFileError, load_fleet
from simulators.fleet.schema import Fleet


def describe(fleet: Fleet) -> str:
    counts = Counter(meter.protocol for meter in fleet.meters)
    kinds = ", ".join(f"{n} {p}" for p, n in sorted(counts.items()))
    return (
        f"fleet {fleet.name}: {len(fleet.meters)} meters ({kinds}), {len(fleet.buses)} serial "
        f"buses, {len(fleet.plant.sources)} plant sources, {len(fleet.faults)} faults"
    )


def check(path: Path) -> Fleet:
    try:
        return load_fleet(path)
    except FleetFileError as exc:
        raise click.ClickException(str(exc)) from None


async def serve(fleet: Fleet, manual_dir: Path | None, work_dir: Path | None = None) -> None:
    # Imported here: the protocol servers pull in asyncua, pymodbus and uvicorn, which would
    # slow every other carbench command down.
    from simulators.fleet.runner import FleetStartError, running_fleet  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with running_fleet(fleet, manual_dir=manual_dir, work_dir=work_dir) as running:
            # What exists now lives as long as the fleet: keep the collector from re-walking
            # it (its full passes otherwise stall Modbus answers by tens of ms).
            gc.freeze()
            width = max(len(e.meter) for e in running.endpoints)
            for endpoint in sorted(running.endpoints, key=lambda e: (e.protocol, e.meter)):
                click.echo(f"{endpoint.meter:<{width}}  {endpoint.protocol:<12} {endpoint.address}")
            click.echo(f"\n{describe(fleet)}\nserving; Ctrl-C stops", err=True)
            await stop.wait()
    except FleetStartError as exc:
        raise click.ClickException(str(exc)) from None

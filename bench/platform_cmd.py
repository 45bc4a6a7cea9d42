"""``carbench platform``: check a platform file, or bring its centres up and say where each
listens."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from simulators.platform.config import PlatformFile, PlatformFileError, load_platform_file


def describe(spec: PlatformFile) -> str:
    kinds = ", ".join(f"{c.name} ({c.protocol}, {c.behaviour.kind})" for c in spec.centres)
    return f"{len(spec.centres)} centres: {kinds}; record {spec.record}"


def check(path: Path) -> PlatformFile:
    try:
        return load_platform_file(path)
    except PlatformFileError as exc:
        raise click.ClickException(str(exc)) from None


async def serve(spec: PlatformFile, record_url: str | None) -> None:
    # Imported here: the HTTPS centre pulls in FastAPI and uvicorn, which would slow every
    # other carbench command down.
    from simulators.platform.runner import running_platforms  # noqa: PLC0415

    if record_url is not None:
        spec = spec.model_copy(update={"record": record_url})
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Ctrl-C and SIGTERM end the serving the same orderly way (not by cancelling the main
    # task: seen once under load, a cancelled serve never stopped)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with running_platforms(spec) as platforms:
            for line in platforms.describe():
                click.echo(line)
            click.echo(f"\n{describe(spec)}\nserving; Ctrl-C stops", err=True)
            await stop.wait()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None

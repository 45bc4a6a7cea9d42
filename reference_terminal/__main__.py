"""``python -m reference_terminal --config FILE``: run the terminal on a gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import uvicorn

from reference_terminal.api import create_app
from reference_terminal.api.channel_server import ChannelCredentials, channel_protocol
from reference_terminal.app import Terminal
from reference_terminal.config import ConfigError, load_config
from reference_terminal.runtime import SETTLED_AFTER_S, settle_heap, tune_process
from reference_terminal.security.errors import SecurityError


async def _run(terminal: Terminal) -> None:
    """The terminal, and its management API when the configuration asks for one."""
    async with asyncio.TaskGroup() as group:
        group.create_task(terminal.run(), name="terminal")
        api = terminal.config.api
        if api is not None:
            app = create_app(terminal)
            config = uvicorn.Config(app, host=api.host, port=api.port, log_level="warning")
            group.create_task(uvicorn.Server(config).serve(), name="api")
            if api.sm_channel is not None:  # the dedicated management port (ISC-2 §7.4.1.2)
                credentials = ChannelCredentials.from_config(terminal.config)
                channel = uvicorn.Config(
                    app,
                    host=api.sm_channel.host,
                    port=api.sm_channel.port,
                    http=channel_protocol(credentials),
                    log_level="warning",
                )
                group.create_task(uvicorn.Server(channel).serve(), name="api-sm-channel")


async def _settle_when_ready(terminal: Terminal) -> None:
    await terminal.ready.wait()
    settle_heap()
    # and again once every point's state (its open windows, its last reading) has been built
    await terminal.clock.sleep(SETTLED_AFTER_S)
    settle_heap()


async def _serve(terminal: Terminal) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(_run(terminal))
    stopper = asyncio.create_task(stop.wait())
    settler = asyncio.create_task(_settle_when_ready(terminal))
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    stopper.cancel()
    settler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # a failure of the terminal itself is raised here


def main(argv: list[str] | None = None) -> int:
    tune_process()
    parser = argparse.ArgumentParser(prog="python -m reference_terminal")
    parser.add_argument("--config", required=True, help="terminal configuration (YAML)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(Terminal(config, config_path=Path(args.config))))
    except (SecurityError, ExceptionGroup) as exc:
        refused = _refusals(exc)
        if refused is None:
            raise
        for reason in refused:  # e.g. its stored credentials fail their integrity check
            print(f"the terminal refuses to start: {reason}", file=sys.stderr)
        return 3
    return 0


def _refusals(exc: BaseException) -> list[SecurityError] | None:
    """The security refusals ``exc`` is made of (through task groups), or None when it holds
    anything else."""
    if isinstance(exc, SecurityError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found: list[SecurityError] = []
        for inner in exc.exceptions:
            refused = _refusals(inner)
            if refused is None:
                return None
            found += refused
        return found
    return None


if __name__ == "__main__":
    sys.exit(main())

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
from reference_terminal.app import Terminal
from reference_terminal.config import ConfigError, load_config


async def _run(terminal: Terminal) -> None:
    """The terminal, and its management API when the configuration asks for one."""
    async with asyncio.TaskGroup() as group:
        group.create_task(terminal.run(), name="terminal")
        api = terminal.config.api
        if api is not None:
            config = uvicorn.Config(
                create_app(terminal), host=api.host, port=api.port, log_level="warning"
            )
            group.create_task(uvicorn.Server(config).serve(), name="api")


async def _serve(terminal: Terminal) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(_run(terminal))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # a failure of the terminal itself is raised here


def main(argv: list[str] | None = None) -> int:
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
    asyncio.run(_serve(Terminal(config, config_path=Path(args.config))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

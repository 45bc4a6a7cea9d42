"""``python -m reference_terminal --config FILE``: run the terminal on a gateway.

``--follow-clock DIR``: take time from a bench that leads it (``common.clock_follower``) instead
of the wall clock — the shared time, the clock's settings and the control line are in ``DIR``,
which the bench made. The terminal then settles and advances when the bench asks, holds the
bench's time still while its store has work no thread took up yet, and stops when the bench's
control line closes (nobody moves its time any more).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from common.clock_follower import ControlServer, FollowDirectory, FollowerClock, FollowError
from reference_terminal.api import create_app
from reference_terminal.api.channel_server import ChannelCredentials, channel_protocol
from reference_terminal.app import Terminal
from reference_terminal.config import ConfigError, TerminalConfig, load_config
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


async def _serve(terminal: Terminal, follow: FollowDirectory | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(_run(terminal))
    stopper = asyncio.create_task(stop.wait())
    settler = asyncio.create_task(_settle_when_ready(terminal))
    leader = None
    if follow is not None:
        leader = asyncio.create_task(_answer_leader(terminal, follow, stop))
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    stopper.cancel()
    settler.cancel()
    if leader is not None:
        leader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader
    with contextlib.suppress(asyncio.CancelledError):
        await task  # a failure of the terminal itself is raised here


async def _answer_leader(terminal: Terminal, follow: FollowDirectory, stop: asyncio.Event) -> None:
    """The control line, opened once the terminal is ready: a bench that connects finds it
    booted (booting takes none of its time: the bench holds its clock meanwhile)."""
    clock = terminal.clock
    assert isinstance(clock, FollowerClock)

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "clock":  # how often its time moved on a thread still busy
            return {"forced_steps": clock.forced_steps}
        raise ValueError(f"no such request: {request!r}")

    await terminal.ready.wait()
    async with ControlServer(follow.control, clock, handle, gone=stop.set):
        await asyncio.Future()  # until cancelled


def _store_work_untaken(terminal: Terminal) -> bool:
    """Time stands still while the store has work no thread took up (as a bench asks of an
    in-process terminal): a thread blocked on its queue looks idle until it takes the work."""
    store = terminal.store
    return store is not None and store.work_untaken()


def main(argv: list[str] | None = None) -> int:
    tune_process()
    parser = argparse.ArgumentParser(prog="python -m reference_terminal")
    parser.add_argument("--config", required=True, help="terminal configuration (YAML)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--follow-clock",
        metavar="DIR",
        type=Path,
        help="take time from the bench that leads it (DIR: the shared time, clock settings and "
        "control socket the bench made); default: the wall clock",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    refusal = _open_api(config, args.config)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    follow: FollowDirectory | None = None
    clock: FollowerClock | None = None
    if args.follow_clock is not None:
        follow = FollowDirectory(args.follow_clock)
        try:
            clock = follow.follower_clock()
        except FollowError as exc:
            print(exc, file=sys.stderr)
            return 2
    terminal = Terminal(config, clock=clock, config_path=Path(args.config))
    if clock is not None:
        clock.watch(lambda: _store_work_untaken(terminal))
    try:
        asyncio.run(_serve(terminal, follow))
    except (SecurityError, ExceptionGroup) as exc:
        refused = _refusals(exc)
        if refused is None:
            raise
        for reason in refused:  # e.g. its stored credentials fail their integrity check
            print(f"the terminal refuses to start: {reason}", file=sys.stderr)
        return 3
    return 0


def _open_api(config: TerminalConfig, path: str) -> str:
    """Secure by default: a management API with no security is served only when the file says
    so (``security.enabled: false``), and then with a warning at every start; a file that says
    nothing is refused, naming what to write."""
    if config.api is None or config.security.enabled:
        return ""
    where = f"{config.api.host}:{config.api.port}"
    if "security" not in config.model_fields_set or (
        "enabled" not in config.security.model_fields_set
    ):
        return (
            f"{path}: security: the management API at {where} would be open to anyone: give "
            "security.enabled: true with an administrator (security.initial_users), or write "
            "security.enabled: false to run it open on purpose"
        )
    logging.getLogger("reference_terminal").warning(
        "security.enabled is false: anyone who reaches %s can read the store, enter data and "
        "change the configuration (ISC-2 §7.4.1)",
        where,
    )
    return ""


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

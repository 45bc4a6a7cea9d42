"""The centres of a platform file in a process of their own, on the bench's virtual clock.

In one process, a long scenario's drain is the HJ 212 codec at both ends on one CPU: the
terminal building and splitting frames, the centres decoding and joining them and recording
what arrived (a third to a half of a drain's work, by the README's scenario figures). Here
the centres run beside it on the other CPU, their time led by the bench's clock
(``simulators.clock_peer``), and the record they write is read back from its file.

>>> async with platforms_in_process(spec, clock=clock, record_path=out / "record.sqlite") as p:
...     p.follow(clock, traffic=lambda: bytes_sent_to_them)  # changes with all it sends
...     await p.hj212("provincial").set_behaviour("never_ack")

The child is ``python -m simulators.platform.process``; it answers on a control line (a Unix
socket) and says where each centre listens on its first line of output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.clock import VirtualClock
from simulators.clock_peer import ControlServer, FollowerClock, ProcessPeer, SharedTime
from simulators.platform.config import PlatformFile
from simulators.platform.record import Record
from simulators.platform.runner import running_platforms

#: Wall seconds the child may take to import and listen before the bench gives up on it.
START_TIMEOUT_S = 60.0
#: ``gc.set_threshold`` in the child: its objects die by reference counting, and the default
#: thresholds walk a long run's heap again and again (as ``bench/scenario/interpreter.py``).
COLLECTOR_THRESHOLDS = (50_000, 20, 20)


class PlatformProcessError(RuntimeError):
    """The centres' process did not start or stopped."""


class RemoteCentre:
    """A centre in the child: where it listens, and its behaviour switched at run time."""

    def __init__(self, name: str, address: tuple[str, int], peer: ProcessPeer) -> None:
        self.name = name
        self.address = address
        self._peer = peer

    async def set_behaviour(self, behaviour: str | dict[str, Any]) -> None:
        await self._peer.request(op="behaviour", centre=self.name, behaviour=behaviour)


class RemoteRecord(Record):
    """The child's record, read from its file: a query first has the child write out what
    it holds, unless nothing was sent the centres since it last did (the checker's queries
    come by the thousand)."""

    def __init__(self, url: str, peer: ProcessPeer) -> None:
        super().__init__(url)
        self._peer = peer
        self._flushed_at: tuple[int, Hashable] | None = None
        self._remote_additions = 0

    @property
    def additions(self) -> int:
        self.flush()
        return self._remote_additions

    def flush(self) -> None:
        mark = self._peer.mark()
        if mark != self._flushed_at:
            answer = self._peer.request_blocking(op="flush", counts=False)
            self._remote_additions = int(answer["additions"])
            self._flushed_at = mark
        super().flush()


@dataclass
class RemotePlatforms:
    record: RemoteRecord
    centres: dict[str, RemoteCentre]
    peer: ProcessPeer

    def hj212(self, name: str) -> RemoteCentre:
        return self.centres[name]

    def follow(self, clock: VirtualClock, traffic: Callable[[], Hashable]) -> Callable[[], None]:
        """Put the child's time under ``clock``; ``traffic()`` changes with whatever the
        bench sends the centres (bytes, connections, closes). Returns what stops it."""
        self.peer.traffic(traffic)
        return clock.lead(self.peer)


@contextlib.asynccontextmanager
async def platforms_in_process(
    spec: PlatformFile, *, clock: VirtualClock, record_path: Path
) -> AsyncIterator[RemotePlatforms]:
    """The centres of ``spec`` listening in a child process, recording to ``record_path``."""
    with tempfile.TemporaryDirectory(prefix="carbench-platforms-") as tmp:
        work = Path(tmp)  # short: a Unix socket's path is at most 107 bytes
        (work / "spec.json").write_text(spec.model_dump_json(), encoding="utf-8")
        shared = SharedTime(work / "time", create=True)
        shared.write(clock.monotonic())
        control = work / "control.sock"
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators.platform.process",
            "--spec",
            os.fspath(work / "spec.json"),
            "--record",
            f"sqlite:///{record_path}",
            "--time",
            os.fspath(shared.path),
            "--start",
            repr(clock.time() - clock.monotonic()),
            "--control",
            os.fspath(control),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdin is not None
        peer = ProcessPeer(control, shared)
        record: RemoteRecord | None = None
        try:
            try:
                line = await asyncio.wait_for(child.stdout.readline(), START_TIMEOUT_S)
            except TimeoutError:
                raise PlatformProcessError(
                    f"the centres' process did not start within {START_TIMEOUT_S:g} s"
                ) from None
            if not line:
                raise PlatformProcessError(
                    f"the centres' process stopped while starting (exit {await child.wait()})"
                )
            listening = json.loads(line)["centres"]
            await peer.connect()
            record = RemoteRecord(f"sqlite:///{record_path}", peer)
            centres = {
                name: RemoteCentre(name, (host, int(port)), peer)
                for name, (host, port) in listening.items()
            }
            yield RemotePlatforms(record, centres, peer)
        finally:
            if child.returncode is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(peer.request(op="stop"), 30)
            await peer.close()
            child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), 30)
            except TimeoutError:
                child.kill()
                await child.wait()
            if record is not None:
                record.close()
            shared.close()


# ---- the child ----------------------------------------------------------------------------------
async def _serve(args: argparse.Namespace) -> None:
    spec = PlatformFile.model_validate_json(Path(args.spec).read_text(encoding="utf-8"))
    shared = SharedTime(Path(args.time))
    clock = FollowerClock(float(args.start), shared)
    record = Record(args.record)
    clock.bystander(record.writer)  # the bench reads the record through a flush
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def parent_gone() -> None:  # the bench's end of our standard input closed
        # The descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds its
        # lock, and an exit after a "stop" request then aborted (Fatal Python error:
        # _enter_buffered_busy) at the interpreter's shutdown.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        loop.call_soon_threadsafe(stop.set)

    watcher = threading.Thread(target=parent_gone, name="parent watch", daemon=True)
    watcher.start()
    clock.bystander(watcher)
    try:
        async with running_platforms(spec, clock=clock, record=record) as platforms:

            async def handle(request: dict[str, Any]) -> dict[str, Any]:
                match request.get("op"):
                    case "behaviour":
                        await platforms.centres[request["centre"]].set_behaviour(
                            request["behaviour"]
                        )
                        return {}
                    case "flush":
                        record.flush()
                        return {"additions": record.additions}
                    case "stop":
                        stop.set()
                        return {}
                raise ValueError(f"no such request: {request!r}")

            async with ControlServer(Path(args.control), clock, handle):
                where = {name: centre.address for name, centre in platforms.centres.items()}
                print(json.dumps({"centres": where}), flush=True)
                await stop.wait()
    finally:
        record.close()
        shared.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="platform centres on a bench's virtual clock")
    parser.add_argument("--spec", required=True, help="the platform file, as JSON")
    parser.add_argument("--record", required=True, help="SQLAlchemy URL of the record")
    parser.add_argument("--time", required=True, help="the shared virtual time file")
    parser.add_argument("--start", required=True, help="POSIX time at monotonic 0")
    parser.add_argument("--control", required=True, help="Unix socket of the control line")
    args = parser.parse_args(argv)
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

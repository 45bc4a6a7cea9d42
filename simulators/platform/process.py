"""The centres of a platform file in processes of their own, on the bench's virtual clock.

In one process, a long scenario's drain is the HJ 212 codec at both ends on one CPU: the
terminal building and splitting frames, the centres decoding and joining them and recording
what arrived (a third to a half of a drain's work, by benchmarks/scenarios.md). Here
each centre runs in a process of its own beside it (centres draining at once do not share
one interpreter), their time led by the bench's clock (``simulators.clock_peer``), and the
record they all write to one file is read back from it.

>>> async with platforms_in_process(spec, clock=clock, record_path=out / "record.sqlite") as p:
...     p.follow(clock, traffic=lambda: bytes_sent_to_them)  # changes with all it sends
...     await p.hj212("provincial").set_behaviour("never_ack")

A child is ``python -m simulators.platform.process``; it answers on a control line (a Unix
socket) and says where its centre listens on its first line of output.
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
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.clock_follower import ControlServer, FollowerClock, SharedTime
from simulators.clock import VirtualClock
from simulators.clock_peer import ProcessPeer
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
    """The children's record, read from its file: a query first has each child write out
    what it holds, unless nothing was sent its centre since it last did (the checker's
    queries come by the thousand)."""

    def __init__(self, url: str, peers: Sequence[ProcessPeer]) -> None:
        super().__init__(url)
        self._peers = peers
        self._flushed_at: list[tuple[int, Hashable] | None] = [None] * len(peers)
        self._remote_additions = [0] * len(peers)

    @property
    def additions(self) -> int:
        self.flush()
        return sum(self._remote_additions)

    def flush(self) -> None:
        for i, peer in enumerate(self._peers):
            mark = peer.mark()
            if mark != self._flushed_at[i]:
                answer = peer.request_blocking(op="flush", counts=False)
                self._remote_additions[i] = int(answer["additions"])
                self._flushed_at[i] = mark
        super().flush()


@dataclass
class RemotePlatforms:
    record: RemoteRecord
    centres: dict[str, RemoteCentre]
    peers: list[ProcessPeer]  # a child each, in the order of the centres

    def hj212(self, name: str) -> RemoteCentre:
        return self.centres[name]

    def follow(self, clock: VirtualClock, traffic: Callable[[], Hashable]) -> Callable[[], None]:
        """Put the children's time under ``clock``; ``traffic()`` changes with whatever the
        bench sends the centres (bytes, connections, closes). Returns what stops it."""
        stops = []
        for peer in self.peers:
            peer.traffic(traffic)  # each child settles again after anything sent to any centre
            stops.append(clock.lead(peer))

        def stop() -> None:
            for each in stops:
                each()

        return stop


@contextlib.asynccontextmanager
async def platforms_in_process(
    spec: PlatformFile, *, clock: VirtualClock, record_path: Path
) -> AsyncIterator[RemotePlatforms]:
    """Each centre of ``spec`` listening in a child process of its own, all recording to
    ``record_path``."""
    url = f"sqlite:///{record_path}"
    with tempfile.TemporaryDirectory(prefix="carbench-platforms-") as tmp:
        Record(url).close()  # its tables made once, before the children open it together
        async with contextlib.AsyncExitStack() as stack:
            children = []
            for k, centre in enumerate(spec.centres):
                one = spec.model_copy(update={"centres": [centre]})
                work = Path(tmp) / str(k)  # short: a Unix socket's path is at most 107 bytes
                work.mkdir()
                ids = (k, len(spec.centres))
                children.append(await stack.enter_async_context(_child(one, work, clock, url, ids)))
            listening = await asyncio.gather(*(child.ready() for child in children))
            centres = {
                name: RemoteCentre(name, (host, int(port)), child.peer)
                for child, where in zip(children, listening, strict=True)
                for name, (host, port) in where.items()
            }
            peers = [child.peer for child in children]
            record = RemoteRecord(url, peers)
            stack.callback(record.close)  # before the children stop
            yield RemotePlatforms(record, centres, peers)


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    peer: ProcessPeer

    async def ready(self) -> dict[str, tuple[str, int]]:
        """Where its centres listen, once it has started."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            raise PlatformProcessError(
                f"the centres' process did not start within {START_TIMEOUT_S:g} s"
            ) from None
        if not line:
            raise PlatformProcessError(
                f"the centres' process stopped while starting (exit {await self.process.wait()})"
            )
        await self.peer.connect()
        listening: dict[str, tuple[str, int]] = json.loads(line)["centres"]
        return listening


@contextlib.asynccontextmanager
async def _child(
    spec: PlatformFile, work: Path, clock: VirtualClock, url: str, ids: tuple[int, int]
) -> AsyncIterator[_Child]:
    """A child started to serve ``spec``'s centres, and stopped at the end."""
    (work / "spec.json").write_text(spec.model_dump_json(), encoding="utf-8")
    shared = SharedTime(work / "time", create=True)
    shared.write(clock.monotonic())
    control = work / "control.sock"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.platform.process",
        "--spec",
        os.fspath(work / "spec.json"),
        "--record",
        url,
        "--ids",
        f"{ids[0]}/{ids[1]}",
        "--time",
        os.fspath(shared.path),
        "--start",
        repr(clock.time() - clock.monotonic()),
        "--control",
        os.fspath(control),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    peer = ProcessPeer(control, shared)
    try:
        yield _Child(process, peer)
    finally:
        if process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.request(op="stop"), 30)
        await peer.close()
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        shared.close()


# ---- the child ----------------------------------------------------------------------------------
async def _serve(args: argparse.Namespace) -> None:
    spec = PlatformFile.model_validate_json(Path(args.spec).read_text(encoding="utf-8"))
    shared = SharedTime(Path(args.time))
    clock = FollowerClock(float(args.start), shared)
    k, n = (int(part) for part in args.ids.split("/"))
    record = Record(args.record, ids=(k, n))
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
    parser.add_argument("--ids", default="0/1", help="K/N: frame ids that leave K divided by N")
    parser.add_argument("--time", required=True, help="the shared virtual time file")
    parser.add_argument("--start", required=True, help="POSIX time at monotonic 0")
    parser.add_argument("--control", required=True, help="Unix socket of the control line")
    args = parser.parse_args(argv)
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

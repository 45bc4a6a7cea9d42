"""The parent's side of the NFQUEUE handler: start it in the wire namespace, configure, stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from simulators.packets.errors import QueueHandlerError
from simulators.packets.model import Direction, QueuePolicy
from simulators.packets.netns import in_netns

START_TIMEOUT_S = 15.0  # Python start-up on a loaded 2-core machine
ANSWER_TIMEOUT_S = 10.0  # the first rewrite policy imports scapy before answering
STOP_TIMEOUT_S = 3.0
#: The directory holding ``simulators/``, so ``-m simulators.packets.nfqueue`` resolves to this
#: copy of the code whatever the current directory is.
CODE_ROOT = Path(__file__).resolve().parents[2]


class QueueProcess:
    """One ``python -m simulators.packets.nfqueue`` inside a namespace."""

    def __init__(
        self, proc: asyncio.subprocess.Process, argv: list[str], stderr: IO[bytes]
    ) -> None:
        self._proc = proc
        self.argv = argv
        self._stderr_file = stderr
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def start(cls, netns: str, queues: dict[Direction, int]) -> QueueProcess:
        argv = in_netns(
            netns,
            [sys.executable, "-m", "simulators.packets.nfqueue",
             *(f"--queue={d}={n}" for d, n in queues.items())],
        )  # fmt: skip
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
        # A file, not a pipe: nobody reads stderr while all is well, and a full pipe would
        # stall the handler mid-packet.
        log = tempfile.TemporaryFile()  # noqa: SIM115 - the QueueProcess owns and closes it
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        except BaseException:
            log.close()
            raise
        handler = cls(proc, argv, log)
        try:
            hello = await handler._read(START_TIMEOUT_S, "starting")
        except BaseException:
            await handler.stop()
            raise
        if not hello.get("ready"):
            raise QueueHandlerError(
                f"`{' '.join(argv)}` did not start: {hello.get('error', hello)}",
                await handler.stop(),
            )
        return handler

    async def configure(self, policies: dict[Direction, QueuePolicy]) -> None:
        await self._ask(
            {"op": "set", "policies": {str(d): p.to_json() for d, p in policies.items()}}
        )

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self._ask({"op": "stats"}))["stats"]
        return stats

    async def stop(self) -> str:
        """Close its stdin (it lets held packets go and exits), kill it if it lingers; return
        what it wrote on stderr."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        text = self._stderr()
        self._stderr_file.close()
        return text

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:  # one request in flight: answers come back in order
            if self._proc.returncode is not None or self._proc.stdin is None:
                raise QueueHandlerError(
                    f"the queue handler has exited ({self._proc.returncode})", self._stderr()
                )
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            try:
                await self._proc.stdin.drain()
            except ConnectionError as exc:
                raise QueueHandlerError(
                    f"the queue handler has exited ({exc})", self._stderr()
                ) from exc
            reply = await self._read(ANSWER_TIMEOUT_S, f"answering {request['op']}")
        if not reply.get("ok"):
            raise QueueHandlerError(f"the queue handler refused {request}: {reply.get('error')}")
        return reply

    async def _read(self, timeout: float, doing: str) -> dict[str, Any]:
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        except TimeoutError as exc:
            raise QueueHandlerError(f"the queue handler took over {timeout} s {doing}") from exc
        if not line:
            await self._proc.wait()
            raise QueueHandlerError(
                f"the queue handler exited ({self._proc.returncode}) while {doing}",
                self._stderr(),
            )
        try:
            message: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueueHandlerError(f"the queue handler wrote {line!r} while {doing}") from exc
        return message

    def _stderr(self) -> str:
        if self._stderr_file.closed:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")

"""The async side of the volatile file system: start it, cut and restore power, read its counters.

::

    async with volatile_mount(backing, mountpoint) as mount:
        ...                      # the terminal under test keeps its store under mountpoint
        report = await mount.cut()
        await mount.restore()

The file system runs in its own process (``python -m simulators.power.volatile_fs``): the program
under test may run in the bench's own process, and a file system served by the process that is
blocked in one of its system calls would deadlock. Every wait here is on I/O from that process,
never on a timer, unless a timeout is asked for: under virtual time a timer against another
process would fire at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes.util
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

FSNAME = "carbench-volatile"  # volatile_fs.FSNAME, without importing mfusepy (and libfuse) here
_REPO = Path(__file__).resolve().parents[2]
#: Wall seconds ``powered_now`` waits for its answer (the file system answers in microseconds).
PROBE_TIMEOUT_S = 10.0


class PowerError(Exception):
    """The power simulator failed (not the program under test)."""


class FuseUnavailable(PowerError):
    """FUSE cannot be used on this machine; the message says why."""


class MountError(PowerError):
    """The volatile file system could not be mounted or stopped; the message says why."""


class ControlError(PowerError):
    """The volatile file system did not carry out a command."""


class PowerCutMode(StrEnum):
    """What a power cut can do on this machine."""

    #: the program is killed and everything it had not fsynced is gone (the volatile mount)
    FUSE = "fuse"
    #: the program is only killed: the kernel keeps its page cache, so unsynced writes survive
    #: and a program that forgets to fsync passes. A weaker test; reports must say so.
    SIGKILL_ONLY = "sigkill-only"


@dataclass(frozen=True, slots=True)
class PowerCutCapability:
    mode: PowerCutMode
    reason: str


@dataclass(frozen=True, slots=True)
class CutReport:
    """What one cut destroyed."""

    bytes_dropped: int  # written but never fsynced, in regular files (overwrites count again)
    shm_bytes_dropped: int  # the same in *-shm files (SQLite's shared memory, never fsynced)
    files_dropped: int  # regular files that had unsynced changes
    handles_killed: int  # open handles that are dead from now on
    seconds: float  # time the file system took to carry the cut out (not the round trip)


@dataclass(frozen=True, slots=True)
class MountStats:
    powered: bool
    files: int  # files open or holding unsynced changes
    handles: int  # live open handles
    dead_handles: int  # handles opened before a cut and not yet closed
    dirty_files: int
    dirty_bytes: int
    max_write: int  # largest write the kernel sends in one request
    writes: int
    fsyncs: int
    cuts: int
    restores: int
    bytes_dropped: int  # at the last cut
    shm_bytes_dropped: int  # at the last cut
    files_dropped: int  # at the last cut
    handles_killed: int  # at the last cut


def _pick(cls: type[Any], answer: dict[str, Any]) -> Any:
    return cls(**{f.name: answer[f.name] for f in fields(cls)})


def fuse_available() -> tuple[bool, str]:
    """Whether a volatile mount can be made here, and if not, why (static checks, no mount)."""
    if not sys.platform.startswith("linux"):
        return False, f"FUSE power cuts need Linux, this is {sys.platform}"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse does not exist (no FUSE in this kernel or container)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return False, f"/dev/fuse cannot be opened: {exc.strerror}"
    library = ctypes.util.find_library("fuse3")
    if library is None:
        return False, "libfuse3 is not installed (Debian package fuse3)"
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return False, "not root and no fusermount3 to mount as a user (Debian package fuse3)"
    try:
        import mfusepy  # type: ignore[import-untyped]  # noqa: F401, PLC0415
    except ImportError as exc:
        return False, f"mfusepy cannot be imported: {exc}"
    except OSError as exc:  # mfusepy loads libfuse when imported
        return False, f"mfusepy cannot load libfuse: {exc}"
    return True, f"FUSE available: /dev/fuse, {library}"


def power_cut_mode() -> PowerCutCapability:
    """The strongest power cut this machine allows, and why."""
    ok, reason = fuse_available()
    if ok:
        return PowerCutCapability(PowerCutMode.FUSE, reason)
    return PowerCutCapability(
        PowerCutMode.SIGKILL_ONLY,
        f"{reason}; power cuts only kill the process, so writes it never fsynced survive",
    )


def _unescape_mountinfo(field: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounted_fstype(mountpoint: Path) -> str | None:
    """The file-system type mounted at ``mountpoint`` (the top one), or None.

    Read from /proc/self/mountinfo, never by a stat of the mountpoint: that would block on, or
    fail from, a dead or powered-off FUSE mount.
    """
    target = os.path.realpath(mountpoint)
    found = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if _unescape_mountinfo(parts[4]) == target:
                found = parts[sep + 1]
    return found


async def _lazy_unmount(mountpoint: Path) -> None:
    program = shutil.which("fusermount3") or shutil.which("umount")
    if program is None:
        raise MountError(f"cannot unmount {mountpoint}: neither fusermount3 nor umount found")
    args = ["-u", "-z", "-q"] if program.endswith("fusermount3") else ["-l"]
    proc = await asyncio.create_subprocess_exec(
        program,
        *args,
        str(mountpoint),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode and mounted_fstype(mountpoint) is not None:
        raise MountError(f"{program} could not unmount {mountpoint}: {err.decode().strip()}")


class VolatileMount:
    """A running volatile file system: ``cut``, ``restore``, ``stats``."""

    def __init__(
        self,
        backing: Path,
        mountpoint: Path,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log: Path,
        max_write: int,
        control: Path,
    ) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.process = process
        self.log = log
        self.max_write = max_write
        self.control = control
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._powered = True
        self._probe: socket.socket | None = None  # powered_now's own connection

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def powered(self) -> bool:
        """As of the last cut, restore or stats made through this object."""
        return self._powered

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        async with self._lock:
            try:
                self._writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
                await self._writer.drain()
                line = await self._reader.readline()
            except (ConnectionError, OSError) as exc:
                raise ControlError(f"{op}: lost the volatile file system: {exc}") from exc
        return self._answer(op, line)

    def _answer(self, op: str, line: bytes) -> dict[str, Any]:
        if not line:
            raise ControlError(f"{op}: the volatile file system has gone ({self._log_tail()})")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(f"{op}: {answer.get('error', answer)}")
        return answer

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace").strip()
        except OSError:
            return f"exit status {self.process.returncode}"
        tail = text[-800:] if text else "no messages"
        return f"exit status {self.process.returncode}: {tail}"

    async def cut(self) -> CutReport:
        """Power off: every unsynced byte is gone and every operation fails with EIO from now."""
        report: CutReport = _pick(CutReport, await self._request("cut"))
        self._powered = False
        return report

    async def arm(self, after: int, name: str | None = None) -> None:
        """Cut by itself just before the ``after``-th write, truncate or fsync from now (which
        fails): a cut in the middle of a commit rather than between two. ``name``: count only
        those on files of that name. ``stats`` tells when it has happened."""
        await self._request("arm", after=after, name=name)

    async def restore(self) -> None:
        """Power on: the mount shows what was synced; handles from before the cut stay dead."""
        await self._request("restore")
        self._powered = True

    def held_open(self) -> list[Path]:
        """The files of this mount the calling process holds open, once per descriptor: after
        a cut, what a program that died in this process left open (dead: EIO forever; since
        each cut changes the files' inode numbers, SQLite does not hand it to the next boot)."""
        root = str(self.mountpoint.resolve()) + os.sep
        held = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:  # closed since the listing
                continue
            if target.startswith(root):
                held.append(Path(target))
        return sorted(held)

    async def stats(self) -> MountStats:
        stats: MountStats = _pick(MountStats, await self._request("stats"))
        self._powered = stats.powered  # an armed cut happens without us
        return stats

    def powered_now(self) -> bool:
        """Whether the disk has power, asked at once on a blocking connection of its own (one
        round trip, tens of microseconds): for a caller that must know before the event loop
        turns again, such as a virtual clock's watch asked just before time moves."""
        try:
            if self._probe is None:
                self._probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._probe.settimeout(PROBE_TIMEOUT_S)
                self._probe.connect(str(self.control))
            self._probe.sendall(b'{"op": "stats"}\n')
            line = b""
            while not line.endswith(b"\n"):
                chunk = self._probe.recv(65536)
                if not chunk:
                    break
                line += chunk
        except OSError as exc:
            raise ControlError(f"stats: lost the volatile file system: {exc}") from exc
        self._powered = bool(self._answer("stats", line)["powered"])
        return self._powered

    async def _stop(self, grace: float | None) -> None:
        if self._probe is not None:
            self._probe.close()
        with contextlib.suppress(ControlError, json.JSONDecodeError):
            await self._request("quit")
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@contextlib.asynccontextmanager
async def volatile_mount(
    backing: Path,
    mountpoint: Path,
    *,
    attr_timeout: float = 0.0,
    startup_timeout: float | None = 30.0,
    threads: bool = False,
    cpus: Iterable[int] | None = None,
) -> AsyncIterator[VolatileMount]:
    """Mount ``backing`` on ``mountpoint`` with a volatile write cache, for the block's duration.

    ``mountpoint`` is made if missing. A stale mount of ours left there by a crashed run is
    unmounted first; any other mount there is an error. ``startup_timeout`` is in loop time:
    pass None under virtual time. ``attr_timeout`` is how long the kernel may cache sizes and
    names: 0 (the default) sends every stat here, so even a stat fails while the power is off,
    at no measurable cost. ``threads`` runs libfuse's multithreaded loop (slower for one writer:
    a Python callback from a thread Python did not start builds a thread state every time).
    ``cpus`` pins the file-system process to those CPUs: every request is a round trip between
    the writer and this process, and on the same CPU it is a plain context switch, where across
    CPUs it is a cross-CPU wake-up (measured: 4x the commits per second when the writer is
    pinned to the same CPU; see README.md).
    """
    ok, reason = fuse_available()
    if not ok:
        raise FuseUnavailable(reason)
    backing = Path(backing).resolve()
    mountpoint = Path(mountpoint).absolute()
    if not backing.is_dir():
        raise MountError(f"backing directory {backing} does not exist")
    existing = mounted_fstype(mountpoint)
    if existing == f"fuse.{FSNAME}":
        await _lazy_unmount(mountpoint)  # left behind by a run that died
    elif existing is not None:
        raise MountError(f"{mountpoint} already has a {existing} file system mounted on it")
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(mountpoint).startswith(str(backing) + os.sep):
        raise MountError(f"mountpoint {mountpoint} lies inside the backing directory {backing}")

    workdir = Path(tempfile.mkdtemp(prefix="carbench-power-"))
    control = workdir / "control.sock"
    log = workdir / "volatile_fs.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    env["FUSE_LIBRARY_NAME"] = "fuse3"
    argv = [sys.executable, "-m", "simulators.power.volatile_fs", str(backing), str(mountpoint)]
    argv += ["--control", str(control), "--attr-timeout", str(attr_timeout)]
    if threads:
        argv.append("--threads")
    with open(log, "wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=env,
            cwd=str(workdir),
        )
    mount: VolatileMount | None = None
    try:
        if cpus is not None:
            os.sched_setaffinity(process.pid, set(cpus))
        mount = await _started(process, backing, mountpoint, control, log, startup_timeout)
        yield mount
    finally:
        if mount is not None:
            # no timer under virtual time (None): it would fire before the process could exit
            await mount._stop(grace=None if startup_timeout is None else 10.0)
        elif process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        if mounted_fstype(mountpoint) == f"fuse.{FSNAME}":
            await _lazy_unmount(mountpoint)
        shutil.rmtree(workdir, ignore_errors=True)


async def _started(
    process: asyncio.subprocess.Process,
    backing: Path,
    mountpoint: Path,
    control: Path,
    log: Path,
    timeout: float | None,
) -> VolatileMount:
    """The mount, once the process says the kernel has mounted it."""
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            hello = await process.stdout.readline()
    except TimeoutError as exc:
        raise MountError(
            f"the volatile file system did not mount {mountpoint} in {timeout} s"
        ) from exc
    if not hello:
        await process.wait()
        text = log.read_text(errors="replace").strip()
        raise MountError(
            f"the volatile file system did not mount {mountpoint} "
            f"(exit status {process.returncode}): {text[-800:] or 'no messages'}"
        )
    max_write = int(json.loads(hello)["max_write"])
    reader, writer = await asyncio.open_unix_connection(str(control))
    return VolatileMount(backing, mountpoint, process, reader, writer, log, max_write, control)

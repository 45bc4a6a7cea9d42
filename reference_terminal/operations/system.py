"""The host's resources as remote monitoring shows them (ISC-2 §8.2 「CPU、内存、磁盘、…操作系统
类型及版本」): read from ``/proc`` on Linux (a gateway's OS), from the standard library
elsewhere, with no extra dependency. A figure that cannot be read is None, never a guess.

CPU use is the share of non-idle time between two samples of ``/proc/stat`` (the first sample
covers the time since boot): a monitor polling every minute sees the last minute's load.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

PROC = Path("/proc")


class Cpu(BaseModel):
    #: Non-idle share of all cores since the previous sample (first: since boot), 0–100.
    percent: float | None
    cores: int | None
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None
    #: CPU seconds the terminal's process used (user + system) since it started.
    process_seconds: float


class Memory(BaseModel):
    total_bytes: int | None
    available_bytes: int | None
    used_percent: float | None
    #: The terminal process's resident memory.
    process_rss_bytes: int | None


class Disk(BaseModel):
    #: What lives there: ``store`` (the database), ``apps`` (installed applications) …
    role: str
    path: str
    total_bytes: int | None
    free_bytes: int | None
    used_percent: float | None


class Os(BaseModel):
    type: str  # Linux, Windows …
    release: str  # kernel release
    version: str  # kernel build
    distribution: str | None  # PRETTY_NAME of /etc/os-release
    machine: str
    hostname: str
    python: str


class Process(BaseModel):
    pid: int
    threads: int


class SystemInfo(BaseModel):
    cpu: Cpu
    memory: Memory
    disk: list[Disk]
    os: Os
    process: Process


@dataclass
class _CpuTimes:
    busy: int
    total: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpu_times() -> _CpuTimes | None:
    text = _read(PROC / "stat")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            # guest time is already counted in user time
            total = sum(values[:8])
            return _CpuTimes(total - idle, total)
    return None


def _meminfo() -> dict[str, int]:
    text = _read(PROC / "meminfo") or ""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _own_status() -> dict[str, str]:
    text = _read(PROC / "self" / "status") or ""
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _distribution() -> str | None:
    text = _read(Path("/etc/os-release"))
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"') or None
    return None


def disk(role: str, path: Path) -> Disk:
    """Usage of the file system holding ``path`` (its nearest existing parent)."""
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return Disk(role=role, path=str(path), total_bytes=None, free_bytes=None, used_percent=None)
    used = 100.0 * (usage.total - usage.free) / usage.total if usage.total else None
    return Disk(
        role=role,
        path=str(path),
        total_bytes=usage.total,
        free_bytes=usage.free,
        used_percent=None if used is None else round(used, 1),
    )


class SystemSampler:
    """Samples the host; keeps the previous CPU sample so each one covers the time since."""

    def __init__(self) -> None:
        self._last: _CpuTimes | None = None
        self._lock = threading.Lock()

    def cpu_percent(self) -> float | None:
        now = _cpu_times()
        if now is None:
            return None
        with self._lock:
            last, self._last = self._last, now
        busy, total = now.busy, now.total
        if last is not None and now.total > last.total:
            busy, total = now.busy - last.busy, now.total - last.total
        return round(100.0 * busy / total, 1) if total > 0 else None

    def sample(self, disks: dict[str, Path]) -> SystemInfo:
        try:
            loads: tuple[float | None, ...] = tuple(round(v, 2) for v in os.getloadavg())
        except OSError:
            loads = (None, None, None)
        times = os.times()
        memory = _meminfo()
        total, available = memory.get("MemTotal"), memory.get("MemAvailable")
        used = (
            round(100.0 * (total - available) / total, 1)
            if total and available is not None
            else None
        )
        status = _own_status()
        rss = status.get("VmRSS", "").split()
        uname = platform.uname()
        return SystemInfo(
            cpu=Cpu(
                percent=self.cpu_percent(),
                cores=os.cpu_count(),
                load_1m=loads[0],
                load_5m=loads[1],
                load_15m=loads[2],
                process_seconds=round(times.user + times.system, 3),
            ),
            memory=Memory(
                total_bytes=total,
                available_bytes=available,
                used_percent=used,
                process_rss_bytes=int(rss[0]) * 1024 if rss and rss[0].isdigit() else None,
            ),
            disk=[disk(role, path) for role, path in disks.items()],
            os=Os(
                type=uname.system or sys.platform,
                release=uname.release,
                version=uname.version,
                distribution=_distribution(),
                machine=uname.machine,
                hostname=uname.node,
                python=platform.python_version(),
            ),
            process=Process(
                pid=os.getpid(),
                threads=int(status["Threads"])
                if status.get("Threads", "").isdigit()
                else threading.active_count(),
            ),
        )

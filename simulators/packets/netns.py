"""Network namespaces and veth pairs: the bench ⇄ wire ⇄ device topology, and running commands.

```
 bench netns            wire netns (faults live here)            device netns
 eth0 10.212.0.1 ── to-bench 10.212.0.2 │ to-device 10.212.0.5 ── eth0 10.212.0.6
```
The wire namespace routes between the two /30s. Faults are filter rules in its forward chain and
tbf qdiscs on its two egresses, so neither end's own network stack is altered: the device sees
a plain Ethernet with a router on it, as a separate host would.

Names are ``<prefix><pid>-<random>-{b,w,d}``: unique per process and per link so parallel test
workers never collide, and a namespace whose pid is dead is a leftover anyone may remove.
Interfaces are created inside the namespaces directly, never in the root namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulators.packets.errors import CommandError
from simulators.packets.model import LinkConfig, Side

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT_S = 10.0

#: Interface names; each namespace is private, so the same names serve every link.
WIRE_TO_BENCH = "to-bench"
WIRE_TO_DEVICE = "to-device"
END_IFACE = "eth0"


async def run(argv: Sequence[str], *, netns: str | None = None, stdin: str | None = None) -> str:
    """Run a command (inside ``netns`` if given) and return its stdout; CommandError if it fails."""
    full = in_netns(netns, argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *full,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise CommandError(full, None, str(exc)) from exc
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(None if stdin is None else stdin.encode()), COMMAND_TIMEOUT_S
        )
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise CommandError(full, None, f"timed out after {COMMAND_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise CommandError(full, proc.returncode, err.decode(errors="replace"))
    return out.decode(errors="replace")


def run_sync(argv: Sequence[str], *, netns: str | None = None, stdin: str | None = None) -> str:
    """``run`` for places without an event loop (feature probes, atexit clean-up)."""
    full = in_netns(netns, argv)
    try:
        done = subprocess.run(
            full,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandError(full, None, str(exc)) from exc
    if done.returncode != 0:
        raise CommandError(full, done.returncode, done.stderr)
    return done.stdout


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside ``netns`` (unchanged when ``netns`` is None)."""
    return list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]


def socket_in(
    netns: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket that lives in ``netns``, for use anywhere in this process.

    A socket belongs to the namespace its creator was in, so a fresh thread joins ``netns``
    (``setns`` moves only the calling thread), makes the socket and ends; no pooled thread is
    ever left in the wrong namespace.
    """
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            with open(NETNS_DIR / netns, "rb") as handle:
                _setns(handle.fileno())
            made.append(socket.socket(family, type, proto))
        except BaseException as exc:  # handed to the caller's thread below
            failed.append(exc)

    worker = threading.Thread(target=make, name=f"setns-{netns}")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET): {os.strerror(errno)}")


@dataclass(frozen=True)
class Topology:
    """The three namespaces of one link and the addresses in them."""

    bench_netns: str
    wire_netns: str
    device_netns: str
    bench_address: str  # without the prefix length
    device_address: str
    wire_bench_address: str
    wire_device_address: str

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.bench_netns, self.wire_netns, self.device_netns)

    def netns_of(self, side: Side) -> str:
        if side == "bench":
            return self.bench_netns
        if side == "device":
            return self.device_netns
        raise ValueError(f"side must be 'bench' or 'device', got {side!r}")


def new_names(prefix: str) -> tuple[str, str, str]:
    stem = f"{prefix}{os.getpid()}-{secrets.token_hex(3)}"
    return (f"{stem}-b", f"{stem}-w", f"{stem}-d")


async def create_topology(config: LinkConfig) -> Topology:
    """Make the three namespaces, wire them and route through the middle one.

    On any failure what was made so far is removed before the error propagates.
    """
    bench, wire, device = new_names(config.name_prefix)
    bench_cidr, wire_b_cidr, wire_d_cidr, device_cidr = config.addresses()
    made: list[str] = []
    segs = ["gso_max_segs", "1"] if config.wire_sized_packets else []
    try:
        for name in (bench, wire, device):
            await run(["ip", "netns", "add", name])
            made.append(name)
        for peer_netns, wire_iface in ((bench, WIRE_TO_BENCH), (device, WIRE_TO_DEVICE)):
            # Created from inside the wire namespace with the peer sent straight to its own
            # namespace: neither end ever appears in the root namespace.
            await run(
                ["ip", "-n", wire, "link", "add", wire_iface, "mtu", str(config.mtu), *segs,
                 "type", "veth", "peer", "name", END_IFACE, "netns", peer_netns,
                 "mtu", str(config.mtu), *segs]
            )  # fmt: skip
        for netns, iface, cidr in (
            (bench, END_IFACE, bench_cidr),
            (wire, WIRE_TO_BENCH, wire_b_cidr),
            (wire, WIRE_TO_DEVICE, wire_d_cidr),
            (device, END_IFACE, device_cidr),
        ):
            await run(["ip", "-n", netns, "addr", "add", cidr, "dev", iface])
            await run(["ip", "-n", netns, "link", "set", iface, "up"])
        for netns in (bench, wire, device):
            await run(["ip", "-n", netns, "link", "set", "lo", "up"])
        await run(["ip", "-n", bench, "route", "add", "default", "via", _host(wire_b_cidr)])
        await run(["ip", "-n", device, "route", "add", "default", "via", _host(wire_d_cidr)])
        await run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], netns=wire)
    except BaseException:
        for name in reversed(made):
            delete_netns_sync(name)
        raise
    return Topology(
        bench_netns=bench,
        wire_netns=wire,
        device_netns=device,
        bench_address=_host(bench_cidr),
        device_address=_host(device_cidr),
        wire_bench_address=_host(wire_b_cidr),
        wire_device_address=_host(wire_d_cidr),
    )


def _host(cidr: str) -> str:
    return cidr.split("/", 1)[0]


async def destroy_topology(topology: Topology) -> None:
    """Delete the namespaces (their veths and rules go with them)."""
    for name in topology.namespaces:
        if (NETNS_DIR / name).exists():
            await run(["ip", "netns", "del", name])


def delete_netns_sync(name: str) -> None:
    """Delete one namespace, quietly if it is already gone."""
    if (NETNS_DIR / name).exists():
        run_sync(["ip", "netns", "del", name])


def owner_pid(name: str, prefix: str = "cb-") -> int | None:
    """The pid in a name made by ``new_names``, or None if the name is not one of ours."""
    if not name.startswith(prefix):
        return None
    pid, _, rest = name[len(prefix) :].partition("-")
    if not pid.isdigit() or not rest:
        return None
    return int(pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def cleanup_leftovers(prefix: str = "cb-") -> list[str]:
    """Delete namespaces named by ``new_names`` whose owning process is dead; return their names.

    Namespaces of live processes (parallel test workers, other benches) are left alone.
    """
    if not NETNS_DIR.is_dir():
        return []
    removed = []
    for entry in sorted(NETNS_DIR.iterdir()):
        pid = owner_pid(entry.name, prefix)
        if pid is None or pid_alive(pid):
            continue
        try:
            delete_netns_sync(entry.name)
        except CommandError:
            if entry.exists():
                raise
            continue  # another process cleaning up got there first
        removed.append(entry.name)
    return removed

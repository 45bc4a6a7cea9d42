"""The link's life: namespaces made and routed, processes started inside, everything removed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.packets import (
    CommandError,
    DeviceLink,
    Direction,
    QueueHandlerError,
    cleanup_leftovers,
    device_link,
)
from simulators.packets.netns import owner_pid, pid_alive, run
from tests.simulators.packets.wire import UdpEcho, measure_rtts, on_link, skip_unless

NETNS = Path("/run/netns")


def test_the_device_reaches_the_bench_through_a_router_without_nat() -> None:
    async def scenario(link: DeviceLink) -> None:
        assert link.bench_address == "10.212.0.1"
        assert link.device_address == "10.212.0.6"
        for name in (link.bench_netns, link.wire_netns, link.device_netns):
            assert name.startswith(f"cb-{os.getpid()}-")
            assert (NETNS / name).exists()

        server = link.socket("bench", socket.SOCK_STREAM)
        server.bind((link.bench_address, 0))
        server.listen()
        server.settimeout(2)
        client = link.socket("device", socket.SOCK_STREAM)
        client.settimeout(2)
        client.connect(server.getsockname())
        accepted, peer = server.accept()
        assert peer[0] == link.device_address, "the bench sees the device's own address"
        for sock in (accepted, client, server):
            sock.close()

    on_link(scenario)


def test_exec_argv_starts_a_process_inside_the_device_namespace() -> None:
    async def scenario(link: DeviceLink) -> None:
        # Binding the device's address only works inside its namespace.
        echo_once = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.bind(({link.device_address!r}, 0))\n"
            "print(s.getsockname()[1], flush=True)\n"
            "data, peer = s.recvfrom(64)\n"
            "s.sendto(data.upper(), peer)\n"
        )
        proc = await asyncio.create_subprocess_exec(
            *link.exec_argv([sys.executable, "-c", echo_once]),
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            port = int(await asyncio.wait_for(proc.stdout.readline(), 10))
            client = link.socket("bench", socket.SOCK_DGRAM)
            client.settimeout(2)
            client.sendto(b"hello", (link.device_address, port))
            assert client.recv(64) == b"HELLO"
            client.close()
            assert await asyncio.wait_for(proc.wait(), 5) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    on_link(scenario)


def test_everything_is_removed_even_when_the_scenario_fails() -> None:
    skip_unless("root", "netns", "iptables", "nfqueue")
    seen: dict[str, object] = {}

    async def failing() -> None:
        async with device_link() as link:
            await link.set_delay(10)  # starts the queue handler
            seen["namespaces"] = (link.bench_netns, link.wire_netns, link.device_netns)
            seen["handler"] = link.queue_handler_pid
            raise RuntimeError("the scenario broke")

    with pytest.raises(RuntimeError, match="the scenario broke"):
        asyncio.run(failing())
    names = seen["namespaces"]
    assert isinstance(names, tuple)
    assert not any((NETNS / name).exists() for name in names)
    handler = seen["handler"]
    assert isinstance(handler, int)
    assert not Path(f"/proc/{handler}").exists(), "the queue handler has exited"


def test_a_dead_queue_handler_is_reported_not_ignored() -> None:
    skip_unless("nfqueue")

    async def scenario(link: DeviceLink) -> None:
        await link.set_delay(10, direction=Direction.TO_DEVICE)
        pid = link.queue_handler_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(QueueHandlerError, match="exited"):
            await link.set_delay(20, direction=Direction.TO_DEVICE)
        # Packets still go to its queue and, with nobody to let them go, stop: the fault does
        # not silently vanish.
        echo = UdpEcho(link)
        assert measure_rtts(link, echo, 2, timeout_s=0.3).lost == 2

        await link.clear()
        assert measure_rtts(link, echo, 2).lost == 0, "clear() frees the wire"
        await link.set_delay(10, direction=Direction.TO_DEVICE)
        assert link.queue_handler_pid not in (None, pid), "a fresh handler took over"
        assert measure_rtts(link, echo, 2).lost == 0
        echo.close()

    on_link(scenario)


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept() -> None:
    skip_unless("root", "netns")
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = f"cb-{finished.pid}-0dead0-b"
    live = f"cb-{os.getpid()}-0live0-b"

    async def make() -> None:
        for name in (dead, live):
            await run(["ip", "netns", "add", name])

    asyncio.run(make())
    try:
        removed = cleanup_leftovers()
        # Another test process may have cleaned up first; either way the leftover is gone.
        assert not (NETNS / dead).exists()
        assert (NETNS / live).exists()
        assert all(not pid_alive(owner_pid(name) or 0) for name in removed)
    finally:
        for name in (dead, live):
            if (NETNS / name).exists():
                subprocess.run(["ip", "netns", "del", name], check=True)


def test_a_failing_command_raises_with_the_command_and_its_stderr() -> None:
    skip_unless("root")
    with pytest.raises(CommandError) as caught:
        asyncio.run(run(["ip", "netns", "del", "cb-0-nothing-here"]))
    error = caught.value
    assert error.argv == ["ip", "netns", "del", "cb-0-nothing-here"]
    assert error.returncode != 0
    assert "No such file or directory" in error.stderr
    assert "`ip netns del cb-0-nothing-here` exited" in str(error)
    assert error.stderr in str(error)

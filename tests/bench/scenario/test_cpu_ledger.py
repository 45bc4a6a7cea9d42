"""Where a run's CPU goes (``bench/scenario/cpu.py``): each phase's seconds by thread name and
by child process, from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.scenario.cpu import CpuLedger, _cpu_s

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="the ledger reads Linux's /proc"
)


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_thread_that_ended_keeps_the_cpu_it_spent_by_its_last_sample() -> None:
    ledger = CpuLedger()
    ledger.lap("before")
    ready, go_on = threading.Event(), threading.Event()

    def work() -> None:
        _spin(0.3)
        ready.set()
        go_on.wait()

    worker = threading.Thread(target=work, name="store-writer")
    worker.start()
    ready.wait()
    ledger.sample()  # as the engine does before a power cut
    go_on.set()
    worker.join()
    ledger.lap("timeline")
    assert ledger.phases["timeline"]["store-writer"] >= 0.25
    assert "store-writer" not in ledger.phases["before"]


def test_pool_workers_are_counted_under_their_pool_s_name() -> None:
    ledger = CpuLedger()
    done = threading.Barrier(3)
    go_on = threading.Event()

    def work() -> None:
        _spin(0.1)
        done.wait()
        go_on.wait()

    threads = [threading.Thread(target=work, name=f"reader_{i}") for i in range(2)]
    for t in threads:
        t.start()
    done.wait()
    ledger.sample()
    go_on.set()
    for t in threads:
        t.join()
    ledger.lap("drain")
    assert ledger.phases["drain"]["reader"] >= 0.15
    assert not any(name.startswith("reader_") for name in ledger.phases["drain"])


def test_a_child_process_is_counted_by_the_module_it_runs_until_it_is_reaped() -> None:
    ledger = CpuLedger()
    ledger.lap("setup")
    spin_then_wait = "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    spin_then_wait += "\nsys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-m", "timeit", "-n1", "-r1", "-s", "import sys, time", spin_then_wait],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        while (_cpu_s(stat) or 0.0) < 0.25:
            assert child.poll() is None, "the child ended before it had spun"
            time.sleep(0.02)
        ledger.sample()  # while it runs
        assert child.stdin is not None
        child.stdin.close()
        # Exited, not yet reaped: its command line is empty by now, and its name must hold.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        ledger.lap("drain")
    finally:
        child.wait()
    [(name, spent)] = [(n, s) for n, s in ledger.phases["drain"].items() if "[" in n]
    assert name == f"timeit [{child.pid}]"
    assert spent >= 0.25


def test_what_ran_before_the_ledger_was_made_is_not_counted() -> None:
    _spin(0.2)
    ledger = CpuLedger()
    ledger.lap("setup")
    assert ledger.phases["setup"].get("MainThread", 0.0) < 0.1

"""The bench's event loop thread: pytest's thread hands it each async test and gets back the
test's result, its exception, or a BenchTimeout when the bench stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from conformance.loop import BenchLoop, BenchTimeout


@pytest.fixture
def bench_loop() -> Iterator[BenchLoop]:
    loop = BenchLoop()
    yield loop
    loop.close()


def test_a_coroutines_result_comes_back(bench_loop: BenchLoop) -> None:
    async def answer() -> int:
        await asyncio.sleep(0.1)
        return 42

    assert bench_loop.run(answer(), timeout=5) == 42


def test_a_test_that_times_out_fails_at_once_with_its_own_error(bench_loop: BenchLoop) -> None:
    """A TimeoutError of the test's own (since 3.11 the same class as the wait's) is its
    outcome, not a sign that it is still running (the full profile once spun on one until
    the machine ran out of memory)."""

    async def never_connected() -> None:
        await asyncio.sleep(0.1)
        raise TimeoutError("the terminal did not connect to centre-a within 600 s")

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not connect"):
        bench_loop.run(never_connected(), timeout=2)
    assert time.monotonic() - started < 1


def test_a_stalled_bench_is_stopped_at_its_wall_limit(bench_loop: BenchLoop) -> None:
    cancelled = asyncio.Event()

    async def stalled() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(BenchTimeout, match=r"within 0\.3 wall seconds"):
        bench_loop.run(stalled(), timeout=0.3)

    async def was_cancelled() -> bool:
        await asyncio.wait_for(cancelled.wait(), 5)
        return cancelled.is_set()

    assert bench_loop.run(was_cancelled(), timeout=5)

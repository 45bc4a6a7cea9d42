"""Waiting on helper tasks: a cancellation of the waiter is never lost, whatever instant it
lands at (the uplink producer once swallowed one and its terminal never stopped)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from reference_terminal import tasks as terminal_tasks
from reference_terminal.tasks import first_of
from simulators import tasks as bench_tasks

#: The terminal's helper and the bench's copy (the terminal may not import the bench's).
HELPERS = pytest.mark.parametrize(
    "cancel_and_wait",
    [terminal_tasks.cancel_and_wait, bench_tasks.cancel_and_wait],
    ids=["terminal", "bench"],
)


async def suppressing_first_of(*waits: Awaitable[Any]) -> None:
    """The pattern this module replaces, kept to show the test can fail."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def lost_cancellations(first: Callable[..., Awaitable[None]]) -> int:
    """A loop waiting for a timer or an event, cancelled after 0, 1, 2 … turns of the event loop:
    how many of those cancellations it did not stop for."""
    never = asyncio.Event()

    async def loop() -> None:
        while True:
            await first(asyncio.sleep(0), never.wait())

    lost = 0
    for turns in range(40):
        task = asyncio.create_task(loop())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
        if not task.done():
            lost += 1
        while not task.done():  # ask again until a request lands where it is not swallowed
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
    return lost


def test_a_loop_waiting_for_the_first_of_a_timer_and_an_event_always_stops() -> None:
    assert asyncio.run(lost_cancellations(first_of)) == 0
    assert asyncio.run(lost_cancellations(suppressing_first_of)) > 0


def test_first_of_raises_what_the_first_finished_with() -> None:
    async def fails() -> None:
        raise OSError("line down")

    async def main() -> None:
        with pytest.raises(OSError, match="line down"):
            await first_of(fails(), asyncio.Event().wait())

    asyncio.run(main())


@HELPERS
def test_cancel_and_wait_waits_for_each_task_and_raises_a_failure(
    cancel_and_wait: Callable[..., Awaitable[None]],
) -> None:
    async def main() -> None:
        cleaned: list[str] = []

        async def slow_cleanup() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0.01)
                cleaned.append("done")

        task = asyncio.create_task(slow_cleanup())
        await asyncio.sleep(0)
        await cancel_and_wait(task)
        assert cleaned == ["done"] and task.cancelled()

        async def broken() -> None:
            raise ValueError("broken")

        failed = asyncio.create_task(broken())
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="broken"):
            await cancel_and_wait(failed)
        await cancel_and_wait()  # nothing to wait for

    asyncio.run(main())


@HELPERS
def test_a_waiter_cancelled_during_cancel_and_wait_is_cancelled(
    cancel_and_wait: Callable[..., Coroutine[Any, Any, None]],
) -> None:
    async def main() -> None:
        async def slow_cleanup() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0.05)

        helper = asyncio.create_task(slow_cleanup())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(cancel_and_wait(helper))
        await asyncio.sleep(0.01)  # the waiter is inside, waiting for the cleanup
        waiter.cancel()
        await asyncio.wait({waiter}, timeout=1)
        assert waiter.cancelled()

    asyncio.run(main())

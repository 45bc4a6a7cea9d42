"""Cancelling helper tasks without swallowing the caller's own cancellation.

``task.cancel(); with suppress(CancelledError): await task`` loses a cancellation of the *caller*
that lands during that ``await``: the caller's CancelledError comes out of ``await task`` and is
suppressed with the task's. In a loop (wait for a timer or an event, then go round) the caller
then runs on for ever, "cancelling" yet never stopping: a terminal that would not stop, seen as
the rare hang of the uplink API tests. ``asyncio.wait`` raises only the caller's cancellation,
never the tasks', so it is the safe way to wait for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until each has finished; raise the first exception one of them
    finished with other than its cancellation (as awaiting it would). A cancellation of the
    caller meanwhile propagates."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            task.result()


async def first_of(*waits: Awaitable[Any]) -> None:
    """Wait for the first of several awaitables (a timer, an event); cancel the rest. One that
    failed raises its exception."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(*tasks)


def raise_if_cancelling() -> None:
    """Raise the cancellation a library swallowed. Python 3.11's ``asyncio.wait_for`` (aiomqtt
    awaits its connect, subscribe and disconnect with it) returns normally when the
    cancellation lands just as what it waits for completes, and aiomqtt's leaving a client
    raises ``MqttError`` in place of a cancellation when the disconnect times out: either way
    the task is left "cancelling" yet runs on, and whoever waits for it to stop waits for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

"""Stopping a helper task without swallowing the caller's own cancellation.

``task.cancel(); with suppress(CancelledError): await task`` also suppresses a cancellation of
the *caller* that lands during that ``await``, which then runs on as if nothing had happened.
``asyncio.wait`` raises only the caller's cancellation, never the task's. (The reference
terminal has the same helper in ``reference_terminal.tasks``: it may not import this package.)
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until each has finished; raise the first exception one of them
    finished with other than its cancellation. A cancellation of the caller propagates."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            task.result()

"""The bench's event loop, on a thread of its own for the whole pytest session.

The fleet, the platform centres, the fault proxies and an in-process terminal live for the whole
session (starting them per test would cost more than the tests), so they need one event loop
that outlives each test. pytest runs tests on its own thread; each ``async def`` test and each
async fixture step is handed to this loop with :meth:`BenchLoop.run`, which waits for it while
running the allure calls the loop thread queued (``conformance.evidence``).

Under virtual time the clock moves only while everything waits; pytest's thread waiting in
``run`` counts as waiting (``threading.Condition.wait``), pytest's own work between tests
counts as busy, so virtual time stands nearly still between tests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from conformance import evidence

T = TypeVar("T")


class BenchTimeout(RuntimeError):
    """A step of the bench took longer than its wall-clock limit (the bench stalled)."""


class BenchLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="bench loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the bench loop and return its result (pytest's thread waits)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Waited for with ``wait``, not ``result(timeout=…)``: since 3.11 the latter's timeout
        # is the builtin TimeoutError, which a test raises too, and that one, taken for "not
        # yet", was raised again and again (its traceback growing without end) until the
        # machine ran out of memory.
        while not future.done():
            concurrent.futures.wait([future], timeout=0.05)
            evidence.run_allure_calls()
            if not future.done() and deadline is not None and time.monotonic() > deadline:
                future.cancel()
                raise BenchTimeout(f"the bench did not finish within {timeout:g} wall seconds")
        evidence.run_allure_calls()
        return future.result()

    def close(self) -> None:
        async def _cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
        if not self.loop.is_running():
            self.loop.close()

"""The cyclic collector during a scenario: the fleet, the platforms' record and the reference
terminal live in one process for days of virtual time.

Their objects die by reference counting; the collector only finds the odd cycle. At CPython's
default thresholds (a young pass every 700 net allocations) ``gc_collect_main`` and its visitors
were 7 % of a one-day outage run's CPU (perf), the older passes walking everything alive again
and again. So a scenario runs with the terminal process's thresholds
(:mod:`reference_terminal.runtime` explains them): one day of outage-7d took 16.1–16.6 s of wall
time instead of 17.4–17.7 s. (Freezing what setting up built as well made no measurable
difference on top.) The thresholds are put back afterwards: the process may go on, a
conformance suite playing a scenario inside pytest.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from reference_terminal.runtime import COLLECTOR_THRESHOLDS


@contextlib.contextmanager
def long_run_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)

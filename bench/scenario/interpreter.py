"""The interpreter's settings during a scenario: the reference terminal's own
(:func:`reference_terminal.runtime.tune_process`), since the fleet, the platforms' record and
the terminal live in one process for days of virtual time.

- **The cyclic collector.** Objects die by reference counting; the collector only finds the
  odd cycle. At CPython's default thresholds (a young pass every 700 net allocations)
  ``gc_collect_main`` and its visitors were 7 % of a one-day outage run's CPU (perf), the older
  passes walking everything alive again and again. At the terminal's thresholds one day of
  outage-7d took 16.1–16.6 s of wall time instead of 17.4–17.7 s. (Freezing what setting up
  built as well made no measurable difference on top.)
- **The GIL's switch interval.** The terminal's store threads hand the event loop the
  interpreter after 0.2 ms, not CPython's 5 ms, in its own process; in a scenario's too.

Both are put back afterwards: the process may go on, a conformance suite playing a scenario
inside pytest.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

from reference_terminal.runtime import COLLECTOR_THRESHOLDS, GIL_SWITCH_S


@contextlib.contextmanager
def terminal_interpreter() -> Iterator[None]:
    thresholds, switch = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(switch)

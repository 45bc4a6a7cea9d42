"""How the terminal's own process runs the interpreter: a gateway process that lives for months,
allocates a few objects per reading and keeps a large, stable heap (every point's state, the
configuration, the API's routes) once it has started.

- **The GIL switch interval** is 0.2 ms (CPython's default: 5 ms). The event loop gives the GIL
  up at every socket read and write and at every fsync of the store's intake log, and then waits
  for it behind whichever thread is busy (a reader thread building a year of history, the store's
  writer applying the log): at 5 ms a turn, every other request and reading waited tens of
  milliseconds beside one long query. Measured with ``benchmarks/bench_edge_latency.py`` (10 000
  readings/s; each paced run's p99): at 1 ms 2.14–4.05 ms, 98.3 % of readings within 2 ms; at
  0.2 ms 1.54–3.21 ms over 19 runs, 98.4–99.0 %; at 0.1 ms no better than 0.2, and the ingest
  through ``accept`` fell by a fifth.
- **The cyclic collector** looks at young objects every 50 000 net allocations instead of 700.
  The terminal's objects die by reference counting; the collector only finds cycles (a failed
  task's traceback), so looking 70 times less often loses nothing, and its full passes — which
  walk every object not frozen, a backlog of readings included — no longer come every few
  seconds under load (measured with ``benchmarks/bench_edge_latency.py``'s load: 26 full passes
  of up to 1.2 s of CPU in a 60 s run at 10 000 readings/s before, none after).
- **The start-up heap is frozen** (:func:`settle_heap`, once the terminal runs): what start-up
  built lives as long as the process, and no full pass needs to walk it again. And once more
  after its first minutes (``SETTLED_AFTER_S``), when every point's state is built: its open
  minute, hour and day windows, made by its first reading, are as long-lived, and the first
  young pass that found them stopped the event loop for 30 ms (10 000 points,
  ``benchmarks/bench_edge_latency.py``: the largest lag of the first run after the start of
  the readings, 24–34 ms; none after that run).

Only the process that runs the terminal (``python -m reference_terminal``) calls these: the bench
runs the reference terminal inside its own process and keeps the interpreter's defaults there.
"""

from __future__ import annotations

import gc
import sys

#: How long a thread may hold the GIL while another waits for it.
GIL_SWITCH_S = 0.0002
#: ``gc.set_threshold``: young objects per pass, and young passes per older pass.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)
#: When (s after it is ready) the terminal's heap is frozen again: past its first minute's
#: close (and the window lag), every point has been read and its windows are open.
SETTLED_AFTER_S = 120.0


def tune_process() -> None:
    """The interpreter settings of a terminal's process (call at its start)."""
    sys.setswitchinterval(GIL_SWITCH_S)
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def settle_heap() -> None:
    """Collect once, then freeze what start-up built (call once the terminal runs)."""
    gc.collect()
    gc.freeze()

"""The plant truth a scenario writes (``truth.csv.gz``): every value a meter showed, a line each,
with the plant's truth behind it, as ``csv.writer`` writes it.

A 48-hour run observes a million values, and writing them took about a second of the run's
end on the one core its event loop runs on, while the other stood idle through the check.
:class:`TruthFile` writes them in a forked child instead, beside the check and the teardown;
what is observed after the fork (nothing, when the drain has ended) follows as a second gzip
member, which every gzip reader reads on from the first.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from simulators.fleet import FleetRuntime, Observation

HEADER = ("t", "meter", "quantity", "shown", "truth", "faults")
#: What makes csv's default dialect quote a field.
_CSV_QUOTED = frozenset(',"\r\n')


def write_truth(fleet: FleetRuntime, path: Path) -> None:
    """Every observation of ``fleet`` so far, in a new file ``path``."""
    _write(fleet, fleet.observations, path, header=True)


def _write(
    fleet: FleetRuntime, observations: Iterable[Observation], path: Path, *, header: bool
) -> None:
    # Level 1: a 48-hour run's million observations in a third of level 9's time (~5 s on
    # this machine), for a file 11 % larger.
    mode: Literal["wt", "at"] = "wt" if header else "at"
    with gzip.open(path, mode, newline="", encoding="utf-8", compresslevel=1) as f:
        out = csv.writer(f)
        if header:
            out.writerow(HEADER)
        rest = iter(observations)
        if any(_CSV_QUOTED.intersection(name) for name in fleet.plant.quantities):
            for o in rest:
                out.writerow(
                    [f"{o.t:.3f}", o.meter, o.quantity, o.value, o.truth, " ".join(o.faults)]
                )
            return
        # csv.writer's text, made a line at a time (1.5 s against 2.7 for a million): meter
        # ids and fault kinds never need quoting, and no quantity does (checked above).
        while chunk := list(itertools.islice(rest, 100_000)):
            f.write(
                "".join(
                    f"{o.t:.3f},{o.meter},{o.quantity},{o.value},{o.truth},{' '.join(o.faults)}\r\n"
                    for o in chunk
                )
            )


class TruthFile:
    """``truth.csv.gz`` under way: :meth:`begin` starts writing what was observed so far,
    :meth:`finish` waits for it and adds what came after."""

    def __init__(self, fleet: FleetRuntime, path: Path, taken: int, child: int | None) -> None:
        self.fleet = fleet
        self.path = path
        self._taken = taken  # observations the child writes
        self._child = child  # its pid; None: nothing under way (written in finish)

    @classmethod
    def begin(cls, fleet: FleetRuntime, path: Path) -> TruthFile:
        """Start writing in a forked child. The child touches nothing the parent uses: it
        formats the observations it was born with, writes the file and leaves at once."""
        taken = len(fleet.observations)
        try:
            pid = os.fork()
        except (AttributeError, OSError):  # no fork here: the whole file in finish()
            return cls(fleet, path, 0, None)
        if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
            status = 0
            try:
                _write(fleet, itertools.islice(fleet.observations, taken), path, header=True)
            except BaseException:
                traceback.print_exc(file=sys.stderr)
                status = 1
            finally:
                os._exit(status)  # neither the parent's exit handlers nor its buffers
        return cls(fleet, path, taken, pid)

    def finish(self) -> None:
        """Wait for the child; write what it could not (all of it, should it have failed)."""
        taken, child = self._taken, self._child
        self._child = None
        if child is not None:
            _, status = os.waitpid(child, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                taken = 0  # its traceback is on standard error; nothing is left out
        observations = self.fleet.observations
        if taken and len(observations) == taken:
            return
        # the whole file when nothing was taken; else what came after, a member of its own
        later = itertools.islice(observations, taken, None)
        _write(self.fleet, later, self.path, header=not taken)

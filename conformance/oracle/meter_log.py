"""The meters' own logs, as the black-box oracle reads them.

Every simulated meter logs each value it gives out (``simulators.fleet.Observation``: which
quantity, when, what it showed) and each communication fault it plays on an answer
(``FaultEvent``). From these alone — never from what the terminal says it stored — the oracle
works out what a conforming terminal must deliver.

Two kinds of source, by how a terminal gets a value from them:

- **answered**: each logged value is one answer to one request of the terminal (Modbus RTU and
  TCP, DL/T 645, CJ/T 188, a 4–20 mA module, an HTTPS collector) or one message pushed to it
  (MQTT). The log says exactly what the terminal was given and when.
- **offered**: each logged value is a state the source holds until the next (an OPC UA server's
  refresh, a historian's recording); a terminal reading it gets whichever is on offer when it
  asks, and the log does not say when it asked.

An answer is *uncertain* when a communication fault of its meter was played close to it (a
damaged or late answer may or may not have reached the terminal), when the bench disturbed its
value (``DISTURBING``), or when it was given so shortly before a power cut that the clause
leaves its loss open (``Tolerances``). The oracle
owes nothing of an uncertain answer and blames nothing on it.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.runtime import DEFAULT_FULL_SCALE
from simulators.fleet.schema import Dlt645Point, points_of

SourceKind = Literal["answered", "offered"]

#: Protocols whose logged values are states on offer rather than answers to the terminal.
OFFERED: frozenset[str] = frozenset({"opcua", "sql"})
#: Protocols that push whether anybody listens: a message reaches the terminal only while it
#: is up and subscribed (after a power cut, once it has booted).
PUSHED: frozenset[str] = frozenset({"mqtt"})
#: Value faults the bench plays on a meter to see what a terminal makes of a disturbed value
#: (a spike, a frozen register, a meter replaced): the suite that plays one judges it; to the
#: oracle an answer under one is uncertain. A rollover is no disturbance: the register wraps as
#: a real one does, and every suite may judge what follows (CSMT §8.2.2).
DISTURBING: frozenset[str] = frozenset({"spike", "frozen", "replaced"})
#: Seconds a terminal may take after its power comes back before it reads (or subscribes to)
#: its meters again.
BOOT_S = 120.0
#: Seconds around a communication fault of a meter within which its answers are uncertain: the
#: fault is logged when the request ends, the answer when the meter starts it (a slow answer's
#: delay is at most a few seconds in every fleet).
FAULT_REACH_S = 5.0
#: Answers kept per quantity (a week of one-minute polls is 10 080).
KEPT_PER_QUANTITY = 200_000


@dataclass(frozen=True, slots=True)
class Answer:
    """One value a meter gave out, and whether the terminal surely had it."""

    t: float
    value: Decimal
    certain: bool = True


class MeterLog:
    """An index over a fleet's observations by (meter, quantity), fed as they are recorded
    (:meth:`add`), with the fleet's communication faults and the bench's power cuts."""

    def __init__(self, fleet: FleetRuntime) -> None:
        self.fleet = fleet
        self._by_key: dict[tuple[str, str], deque[Observation]] = {}
        self._cuts: list[float] = []  # instants the bench cut the terminal's power, in order
        self._ons: list[float] = []  # instants it gave the power back

    def add(self, observation: Observation) -> None:
        key = (observation.meter, observation.quantity)
        kept = self._by_key.get(key)
        if kept is None:
            kept = self._by_key[key] = deque(maxlen=KEPT_PER_QUANTITY)
        kept.append(observation)

    def power_cut(self, t: float) -> None:
        """The bench cut the terminal's power at ``t`` (the oracle may excuse what preceded)."""
        self._cuts.append(t)

    def power_on(self, t: float) -> None:
        self._ons.append(t)

    @property
    def cuts(self) -> Sequence[float]:
        return tuple(self._cuts)

    def off_between(self, start: float, end: float) -> list[tuple[float, float]]:
        """The stretches (cut, power back) the terminal was off that touch ``[start, end)``; a
        cut not yet undone lasts to ``end``."""
        out = []
        for i, cut in enumerate(self._cuts):
            on = self._ons[i] if i < len(self._ons) else end
            if cut < end and on >= start:
                out.append((cut, on))
        return out

    def fault_times(self, meter: str, start: float, end: float) -> list[float]:
        """When ``meter`` played a communication fault on a request in ``[start, end)``: it was
        asked, whatever reached the terminal."""
        return [e.t for e in self.fleet.fault_events if e.meter == meter and start <= e.t < end]

    # ---- what a source is ----------------------------------------------------------------
    def protocol(self, meter: str) -> str:
        return self.fleet.meters[meter].spec.protocol

    def kind(self, meter: str) -> SourceKind:
        return "offered" if self.protocol(meter) in OFFERED else "answered"

    def full_scale(self, meter: str, quantity: str) -> Decimal:
        """Where the meter's register for ``quantity`` rolls over to zero (CSMT §8.2.2)."""
        for point in points_of(self.fleet.meters[meter].spec):
            names = point.quantities if isinstance(point, Dlt645Point) else ()
            if point.quantity == quantity or quantity in names:
                return point.full_scale or DEFAULT_FULL_SCALE
        return DEFAULT_FULL_SCALE

    # ---- what it gave out ----------------------------------------------------------------
    def shown(self, meter: str, quantity: str, start: float, end: float) -> list[Observation]:
        """Every value ``meter`` gave out for ``quantity`` in ``[start, end)``, in time order."""
        kept = self._by_key.get((meter, quantity))
        if not kept:
            return []
        times = _Times(kept)
        return [kept[i] for i in range(times.first_at(start), times.first_at(end))]

    def answers(
        self,
        meter: str,
        quantity: str,
        start: float,
        end: float,
        *,
        cut_loss_s: float = 0.0,
    ) -> list[Answer]:
        """The values of :meth:`shown`, each marked certain or not (see the module text)."""
        faults = sorted(self.fault_times(meter, start - FAULT_REACH_S, end + FAULT_REACH_S))
        cuts = self._cuts
        off = self.off_between(start, end)
        booting = BOOT_S if self.protocol(meter) in PUSHED else 0.0
        out = []
        for o in self.shown(meter, quantity, start, end):
            if any(cut < o.t < on for cut, on in off):
                continue  # given out while the terminal was off: not to it
            certain = (
                not DISTURBING.intersection(o.faults)
                and not _near(faults, o.t, FAULT_REACH_S, FAULT_REACH_S)
                and not _near(cuts, o.t, 0.0, cut_loss_s)
                and not any(on <= o.t < on + booting for _, on in off)
            )
            out.append(Answer(o.t, o.value, certain))
        return out

    def answered_since(self, meter: str, quantity: str, t: float) -> bool:
        """Whether ``meter`` gave out ``quantity`` at or after ``t``."""
        kept = self._by_key.get((meter, quantity))
        return kept is not None and bool(kept) and kept[-1].t >= t


class _Times(Sequence[float]):
    """The times of a deque of observations, for :mod:`bisect` (kept in time order)."""

    def __init__(self, kept: deque[Observation]) -> None:
        self._kept = kept

    def __len__(self) -> int:
        return len(self._kept)

    def __getitem__(self, i: int) -> float:  # type: ignore[override]
        return self._kept[i].t

    def first_at(self, t: float) -> int:
        return bisect.bisect_left(self, t)


def _near(times: Sequence[float], t: float, before: float, after: float) -> bool:
    """Whether one of ``times`` (sorted) lies in ``[t - before, t + after]``."""
    i = bisect.bisect_left(times, t - before)
    return i < len(times) and times[i] <= t + after


def certain_only(answers: Iterable[Answer]) -> list[Answer]:
    return [a for a in answers if a.certain]

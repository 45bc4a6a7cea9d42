"""Judgements several suites make, as plain functions over what the terminal stored and what
the meters showed (no I/O here: the suites fetch, these compare)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from simulators.fleet import Observation

if TYPE_CHECKING:  # the oracle uses these judgements below the management client
    from conformance.management import StoredReading

#: How far a meter's answer may precede the reading made of it: a serial answer is stamped when
#: the terminal has it, the meter's observation when the meter made it; an OPC UA server or a
#: collector refreshes its values every few seconds (the rig's ``COLLECTOR_MIN_S``) and is read
#: later.
ANSWER_BEFORE_S = 15.0
ANSWER_AFTER_S = 5.0


def digits(value: Decimal) -> int:
    """Decimal places as written (``Decimal("1.50")`` → 2): the meter's resolution shown."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def matching_answer(reading: StoredReading, shown: Sequence[Observation]) -> Observation | None:
    """The meter answer a reading equals (same value, same digits) near its time, if any."""
    if reading.value is None:
        return None
    for o in shown:
        near = reading.t - ANSWER_BEFORE_S <= o.t <= reading.t + ANSWER_AFTER_S
        if near and o.value == reading.value and digits(o.value) == digits(reading.value):
            return o
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation (values need not be sorted)."""
    if not values:
        raise ValueError("no values")
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(sorted(values), n=100, method="inclusive")
    index = min(98, max(0, round(q * 100) - 1))
    return float(cuts[index])


def spacing(times: Sequence[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]

"""Minute-by-minute load of one source over one plant-local day, deterministic by seed.

A day is 1440 minutes; the load is constant within a minute (so totals integrate exactly).
"""

from __future__ import annotations

import numpy as np

from simulators.plant.spec import LoadSpec

MINUTES = 1440

# Running windows per profile, as (start minute, end minute) of the local day.
_WINDOWS: dict[str, tuple[tuple[int, int], ...]] = {
    "continuous": ((0, MINUTES),),
    "three_shift": ((0, MINUTES),),
    "two_shift": ((6 * 60, 22 * 60),),
    "day_shift": ((8 * 60, 17 * 60),),
}


def day_load(
    spec: LoadSpec, rng: np.random.Generator, weekday: int, running_before: bool
) -> np.ndarray:
    """Load (fraction of rated) for each minute of a day. ``weekday``: Monday is 0.

    ``running_before`` says whether the source ran in the last minute of the previous day,
    so a start-up ramp is only applied where the source really starts.
    """
    running = np.zeros(MINUTES, dtype=bool)
    for start, end in _WINDOWS[spec.profile]:
        running[start:end] = True
    level = np.full(MINUTES, spec.level)
    if spec.profile == "three_shift":
        for change in (0, 8 * 60, 16 * 60):  # handover: 15 minutes at reduced load
            level[change : change + 15] *= 0.8
    if weekday >= 5:
        level *= spec.weekend_factor
    # Slow variation (hourly) plus minute noise, both seeded: the same day is always the same.
    hourly = 1.0 + rng.normal(0.0, spec.noise, 24).repeat(60)
    minute = 1.0 + rng.normal(0.0, spec.noise / 2, MINUTES)
    load = level * hourly * minute
    # Outages: Poisson count per day, random start and length; the source stops, then ramps.
    expected = spec.outages_per_month / 30.0
    for _ in range(int(rng.poisson(expected))):
        start = int(rng.integers(0, MINUTES))
        hours = float(rng.uniform(*spec.outage_hours))
        running[start : min(MINUTES, start + int(hours * 60))] = False
    load = np.where(running, np.clip(load, 0.0, None), 0.0)
    if spec.ramp_minutes:
        load = _ramps(load, running, spec.ramp_minutes, running_before)
    return load


def _ramps(load: np.ndarray, running: np.ndarray, minutes: int, running_before: bool) -> np.ndarray:
    previous = np.concatenate(([running_before], running[:-1]))
    starts = np.flatnonzero(running & ~previous)
    out = load.copy()
    ramp = (np.arange(1, minutes + 1) / (minutes + 1)).astype(float)
    for start in starts:
        end = min(MINUTES, int(start) + minutes)
        out[start:end] *= ramp[: end - int(start)]
    return out

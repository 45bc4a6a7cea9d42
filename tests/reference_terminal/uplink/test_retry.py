"""Reconnection backoff (ISC-2 §7.2.4(4)): grows from ``initial_s`` to ``max_s`` and stays there
for as long as the centre refuses, however long that is."""

from __future__ import annotations

import random

from reference_terminal.config import Backoff as BackoffConfig
from reference_terminal.uplink.retry import Backoff


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(BackoffConfig(initial_s=1, max_s=30, multiplier=2, jitter=0))
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_week_of_refusals_still_waits_the_cap() -> None:
    """One refusal a minute for a week (the full profile's week offline once stopped the
    terminal here: 2.0 ** 1024 overflows a float)."""
    config = BackoffConfig(initial_s=1, max_s=60, multiplier=2, jitter=0.2)
    backoff = Backoff(config, random.Random(7))
    delays = [backoff.next() for _ in range(7 * 24 * 60)]
    assert all(48 <= d <= 72 for d in delays[-1000:])


def test_a_success_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(BackoffConfig(initial_s=0.5, max_s=60, multiplier=3, jitter=0))
    for _ in range(2000):
        backoff.next()
    backoff.reset()
    assert [backoff.next() for _ in range(3)] == [0.5, 1.5, 4.5]


def test_a_seed_repeats_the_jitter_and_another_seed_changes_it() -> None:
    """A bench seeds it so that a run's reconnections repeat; left unseeded, terminals differ."""

    def delays(seed: int | None) -> list[float]:
        backoff = Backoff(BackoffConfig(initial_s=1, max_s=300, jitter=0.2, seed=seed))
        return [backoff.next() for _ in range(20)]

    assert delays(4800) == delays(4800)
    assert delays(4800) != delays(4801)
    assert delays(None) != delays(None)

"""Reconnection delays: exponential backoff with jitter (ISC-2 §7.2.4(4) automatic
retransmission; jitter so that a platform restart is not met by every terminal at once)."""

from __future__ import annotations

import random

from reference_terminal.config import Backoff as BackoffConfig


class Backoff:
    """``next()`` gives the delay before the next attempt: ``initial_s × multiplier^n`` capped at
    ``max_s``, spread uniformly by ± ``jitter`` of itself; ``reset()`` after a success."""

    def __init__(self, config: BackoffConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.failures = 0
        # Not for security: only spreads reconnections. Seedable for tests and benches.
        self._rng = rng or random.Random(config.seed)

    def next(self) -> float:
        c = self.config
        base = c.initial_s * c.multiplier**self.failures
        if base < c.max_s:
            self.failures += 1
        else:  # at the cap the count stops: a week of refusals overflowed ``multiplier**n``
            base = c.max_s
        spread = base * c.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    def reset(self) -> None:
        self.failures = 0

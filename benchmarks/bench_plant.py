"""Plant model evaluation rate: how fast the ground truth answers.

Run: ``.venv/bin/python -m benchmarks.bench_plant`` (prints JSON). Uses the works fleet's plant.
"""

from __future__ import annotations

import random
import time

from benchmarks.harness import Figure, rate, report
from simulators.fleet.loader import load_fleet
from simulators.plant import Plant

FLEET = "fixtures/fleets/works.yaml"


def main() -> None:
    spec = load_fleet(FLEET)
    plant = Plant(spec.plant, seed=spec.seed, start=spec.start)
    names = sorted(plant.quantities)
    t0 = spec.start.timestamp()
    rnd = random.Random(1)
    now = t0 + 30 * 86400
    for name in names:  # warm the day caches around "now", as a running fleet has them
        plant.value(name, now)
    queries = [(rnd.choice(names), now + rnd.uniform(0, 3600)) for _ in range(4096)]
    it = iter(range(1 << 62))

    def one_value() -> None:
        name, t = queries[next(it) & 4095]
        plant.value(name, t)

    started = time.perf_counter()
    cold = Plant(spec.plant, seed=spec.seed, start=spec.start)
    for name in names:
        cold.value(name, t0 + 365 * 86400)
    year_cold = time.perf_counter() - started
    report(
        "plant",
        [
            Figure(
                "value() of a random quantity within the current hour", rate(one_value), "values/s"
            ),
            Figure(
                "first answers one year after the start, every quantity (cold caches)",
                year_cold,
                "s",
            ),
        ],
        fleet=FLEET,
        quantities=len(names),
        sources=len(spec.plant.sources),
    )


if __name__ == "__main__":
    main()

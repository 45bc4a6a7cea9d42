"""The plant truth a scenario writes (``truth.csv.gz``): every observation a line, the text
``csv.writer`` gives it."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from pathlib import Path

from bench.scenario.engine import _write_truth
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.loader import load_fleet

SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"


def test_the_truth_file_is_what_csv_writes_for_each_observation(tmp_path: Path) -> None:
    fleet = FleetRuntime(load_fleet(SMALL))
    names = sorted(fleet.plant.quantities)
    fleet.observations.extend(
        Observation(
            1_767_196_800.0 + 60.0 * i + 0.0005 * i,
            meter.id,
            names[i % len(names)],
            Decimal(i).scaleb(-2) if i % 3 else Decimal("-0.000"),
            i / 7 if i % 5 else float(i),
            ("spike", "frozen")[: i % 3],
        )
        for i, meter in enumerate(list(fleet.meters.values()) * 3)
    )
    _write_truth(fleet, tmp_path / "truth.csv.gz")
    expected = io.StringIO(newline="")
    out = csv.writer(expected)
    out.writerow(["t", "meter", "quantity", "shown", "truth", "faults"])
    for o in fleet.observations:
        out.writerow([f"{o.t:.3f}", o.meter, o.quantity, o.value, o.truth, " ".join(o.faults)])
    with gzip.open(tmp_path / "truth.csv.gz", "rt", newline="", encoding="utf-8") as f:
        assert f.read() == expected.getvalue()

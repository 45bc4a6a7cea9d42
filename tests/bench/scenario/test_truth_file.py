"""The plant truth a scenario writes (``truth.csv.gz``): every observation a line, the text
``csv.writer`` gives it, whether written at the end or beside the run's end."""

from __future__ import annotations

import csv
import gzip
import io
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.scenario import truth as truth_module
from bench.scenario.truth import TruthFile, write_truth
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.loader import load_fleet

SMALL = Path(__file__).resolve().parents[3] / "fixtures" / "fleets" / "small.yaml"


def _observed(fleet: FleetRuntime, rounds: int, first: int = 0) -> None:
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
        for i, meter in enumerate(list(fleet.meters.values()) * rounds, start=first)
    )


def _as_csv_writes(fleet: FleetRuntime) -> str:
    expected = io.StringIO(newline="")
    out = csv.writer(expected)
    out.writerow(["t", "meter", "quantity", "shown", "truth", "faults"])
    for o in fleet.observations:
        out.writerow([f"{o.t:.3f}", o.meter, o.quantity, o.value, o.truth, " ".join(o.faults)])
    return expected.getvalue()


def _read(path: Path) -> str:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        return f.read()


def test_the_truth_file_is_what_csv_writes_for_each_observation(tmp_path: Path) -> None:
    fleet = FleetRuntime(load_fleet(SMALL))
    _observed(fleet, 3)
    write_truth(fleet, tmp_path / "truth.csv.gz")
    assert _read(tmp_path / "truth.csv.gz") == _as_csv_writes(fleet)


def test_a_truth_file_written_beside_the_run_also_holds_what_was_observed_after_it_began(
    tmp_path: Path,
) -> None:
    fleet = FleetRuntime(load_fleet(SMALL))
    _observed(fleet, 3)
    truth = TruthFile.begin(fleet, tmp_path / "truth.csv.gz")
    _observed(fleet, 2, first=1000)  # the parent goes on observing meanwhile
    truth.finish()
    assert _read(tmp_path / "truth.csv.gz") == _as_csv_writes(fleet)


def test_a_truth_file_whose_writer_failed_is_written_whole_by_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    fleet = FleetRuntime(load_fleet(SMALL))
    _observed(fleet, 3)
    parent = os.getpid()
    write = truth_module._write

    def fails_in_the_child(*args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            raise OSError("disk full")
        write(*args, **kwargs)

    monkeypatch.setattr(truth_module, "_write", fails_in_the_child)
    truth = TruthFile.begin(fleet, tmp_path / "truth.csv.gz")
    truth.finish()
    assert "disk full" in capfd.readouterr().err  # the child said why
    assert _read(tmp_path / "truth.csv.gz") == _as_csv_writes(fleet)

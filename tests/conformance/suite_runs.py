"""Running conformance tests from a test of the bench: a pytest process of their own with the
conformance plugin, as ``carbench run`` runs them (its report aside), read back from the
results JSON. One process per selection, so nothing another selection did is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.results import RunResults

REPO = Path(__file__).resolve().parents[2]
TARGETS = REPO / "fixtures" / "targets"
#: the seed of the sample of conformance tests run alone (``tests/conftest.py`` draws it)
ALONE_SEED_ENV = "CARBENCH_ALONE_SEED"


def run_tests(
    node_ids: Sequence[str], target: Path, out: Path, *, wall_limit_s: float
) -> RunResults:
    """Run ``node_ids`` (``conformance/suites/test_x.py::test_y``) against ``target`` in the
    quick profile on the virtual clock; the results of the run."""
    results = out / "results.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *node_ids,
        "-p",
        "conformance.plugin",
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:timeout",
        "-q",
        f"--target={target}",
        "--profile=quick",
        "--clock=virtual",
        f"--results-json={results}",
        f"--evidence-dir={out / 'evidence'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=wall_limit_s,
        check=False,
    )
    assert results.exists(), f"no results ({done.returncode}):\n{done.stdout[-3000:]}"
    return RunResults.load(results)

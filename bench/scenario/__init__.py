"""Scenarios: a fleet, a terminal, platforms and a timeline of faults, run in virtual time.

``load_scenario`` validates a YAML file; ``run_scenario`` runs it and writes ``reports/<run>/``.
"""

from bench.scenario.engine import RunDirectoryError, run_scenario
from bench.scenario.outcome import Outcome
from conformance.scenario.schema import Scenario, ScenarioError, load_scenario

__all__ = [
    "Outcome",
    "RunDirectoryError",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "run_scenario",
]

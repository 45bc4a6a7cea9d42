"""Scenario files: their schema and their timeline, seeded and expanded.

They live below the bench because both sides read them: the scenario engine
(``bench.scenario``) runs a file against its own reference terminal, and the suites
(``conformance.scenario_play``) play its timeline against any terminal under test.
"""

"""Tests of the conformance bench. Some import helpers from the suites themselves, whose tests
carry the bench's markers: known here too, as under ``--strict-markers`` they must be."""

from __future__ import annotations

import pytest

SUITE_MARKERS = ("clause(*ids): clauses judged", "requires(*what): declarations needed")


def pytest_configure(config: pytest.Config) -> None:
    for line in SUITE_MARKERS:
        config.addinivalue_line("markers", line)

"""Tests of the conformance bench. Some import helpers from the suites themselves, whose tests
carry the bench's markers: known here too, as under ``--strict-markers`` they must be."""

from __future__ import annotations

import pytest

from conformance.plugin import MARKERS


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)

"""Shared by every test."""

# anyio is a pytest plugin, so pytest assertion-rewrites its modules as they are imported. Some
# are imported lazily (anyio.Path, used by starlette's FileResponse) deep inside a running
# test, where CPython 3.11's ast.parse fails its recursion-depth check ("AST constructor
# recursion depth mismatch"). Importing them here, at a shallow stack, sidesteps that.
import os
import random

import anyio._core._fileio  # noqa: F401
import pytest
from hypothesis import HealthCheck, settings

from tests.conformance.suite_runs import ALONE_SEED_ENV

# Hypothesis judges speed by wall time; on a loaded 2-core CI machine a first draw can take
# seconds. Slowness is the benchmarks' business, not a reason for a property test to fail.
settings.register_profile("carbench", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("carbench")


def pytest_configure(config: pytest.Config) -> None:
    # A new sample of conformance tests run alone each time (tests/conformance/
    # test_tests_alone.py); set here, before xdist starts its workers, so all draw the same.
    os.environ.setdefault(ALONE_SEED_ENV, str(random.SystemRandom().randrange(1_000_000)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"conformance tests run alone: {ALONE_SEED_ENV}={os.environ[ALONE_SEED_ENV]}"

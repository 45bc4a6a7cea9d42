"""Shared by every test."""

# anyio is a pytest plugin, so pytest assertion-rewrites its modules as they are imported. Some
# are imported lazily (anyio.Path, used by starlette's FileResponse) deep inside a running
# test, where CPython 3.11's ast.parse fails its recursion-depth check ("AST constructor
# recursion depth mismatch"). Importing them here, at a shallow stack, sidesteps that.
import anyio._core._fileio  # noqa: F401
from hypothesis import HealthCheck, settings

# Hypothesis judges speed by wall time; on a loaded 2-core CI machine a first draw can take
# seconds. Slowness is the benchmarks' business, not a reason for a property test to fail.
settings.register_profile("carbench", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("carbench")

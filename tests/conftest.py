"""Shared by every test."""

# anyio is a pytest plugin, so pytest assertion-rewrites its modules as they are imported. Some
# are imported lazily (anyio.Path, used by starlette's FileResponse) deep inside a running
# test, where CPython 3.11's ast.parse fails its recursion-depth check ("AST constructor
# recursion depth mismatch"). Importing them here, at a shallow stack, sidesteps that.
import anyio._core._fileio  # noqa: F401

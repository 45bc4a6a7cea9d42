"""The reference terminal's management API (FastAPI): see :mod:`reference_terminal.api.app`."""

from reference_terminal.api.app import create_app

__all__ = ["create_app"]

"""What the management API needs from :class:`~reference_terminal.app.Terminal` beyond what it
has today, and how the API copes while a part is missing.

The Terminal should grow these (the API looks them up by name, so each one starts working as
soon as it exists, with no change here):

``async apply_config(config: TerminalConfig) -> None``
    Run ``config`` from now on: rebuild drivers, scheduler, intakes and processing for it and
    set ``terminal.config``. All or nothing: if it raises (``ConfigError``/``ValueError`` for a
    configuration that cannot run, e.g. a serial port that does not open), the previous
    configuration is still the one running. Until it exists, ``PUT /config`` answers 501.
``config_path: Path | None``
    The file the configuration was loaded from (``python -m reference_terminal --config``).
    ``PUT /config`` replaces it (atomically, after ``apply_config`` succeeded) so that a
    restart runs what was applied. None or absent: nothing is written.
``intake: HttpsIntake``
    The HTTPS push intake, created in ``__init__`` (the app mounts its router when it is
    created, before ``run``), its push devices added with ``accept`` as their sink. Absent:
    the app makes its own for the push devices of the configuration at creation (which a later
    ``apply_config`` does not update).
``started_at: float``
    The terminal clock (POSIX seconds) when ``run`` started, for the uptime in ``/health``.
    Absent: the time the app was created.
``state: str``
    ``starting``, ``running``, ``stopping`` or ``stopped``. Absent: inferred from ``ready``,
    ``store`` and whether the store is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

from reference_terminal.acquisition.https import HttpsIntake
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig

ApplyConfig = Callable[[TerminalConfig], Awaitable[None]]


@runtime_checkable
class ConfigurableTerminal(Protocol):
    """A terminal whose configuration can be replaced while it runs."""

    config_path: Path | None

    async def apply_config(self, config: TerminalConfig) -> None: ...


def apply_config_hook(terminal: Terminal) -> ApplyConfig | None:
    hook = getattr(terminal, "apply_config", None)
    return hook if callable(hook) else None


def config_path(terminal: Terminal) -> Path | None:
    path = getattr(terminal, "config_path", None)
    return None if path is None else Path(path)


def terminal_intake(terminal: Terminal) -> HttpsIntake | None:
    intake = getattr(terminal, "intake", None)
    return intake if isinstance(intake, HttpsIntake) else None


def started_at(terminal: Terminal) -> float | None:
    value = getattr(terminal, "started_at", None)
    return float(value) if isinstance(value, int | float) else None


def declared_state(terminal: Terminal) -> str | None:
    value = getattr(terminal, "state", None)
    if isinstance(value, Enum):
        value = value.value
    return value if isinstance(value, str) else None

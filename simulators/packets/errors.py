"""What goes wrong when packet faults are set up, each with the reason in its message."""

from __future__ import annotations

from collections.abc import Sequence


class PacketFaultError(Exception):
    """Base of every error this package raises."""


class CommandError(PacketFaultError):
    """A command (``ip``, ``iptables-restore``, ``tc`` …) failed or could not be started."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        status = "could not be started" if returncode is None else f"exited {returncode}"
        super().__init__(f"`{' '.join(self.argv)}` {status}: {self.stderr or '(no stderr)'}")


class FeatureUnavailable(PacketFaultError):
    """This machine cannot do what was asked (not root, no NFQUEUE, no tbf …)."""

    def __init__(self, feature: str, reason: str) -> None:
        self.feature = feature
        self.reason = reason
        super().__init__(f"{feature} is unavailable: {reason}")


class QueueHandlerError(PacketFaultError):
    """The NFQUEUE handler process failed to start, answered wrongly or died."""

    def __init__(self, message: str, stderr: str = "") -> None:
        self.stderr = stderr.strip()
        super().__init__(f"{message}; handler stderr: {self.stderr}" if self.stderr else message)

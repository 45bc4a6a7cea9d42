"""Platform simulators: HJ 212 and HTTPS centres, their behaviours, commands and record.

* :class:`Hj212Server` / :class:`HttpsServer`: one centre each; ``set_behaviour`` switches how
  it answers (:mod:`.behaviour`); ``commands(mn)`` issues platform commands (:mod:`.commands`).
* :class:`Record`: every frame in and out, readings, the de-duplicated view (:mod:`.record`).
* :func:`check`: lost / duplicated / unexpected / out-of-order / gaps (:mod:`.checker`);
  :class:`ExpectedSet` and :class:`Received` are its bulk forms, for a long run's million.
* :func:`running_platforms`: the centres of a platform file, over one record (:mod:`.runner`).
"""

from simulators.platform.behaviour import (
    Acknowledge,
    AcknowledgeLate,
    BadCrc,
    Behaviour,
    DropConnection,
    Nak,
    NeverAcknowledge,
    RefuseConnections,
    ServerError,
    parse_behaviour,
)
from simulators.platform.checker import (
    CheckResult,
    Expected,
    ExpectedSet,
    ReadingKey,
    Want,
    arrived,
    check,
)
from simulators.platform.commands import CommandOutcome, CommandStatus, TerminalCommands
from simulators.platform.config import (
    Hj212Centre,
    HttpsCentre,
    PlatformFile,
    load_platform_file,
)
from simulators.platform.https import HttpsServer
from simulators.platform.record import DedupReading, FrameRow, ReadingRow, Received, Record
from simulators.platform.runner import Platforms, running_platforms
from simulators.platform.server import Hj212Server

__all__ = [
    "Acknowledge",
    "AcknowledgeLate",
    "BadCrc",
    "Behaviour",
    "CheckResult",
    "CommandOutcome",
    "CommandStatus",
    "DedupReading",
    "DropConnection",
    "Expected",
    "ExpectedSet",
    "FrameRow",
    "Hj212Centre",
    "Hj212Server",
    "HttpsCentre",
    "HttpsServer",
    "Nak",
    "NeverAcknowledge",
    "PlatformFile",
    "Platforms",
    "ReadingKey",
    "ReadingRow",
    "Received",
    "Record",
    "RefuseConnections",
    "ServerError",
    "TerminalCommands",
    "Want",
    "arrived",
    "check",
    "load_platform_file",
    "parse_behaviour",
    "running_platforms",
]

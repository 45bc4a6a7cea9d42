"""Start the centres of a platform file together, over one record.

>>> async with running_platforms(load_platform_file(path)) as platforms:
...     centre = platforms.hj212("provincial")
...     await centre.set_behaviour("never_ack")
...     platforms.record.deduplicated(centre="provincial")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.clock import Clock, RealClock
from simulators.platform.checker import CheckResult, Expected, check
from simulators.platform.config import HttpsCentre, PlatformFile, load_platform_file
from simulators.platform.https import HttpsServer
from simulators.platform.record import Record
from simulators.platform.server import Hj212Server


@dataclass
class Platforms:
    record: Record
    centres: dict[str, Hj212Server | HttpsServer] = field(default_factory=dict)

    def hj212(self, name: str) -> Hj212Server:
        centre = self.centres[name]
        if not isinstance(centre, Hj212Server):
            raise TypeError(f"centre {name} is an HTTPS centre, not HJ 212")
        return centre

    def https(self, name: str) -> HttpsServer:
        centre = self.centres[name]
        if not isinstance(centre, HttpsServer):
            raise TypeError(f"centre {name} is an HJ 212 centre, not HTTPS")
        return centre

    def check(self, name: str, expected: list[Expected]) -> CheckResult:
        """The set checker on everything centre ``name`` received (every copy)."""
        return check(expected, self.record.readings(centre=name))

    def describe(self) -> list[str]:
        return [f"{name}  {centre.describe()}" for name, centre in self.centres.items()]


@asynccontextmanager
async def running_platforms(
    spec: PlatformFile | Path | str,
    *,
    clock: Clock | None = None,
    record: Record | None = None,
) -> AsyncIterator[Platforms]:
    """Every centre listening (or refusing, as configured) on entry; all stopped on exit.

    ``record``: use this record instead of the file's ``record`` URL (kept open on exit)."""
    if not isinstance(spec, PlatformFile):
        spec = load_platform_file(Path(spec))
    clock = clock or RealClock()
    async with AsyncExitStack() as stack:
        if record is None:
            record = Record(spec.record)
            stack.callback(record.close)
        platforms = Platforms(record)
        for config in spec.centres:
            centre: Hj212Server | HttpsServer
            if isinstance(config, HttpsCentre):
                centre = HttpsServer(config, record, clock)
            else:
                centre = Hj212Server(config, record, clock)
            await stack.enter_async_context(centre)
            platforms.centres[config.name] = centre
        yield platforms

"""What every acquisition driver is: read some points of one device, or fail clearly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from reference_terminal.config import Point, Source
from reference_terminal.model import RawValue


class DriverError(Exception):
    """A device that did not answer usably: timeout, damaged frame, exception reply …"""

    def __init__(self, device: str, message: str, *, kind: str = "error") -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.kind = kind  # timeout, checksum, garbled, exception, refused …


class Driver(Protocol):
    """A polled device. ``read`` returns one RawValue per requested (point, source), in order;
    a point the device answered without a usable value gets ``error`` set instead of raising,
    so one bad register does not lose the others. Whole-device failures raise DriverError."""

    device_id: str

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]: ...

    async def close(self) -> None: ...

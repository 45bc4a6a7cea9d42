"""The device under test as the suites see it: one small interface, whatever drives it.

In the spirit of EVerest's test controller: the suites never know whether the terminal is the
reference terminal in the bench's own event loop, the same program as a process, or a vendor's
box on the lab network. They see it only through :class:`Dut` and the wire (the platform
centres' record of every frame, the fleet's record of every meter answer). What the terminal
stores is read back through its management interface (:mod:`conformance.management`).

Two adapters implement it: ``bench.adapters.reference`` and ``bench.adapters.external``
(DESIGN.md: the adapters live in ``bench/``; ``conformance/`` never imports the terminal).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

from conformance.management import Management
from conformance.target import Target


class ClockMode(StrEnum):
    VIRTUAL = "virtual"  # the bench owns the clock; the terminal takes its time from it
    REAL = "real"  # wall time


class DutError(RuntimeError):
    """The bench could not drive the terminal (an error of the bench, not a verdict)."""


@dataclass(frozen=True, slots=True)
class CentreEndpoint:
    """Where the terminal must upload to reach one of the bench's centres (its fault proxy)."""

    name: str
    protocol: Literal["hj212", "https"]
    host: str
    port: int
    path: str = ""  # HTTPS: the upload path
    ca_file: Path | None = None  # HTTPS: the CA the centre's certificate is verified with
    #: HTTPS: where the centre publishes its factor library (CSMT §11.4), and the public key
    #: (PEM) its publications are signed with; "" / None: it publishes none.
    factors_path: str = ""
    publisher_key: Path | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{self.path}"

    @property
    def factors_url(self) -> str | None:
        if not self.factors_path:
            return None
        return f"https://{self.host}:{self.port}{self.factors_path}"


@dataclass(frozen=True, slots=True)
class PointBinding:
    """One of the terminal's points: what it reads, how, and what it is uploaded as."""

    point: str
    meter: str | None  # the bench fleet's meter it reads; None: not from the fleet
    quantity: str | None  # the plant quantity that meter shows
    protocol: str  # how the terminal gets it: modbus-tcp, dlt645-2007, manual …
    kind: Literal["counter", "gauge"]
    decimals: int
    group: str  # the point group (acquisition period)
    acquisition: Literal["polled", "pushed", "manual"]
    code: str | None = None  # data item code at the centres (CSMT §7.2); None: not uploaded
    unit: str = ""

    @property
    def minute_field(self) -> str:
        """The field its minute figure travels in (HJ 212 CN 2051): a counter's increment as
        Cou, a gauge's mean as Avg."""
        return "Cou" if self.kind == "counter" else "Avg"


@dataclass(frozen=True, slots=True)
class PowerCut:
    """What a power cut did: how it was made and what it is worth as evidence."""

    switch: str  # fuse | process | modbus-relay | operator
    #: ``fuse``: unsynced writes were lost; ``kill``: the process died but the OS kept its
    #: page cache (a weaker test, said in ``note``); ``relay``/``operator``: a real supply.
    mode: Literal["fuse", "kill", "relay", "operator"]
    note: str = ""
    bytes_dropped: int | None = None
    #: The cut landed inside one of the terminal's writes (asked for with ``torn_after``),
    #: not between them.
    torn: bool = False


# ---- configuration changes the suites may ask for ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SetPeriod:
    """Acquisition period of a point group (ISC-2 §9.1: 1 min to 3 h, second level)."""

    group: str
    seconds: float


@dataclass(frozen=True, slots=True)
class SetRange:
    """A point's valid range (CSMT §8.1.1); None leaves that side open."""

    point: str
    low: Decimal | None
    high: Decimal | None


@dataclass(frozen=True, slots=True)
class SetBackup:
    """Read ``point`` from where ``backup_point`` is read when its own device falls silent
    (ISC-2 §7.2.3(1)); None removes the backup."""

    point: str
    backup_point: str | None


VirtualOperation = Literal["add", "subtract", "multiply", "divide", "allocate", "integrate"]


@dataclass(frozen=True, slots=True)
class AddVirtualPoint:
    """A point computed from others (CSMT §8.3.2), window by window:

    - ``add``: the sum of ``inputs``; ``subtract``: the first input minus the others;
    - ``multiply``: ``factor`` times the product of ``inputs``; ``divide``: ``factor`` times
      the first input over the second;
    - ``allocate``: the one input split over ``targets`` by ``shares`` (fractions summing to
      1, one per target); ``point`` names the rule, the results are the targets;
    - ``integrate``: the one input, a rate per ``per_s`` seconds (3600: per hour), integrated
      over time into a total.
    """

    point: str
    operation: VirtualOperation
    inputs: tuple[str, ...]
    factor: Decimal = Decimal(1)
    targets: tuple[str, ...] = ()
    shares: tuple[Decimal, ...] = ()
    per_s: int = 3600


@dataclass(frozen=True, slots=True)
class RemoveVirtualPoint:
    """Remove the virtual point (or allocation rule) ``point`` again; its stored figures stay."""

    point: str


@dataclass(frozen=True, slots=True)
class MoveCentre:
    """Upload to a centre at another address (ISC-2 §8.3 remote configuration)."""

    centre: str
    host: str
    port: int


Change = SetPeriod | SetRange | SetBackup | AddVirtualPoint | RemoveVirtualPoint | MoveCentre


# ---- application packages (ISC-2 §8.4) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppPackage:
    """One application package as the terminal's vendor ships it, with its signature (what the
    carbench profile's ``POST /apps`` / ``PUT /apps/{name}`` take, base64)."""

    name: str
    version: str
    package: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class AppPackages:
    """Signed packages of one application for the remote-upgrade tests: a first version, a
    newer one, and a newer one that fails to start (the terminal must roll it back; None when
    the vendor provides none)."""

    first: AppPackage
    upgrade: AppPackage
    broken: AppPackage | None = None


class Dut(Protocol):
    """A terminal under test."""

    @property
    def target(self) -> Target: ...

    @property
    def clock_mode(self) -> ClockMode: ...

    @property
    def powered(self) -> bool: ...

    @property
    def management(self) -> Management:
        """Its management interface (base URL and credentials inside)."""
        ...

    def points(self) -> Sequence[PointBinding]: ...

    def mn(self, centre: str) -> str:
        """The MN it uses at ``centre`` (HJ 212 表 5)."""
        ...

    def pw(self, centre: str) -> str: ...

    async def start(self, centres: Sequence[CentreEndpoint]) -> None:
        """Power it on with its uplink pointed at the bench's ``centres``; returns once its
        management interface answers."""
        ...

    async def stop(self) -> None:
        """An orderly shutdown (end of the run, not a power cut)."""
        ...

    async def power_off(self, *, torn_after: int | None = None) -> PowerCut:
        """Cut the power: the terminal stops mid-operation; what it had not made durable is
        gone (as far as the switch can make it so: see ``PowerCut.mode``). ``torn_after``:
        let it run on until the power dies before its n-th write or sync from now, a cut
        inside a commit; only a switch under the terminal's disk can, the others cut at once
        (``PowerCut.torn`` says which happened)."""
        ...

    async def power_on(self) -> None:
        """Restore the power; returns once the management interface answers again."""
        ...

    async def configure(self, *changes: Change) -> None:
        """Apply configuration changes (all or none); raises a verdict exception when this
        terminal cannot be configured so (``Inconclusive``) or a person must do it and nobody
        did (``PendingOperator``)."""
        ...

    def app_packages(self) -> AppPackages:
        """Signed application packages this terminal accepts (ISC-2 §8.4); raises
        ``Inconclusive`` when the target provides none."""
        ...

    def device_certificate(self) -> str | None:
        """Its SM2 device certificate (PEM) the platform centres verify its records' signatures
        with (ISC-2 §7.4.1, CSMT §7.4); None when the bench was given none."""
        ...

    def stored_data(self) -> Mapping[str, Path]:
        """Files of its important stored data (ISC-2 §7.4.1.4: 鉴别数据, keys) the bench can
        reach while the power is off, by what each holds; empty when it cannot (a separate
        device's storage is the lab's to open)."""
        ...

    async def age(self, seconds: float) -> None:
        """Power it off, let ``seconds`` of its own time pass (its battery-backed clock runs
        on, as on a shelf) while the bench's time stands, and power it on: the terminal comes
        back that much older without the bench living through it. Its clock then stays ahead
        of the bench's: a test doing this runs last. Only a terminal whose clock the bench
        keeps can be aged; raises ``Inconclusive`` otherwise, before touching its power."""
        ...

    def unattended(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A stretch of days in which a test judges only what the terminal stores and uploads.
        An adapter may let the terminal read its meters' models meanwhile rather than their
        wire (the reference terminal does: ``bench/scenario/model_link.py``), so a week of
        virtual time costs what its storage and uploads cost; a separate device reads its
        meters as ever."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the run's manifest records about the terminal and how it was driven."""
        ...

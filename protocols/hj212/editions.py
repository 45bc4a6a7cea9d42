"""Edition profiles: what differs between HJ/T 212-2005, HJ 212-2017 and HJ 212-2025.

Callers never branch on an edition themselves: the codec and the session ask the profile.
Adding an edition (or a regional variant) means registering one more :class:`Edition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.hj212.codes import Command
from protocols.hj212.errors import HeaderError

_COMMANDS_2017 = frozenset(int(c) for c in Command if c is not Command.HEARTBEAT)


@dataclass(frozen=True, slots=True)
class Edition:
    key: str
    title: str
    version: int  # the V5..V0 bits of Flag
    header_order: tuple[str, ...]
    commands: frozenset[int]
    data_max: int = 1024
    cp_max: int = 950
    #: 2005 answers carry the request's QN inside CP (``CP=&&QN=…;QnRtn=1&&``), not in the header.
    answer_qn_in_cp: bool = False
    #: Header field marking a retransmitted packet (2025: ``RF=1``); None when the edition has none.
    resend_marker: str | None = None
    heartbeat: int | None = None
    #: Header fields besides the core ones that the edition defines.
    extra_header_fields: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.title


HJ212_2005 = Edition(
    key="2005",
    title="HJ/T 212-2005",
    version=0,
    header_order=("QN", "PNUM", "PNO", "ST", "CN", "PW", "MN", "Flag"),
    commands=_COMMANDS_2017,
    cp_max=960,
    answer_qn_in_cp=True,
)

HJ212_2017 = Edition(
    key="2017",
    title="HJ 212-2017",
    version=1,
    header_order=("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"),
    commands=_COMMANDS_2017,
)

# Provisional: the 2025 text is not public. What public 2025-style code shows: version bits 2
# (Flag 8–11), RF=1 on resent packets, SM4-encrypted CP, and a 9015 heartbeat (FACTS.md).
HJ212_2025 = Edition(
    key="2025",
    title="HJ 212-2025 (provisional profile)",
    version=2,
    header_order=("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "RF"),
    commands=_COMMANDS_2017 | {int(Command.HEARTBEAT)},
    resend_marker="RF",
    heartbeat=int(Command.HEARTBEAT),
    extra_header_fields=("RF",),
)

EDITIONS: dict[str, Edition] = {e.key: e for e in (HJ212_2005, HJ212_2017, HJ212_2025)}
_BY_VERSION: dict[int, Edition] = {e.version: e for e in EDITIONS.values()}


def register(edition: Edition) -> None:
    """Add an edition profile (a regional variant, say) so decoding can select it by Flag."""
    EDITIONS[edition.key] = edition
    _BY_VERSION[edition.version] = edition


def edition(key: str | Edition) -> Edition:
    if isinstance(key, Edition):
        return key
    try:
        return EDITIONS[key]
    except KeyError:
        raise ValueError(
            f"unknown HJ 212 edition {key!r}; known: {', '.join(sorted(EDITIONS))}"
        ) from None


def edition_for_version(version: int) -> Edition:
    try:
        return _BY_VERSION[version]
    except KeyError:
        raise HeaderError(
            f"Flag version bits V5..V0 = {version}: no edition profile has that version "
            f"(known: {', '.join(f'{v} = {e.title}' for v, e in sorted(_BY_VERSION.items()))})"
        ) from None

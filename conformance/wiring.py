"""The wiring sheet of a run: where each of the bench's meters and centres listens, so that a
lab can connect a real terminal to them (ISC-2 §7.1.1: the terminal reads the plant's meters;
on the bench the meters are the bench's).

One line per endpoint: the meter (or bus, or centre), its protocol, its address (a TCP port
with the Modbus unit id, a serial line with the meter's address, a URL), and for a serial bus
its baud rate and framing (data bits, parity, stop bits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `carbench run` reads WIRING without importing the simulators
    from simulators.fleet import FleetRuntime

#: The sheet's file in the run directory.
WIRING = "wiring.txt"


@dataclass(frozen=True, slots=True)
class Wire:
    what: str  # meter, bus or centre id
    protocol: str
    address: str
    line: str = ""  # a serial bus's "9600 baud 8E1"


def wiring(fleet: FleetRuntime, centres: list[tuple[str, str, str]]) -> list[Wire]:
    """The fleet's endpoints as it announced them, then the centres ``(name, protocol,
    address)`` the terminal uploads to."""
    buses = {b.id: b for b in fleet.spec.buses}
    on_bus = {m.id: getattr(m, "bus", None) for m in fleet.spec.meters}
    out = []
    for e in fleet.endpoints:
        bus = buses.get(e.meter) or buses.get(on_bus.get(e.meter) or "")
        line = f"{bus.baud} baud {bus.framing}" if bus is not None else ""
        out.append(Wire(e.meter, e.protocol, e.address, line))
    out += [Wire(name, protocol, address) for name, protocol, address in centres]
    return out


def sheet(wires: list[Wire]) -> str:
    """The sheet as text, one aligned line per endpoint."""
    width = max((len(w.what) for w in wires), default=0)
    proto = max((len(w.protocol) for w in wires), default=0)
    lines = [
        f"{w.what:<{width}}  {w.protocol:<{proto}}  {w.address}"
        + (f"  ({w.line})" if w.line else "")
        for w in wires
    ]
    return "\n".join(lines) + "\n"


def as_json(wires: list[Wire]) -> list[dict[str, str]]:
    return [asdict(w) for w in wires]

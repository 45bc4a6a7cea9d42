"""A lab wires a real box to the bench's meters once: a target's fixed addresses reach the
fleet, and a wrong name is refused before the run, naming what the fleet has."""

from __future__ import annotations

import pytest

from conformance.dut import ClockMode
from conformance.rig import WiringError, fleet_spec, wired
from conformance.target import Wiring
from conformance.wiring import Wire, sheet
from simulators.fleet.schema import ModbusTcpMeter


def test_fixed_ports_and_links_reach_the_fleet() -> None:
    spec, path = fleet_spec("quick", ClockMode.VIRTUAL)
    out = wired(spec, Wiring(ports={"plc-cems": 15020}, links={"rs485_645": "/tmp/x"}), path)
    cems = next(m for m in out.meters if m.id == "plc-cems")
    buses = {b.id: b for b in out.buses}
    assert isinstance(cems, ModbusTcpMeter) and cems.port == 15020
    assert buses["rs485_645"].link == "/tmp/x"
    assert [m.id for m in out.meters] == [m.id for m in spec.meters]  # order kept


@pytest.mark.parametrize(
    ("wiring", "message"),
    [
        (Wiring(ports={"em-grid": 1502}), "wiring.ports.em-grid: the fleet small.yaml has no"),
        (Wiring(links={"rs485_x": "/tmp/x"}), "wiring.links.rs485_x: the fleet small.yaml has no"),
    ],
)
def test_a_name_the_fleet_lacks_is_refused(wiring: Wiring, message: str) -> None:
    spec, path = fleet_spec("quick", ClockMode.VIRTUAL)
    with pytest.raises(WiringError, match=message):
        wired(spec, wiring, path)


def test_the_sheet_gives_each_serial_line_its_baud_rate_and_framing() -> None:
    text = sheet(
        [
            Wire("em-grid", "dlt645-2007", "/dev/pts/3 address 000000000001", "9600 baud 8E1"),
            Wire("provincial", "hj212", "127.0.0.1:17001"),
        ]
    )
    assert text.splitlines() == [
        "em-grid     dlt645-2007  /dev/pts/3 address 000000000001  (9600 baud 8E1)",
        "provincial  hj212        127.0.0.1:17001",
    ]

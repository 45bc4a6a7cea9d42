"""Fleet files and the fleet at run time: validation with lines, values, faults, meter clocks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.loader import FleetFileError, load_fleet, parse_fleet
from simulators.fleet.schema import Fleet

FLEETS = Path(__file__).resolve().parents[2] / "fixtures" / "fleets"
BASE = """\
name: t
start: 2026-01-01T00:00:00+08:00
plant:
  sources:
    - {id: grid, kind: electricity, rated_kw: 500}
meters:
  - id: m1
    protocol: modbus-tcp
    registers:
      - address: 0
        type: uint32
        scale: "0.01"
        quantity: grid.energy_import_kwh
        rounding: floor
"""


@pytest.mark.parametrize("name", ["small.yaml", "works.yaml", "large.yaml"])
def test_the_shipped_fleets_are_valid(name: str) -> None:
    fleet = load_fleet(FLEETS / name)
    assert fleet.meters


def test_the_small_fleet_has_every_southbound_protocol() -> None:
    protocols = {m.protocol for m in load_fleet(FLEETS / "small.yaml").meters}
    assert protocols == {
        "modbus-tcp",
        "modbus-rtu",
        "dlt645-2007",
        "dlt645-1997",
        "cjt188",
        "opcua",
        "mqtt",
        "https",
        "manual",
        "analog",
        "sql",
    }


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            ("type: uint32", "type: uint8"),
            "t.yaml:11: meters[0].registers[0].type: Input should be",
        ),
        (
            ("rated_kw: 500", "rated_kw: -5"),
            "t.yaml:5: plant.sources[0].rated_kw: Input should be greater than 0",
        ),
        (
            ("grid.energy_import_kwh", "grid.energy"),
            "t.yaml:7: meters[0]: no plant quantity 'grid.energy'",
        ),
        (
            ("protocol: modbus-tcp", "protocol: modbus-tcp\n    bus: x"),
            "t.yaml:9: meters[0].bus: Extra inputs",
        ),
        (
            ("start: 2026-01-01T00:00:00+08:00", "start: 2026-01-01T00:00:00"),
            "start: needs a time zone",
        ),
        (("name: t", "name: [t"), "t.yaml:2: not valid YAML"),
    ],
)
def test_a_bad_fleet_file_names_the_field_and_the_line(change: tuple[str, str], where: str) -> None:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(BASE.replace(*change), "t.yaml")
    assert where in str(caught.value)


def runtime(faults: list[dict[str, object]], decimals: int = 2) -> FleetRuntime:
    data = parse_fleet(BASE).model_dump()
    data["meters"][0]["registers"][0]["decimals"] = decimals
    data["faults"] = faults
    return FleetRuntime(Fleet.model_validate(data))


def read(fleet: FleetRuntime, hours: float) -> Decimal:
    meter = fleet.meters["m1"]
    return meter.read(meter.points[0], fleet.at(timedelta(hours=hours)))


def test_a_meter_shows_the_truth_at_its_resolution_and_records_it() -> None:
    fleet = runtime([])
    shown = read(fleet, 5)
    truth = fleet.plant.value("grid.energy_import_kwh", fleet.at(timedelta(hours=5)))
    assert shown == quantize(truth, fleet.spec.meters[0].registers[0])  # type: ignore[union-attr]
    assert shown.as_tuple().exponent == -2 and shown <= Decimal(repr(truth))
    (observation,) = fleet.observations
    assert (observation.value, observation.truth, observation.faults) == (shown, truth, ())


def test_frozen_spike_and_their_windows() -> None:
    fleet = runtime(
        [
            {"meter": "m1", "kind": "frozen", "start": "PT2H", "end": "PT3H"},
            {"meter": "m1", "kind": "spike", "start": "PT4H", "end": "PT5H", "factor": 10},
        ]
    )
    frozen = read(fleet, 2)
    assert read(fleet, 2.9) == frozen and read(fleet, 3.1) > frozen
    normal = runtime([])
    assert read(fleet, 4.5) == pytest.approx(read(normal, 4.5) * 10, abs=Decimal("0.1"))
    assert read(fleet, 5.5) == read(normal, 5.5)
    assert [o.faults for o in fleet.observations][:2] == [("frozen",), ("frozen",)]


def test_rollover_wraps_the_counter_at_full_scale_and_stays_wrapped() -> None:
    fleet = runtime([{"meter": "m1", "kind": "rollover", "start": "PT1H", "headroom": "5"}])
    assert read(fleet, 1) == Decimal("999995.00")
    later = read(fleet, 2)
    assert later < Decimal(1000)  # rolled over past 999999.99 into 0…
    normal = runtime([])
    assert later == (read(normal, 2) - read(normal, 1) - 5) % 1000000


def test_a_replaced_meter_counts_from_zero() -> None:
    fleet = runtime([{"meter": "m1", "kind": "replaced", "start": "PT6H"}])
    assert read(fleet, 6) == Decimal("0.00")
    normal = runtime([])
    assert read(fleet, 7) == pytest.approx(read(normal, 7) - read(normal, 6), abs=Decimal("0.02"))


def test_clock_drift_and_time_sync() -> None:
    fleet = runtime([{"meter": "m1", "kind": "clock_drift", "start": "P1D", "drift_s_per_day": 60}])
    meter = fleet.meters["m1"]
    t = fleet.at(timedelta(days=3))
    assert (meter.clock(t) - fleet.plant.local_time(t)).total_seconds() == pytest.approx(120)
    meter.set_clock(t, fleet.plant.local_time(t))
    assert meter.clock(t) == fleet.plant.local_time(t)


def test_communication_faults_follow_their_window_and_probability() -> None:
    fleet = runtime(
        [
            {"meter": "m1", "kind": "no_answer", "start": "PT1H", "end": "PT2H"},
            {"meter": "m1", "kind": "garbled", "start": "PT3H", "end": "PT4H", "probability": 0.25},
        ]
    )
    meter = fleet.meters["m1"]
    assert meter.communication_fault(fleet.at(timedelta(minutes=30))) is None
    fault = meter.communication_fault(fleet.at(timedelta(minutes=90)))
    assert fault is not None and fault.kind == "no_answer"
    hits = sum(
        meter.communication_fault(fleet.at(timedelta(hours=3.5))) is not None for _ in range(2000)
    )
    assert 400 < hits < 600
    kinds = [event.kind for event in fleet.fault_events]
    assert kinds == ["no_answer"] + ["garbled"] * hits  # every fault played is on record

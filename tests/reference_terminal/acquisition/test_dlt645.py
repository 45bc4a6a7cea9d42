"""The DL/T 645 driver against simulated meters on a paced pty: exact values (2007, 1997, block
DIs), retries and errors under every communication fault, stale answers, broadcast time."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta, timezone
from typing import Any

import pytest

from reference_terminal.acquisition.dlt645 import Dlt645Driver, broadcast_time
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.serial_port import BusArbiter
from reference_terminal.config import Dlt645Device
from simulators.meters.serial_buses import running_serial_buses

from .fleets import CLOCK, arbiter, fault_count, fleet, good, request, runtime, sent

ENERGY = {"di": "00010000", "quantity": "grid.energy_import_kwh", "rounding": "floor"}
# "slow" has its own test below (a late answer arriving during another meter's exchange).
FAULTS = ("no_answer", "bad_checksum", "garbled", "truncated", "exception")


def meter(
    meter_id: str, address: int, points: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "id": meter_id,
        "protocol": extra.pop("protocol", "dlt645-2007"),
        "bus": extra.pop("bus", "b645"),
        "address": f"{address:012d}",
        "points": points,
        **extra,
    }


def device(meter_id: str, address: int, **extra: Any) -> Dlt645Device:
    return Dlt645Device(
        id=meter_id,
        protocol=extra.pop("protocol", "dlt645-2007"),
        bus=extra.pop("bus", "b645"),
        address=f"{address:012d}",
        **extra,
    )


BUS = {"id": "b645", "protocol": "dlt645", "baud": 115200, "response_delay_ms": [5, 10]}


def test_reads_exact_values_2007_1997_and_block_elements() -> None:
    spec = fleet(
        [
            meter(
                "m1",
                1,
                [
                    ENERGY,
                    {
                        "di": "0201FF00",
                        "quantities": ["grid.voltage_a", "grid.voltage_b", "grid.voltage_c"],
                        "decimals": 1,
                    },
                    {
                        "di": "0202FF00",
                        "quantities": ["grid.current_a", "grid.current_b", "grid.current_c"],
                        "decimals": 3,
                    },
                    {"di": "02030000", "quantity": "pv.power_kw", "decimals": 4},
                ],
            ),
            meter("m3", 3, [{**ENERGY, "di": "9010"}], protocol="dlt645-1997"),
        ],
        buses=[BUS],
    )
    fl = runtime(spec)

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            bus = arbiter(lines["b645"])
            m1 = Dlt645Driver(device("m1", 1), bus, CLOCK)
            reqs = [
                request("m1", di="00010000"),
                request("m1", di="0201FF00", index=2),
                request("m1", di="0201ff00", index=0),  # lower case: the same DI
                request("m1", di="0202FF00", index=1),
                request("m1", di="02030000"),
                request("m1", di="0201FF00", index=3),  # the block has 3 elements
                request("m1", di="04000102"),  # the meter's time: not a number
                request("m1", di="0001"),  # not a 2007 DI
            ]
            raws = await m1.read(reqs)
            assert [r.point for r in raws] == [p.id for p, _ in reqs]
            assert m1.attempts == 5  # one exchange per DI: the block is read once
            assert good(raws[0]) == sent(fl, "m1", "grid.energy_import_kwh")
            assert good(raws[1]) == sent(fl, "m1", "grid.voltage_c")
            assert good(raws[2]) == sent(fl, "m1", "grid.voltage_a")
            assert good(raws[3]) == sent(fl, "m1", "grid.current_b")
            assert good(raws[4]) == sent(fl, "m1", "pv.power_kw")
            assert raws[0].value is not None and raws[0].value.as_tuple().exponent == -2
            assert raws[0].raw == format(raws[0].value * 100, "08.0f")  # the BCD digits
            assert raws[5].value is None and "no index 3" in (raws[5].error or "")
            assert raws[6].value is None and "not a number" in (raws[6].error or "")
            assert raws[7].value is None and "8 hexadecimal" in (raws[7].error or "")
            assert all(r.device == "m1" for r in raws)

            m3 = Dlt645Driver(device("m3", 3, protocol="dlt645-1997"), bus, CLOCK)
            (old,) = await m3.read([request("m3", di="9010")])
            assert good(old) == sent(fl, "m3", "grid.energy_import_kwh")
            assert bus.max_in_flight == 1

    asyncio.run(main())


def test_faults_are_retried_then_reported() -> None:
    meters = [meter(f"f_{kind}", 11 + i, [ENERGY]) for i, kind in enumerate(FAULTS)]
    faults = [{"meter": f"f_{kind}", "kind": kind} for kind in FAULTS]
    fl = runtime(fleet([*meters, meter("ok", 1, [ENERGY])], buses=[BUS], faults=faults))

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            bus = arbiter(lines["b645"])
            for i, kind in enumerate(FAULTS):
                # An error answer must come in time to count as one (a loaded machine once took
                # longer than 0.1 s): the short timeout is for the faults that never answer.
                timeout_s = 2.0 if kind == "exception" else 0.1
                driver = Dlt645Driver(
                    device(f"f_{kind}", 11 + i, timeout_s=timeout_s, retries=2), bus, CLOCK
                )
                started = time.monotonic()
                if kind == "exception":  # the meter's own error answer: not retried
                    (raw,) = await driver.read([request(f"f_{kind}", di="00010000")])
                    assert raw.value is None
                    assert raw.error == "meter error 0x01 (other error)"
                    assert driver.attempts == 1
                else:
                    with pytest.raises(DriverError) as caught:
                        await driver.read([request(f"f_{kind}", di="00010000")])
                    expected = {"no_answer": "timeout", "bad_checksum": "checksum"}
                    expected_kind = expected.get(kind, kind)
                    if kind == "garbled":  # damage anywhere: seen as whatever it broke
                        assert caught.value.kind in ("garbled", "checksum", "truncated", "timeout")
                    else:
                        assert caught.value.kind == expected_kind, caught.value
                    assert "3 attempt(s)" in str(caught.value)
                    assert driver.attempts == 3
                    # Each attempt waited no longer than the timeout after its request.
                    assert time.monotonic() - started < 3 * (0.1 + 0.05) + 0.3
                assert fault_count(fl, f"f_{kind}", kind) == driver.attempts
            # The bus is fine for a healthy meter after all that.
            ok = Dlt645Driver(device("ok", 1), bus, CLOCK)
            (raw,) = await ok.read([request("ok", di="00010000")])
            assert good(raw) == sent(fl, "ok", "grid.energy_import_kwh")

    asyncio.run(main())


def test_an_occasional_bad_answer_is_retried_to_a_good_value() -> None:
    faults = [{"meter": "flaky", "kind": "bad_checksum", "probability": 0.5}]
    fl = runtime(fleet([meter("flaky", 7, [ENERGY])], buses=[BUS], faults=faults, seed=5))

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            driver = Dlt645Driver(
                device("flaky", 7, retries=6, timeout_s=0.2), arbiter(lines["b645"]), CLOCK
            )
            for _ in range(6):
                (raw,) = await driver.read([request("flaky", di="00010000")])
                assert good(raw) == sent(fl, "flaky", "grid.energy_import_kwh")
            assert fault_count(fl, "flaky", "bad_checksum") == driver.attempts - 6 > 0

    asyncio.run(main())


def test_a_late_answer_of_another_meter_is_not_taken() -> None:
    """The slow meter answers after its timeout, in the middle of the next meter's exchange."""
    bus = {**BUS, "response_delay_ms": [100, 110]}
    faults = [{"meter": "late", "kind": "slow", "delay_ms": 150}]
    fl = runtime(
        fleet([meter("late", 2, [ENERGY]), meter("next", 1, [ENERGY])], buses=[bus], faults=faults)
    )

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            arb = arbiter(lines["b645"])
            late = Dlt645Driver(device("late", 2, timeout_s=0.05, retries=0), arb, CLOCK)
            after = Dlt645Driver(device("next", 1, timeout_s=0.5), arb, CLOCK)
            with pytest.raises(DriverError):
                await late.read([request("late", di="00010000")])
            port = arb.port
            assert port is not None
            before = port.bytes_in
            (raw,) = await after.read([request("next", di="00010000")])
            assert good(raw) == sent(fl, "next", "grid.energy_import_kwh")
            # Both answers came in during that exchange (24 bytes each), the late one first.
            assert port.bytes_in - before == 48
            late_t = max(o.t for o in fl.observations if o.meter == "late")
            next_t = max(o.t for o in fl.observations if o.meter == "next")
            assert late_t < next_t

    asyncio.run(main())


def test_bus_is_shared_fairly_one_request_at_a_time() -> None:
    meters = [
        meter(
            "m1",
            1,
            [
                ENERGY,
                {
                    "di": "0201FF00",
                    "quantities": ["grid.voltage_a", "grid.voltage_b", "grid.voltage_c"],
                    "decimals": 1,
                },
                {"di": "02030000", "quantity": "pv.power_kw", "decimals": 4},
            ],
        ),
        meter(
            "m2", 2, [{"di": "00020000", "quantity": "pv.energy_export_kwh", "rounding": "floor"}]
        ),
        meter("m3", 3, [{**ENERGY, "di": "9010"}], protocol="dlt645-1997"),
    ]
    fl = runtime(fleet(meters, buses=[BUS]))

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            arb = arbiter(lines["b645"], turnaround_ms=15)
            m1 = Dlt645Driver(device("m1", 1), arb, CLOCK)
            m2 = Dlt645Driver(device("m2", 2), arb, CLOCK)
            m3 = Dlt645Driver(device("m3", 3, protocol="dlt645-1997"), arb, CLOCK)
            for _ in range(3):
                async with asyncio.TaskGroup() as group:
                    r1 = group.create_task(
                        m1.read([request("m1", di=d) for d in ("00010000", "0201FF00", "02030000")])
                    )
                    r2 = group.create_task(m2.read([request("m2", di="00020000")]))
                    r3 = group.create_task(m3.read([request("m3", di="9010")]))
                assert good(r1.result()[0]) == sent(fl, "m1", "grid.energy_import_kwh")
                assert good(r2.result()[0]) == sent(fl, "m2", "pv.energy_export_kwh")
                assert good(r3.result()[0]) == sent(fl, "m3", "grid.energy_import_kwh")
            turns = list(arb.turns)
            assert arb.max_in_flight == 1
            assert lines["b645"].collisions == 0
            # First come, first served: m1's second and third DIs queue behind m2 and m3.
            assert [t.device for t in turns[:5]] == ["m1", "m2", "m3", "m1", "m1"]
            for before, after in itertools.pairwise(turns):
                assert after.asked <= after.started
                assert after.started >= before.ended + 0.015 - 1e-3  # the turnaround gap
            granted = sorted(turns, key=lambda t: t.started)
            assert [t.asked for t in granted[:5]] == sorted(t.asked for t in granted[:5])

    asyncio.run(main())


def test_broadcast_time_sets_the_meters_clocks() -> None:
    faults = [
        {"meter": f"c{i}", "kind": "clock_drift", "drift_s_per_day": 86400 * 2} for i in (1, 2)
    ]
    meters = [meter("c1", 1, [ENERGY]), meter("c2", 2, [ENERGY])]
    fl = runtime(fleet(meters, buses=[BUS], faults=faults))
    zone = timezone(timedelta(hours=fl.spec.plant.utc_offset_hours))

    def offset(meter_id: str) -> float:
        now = fl.now()
        return (fl.meters[meter_id].clock(now) - fl.plant.local_time(now)).total_seconds()

    async def main() -> None:
        async with running_serial_buses(fl) as lines:
            assert offset("c1") > 7000 and offset("c2") > 7000  # two hours ahead
            arb = arbiter(lines["b645"])
            sent_time = await broadcast_time(arb, CLOCK, zone)
            sent = time.monotonic()
            await asyncio.sleep(0.05)  # the meters take it as the frame completes
            assert sent_time.microsecond == 0
            # set to within 0.1 s; the drift fault then moves them 2 s per second again
            allowed = 0.1 + 2 * (time.monotonic() - sent)
            assert abs(offset("c1")) < allowed and abs(offset("c2")) < allowed

    asyncio.run(main())


def test_a_port_that_cannot_open_is_a_driver_error() -> None:
    from reference_terminal.config import SerialBus

    bus = BusArbiter(SerialBus(id="b", port="/dev/does-not-exist", protocol="dlt645"), CLOCK)
    driver = Dlt645Driver(device("m", 1, bus="b"), bus, CLOCK)
    with pytest.raises(DriverError) as caught:
        asyncio.run(driver.read([request("m", di="00010000")]))
    assert caught.value.kind == "port" and "/dev/does-not-exist" in str(caught.value)
    assert driver.attempts == 1  # a missing port is not retried

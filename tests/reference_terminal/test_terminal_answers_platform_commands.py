"""Interoperability (issue 5): the bench's platform centre sends the reference terminal the
platform commands of HJ 212-2017 and checks each exchange against the flows of Appendix C —
9011, the data where there is any, 9012 — step by step."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from reference_terminal.app import Terminal
from simulators.platform import PlatformFile, running_platforms
from tests.reference_terminal.uplink.helpers import (
    MN_A,
    ScaledClock,
    config,
    hj212_centre,
    local_midnight,
    minute_rows,
    running,
)


class SettableClock(ScaledClock):
    """The terminal's clock that CN 1012 may set (a gateway without NTP or GNSS)."""

    def set_time(self, t: float) -> None:
        self.start += t - self.time()


def wire(t: float) -> datetime:
    """Plant-local time, as HJ 212 carries it."""
    return (datetime.fromtimestamp(t, UTC) + timedelta(hours=8)).replace(tzinfo=None)


def test_every_platform_command_is_answered_as_appendix_c_has_it(tmp_path: Path) -> None:
    async def main() -> None:
        clock = SettableClock(speed=60.0)
        spec = PlatformFile.model_validate(
            {
                "centres": [
                    {"name": "provincial", "protocol": "hj212", "port": 0, "passwords": "any"}
                ]
            }
        )
        async with running_platforms(spec, clock=clock) as platforms:
            centre = platforms.hj212("provincial")
            cfg = config(tmp_path, [hj212_centre("provincial", MN_A, centre.address[1])])
            async with running(Terminal(cfg, clock=clock)) as store:
                day = local_midnight(clock.time()) - 86400  # yesterday: history to serve
                await store.write_derived(minute_rows(day + 3600, 5))
                await centre.wait_connected(MN_A, 600)  # once its first frame arrived
                c = centre.commands(MN_A)

                timeouts = await c.set_timeouts(20, 2)
                got_time = await c.get_time()
                target = clock.time() + 3600
                set_time = await c.set_time(wire(target))
                after = clock.time()
                set_rtd = await c.set_rtd_interval(300)
                get_rtd = await c.get_rtd_interval()
                set_min = await c.set_min_interval(5)
                get_min = await c.get_min_interval()
                history = await c.minute_history(wire(day + 3600), wire(day + 3600 + 4 * 60))

        outcomes = [timeouts, got_time, set_time, set_rtd, get_rtd, set_min, get_min, history]
        for outcome in outcomes:
            assert outcome.ok, (outcome.cn, outcome.status, outcome.departures, outcome.reason)
        system_time = got_time.value("SystemTime")
        assert system_time is not None and len(system_time) == 14
        assert abs(after - target) < 60  # the terminal's clock moved an hour on 1012
        assert get_rtd.value("RtdInterval") == "300"
        assert get_min.value("MinInterval") == "5"
        # five minutes of two points, each record under a new QN (flow C.20)
        assert [r.cp.data_time for r in history.records] == [
            wire(day + 3600 + 60 * m) for m in range(5)
        ]
        assert len({r.qn for r in history.records}) == 5
        first = history.records[0].cp.pollutants
        assert set(first) == {"C301103001e0101", "a05001"}
        assert first["a05001"].values["Avg"] == Decimal("400.5")

    asyncio.run(main())

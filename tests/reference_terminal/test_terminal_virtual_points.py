"""Virtual points configured in the terminal (CSMT §8.3.2) are computed from what it reads, stored
window by window with the quality of their worst input, and uploaded like metered points."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Quality, RawValue
from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink.frames import Stream, period_frames
from reference_terminal.uplink.service import coding_for

T0 = 1_767_578_400.0  # 2026-01-05 10:00 +08:00


def terminal_config(tmp_path: Path) -> TerminalConfig:
    counter: dict[str, Any] = {"kind": "counter", "unit": "kWh", "group": "g", "decimals": 1}
    return TerminalConfig.model_validate(
        {
            "devices": [{"id": "desk", "protocol": "manual"}],
            "groups": [{"id": "g", "period_s": 60}],
            "points": [
                {"id": "Main", "source": {"device": "desk"}, **counter},
                {"id": "Branch", "source": {"device": "desk"}, **counter},
            ],
            "virtual_points": [
                {"op": "subtract", "id": "Rest", "minuend": "Main", "subtrahends": ["Branch"]},
            ],
            "storage": {"url": sqlite_url(tmp_path / "t.db")},
            "uplink": {
                "codes": [
                    {"point": "Main", "code": "e01001"},
                    {"point": "Rest", "code": "e01002"},
                ],
                "centres": [
                    {
                        "name": "p",
                        "protocol": "hj212",
                        "mn": "0" * 24,
                        "host": "127.0.0.1",
                        "port": 1,
                    }
                ],
            },
        }
    )


def raw(point: str, k: int, value: str | None) -> RawValue:
    """The ``k``-th minute's value (None: the acquisition failed)."""
    t = T0 + 60 * k + 0.5
    if value is None:
        return RawValue(point, None, "", t, "desk", "no answer")
    return RawValue(point, Decimal(value), value, t, "desk")


def test_a_virtual_point_is_stored_with_its_worst_inputs_quality_and_uploaded(
    tmp_path: Path,
) -> None:
    config = terminal_config(tmp_path)
    main = ["100.0", "103.0", "106.5", "110.0", "113.0", "116.0"]
    branch = ["50.0", "51.0", None, "53.0", "54.0", "55.0"]  # minute 2 filled by interpolation

    async def main_() -> None:
        terminal = Terminal(config)
        task = asyncio.create_task(terminal.run())
        try:
            await asyncio.wait_for(terminal.ready.wait(), 30)
            for k in range(6):
                await terminal.accept([raw("Main", k, main[k]), raw("Branch", k, branch[k])])
            await terminal.settled()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with await Store.open(config.storage.url) as store:
            rest = await store.derived("Rest", "minute")
        assert [(d.start - T0, d.value, d.quality) for d in rest] == [
            (0, Decimal("2.0"), Quality.MANUAL),  # (103.0 − 100.0) − (51.0 − 50.0)
            (60, Decimal("2.5"), Quality.INTERPOLATED),  # Branch's 52.0 at minute 2 was filled
            (120, Decimal("2.5"), Quality.INTERPOLATED),
            (180, Decimal("2.0"), Quality.MANUAL),
        ]
        # Uploaded as a total (Cou), like a metered counter, under its own code.
        coding = coding_for(config, config.uplink.centres[0])
        frames = period_frames(rest, Stream.MINUTE, 2051, coding)
        assert [(i.code, i.values) for i in frames[0].items] == [
            ("e01002", (("Cou", Decimal("2.0")),))
        ]

    asyncio.run(main_())

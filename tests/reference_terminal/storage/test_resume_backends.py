"""A restart resumes the same from the same store on every backend: the boot's questions
(baselines, stored windows, monthly history, which replayed windows are stored) run as
prepared statements in each dialect's own text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.config import Point
from reference_terminal.model import Quality, Reading
from reference_terminal.processing.pipeline import Processor
from reference_terminal.resume import Resumed, resume
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url
from tests.reference_terminal.storage.helpers import window

pytestmark = pytest.mark.anyio

T0 = 1_767_578_400.0  # 2026-01-05 10:00 +08:00
DECEMBER = 1_764_518_400.0  # 2025-12-01 00:00 +08:00


def counter() -> Point:
    return Point.model_validate(
        {
            "id": "EM01.ep",
            "kind": "counter",
            "group": "g",
            "source": {"device": "EM01"},
            "decimals": 2,
            "full_scale": "1000000",
        }
    )


async def resumed_from(url: str) -> Resumed:
    """A counter read every minute for an hour and a half, its first hour's minute windows
    and the hour stored (the rest the power cut took), a stored month, and a reading that
    failed last; then a restart."""
    async with await Store.open(url) as store:
        values = [
            Reading(
                "EM01.ep", T0 + 60 * i, f"{100 + i}.00", Decimal(100 + i), Quality.GOOD, 2, "EM01"
            )
            for i in range(90)
        ]
        values.append(Reading("EM01.ep", T0 + 5400, "", None, Quality.COMM_FAULT, 2, "EM01"))
        month = Derived(
            "EM01.ep", "month", DECEMBER, T0 - 4 * 86400, Decimal("300"), Quality.GOOD, "", T0
        )
        stored = [window("EM01.ep", "minute", T0 + 60 * i, "1.00") for i in range(60)]
        stored.append(window("EM01.ep", "hour", T0, "60.00", length=3600.0, count=60))
        await store.write(values, derived=[month, *stored])
        async with store.indexed_by_point():
            return await resume(Processor([counter()]), store)


async def test_a_restart_resumes_the_same_on_every_backend(url: str, tmp_path: Path) -> None:
    expected = await resumed_from(sqlite_url(tmp_path / "reference.db"))
    assert (expected.baselines, expected.months) == (1, 1)
    assert expected.replayed == 31  # from the end of the stored hour
    assert expected.recovered  # the minutes after the stored hour, closed by the replay
    got = await resumed_from(url)
    assert got == expected
    assert got.recovered == expected.recovered

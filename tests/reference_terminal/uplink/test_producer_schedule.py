"""When a centre's producer scans: a period's grace after each minute while the centre's link is
up (late values of the period still make its frame), on the minute itself while it is down
(nothing can be sent before the link returns, and the terminal wakes once a minute, with
acquisition, instead of twice); every ten minutes while an HJ 212 centre's link is down, whose
client has it build what is due the moment the link is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reference_terminal.storage.store import Store, sqlite_url
from reference_terminal.uplink.producer import UNLINKED_SCAN_EVERY_S

from .helpers import MN_A, T0, config, hj212_centre, producers


def test_a_producer_scans_after_the_grace_while_linked_and_on_the_minute_while_not(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            [producer] = producers(store, config(tmp_path, [hj212_centre("a", MN_A, 1)]))
            linked = True
            producer.linked = lambda: linked
            assert producer._next_due(T0 + 10) == T0 + 65  # grace_s = 5
            assert producer._next_due(T0 + 65) == T0 + 125
            linked = False
            assert producer._next_due(T0 + 10) == T0 + 60
            assert producer._next_due(T0 + 60) == T0 + 120

    asyncio.run(main())


def test_a_producer_that_is_told_when_the_link_returns_scans_every_ten_minutes_while_down(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
            [producer] = producers(store, config(tmp_path, [hj212_centre("a", MN_A, 1)]))
            producer.slow_while_unlinked = True
            linked = False
            producer.linked = lambda: linked
            assert T0 % UNLINKED_SCAN_EVERY_S == 0
            assert producer._next_due(T0 + 10) == T0 + UNLINKED_SCAN_EVERY_S
            assert producer._next_due(T0 + 600) == T0 + 2 * UNLINKED_SCAN_EVERY_S
            linked = True
            assert producer._next_due(T0 + 10) == T0 + 65

    asyncio.run(main())

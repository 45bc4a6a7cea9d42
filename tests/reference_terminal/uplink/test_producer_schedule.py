"""When a centre's producer scans: a period's grace after each minute while the centre's link is
up (late values of the period still make its frame), on the minute itself while it is down
(nothing can be sent before the link returns, and the terminal wakes once a minute, with
acquisition, instead of twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reference_terminal.storage.store import Store, sqlite_url

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

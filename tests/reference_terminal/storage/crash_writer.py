"""Child process of the crash test: writes readings from many concurrent writers and prints
the id of each reading (its ``note``) once ``write`` has acknowledged it, one per line.

    python -m tests.reference_terminal.storage.crash_writer DB FIRST_ID [SYNCHRONOUS [REWIND_AT
        [SETTLE_ROWS]]]

``REWIND_AT``: the intake log starts afresh past this many bytes (default 8 MiB), so that a
cut comes between rewinds, where the log has just given up records the database must hold;
the writers then pause between writes, or the database never catches up with the log (a log
rewinds only once the database holds all of it). ``SETTLE_ROWS``: the store's ``settle_rows``
(a small number settles many times a second, so that cuts land in settles).
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from reference_terminal.model import Event, Quality, Reading
from reference_terminal.storage import intake_log
from reference_terminal.storage.store import DEFAULT_SETTLE_ROWS, Store, sqlite_url


async def main(
    path: str, first_id: int, synchronous: str = "FULL", rewind_at: str = "", settle_rows: str = ""
) -> None:
    pause = 0.0
    if rewind_at:
        intake_log.REWIND_AT_BYTES = int(rewind_at)  # type: ignore[misc]  # this child only
        pause = 0.02
    store = await Store.open(
        sqlite_url(path),
        batch_max=200,
        synchronous=synchronous,
        settle_rows=int(settle_rows) if settle_rows else DEFAULT_SETTLE_ROWS,
    )
    next_id = first_id
    out = sys.stdout

    async def writer(w: int) -> None:
        nonlocal next_id
        while True:
            ids = range(next_id, next_id + 1 + w % 4)
            next_id = ids[-1] + 1
            await store.write(
                [
                    Reading(
                        f"P{w}",
                        float(i),
                        f"{i:08X}",
                        Decimal(i).scaleb(-2),
                        Quality.GOOD,
                        2,
                        "m",
                        str(i),
                    )
                    for i in ids
                ],
                events=[
                    Event(
                        float(ids[0]),
                        "batch",
                        f"P{w}",
                        details={"first": str(ids[0]), "size": str(len(ids))},
                    )
                ],
            )
            out.write("".join(f"{i}\n" for i in ids))
            out.flush()
            if pause:
                await asyncio.sleep(pause)

    out.write("ready\n")
    out.flush()
    await asyncio.gather(*(writer(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:]))

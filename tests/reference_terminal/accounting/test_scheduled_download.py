"""The factor library looked for on the terminal's own schedule (CSMT §11.4 a)): nothing
published is nothing to do, a publication changed after signing is refused once and logged, a
new one is kept, logged with its version and bound at the next minute booked; the same one again
changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import yaml

from common.clock import RealClock
from reference_terminal.accounting.running import RunningAccounting
from reference_terminal.accounting.scheduled_download import ScheduledDownload
from reference_terminal.processing.pipeline import Output
from reference_terminal.storage.store import Store, sqlite_url
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.factor_library import FactorPublisher, public_key_file
from tests.reference_terminal.accounting.terminal_config import LIBRARY, make_config

AT = datetime(2027, 1, 1, 0, 10, tzinfo=UTC)
T0 = 1_767_581_400.0
CC = Decimal("0.01532")  # natural gas, tC/GJ, in the built-in library


def published(revision: int, carbon_content: Decimal) -> str:
    """The built-in 2015 vintage as a platform republishes it, with the gas's carbon content."""
    data = yaml.safe_load((LIBRARY / "gbt32150-2015.yaml").read_text(encoding="utf-8"))
    data["revision"] = revision
    for entry in data["factors"]:
        if entry["name"] == "natural_gas":
            entry["carbon_content"] = f"{carbon_content} tC/GJ"
    return yaml.safe_dump({"vintages": [data]}, allow_unicode=True, sort_keys=False)


def test_a_new_publication_is_taken_logged_and_bound(tmp_path: Path) -> None:
    async def main() -> None:
        with Record("sqlite://", flush_interval=0.01) as record:
            async with HttpsServer(HttpsCentre(name="province"), record, RealClock()) as centre:
                key_file = tmp_path / "publisher.pem"
                publisher = centre.publisher = FactorPublisher.create("province", key_file)
                config = make_config(
                    tmp_path,
                    factor_download={
                        "url": centre.factors_url,
                        "ca_file": str(centre.ca_file),
                        "trusted_keys": [str(public_key_file(key_file))],
                        "every_s": 300,
                    },
                )
                accounting = RunningAccounting.from_config(config)
                assert accounting is not None
                gas = accounting.bindings.points["gm.vol"].rate.rate
                async with await Store.open(sqlite_url(tmp_path / "t.db")) as store:
                    download = ScheduledDownload(config, store, RealClock())
                    assert await download.once() == "none"
                    changed = published(7, CC * Decimal("1.25"))
                    publisher.publish(changed, "7-x", AT, tamper=True)
                    assert await download.once() == "refused"
                    assert await download.once() == "unchanged"  # refused once, logged once
                    accounting.book(Output(), T0)
                    assert accounting.bindings.points["gm.vol"].rate.rate == gas
                    publisher.publish(changed, "7", AT)
                    assert await download.once() == "taken"
                    assert await download.once() == "unchanged"
                    refused = await store.events(kind="method_download_refused")
                    (taken,) = await store.events(kind="method_download")
                assert len(refused) == 1 and refused[0].details["code"] == "digest"
                assert taken.details["version"] == "7"
                assert taken.details["trigger"] == "scheduled"
                # bound again at the next booking: the gas at the published carbon content
                accounting.book(Output(), T0)
                assert accounting.bindings.points["gm.vol"].rate.rate == gas * Decimal("1.25")

    asyncio.run(main())

"""SQL plant historians: rows appear as plant time passes, the live table follows the plant,
faults show as OPC quality, and the terminal's query reads good values only.

SQLite always; PostgreSQL too when it is reachable (this machine's, in a schema of the test's
own; ``CARBENCH_TEST_POSTGRES`` points elsewhere), said when skipped."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.loader import FleetFileError, parse_fleet
from simulators.fleet.schema import Fleet, SqlHistorian
from simulators.meters.sql_historian import (
    BAD_COMM_FAILURE,
    GOOD,
    UNCERTAIN_LAST_USABLE,
    database_url,
    live_query,
    serve_sql_historians,
    tables,
)
from tests.reference_terminal.storage.conftest import postgres_url

START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
FLEET = """\
name: t
start: 2026-01-01T00:00:00+08:00
plant:
  sources:
    - {id: cement_out, kind: production, rated_t_h: 60}
    - {id: hot_water, kind: heat, rated_kw: 300}
meters:
  - id: mes
    protocol: sql
    interval_s: 10
    tags:
      - {name: CM1.OUTPUT.TOTAL, quantity: cement_out.mass_t, decimals: 2, rounding: floor}
      - {name: HW.RETURN.TEMP, quantity: hot_water.return_temp_c, decimals: 1}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The historian's database: its own SQLite file (None), or a fresh PostgreSQL schema."""
    if request.param == "postgresql":
        yield from postgres_url()
    else:
        yield None


def fleet_spec(faults: Sequence[Mapping[str, Any]] = (), **historian: Any) -> Fleet:
    data = parse_fleet(FLEET, "t.yaml").model_dump(mode="json")
    data["meters"][0] |= historian
    return Fleet.model_validate(data | {"faults": list(faults)})


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(r) for r in db.execute(text(sql))]
    finally:
        engine.dispose()


def run_for(fleet: FleetRuntime, work_dir: Path, seconds: float) -> None:
    """Run the fleet's historians for ``seconds`` of virtual time."""

    async def main() -> None:
        task = asyncio.create_task(serve_sql_historians(fleet, work_dir))
        await fleet.clock.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_rows_appear_as_time_passes_and_follow_the_plant(tmp_path: Path, url: str | None) -> None:
    spec = fleet_spec(url=url) if url else fleet_spec()
    t0 = START.timestamp() + 8 * 3600  # a working shift: production counts up
    fleet = FleetRuntime(spec, VirtualClock(t0))
    run_for(fleet, tmp_path, 35)  # recordings at 0, 10, 20 and 30 s
    meter = spec.meters[0]
    assert isinstance(meter, SqlHistorian)
    where = url or database_url(meter, tmp_path)
    assert fleet.endpoints[0].protocol == "sql" and fleet.endpoints[0].address == where
    history = rows(where, "SELECT tag, ts, value, quality FROM plant_history ORDER BY ts, tag")
    assert len(history) == 8
    assert {r[3] for r in history} == {GOOD}
    for tag, ts, value, _ in history:
        point = next(p for p in meter.tags if p.name == tag)
        stamp = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
        t = stamp.replace(tzinfo=UTC).timestamp()
        assert round(t - t0, 6) in (0, 10, 20, 30)
        assert Decimal(repr(value)) == quantize(fleet.plant.value(point.quantity, t), point)
    totals = [r[2] for r in history if r[0] == "CM1.OUTPUT.TOTAL"]
    assert totals == sorted(totals) and totals[0] < totals[-1]  # the counter counted
    # the terminal's query: the latest of each tag, the values the historian last showed
    latest = dict(rows(where, live_query("plant")))
    assert latest == {r[0]: r[2] for r in history[-2:]}
    shown = [o for o in fleet.observations if o.t == t0 + 30]
    assert {o.quantity: float(o.value) for o in shown} == {
        "cement_out.mass_t": latest["CM1.OUTPUT.TOTAL"],
        "hot_water.return_temp_c": latest["HW.RETURN.TEMP"],
    }
    tags = rows(where, "SELECT tag, description, unit, decimals FROM plant_tags ORDER BY tag")
    assert tags == [
        ("CM1.OUTPUT.TOTAL", "cement_out.mass_t", "t", 2),
        ("HW.RETURN.TEMP", "hot_water.return_temp_c", "°C", 1),
    ]


def test_a_restart_starts_from_empty_tables(tmp_path: Path) -> None:
    spec = fleet_spec()
    for _ in range(2):
        run_for(FleetRuntime(spec, VirtualClock(START.timestamp() + 3600)), tmp_path, 15)
    path = tmp_path / "mes.sqlite"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM plant_history").fetchone() == (4,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_faults_are_recorded_as_opc_quality_and_read_as_null(tmp_path: Path) -> None:
    faults: list[dict[str, Any]] = [
        {"meter": "mes", "kind": "garbled", "start": "PT1H10S", "end": "PT1H20S"},
        {
            "meter": "mes",
            "kind": "no_answer",
            "start": "PT1H20S",
            "quantities": ["hot_water.return_temp_c"],
        },
    ]
    fleet = FleetRuntime(fleet_spec(faults), VirtualClock(START.timestamp() + 3600))
    run_for(fleet, tmp_path, 25)
    url = f"sqlite:///{tmp_path / 'mes.sqlite'}"
    history = rows(url, "SELECT tag, value, quality FROM plant_history ORDER BY ts, tag")
    good, uncertain, bad = history[0:2], history[2:4], history[4:6]
    assert [q for _, _, q in good] == [GOOD, GOOD]
    # garbled: the DCS keeps the last usable value, flagged uncertain
    assert uncertain == [(tag, value, UNCERTAIN_LAST_USABLE) for tag, value, _ in good]
    # no answer from one field device: that tag is bad with no value, the other still good
    assert bad[0][2] == GOOD
    assert bad[1] == ("HW.RETURN.TEMP", None, BAD_COMM_FAILURE)
    assert dict(rows(url, live_query("plant"))) == {
        "CM1.OUTPUT.TOTAL": bad[0][1],
        "HW.RETURN.TEMP": None,  # the terminal gets NULL: no value, not a stale one
    }


def test_history_is_pruned_past_its_retention(tmp_path: Path) -> None:
    spec = fleet_spec(interval_s=600, history_days=0.1)  # 2.4 h of history
    fleet = FleetRuntime(spec, VirtualClock(START.timestamp() + 3600))
    run_for(fleet, tmp_path, 6 * 3600 + 1)
    history = tables("plant").history
    engine = create_engine(f"sqlite:///{tmp_path / 'mes.sqlite'}")
    with engine.connect() as db:
        oldest = db.execute(select(func.min(history.c.ts))).scalar_one()
        count = db.execute(select(func.count()).select_from(history)).scalar_one()
    engine.dispose()
    assert oldest.replace(tzinfo=UTC).timestamp() >= fleet.now() - 0.1 * 86400 - 3600
    assert count < 2 * (6 * 6 + 1)


def test_historians_on_one_database_need_their_own_tables() -> None:
    spec = FLEET.replace(
        "    interval_s: 10\n", "    url: postgresql://plant\n    interval_s: 10\n"
    )
    second = spec.split("meters:\n")[1].replace("id: mes", "id: mes2")
    with pytest.raises(FleetFileError, match="prefix"):
        parse_fleet(spec + second, "t.yaml")
    parse_fleet(spec + second.replace("interval_s", "prefix: mes2\n    interval_s"), "t.yaml")


def test_a_fleet_not_pushing_writes_its_first_rows_only(tmp_path: Path) -> None:
    """``FleetRuntime.push`` off (a bench reading the meters through their models): the
    historian is there with its first recording and records nothing more, until pushing is
    switched on again."""
    fleet = FleetRuntime(fleet_spec(), VirtualClock(START.timestamp() + 3600), push=False)

    def recorded() -> int:
        with sqlite3.connect(tmp_path / "mes.sqlite") as db:
            return int(db.execute("SELECT count(*) FROM plant_history").fetchone()[0])

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(serve_sql_historians(fleet, tmp_path))
        await fleet.clock.sleep(35)
        quiet = recorded()
        fleet.set_push(True)
        await fleet.clock.sleep(25)  # recordings 10 s apart again
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return quiet, recorded()

    quiet, pushing = asyncio.run(main())
    assert [e.protocol for e in fleet.endpoints] == ["sql"]
    assert quiet == 2
    assert pushing >= 6

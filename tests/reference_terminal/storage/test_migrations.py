"""Migrations: a fresh database gets every version, applying is idempotent and safe when two
openers race, a v1 database (as the first release wrote it) upgrades with its data intact to
exactly the schema ``schema.py`` describes, and a newer or foreign database is refused."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from reference_terminal.storage.migrations import LATEST, MIGRATIONS, current_version, migrate
from reference_terminal.storage.schema import StoreError, create_all
from reference_terminal.storage.store import Store, make_engine
from tests.reference_terminal.storage.conftest import backend_url
from tests.reference_terminal.storage.helpers import T0, derived, reading

pytestmark = pytest.mark.anyio

#: The schema the first release created, exactly as SQLite recorded it: a frozen fixture, so a
#: change to migration 1 that would no longer match shipped databases is caught.
V1_SQLITE = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL, description VARCHAR(200) NOT NULL, applied_at DOUBLE NOT NULL,
    PRIMARY KEY (version));
CREATE TABLE readings (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, point VARCHAR(64) NOT NULL, t DOUBLE NOT NULL,
    raw TEXT NOT NULL, value VARCHAR(64), quality VARCHAR(16) NOT NULL, digits SMALLINT NOT NULL,
    device VARCHAR(64) NOT NULL, note TEXT NOT NULL);
CREATE INDEX ix_readings_point_t ON readings (point, t);
CREATE TABLE events (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, t DOUBLE NOT NULL, kind VARCHAR(64) NOT NULL,
    point VARCHAR(64), device VARCHAR(64), period_start DOUBLE, period_end DOUBLE,
    details TEXT NOT NULL);
CREATE INDEX ix_events_kind_t ON events (kind, t);
CREATE INDEX ix_events_t ON events (t);
INSERT INTO schema_version VALUES (1, 'readings and events', 1767225600.0);
INSERT INTO readings (point, t, raw, value, quality, digits, device, note)
    VALUES ('EM01.ep', 1767225600.0, '33 33 34 33', '0.00', 'good', 2, 'meter-01', ''),
           ('EM01.ep', 1767225660.0, '33 34 34 33', '0.10', 'good', 2, 'meter-01', '旧');
INSERT INTO events (t, kind, point, device, period_start, period_end, details)
    VALUES (1767225600.0, 'gap', 'EM01.ep', NULL, 1767225500.0, 1767225600.0, '{"n": "1"}');
"""


def shape(engine: Engine) -> dict[str, Any]:
    """Tables, columns (type, nullability), keys and indexes, and views' columns, comparable
    across two databases."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        insp = inspect(conn)
        for view in sorted(insp.get_view_names()):
            out[f"view {view}"] = [(c["name"], str(c["type"])) for c in insp.get_columns(view)]
        for table in sorted(insp.get_table_names()):
            if table == "sqlite_sequence":
                continue
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(table)
                ),
                "unique": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in insp.get_unique_constraints(table)
                ),
            }
    return out


@pytest.fixture
def reference_url(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh database on the same backend as ``url``, to build from ``schema.py``."""
    yield from backend_url(request.node.callspec.params["url"], tmp_path / "reference")


def test_fresh_database_gets_every_version_and_reapplying_does_nothing(url: str) -> None:
    engine = make_engine(url)
    try:
        assert migrate(engine) == [m.version for m in MIGRATIONS]
        assert migrate(engine) == []
        with engine.connect() as conn:
            assert current_version(conn) == LATEST
    finally:
        engine.dispose()


def test_migrated_schema_is_what_schema_py_describes(url: str, reference_url: str) -> None:
    migrated, reference = make_engine(url), make_engine(reference_url)
    try:
        migrate(migrated, target=1)
        migrate(migrated)
        with reference.begin() as conn:
            create_all(conn)
        assert shape(migrated) == shape(reference)
    finally:
        migrated.dispose()
        reference.dispose()


async def test_v1_database_from_the_first_release_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SQLITE)
    db.close()
    async with await Store.open(f"sqlite:///{path}") as store:
        old = await store.readings("EM01.ep", 0, 5e9)
        assert [str(r.value) for r in old] == ["0.00", "0.10"]
        assert old[1].note == "旧"
        (gap,) = await store.events(kind="gap")
        assert gap.details == {"n": "1"}
        await store.write([reading("EM01.ep", T0 + 120, "0.20")], derived=[derived()])
        assert len(await store.derived("EM01.ep")) == 1
        assert len(await store.events(point="EM01.ep")) == 1
    engine = make_engine(f"sqlite:///{path}")
    reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        with reference.begin() as conn:
            create_all(conn)
        assert shape(engine) == shape(reference)
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version FROM schema_version").scalars().all()
        assert versions == list(range(1, LATEST + 1))
    finally:
        engine.dispose()
        reference.dispose()


async def test_v1_database_upgrades_on_every_backend(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine, target=1)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO readings (point, t, raw, value, quality, digits, device, note) "
                "VALUES ('EM01.ep', 1767225600.0, 'r', '0.00', 'good', 2, 'm', '')"
            )
    finally:
        engine.dispose()
    async with await Store.open(url) as store:
        assert [str(r.value) for r in await store.readings("EM01.ep", 0, 5e9)] == ["0.00"]
        await store.write_derived([derived()])
        assert len(await store.derived("EM01.ep")) == 1


def test_racing_openers_migrate_once(url: str) -> None:
    engines = [make_engine(url) for _ in range(4)]
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            results.append(migrate(engine))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert not errors
    assert sorted(results, key=len) == [[], [], [], [m.version for m in MIGRATIONS]]


async def test_newer_database_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO schema_version VALUES ({LATEST + 1}, 'from the future', 0)"
            )
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=f"version {LATEST + 1}, newer than this terminal"):
        await Store.open(sqlite_url)


async def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE readings (x)")
    db.close()
    with pytest.raises(StoreError, match="no schema_version table"):
        await Store.open(f"sqlite:///{path}")


def test_target_out_of_range(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(ValueError, match="target version"):
            migrate(engine, target=LATEST + 1)
    finally:
        engine.dispose()

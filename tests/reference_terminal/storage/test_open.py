"""Opening a store: SQLite is set up durable (WAL, synchronous=FULL, busy timeout), servers
are checked, URLs that cannot work are refused with a reason."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.config import Storage
from reference_terminal.storage.schema import StoreError
from reference_terminal.storage.store import (
    PAGE_SIZE,
    WRITER_ALONE_AUTOCHECKPOINT,
    WRITER_AUTOCHECKPOINT,
    Store,
    make_engine,
)
from tests.reference_terminal.storage.helpers import reading

pytestmark = pytest.mark.anyio


async def test_sqlite_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "data" / "terminal.db"  # missing directories are made
    async with await Store.from_config(Storage(url=f"sqlite:///{path}", batch_max=100)) as store:
        assert store.batch_max == 100
        assert await store.durability() == (
            "intake log fdatasync, then sqlite journal_mode=wal synchronous=FULL"
        )
        timeout = await store.run_in_reader(
            lambda c: c.exec_driver_sql("PRAGMA busy_timeout").scalar()
        )
        assert timeout == 10_000
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
    db.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


async def test_an_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size = 4096")
    db.execute("CREATE TABLE before_us (x)")
    db.close()
    async with await Store.open(f"sqlite:///{path}") as store:
        size = await store.run_in_reader(lambda c: c.exec_driver_sql("PRAGMA page_size").scalar())
        assert size == 4096


async def test_servers_commit_durably(url: str) -> None:
    async with await Store.open(url) as store:
        description = await store.durability()
        if store.backend == "postgresql":
            assert "fsync=on synchronous_commit=on" in description
        elif store.backend != "sqlite":
            assert description.endswith("innodb_flush_log_at_trx_commit=1")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("oracle://scott@db/orcl", "not supported"),
        ("no url at all", "not a database URL"),
    ],
)
async def test_urls_that_cannot_work_are_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        await Store.open(url)


def test_default_url_is_the_configured_sqlite_file() -> None:
    from reference_terminal.storage.store import DEFAULT_URL

    assert DEFAULT_URL == Storage().url == "sqlite:///data/terminal.db"


async def test_unreachable_server_fails_on_open_with_the_reason() -> None:
    with pytest.raises(StoreError, match=r"cannot open the store at postgresql.*127\.0\.0\.1:1"):
        await Store.open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_make_engine_completes_bare_driver_names() -> None:
    assert make_engine("postgresql://u@h/d").url.drivername == "postgresql+psycopg"
    engine = make_engine("mariadb://u@h/d")
    assert engine.url.drivername == "mariadb+pymysql"
    assert engine.url.query["charset"] == "utf8mb4"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
async def test_the_stores_threads_run_on_the_cpus_configured(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    storage = Storage(url=f"sqlite:///{tmp_path / 'terminal.db'}", cpus=[cpu])
    async with await Store.from_config(storage) as store:
        await store.write([reading()])
        await store.run_in_reader(lambda c: None)  # a reader thread exists now
        threads = [t for t in threading.enumerate() if t.name.startswith("store-")]
        names = {t.name.rstrip("_0123456789") for t in threads}
        assert {"store-writer", "store-intake", "store-checkpointer", "store-reader"} <= names
        for thread in threads:
            assert thread.native_id is not None
            assert os.sched_getaffinity(thread.native_id) == {cpu}, thread.name
    assert os.sched_getaffinity(0) != {cpu} or os.cpu_count() == 1  # the caller is left alone


def _nice_by_thread() -> dict[str, int]:
    """Each store thread's nice value, by its name without the pool's number."""
    return {
        t.name.rstrip("_0123456789"): os.getpriority(os.PRIO_PROCESS, t.native_id)
        for t in threading.enumerate()
        if t.name.startswith("store-") and t.native_id is not None
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread: Linux")
@pytest.mark.parametrize("intake_log", [True, False])
async def test_the_threads_behind_the_intake_log_yield_the_cpu(
    tmp_path: Path, intake_log: bool
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    storage = Storage(
        url=f"sqlite:///{tmp_path / 'terminal.db'}", intake_log=intake_log, background_nice=5
    )
    async with await Store.from_config(storage) as store:
        await store.write([reading()])
        await store.run_in_reader(lambda c: None)
        nice = _nice_by_thread()
    behind = min(own + 5, 19)
    # without an intake log every write waits for the writer's commit: it is not background
    assert nice["store-writer"] == (behind if intake_log else own)
    assert nice["store-checkpointer"] == (behind if intake_log else own)
    assert nice["store-reader"] == own  # queries answer the API and the uplink
    if intake_log:
        assert nice["store-intake"] == own  # every acknowledgement waits for its sync
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the caller is left alone


def _autocheckpoint(conn: Any) -> int:
    dbapi = conn.connection.dbapi_connection
    return int(dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


@pytest.mark.parametrize("checkpoint_thread", [True, False])
async def test_without_a_checkpoint_thread_the_writer_checkpoints_the_wal_itself(
    tmp_path: Path, checkpoint_thread: bool
) -> None:
    """Off, the writer's own checkpoint keeps the WAL to SQLite's usual size."""
    storage = Storage(
        url=f"sqlite:///{tmp_path / 'terminal.db'}", checkpoint_thread=checkpoint_thread
    )
    async with await Store.from_config(storage) as store:
        await store.write([reading()])
        pages = await store.run_in_writer(_autocheckpoint)
        names = {t.name for t in threading.enumerate()}
    assert ("store-checkpointer" in names) is checkpoint_thread
    assert pages == (WRITER_AUTOCHECKPOINT if checkpoint_thread else WRITER_ALONE_AUTOCHECKPOINT)

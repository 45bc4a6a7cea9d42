"""Backup while the terminal runs, and restore into a fresh store (ISC-2 §4.4, §7.4.1.4(4)).

A backup is one self-contained SQLite file, whatever the store's backend:

- SQLite store: SQLite's online backup API copies the database in a single step, inside one
  read transaction: a consistent snapshot (every write wholly in or wholly out) while the
  writer goes on, since WAL readers do not block it.
- PostgreSQL or MariaDB store: a logical copy of every table, read in one REPEATABLE READ
  transaction (one snapshot), into a fresh SQLite file with the same schema.

So any backup restores into any backend, which also moves a terminal from one to another.
``restore`` refuses a target that already holds data, upgrades an older backup's schema, and
keeps row ids (an uploader's ``id > cursor`` still means the same after a restore).

For a large server database the native tools are the usual way; ``native_dump_command`` gives
the command line: ``pg_dump --format=custom`` (restore with ``pg_restore --dbname=…``) or
``mariadb-dump``/``mysqldump --single-transaction`` (restore with ``mariadb DB < file``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.engine import URL, make_url

from reference_terminal.durable import fsync_dir, publish
from reference_terminal.storage.intake_log import log_path
from reference_terminal.storage.migrations import (
    LATEST,
    current_version,
    migrate,
    settled_copied,
)
from reference_terminal.storage.schema import (
    DATA_TABLES,
    RECENT_AND_SETTLED,
    StoreError,
    events,
    readings_settled,
)
from reference_terminal.storage.store import Store, checkpoint, make_engine, sqlite_url


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    bytes: int
    schema_version: int
    rows: dict[str, int]  # per table
    method: str  # "sqlite-online-backup" or "logical-snapshot"
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreInfo:
    rows: dict[str, int]
    backup_version: int  # the schema version the backup had (upgraded to LATEST on restore)
    method: str  # "sqlite-file-copy" or "logical-copy"
    seconds: float


# ---- file helpers ------------------------------------------------------------------------------


def _seal(path: Path) -> None:
    """Turn a SQLite file into a single self-contained file (no WAL) and check it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=DELETE").fetchall()
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise StoreError(f"backup {path} failed its check: {check}")
    finally:
        db.close()


def inspect_backup(path: str | Path) -> tuple[int, dict[str, int]]:
    """A backup's schema version and row counts; a damaged or foreign file raises StoreError."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"backup {path} does not exist")
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
            if check != "ok":
                raise StoreError(f"backup {path} is damaged: {check}")
            version = current_version(conn)
            if version == 0:
                raise StoreError(f"{path} is not a carbench store backup (no schema_version)")
            if version > LATEST:
                raise StoreError(
                    f"backup {path} has schema version {version}, newer than this terminal's "
                    f"({LATEST}): restore it with a newer terminal"
                )
            return version, _counts(conn, version)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"{path} is not a readable SQLite backup: {exc}") from None
    finally:
        engine.dispose()


def _counts(conn: Connection, version: int) -> dict[str, int]:
    names = {"readings", "events"} | ({"derived_values"} if version >= 2 else set())
    return {
        t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
        for t in DATA_TABLES
        if t.name in names
    }


#: What a logical copy reads and where it writes: readings and derived values table by table
#: (in id order each, which their views cannot give cheaply), into the target's settled tables.
_COPIES = (
    (events, events),
    *((t, settled) for _, settled, recent in RECENT_AND_SETTLED for t in (settled, recent)),
)


def _copy_tables(source: Connection, target: Connection, chunk_rows: int) -> None:
    for table, into in _COPIES:
        last = None
        while True:
            query = select(table).order_by(table.c.id).limit(chunk_rows)
            if last is not None:
                query = query.where(table.c.id > last)
            rows = [dict(row) for row in source.execute(query).mappings()]
            if rows:
                target.execute(into.insert(), rows)
                last = rows[-1]["id"]
            if len(rows) < chunk_rows:
                break


# ---- backup ------------------------------------------------------------------------------------


def backup_connection(conn: Connection, path: str | Path, *, chunk_rows: int = 5000) -> BackupInfo:
    """Back up the store ``conn`` belongs to into the SQLite file ``path`` (replaced if it
    exists). ``conn`` must not be in a transaction: the backup takes its own snapshot."""
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    try:
        if conn.dialect.name == "sqlite":
            method = "sqlite-online-backup"
            source: Any = conn.connection.dbapi_connection
            target = sqlite3.connect(part)
            try:
                source.backup(target)  # one step: one read transaction, one snapshot
            finally:
                target.close()
        else:
            method = "logical-snapshot"
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                version = current_version(conn)
                if version != LATEST:
                    raise StoreError(
                        f"the store's schema is version {version}, not {LATEST}: open it with "
                        "Store.open (which upgrades it) before backing it up"
                    )
                engine = make_engine(sqlite_url(part))
                try:
                    migrate(engine, target=version)
                    with engine.begin() as out:
                        _copy_tables(conn, out, chunk_rows)
                        settled_copied(out)
                    checkpoint(engine)
                finally:
                    engine.dispose()
        _seal(part)
        version, rows = inspect_backup(part)
        publish(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BackupInfo(
        path=path,
        bytes=path.stat().st_size,
        schema_version=version,
        rows=rows,
        method=method,
        seconds=time.perf_counter() - started,
    )


async def backup(store: Store, path: str | Path) -> BackupInfo:
    """Back up a running store into the SQLite file ``path``; writes go on meanwhile."""
    return await store.run_in_reader(lambda conn: backup_connection(conn, path))


# ---- restore -----------------------------------------------------------------------------------


def _read_engine(path: Path) -> Engine:
    return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")


def _copy_file(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _reset_sequences(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        for table in (readings_settled, events):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                )
            )


def restore(backup_path: str | Path, url: str | URL, *, chunk_rows: int = 5000) -> RestoreInfo:
    """Restore a backup into the fresh store at ``url`` (a new SQLite file, or an empty
    database). Run it before the terminal opens its store."""
    started = time.perf_counter()
    backup_path = Path(backup_path)
    version, expected = inspect_backup(backup_path)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.query.get("uri") is None:
        target = Path(u.database)
        if not target.exists() or target.stat().st_size == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            try:
                _copy_file(backup_path, part)
                publish(part, target)
            finally:
                part.unlink(missing_ok=True)
            engine = make_engine(u)
            try:
                migrate(engine)
                with engine.connect() as conn:
                    rows = _counts(conn, LATEST)
            finally:
                engine.dispose()
            return RestoreInfo(rows, version, "sqlite-file-copy", time.perf_counter() - started)

    engine = make_engine(u)
    try:
        migrate(engine)
        with engine.connect() as conn:
            held = {name: n for name, n in _counts(conn, LATEST).items() if n}
        if held:
            raise StoreError(
                f"restore target {u.render_as_string(hide_password=True)} already holds data "
                f"({', '.join(f'{n} {name}' for name, n in held.items())}): "
                "restore into a fresh store"
            )
        with tempfile.TemporaryDirectory(prefix="carbench-restore-") as tmp:
            source_path = backup_path
            if version < LATEST:  # upgrade a copy, never the backup itself
                source_path = Path(tmp) / "upgraded.db"
                _copy_file(backup_path, source_path)
                upgrade = make_engine(sqlite_url(source_path))
                try:
                    migrate(upgrade)
                    checkpoint(upgrade)
                finally:
                    upgrade.dispose()
            source = _read_engine(source_path)
            try:
                with source.connect() as src, engine.begin() as dst:
                    _copy_tables(src, dst, chunk_rows)
                    _reset_sequences(dst)
                    settled_copied(dst)
            finally:
                source.dispose()
        with engine.connect() as conn:
            rows = _counts(conn, LATEST)
    finally:
        engine.dispose()
    missing = {k: v for k, v in expected.items() if rows.get(k) != v}
    if missing:
        raise StoreError(f"restore incomplete: expected {missing}, found {rows}")
    return RestoreInfo(rows, version, "logical-copy", time.perf_counter() - started)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite store at ``url``; None for a server database or an in-memory one."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    if u.query.get("uri") is not None:
        return None
    return Path(u.database)


def stage_restore(backup_path: str | Path, target: Path) -> tuple[Path, RestoreInfo]:
    """Restore a backup beside the store file ``target`` (checked, migrated), not yet in its
    place: the running store goes on meanwhile. Returns the staged file for
    :func:`install_restored`."""
    staged = target.with_name(target.name + ".restored")
    for leftover in (staged, *_sidecars(staged)):
        leftover.unlink(missing_ok=True)
    try:
        info = restore(backup_path, sqlite_url(staged))
        _seal(staged)  # one self-contained file: no WAL of its own to carry along
    except BaseException:
        for leftover in (staged, *_sidecars(staged)):
            leftover.unlink(missing_ok=True)
        raise
    return staged, info


def install_restored(staged: Path, target: Path) -> None:
    """Put a staged restore in the place of the store file ``target``, whose store is closed.
    The old file's WAL and intake log go first: left beside the new file, SQLite would replay
    the one and the store the other into it. A cut at any instant leaves the old store (its
    WAL and log already folded in by the close) or the restored one, never a mixture."""
    for sidecar in _sidecars(target):
        sidecar.unlink(missing_ok=True)
    fsync_dir(target.parent)
    publish(staged, target)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), log_path(path)


# ---- native tools ------------------------------------------------------------------------------


def native_dump_command(url: str | URL, path: str | Path) -> tuple[list[str], dict[str, str]]:
    """The pg_dump / mariadb-dump command (and environment, for the password) that dumps the
    store at ``url`` into ``path``; SQLite needs none (use ``backup``)."""
    u = make_url(url)
    backend = u.get_backend_name()
    env: dict[str, str] = {}
    if backend == "postgresql":
        argv = ["pg_dump", "--format=custom", "--no-owner", f"--file={path}"]
        options = str(u.query.get("options", ""))
        if "search_path=" in options:
            argv.append(f"--schema={options.split('search_path=', 1)[1].split(maxsplit=1)[0]}")
        argv += ["-h", u.host or "localhost", "-p", str(u.port or 5432)]
        if u.username:
            argv += ["-U", u.username]
        if u.password:
            env["PGPASSWORD"] = str(u.password)
        argv.append(u.database or "postgres")
        return argv, env
    if backend in ("mysql", "mariadb"):
        tool = "mariadb-dump" if shutil.which("mariadb-dump") else "mysqldump"
        argv = [tool, "--single-transaction", "--quick", "--hex-blob", f"--result-file={path}"]
        argv += ["-h", u.host or "localhost", "-P", str(u.port or 3306)]
        if u.username:
            argv += ["-u", u.username]
        if u.password:
            env["MYSQL_PWD"] = str(u.password)
        tables = [t.name for _, settled, recent in RECENT_AND_SETTLED for t in (settled, recent)]
        views = [view.name for view, _, _ in RECENT_AND_SETTLED]
        argv += [u.database or "", "schema_version", "events", *tables, "derived_extent", *views]
        return argv, env
    raise StoreError(f"no native dump tool for {backend}: use backup() for SQLite")


def native_dump(url: str | URL, path: str | Path, *, timeout_s: float = 3600) -> Path:
    """Run ``native_dump_command``; raise StoreError with the tool's message if it fails."""
    argv, env = native_dump_command(url, path)
    if shutil.which(argv[0]) is None:
        raise StoreError(f"{argv[0]} is not installed: install the database's client tools")
    done = subprocess.run(
        argv, env=os.environ | env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise StoreError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return Path(path)

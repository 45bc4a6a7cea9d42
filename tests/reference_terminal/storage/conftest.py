"""Backends for the store tests: SQLite always; PostgreSQL and MariaDB when reachable.

Each PostgreSQL test gets a fresh schema (``search_path`` in the URL) and each MariaDB test a
fresh database, dropped afterwards. Servers default to the ones on this machine and can be
pointed elsewhere with ``CARBENCH_TEST_POSTGRES`` (a libpq conninfo) and
``CARBENCH_TEST_MARIADB`` (``host:port:user``).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_CONNINFO = os.environ.get(
    "CARBENCH_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
MARIADB = os.environ.get("CARBENCH_TEST_MARIADB", "127.0.0.1:3306:root")
BACKENDS = ("sqlite", "postgresql", "mariadb")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@functools.cache
def _postgres_problem() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_CONNINFO, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL not reachable ({PG_CONNINFO}): {str(exc).strip()}"
    return None


def _mariadb_params() -> dict[str, object]:
    host, port, user = MARIADB.split(":")
    return {"host": host, "port": int(port), "user": user, "password": "", "connect_timeout": 2}


@functools.cache
def _mariadb_problem() -> str | None:
    import pymysql  # type: ignore[import-untyped]

    try:
        pymysql.connect(**_mariadb_params()).close()
    except Exception as exc:
        return f"MariaDB not reachable ({MARIADB}): {exc}"
    return None


def postgres_url() -> Iterator[str]:
    import psycopg

    problem = _postgres_problem()
    if problem:
        pytest.skip(problem)
    schema = f"carbench_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        info = conn.info
        url = (
            f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{info.dbname}"
            f"?options=-csearch_path%3D{schema}&application_name={schema}"
        )
    try:
        yield url
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def mariadb_url() -> Iterator[str]:
    import pymysql

    problem = _mariadb_problem()
    if problem:
        pytest.skip(problem)
    params = _mariadb_params()
    database = f"carbench_t_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(**params)
    try:
        conn.cursor().execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    finally:
        conn.close()
    try:
        yield f"mariadb+pymysql://{params['user']}@{params['host']}:{params['port']}/{database}"
    finally:
        conn = pymysql.connect(**params)
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            conn.close()


def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        yield from postgres_url()
    elif backend == "mariadb":
        yield from mariadb_url()
    else:
        yield f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL on each backend."""
    yield from backend_url(request.param, tmp_path)


@pytest.fixture(params=BACKENDS[1:])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL on each database server."""
    yield from backend_url(request.param, tmp_path)


def drop_connections(url: str) -> int:
    """Kill the server-side sessions of the test database at ``url`` (and only those)."""
    if url.startswith("postgresql"):
        import psycopg

        schema = url.rsplit("application_name=", 1)[1]
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (schema,),
            ).fetchall()
        return len(rows)
    import pymysql

    database = url.rsplit("/", 1)[1]
    conn = pymysql.connect(**_mariadb_params())
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
        ids = [row[0] for row in cursor.fetchall()]
        for session in ids:
            cursor.execute(f"KILL {int(session)}")
        return len(ids)
    finally:
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"

"""Fixtures shared by the directory tests.

Every test that touches the store runs twice: on SQLite (a fresh copy of one
seeded file per test) and on PostgreSQL (a fresh schema per test, chosen
through asyncpg's `search_path`, dropped afterwards). PostgreSQL is expected at
127.0.0.1:5432, database `test`, trust auth as `postgres` (or `root`); set
GOVSHARE_TEST_POSTGRES_DSN (e.g. `postgresql://me@db.example:5433/scratch`) to
point elsewhere. An unreachable server fails the PostgreSQL tests, never skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from govshare.directory import SqlCatalogueStore, load_builtin_catalogue

# The clock of the seeded store: a Monday morning in Beijing (01:00 UTC).
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Database:
    """One fresh, empty place for a directory: open stores on it with `open()`."""

    backend: str
    url: str
    engine_options: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the SQLite file; None on PostgreSQL
    dsn: str = ""  # the asyncpg DSN; empty on SQLite
    schema: str = ""  # the PostgreSQL schema of this test

    def open(self, **kwargs: Any) -> SqlCatalogueStore:
        return SqlCatalogueStore(self.url, engine_options=self.engine_options, **kwargs)

    async def run_script(self, script: str) -> None:
        """Run SQL statements directly, bypassing the store (e.g. an older schema)."""
        if self.path is not None:
            path = self.path

            def run() -> None:
                with sqlite3.connect(path) as conn:
                    conn.executescript(script)
                conn.close()

            await asyncio.to_thread(run)
            return
        conn = await asyncpg.connect(
            self.dsn,
            server_settings={"search_path": self.schema, "application_name": self.schema},
        )
        try:
            await conn.execute(script)
        finally:
            await conn.close()


async def _seed(database: Database) -> None:
    seeded = database.open()
    try:
        await seeded.create_schema()
        await seeded.replace(load_builtin_catalogue())
    finally:
        await seeded.close()


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded SQLite file; SQLite tests work on copies of it."""
    path = tmp_path_factory.mktemp("seed") / "directory.db"
    asyncio.run(_seed(Database("sqlite", f"sqlite+aiosqlite:///{path}", path=path)))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_dsn(backend: str, request: pytest.FixtureRequest) -> str:
    """The PostgreSQL DSN when this test runs on PostgreSQL, else empty.

    A plain fixture, so the session's server check runs outside the test's event loop.
    """
    return str(request.getfixturevalue("postgres_dsn")) if backend == "postgresql" else ""


@contextlib.asynccontextmanager
async def _place(
    backend: str, backend_dsn: str, folder: Path, name: str
) -> AsyncIterator[Database]:
    """An empty place named `name` (a file in `folder`, or a schema), removed afterwards."""
    if backend == "sqlite":
        path = folder / f"{name}.db"
        yield Database("sqlite", f"sqlite+aiosqlite:///{path}", path=path)
        return
    dsn = backend_dsn
    schema = f"govshare_test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        parts = urlsplit(dsn)
        yield Database(
            "postgresql",
            parts._replace(scheme="postgresql+asyncpg").geturl(),
            # application_name marks this test's connections, so teardown can end
            # any a failed test left open (idle in a transaction, holding locks).
            {
                "connect_args": {
                    "server_settings": {"search_path": schema, "application_name": schema}
                }
            },
            dsn=dsn,
            schema=schema,
        )
    finally:
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                schema,
            )
            # Bounded: a connection that escaped the net must fail the teardown, not
            # hang the run (there is no per-test timeout).
            await admin.execute("SET lock_timeout = '30s'")
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


@pytest.fixture
async def database(backend: str, backend_dsn: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty place of its own for this test, removed afterwards."""
    async with _place(backend, backend_dsn, tmp_path, "directory") as place:
        yield place


@pytest.fixture
async def empty(backend: str, backend_dsn: str, tmp_path: Path) -> AsyncIterator[SqlCatalogueStore]:
    """An empty store in a second place, apart from `database` (and so from `store`):
    for tests that carry a directory from one store into a new one."""
    async with _place(backend, backend_dsn, tmp_path, "empty") as place:
        opened = place.open(clock=lambda: NOW)
        await opened.create_schema()
        try:
            yield opened
        finally:
            await opened.close()


@pytest.fixture
async def seeded(database: Database, seeded_file: Path) -> Database:
    """The place filled with the builtin catalogue."""
    if database.path is not None:
        await asyncio.to_thread(shutil.copyfile, seeded_file, database.path)
    else:
        await _seed(database)
    return database


@pytest.fixture
async def store(seeded: Database) -> AsyncIterator[SqlCatalogueStore]:
    """A store on a fresh copy of the seed, its clock fixed at NOW."""
    opened = seeded.open(clock=lambda: NOW)
    try:
        yield opened
    finally:
        await opened.close()
